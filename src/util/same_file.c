/* See same_file.h. */
#include "util/same_file.h"

#include <sys/stat.h>

bool vb_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int vb_refuse_same_file(const char *input, const char *target, const char *what, vb_err *err)
{
    if (!vb_same_file(input, target))
        return 0;
    return vb_err_set(err, "%s %s and the input %s are the same file: writing it would destroy "
                      "the input (choose another name)", what, target, input);
}

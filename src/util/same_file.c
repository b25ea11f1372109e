/* See same_file.h. */
#include "util/same_file.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool vb_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* stat of path's directory part ("." when it has none) */
static int stat_dir_of(const char *path, struct stat *st)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return stat(".", st);
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    int rc = stat(dir, st);
    free(dir);
    return rc;
}

bool vb_same_dir_part(const char *a, const char *b)
{
    struct stat da, db;
    return stat_dir_of(a, &da) == 0 && stat_dir_of(b, &db) == 0 && da.st_dev == db.st_dev &&
           da.st_ino == db.st_ino;
}

bool vb_dir_part_is(const char *path, const char *dir)
{
    struct stat dp, d;
    return stat_dir_of(path, &dp) == 0 && stat(dir, &d) == 0 && dp.st_dev == d.st_dev &&
           dp.st_ino == d.st_ino;
}

/* Where a write to path lands: path with its last component's symlinks
 * followed (at most 40, as the kernel's limit), also to a target that does
 * not exist yet, which stat() cannot see (a dangling `report.json ->
 * out.h5` is the output once the output is written). A relative target is
 * taken from the link's directory. NULL when out of memory. */
static char *follow_leaf_links(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat st;
        char target[PATH_MAX];
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            break;
        const ssize_t n = readlink(cur, target, sizeof target - 1);
        if (n <= 0)
            break;
        target[n] = '\0';
        const char *slash = strrchr(cur, '/');
        const size_t dir_len = target[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
        char *next = malloc(dir_len + (size_t)n + 1);
        if (next) {
            memcpy(next, cur, dir_len);
            memcpy(next + dir_len, target, (size_t)n + 1);
        }
        free(cur);
        cur = next;
    }
    return cur;
}

static bool same_dir_and_name(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    const char *na = sa ? sa + 1 : a, *nb = sb ? sb + 1 : b;
    return *na && strcmp(na, nb) == 0 && vb_same_dir_part(a, b);
}

bool vb_same_path(const char *a, const char *b)
{
    if (vb_same_file(a, b))
        return true;
    char *fa = follow_leaf_links(a), *fb = follow_leaf_links(b);
    /* out of memory: by the names as given */
    const bool same = same_dir_and_name(fa ? fa : a, fb ? fb : b);
    free(fa);
    free(fb);
    return same;
}

int vb_refuse_special_output(const char *path, const char *what, vb_err *err)
{
    struct stat st;
    /* a symbolic link: the rename would replace the link, not write its
     * target (/dev/stdout, a file of stdout's, became a regular file) */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char target[1024];
        const ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        return vb_err_set(err, "%s %s is a symbolic link (to %s): it is written beside it and "
                          "renamed over it, which would replace the link, not write its target; "
                          "name the file itself", what, path, n > 0 ? target : "?");
    }
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    return vb_err_set(err, "%s %s is not a regular file (%s): it is written beside it and "
                      "renamed over it, so name a regular file",
                      what, path,
                      S_ISDIR(st.st_mode)    ? "a directory"
                      : S_ISFIFO(st.st_mode) ? "a FIFO"
                      : S_ISSOCK(st.st_mode) ? "a socket"
                                             : "a device");
}

int vb_refuse_existing_temp(const char *tmp, vb_err *err)
{
    struct stat st;
    if (stat(tmp, &st) != 0)
        return 0;
    return vb_err_set(err, "%s: already exists and the output is written there first "
                      "(--overwrite replaces it, or choose another output name)", tmp);
}

int vb_refuse_same_file(const char *input, const char *target, const char *what, vb_err *err)
{
    if (!vb_same_file(input, target))
        return 0;
    return vb_err_set(err, "%s %s and the input %s are the same file: writing it would destroy "
                      "the input (choose another name)", what, target, input);
}

int vb_remove_if_there(const char *path, vb_err *err)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return vb_err_set(err, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

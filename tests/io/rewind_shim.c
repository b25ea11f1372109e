/* An input file that changes between pack's two passes, for tests: an
 * LD_PRELOAD library whose fseek(fp, 0, SEEK_SET) -- pack's return to the
 * start of a regular input after counting its rows -- first replaces the
 * file's contents.
 *   REWIND_SHIM_PATH  the file to replace (unset: the shim does nothing)
 *   REWIND_SHIM_WITH  the file whose contents it gets
 * The replacement keeps the inode (truncate and write in place), as a
 * writer appending to or rewriting the file would. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void replace_contents(const char *path, const char *with)
{
    FILE *in = fopen(with, "rb"), *out = fopen(path, "r+b");
    char buf[65536];
    size_t n;
    if (!in || !out) {
        fprintf(stderr, "rewind_shim: cannot open %s or %s\n", path, with);
        abort();
    }
    if (ftruncate(fileno(out), 0) != 0)
        abort();
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            abort();
    fclose(in);
    if (fclose(out) != 0)
        abort();
}

int fseek(FILE *fp, long offset, int whence)
{
    static int (*real_fseek)(FILE *, long, int);
    if (!real_fseek)
        real_fseek = (int (*)(FILE *, long, int))dlsym(RTLD_NEXT, "fseek");
    const char *path = getenv("REWIND_SHIM_PATH"), *with = getenv("REWIND_SHIM_WITH");
    if (path && with && offset == 0 && whence == SEEK_SET)
        replace_contents(path, with);
    return real_fseek(fp, offset, whence);
}

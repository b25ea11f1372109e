/* See cli_convert.h. */
#include "cli/cli_convert.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_args.h"
#include "util/exit_codes.h"
#include "util/same_file.h"
#include "util/writable.h"

static const struct option convert_options[] = {
    {"overwrite", no_argument, NULL, 1},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* OUT, and OUT.tmp that io/pack.c and io/unpack.c write first and rename
 * over OUT, must not be IN: with --overwrite `pack IN IN` replaced the
 * JSONL source with its own HDF5, and an IN named OUT.tmp was truncated
 * even without it. Without --overwrite neither may exist: a file named
 * OUT.tmp was truncated as well. */
static int refuse_output(const char *in, const char *out, bool overwrite, vb_err *err)
{
    size_t tl = strlen(out) + sizeof ".tmp";
    char *tmp = malloc(tl);
    if (!tmp)
        return vb_err_set(err, "%s: out of memory", out);
    snprintf(tmp, tl, "%s.tmp", out);
    struct stat st;
    int rc = 0;
    /* what would fail only after reading the whole input, said first */
    if (!*out)
        rc = vb_err_set(err, "the output path is empty");
    else if (stat(in, &st) == 0 && S_ISDIR(st.st_mode))
        rc = vb_err_set(err, "%s: is a directory (give one file)", in);
    if (rc == 0)
        rc = vb_refuse_same_file(in, out, "the output", err);
    if (rc == 0)
        rc = vb_refuse_same_file(in, tmp, "the output's temporary file", err);
    if (rc == 0)
        rc = vb_refuse_special_output(out, "the output", err);
    if (rc == 0)
        rc = vb_refuse_no_directory(out, "the output", err);
    if (rc == 0 && !overwrite && stat(out, &st) == 0)
        rc = vb_err_set(err, "%s: already exists (--overwrite replaces it)", out);
    if (rc == 0 && !overwrite)
        rc = vb_refuse_existing_temp(tmp, err);
    free(tmp);
    return rc;
}

int cli_convert_command(const char *cmd, int argc, char **argv, void (*help)(void),
                        int (*convert)(const char *in, const char *out, vb_err *err))
{
    int c;
    bool overwrite = false;
    while ((c = cli_next_option(cmd, argc, argv, convert_options)) != -1) {
        if (c == 'h') {
            help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
        if (c == 1)
            overwrite = true;
    }
    if (argc - optind != 2) {
        cli_usage_error(cmd, "needs two paths, IN and OUT (got %d)", argc - optind);
        return VB_EXIT_USAGE;
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    vb_err err = {{0}};
    if (refuse_output(in, out, overwrite, &err) < 0) {
        fprintf(stderr, "voltbatch %s: %s\n", cmd, err.msg);
        return VB_EXIT_USAGE;
    }
    if (convert(in, out, &err) < 0) {
        fprintf(stderr, "voltbatch %s: %s\n", cmd, err.msg);
        return VB_EXIT_USAGE;
    }
    return VB_EXIT_OK;
}

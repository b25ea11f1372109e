/* `voltbatch unpack`: Converts an output HDF5 file to JSON Lines with every field.
 * The work is in io/pack.c and io/unpack.c; this file parses options and
 * refuses to replace an existing file without --overwrite. */
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "io/pack.h"
#include "util/errors.h"
#include "util/exit_codes.h"

static const struct option unpack_options[] = {
    {"overwrite", no_argument, NULL, 1},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void unpack_help(void)
{
    fputs("usage: voltbatch unpack OUT.h5 OUT.jsonl [--overwrite]\n"
          "\n"
          "Converts an output HDF5 file to JSON Lines with every field (index, id,\n"
          "completion, finish_reason, error, token counts, output_ids, logprobs).\n"
          "An input file (from pack) unpacks to pack's JSON Lines format.\n"
          "OUT.jsonl is not replaced without --overwrite.\n",
          stdout);
}

int cmd_unpack(int argc, char **argv)
{
    int c;
    bool overwrite = false;
    while ((c = cli_next_option("unpack", argc, argv, unpack_options)) != -1) {
        if (c == 'h') {
            unpack_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
        if (c == 1)
            overwrite = true;
    }
    if (argc - optind != 2) {
        cli_usage_error("unpack", "needs two paths, IN and OUT (got %d)", argc - optind);
        return VB_EXIT_USAGE;
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    struct stat st;
    if (!overwrite && stat(out, &st) == 0) {
        fprintf(stderr, "voltbatch unpack: %s: already exists (--overwrite replaces it)\n", out);
        return VB_EXIT_USAGE;
    }
    vb_err err = {{0}};
    if (vb_unpack(in, out, &err) < 0) {
        fprintf(stderr, "voltbatch unpack: %s\n", err.msg);
        return VB_EXIT_USAGE;
    }
    return VB_EXIT_OK;
}

/* `voltbatch pack`: Converts JSON Lines or one-prompt-per-line text to the HDF5 input schema.
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

static const struct option pack_options[] = {
    {"overwrite", no_argument, NULL, 1},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void pack_help(void)
{
    fputs("usage: voltbatch pack IN.jsonl|IN.txt OUT.h5 [--overwrite]\n"
          "\n"
          "Converts JSON Lines or one-prompt-per-line text to the HDF5 input schema.\n"
          "\n"
          "JSON Lines (.jsonl/.json/.ndjson, or a first line starting with '{'): one\n"
          "object per line with \"prompt\" (string) or \"messages\" (array of\n"
          "{\"role\", \"content\"}); optional \"id\" (string or integer), \"system\",\n"
          "\"max_new_tokens\", \"seed\". Text: every non-blank line is one prompt.\n"
          "Errors name the line. OUT.h5 is not replaced without --overwrite.\n",
          stdout);
}

int cmd_pack(int argc, char **argv)
{
    int c;
    bool overwrite = false;
    while ((c = cli_next_option("pack", argc, argv, pack_options)) != -1) {
        if (c == 'h') {
            pack_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
        if (c == 1)
            overwrite = true;
    }
    if (argc - optind != 2) {
        cli_usage_error("pack", "needs two paths, IN and OUT (got %d)", argc - optind);
        return VB_EXIT_USAGE;
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    struct stat st;
    if (!overwrite && stat(out, &st) == 0) {
        fprintf(stderr, "voltbatch pack: %s: already exists (--overwrite replaces it)\n", out);
        return VB_EXIT_USAGE;
    }
    vb_err err = {{0}};
    if (vb_pack(in, out, &err) < 0) {
        fprintf(stderr, "voltbatch pack: %s\n", err.msg);
        return VB_EXIT_USAGE;
    }
    return VB_EXIT_OK;
}

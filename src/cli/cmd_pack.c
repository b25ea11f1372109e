/* `voltbatch pack`: Converts JSON Lines or one-prompt-per-line text to the HDF5 input schema.
 * Not built yet: the options are checked so scripts fail early and the same
 * way they will once it lands (issue #5 (batch I/O)). */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
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
          "Converts JSON Lines or one-prompt-per-line text to the HDF5 input schema.\n",
          stdout);
}

int cmd_pack(int argc, char **argv)
{
    int c;
    while ((c = cli_next_option("pack", argc, argv, pack_options)) != -1) {
        if (c == 'h') {
            pack_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
    }
    return cli_not_built("pack", "issue #5 (batch I/O)");
}

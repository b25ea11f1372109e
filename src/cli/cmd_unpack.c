/* `voltbatch unpack`: Converts an output HDF5 file to JSON Lines with every field.
 * Not built yet: the options are checked so scripts fail early and the same
 * way they will once it lands (issue #5 (batch I/O)). */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
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
          "Converts an output HDF5 file to JSON Lines with every field.\n",
          stdout);
}

int cmd_unpack(int argc, char **argv)
{
    int c;
    while ((c = cli_next_option("unpack", argc, argv, unpack_options)) != -1) {
        if (c == 'h') {
            unpack_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
    }
    return cli_not_built("unpack", "issue #5 (batch I/O)");
}

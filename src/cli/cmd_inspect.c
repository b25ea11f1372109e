/* `voltbatch inspect`: Prints the architecture, parameter count and memory plan per rank.
 * Not built yet: the options are checked so scripts fail early and the same
 * way they will once it lands (issue #3 (model loading)). */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "util/exit_codes.h"

static const struct option inspect_options[] = {
    {"model", required_argument, NULL, 1},
    {"tp", required_argument, NULL, 2},
    {"gpu-memory", required_argument, NULL, 3},
    {"gpu-memory-utilization", required_argument, NULL, 4},
    {"max-model-len", required_argument, NULL, 5},
    {"json", no_argument, NULL, 6},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void inspect_help(void)
{
    fputs("usage: voltbatch inspect --model DIR [--tp N] [--gpu-memory BYTES|auto] [--gpu-memory-utilization F] [--json]\n"
          "\n"
          "Prints the architecture, parameter count and memory plan per rank.\n",
          stdout);
}

int cmd_inspect(int argc, char **argv)
{
    int c;
    while ((c = cli_next_option("inspect", argc, argv, inspect_options)) != -1) {
        if (c == 'h') {
            inspect_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
    }
    return cli_not_built("inspect", "issue #3 (model loading)");
}

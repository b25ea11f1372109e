/* `voltbatch bench`: Runs the engine on synthetic prompts and reports throughput and latency.
 * Not built yet: the options are checked so scripts fail early and the same
 * way they will once it lands (issue #8 (bench)). */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "util/exit_codes.h"

static const struct option bench_options[] = {
    {"model", required_argument, NULL, 1},
    {"tp", required_argument, NULL, 2},
    {"input-len", required_argument, NULL, 3},
    {"output-len", required_argument, NULL, 4},
    {"num-prompts", required_argument, NULL, 5},
    {"input", required_argument, NULL, 6},
    {"report", required_argument, NULL, 7},
    {"device", required_argument, NULL, 8},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void bench_help(void)
{
    fputs("usage: mpirun -np N voltbatch bench --model DIR --tp N --input-len N --output-len N --num-prompts N [--report FILE.json]\n"
          "\n"
          "Runs the engine on synthetic prompts and reports throughput and latency.\n",
          stdout);
}

int cmd_bench(int argc, char **argv)
{
    int c;
    while ((c = cli_next_option("bench", argc, argv, bench_options)) != -1) {
        if (c == 'h') {
            bench_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
    }
    return cli_not_built("bench", "issue #8 (bench)");
}

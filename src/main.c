/* voltbatch: batch LLM inference for GPU clusters.
 *
 * One binary, several subcommands; this file only dispatches. `generate`
 * and `bench` run under mpirun (one rank per GPU); the others are plain
 * tools that never start MPI. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "io/input_check.h"
#include "cli/build_info.h"
#include "util/exit_codes.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"generate", cmd_generate, "run every prompt of HDF5 inputs through a model (mpirun)"},
    {"bench", cmd_bench, "throughput and latency on synthetic prompts (mpirun)"},
    {"inspect", cmd_inspect, "architecture and memory plan per rank, from config.json"},
    {"tokenize", cmd_tokenize, "JSON Lines text to token ids and back"},
    {"pack", cmd_pack, "JSONL or text prompts to the HDF5 input schema"},
    {"unpack", cmd_unpack, "HDF5 output to JSON Lines"},
};

static void print_help(FILE *out)
{
    fputs("usage: voltbatch COMMAND [options]   (voltbatch COMMAND --help for its options)\n"
          "\ncommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\n  --version  revision, backends and library versions\n"
          "\nexit status: 0 done, 2 usage or input error, 75 stopped by a signal\n"
          "(resume with --resume), 1 any other failure.\n",
          out);
}

/* Started with stdin, stdout or stderr closed (a daemon, `2>&-`), the next
 * file opened takes that descriptor, and every log line and warning goes
 * into it: unpack wrote "voltbatch: warning: ..." into its JSON Lines, a
 * journal or an output could take the same. Each closed one is opened on
 * /dev/null first; where even that fails, the run goes on as it would. */
static void std_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* the lower ones are open by now, so this takes fd itself */
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int main(int argc, char **argv)
{
    std_fds_open();
    if (argc < 2) {
        print_help(stderr);
        return VB_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const bool help = strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
                      strcmp(cmd, "help") == 0;
    const bool version = strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0;
    /* anything after them was dropped without a word: `voltbatch --help
     * generate` printed this list, not generate's options */
    if ((help || version) && argc > 2) {
        fprintf(stderr, "voltbatch: %s takes no arguments (got '%s'; for a command's options: "
                        "voltbatch COMMAND --help)\n", cmd, argv[2]);
        return VB_EXIT_USAGE;
    }
    if (help) {
        print_help(stdout);
        return VB_EXIT_OK;
    }
    if (version) {
        vb_print_version(stdout);
        return VB_EXIT_OK;
    }
    /* Not for users (so not in the help): generate and unpack run this
     * executable again to read the inputs in a child process first. */
    vb_input_check_register_child();
    if (strcmp(cmd, VB_INPUT_CHECK_COMMAND) == 0)
        return vb_input_check_main(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "voltbatch: unknown command '%s' (see voltbatch --help)\n", cmd);
    return VB_EXIT_USAGE;
}

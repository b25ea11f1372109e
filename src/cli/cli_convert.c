/* See cli_convert.h. */
#include "cli/cli_convert.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli_args.h"
#include "util/exit_codes.h"

static const struct option convert_options[] = {
    {"overwrite", no_argument, NULL, 1},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

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
    struct stat st;
    if (!overwrite && stat(out, &st) == 0) {
        fprintf(stderr, "voltbatch %s: %s: already exists (--overwrite replaces it)\n", cmd, out);
        return VB_EXIT_USAGE;
    }
    vb_err err = {{0}};
    if (convert(in, out, &err) < 0) {
        fprintf(stderr, "voltbatch %s: %s\n", cmd, err.msg);
        return VB_EXIT_USAGE;
    }
    return VB_EXIT_OK;
}

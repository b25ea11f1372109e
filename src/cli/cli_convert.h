/* The body shared by `voltbatch pack` and `voltbatch unpack`: one file
 * converted into another, `voltbatch CMD IN OUT [--overwrite]`. */
#ifndef VB_CLI_CONVERT_H
#define VB_CLI_CONVERT_H

#include "util/errors.h"

/* Parses the options (-h / --help prints help() and returns 0), refuses to
 * replace an existing OUT without --overwrite or to write over IN itself
 * (OUT, or its OUT.tmp, the same file as IN), then runs convert(IN, OUT);
 * returns the exit status (2 for every error, which it prints). */
int cli_convert_command(const char *cmd, int argc, char **argv, void (*help)(void),
                        int (*convert)(const char *in, const char *out, vb_err *err));

#endif

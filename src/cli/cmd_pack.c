/* `voltbatch pack`: Converts JSON Lines or one-prompt-per-line text to the HDF5 input schema.
 * The work is in io/pack.c and io/unpack.c; the options and the refusal to
 * replace an existing file without --overwrite are cli_convert.c's. */
#include <stdio.h>

#include "cli/cli_convert.h"
#include "cli/commands.h"
#include "io/pack.h"

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
          "Errors name the line. OUT.h5 is not replaced without --overwrite, and never\n"
          "when it is IN itself.\n",
          stdout);
}

int cmd_pack(int argc, char **argv)
{
    return cli_convert_command("pack", argc, argv, pack_help, vb_pack);
}

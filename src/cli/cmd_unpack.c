/* `voltbatch unpack`: Converts an output HDF5 file to JSON Lines with every field.
 * The work is in io/pack.c and io/unpack.c; the options and the refusal to
 * replace an existing file without --overwrite are cli_convert.c's. */
#include <stdio.h>

#include "cli/cli_convert.h"
#include "cli/commands.h"
#include "io/pack.h"

static void unpack_help(void)
{
    fputs("usage: voltbatch unpack OUT.h5 OUT.jsonl [--overwrite]\n"
          "\n"
          "Converts an output HDF5 file to JSON Lines with every field (index, id,\n"
          "completion, finish_reason, error, token counts, output_ids, logprobs).\n"
          "An input file (from pack) unpacks to pack's JSON Lines format. A stopped\n"
          "run's output unpacks to its finished rows, with a warning that it is\n"
          "incomplete.\n"
          "OUT.jsonl is not replaced without --overwrite, and never when it is IN itself.\n",
          stdout);
}

int cmd_unpack(int argc, char **argv)
{
    return cli_convert_command("unpack", argc, argv, unpack_help, vb_unpack);
}

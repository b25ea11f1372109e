/* `voltbatch tokenize`: Reads JSON Lines (strings or objects with "text") and writes token ids, one JSON array per line.
 * Not built yet: the options are checked so scripts fail early and the same
 * way they will once it lands (issue #4 (tokenizer)). */
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "util/exit_codes.h"

static const struct option tokenize_options[] = {
    {"model", required_argument, NULL, 1},
    {"chat", no_argument, NULL, 2},
    {"decode", no_argument, NULL, 3},
    {"chat-template", required_argument, NULL, 4},
    {"system", required_argument, NULL, 5},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void tokenize_help(void)
{
    fputs("usage: voltbatch tokenize --model DIR [--chat] [--decode] < in.jsonl\n"
          "\n"
          "Reads JSON Lines (strings or objects with \"text\") and writes token ids, one JSON array per line.\n",
          stdout);
}

int cmd_tokenize(int argc, char **argv)
{
    int c;
    while ((c = cli_next_option("tokenize", argc, argv, tokenize_options)) != -1) {
        if (c == 'h') {
            tokenize_help();
            return VB_EXIT_OK;
        }
        if (c == '?')
            return VB_EXIT_USAGE;
    }
    return cli_not_built("tokenize", "issue #4 (tokenizer)");
}

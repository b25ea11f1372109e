/* The subcommands. Each takes argv starting at its own name and returns the
 * process exit status (util/exit_codes.h). */
#ifndef VB_COMMANDS_H
#define VB_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);

#endif

/* Reading the input files once, in a child process, before a run.
 *
 * HDF5 trusts the file: a few flipped bytes in the global heap that holds
 * variable-length strings make HDF5 1.10 read through a wild pointer
 * (H5HG_read), free a corrupt cache entry at close, or loop forever, and
 * no check we can make through its API before the read rules that out.
 * So `generate` (rank 0, before any rank opens an input) and `unpack` run
 * this executable again as `voltbatch __check-input SPEC...`, which reads
 * every dataset of every input the way the run will (vb_input_open, then
 * vb_input_read_rows over all rows in blocks) and reports each step to the
 * parent. A crash or an endless loop of the library then costs the child,
 * and the parent says which file, dataset and rows: one line, exit 2.
 *
 * Why a new process (posix_spawn + exec) and not fork(): `generate` checks
 * after MPI_Init, and fork() in an MPI process is unsafe with some
 * interconnects (InfiniBand verbs: memory registered with the adapter
 * turns copy-on-write in the parent). glibc's posix_spawn runs the child
 * in the parent's address space until it execs (clone with CLONE_VM |
 * CLONE_VFORK) and runs no fork handlers, so no page is ever shared
 * copy-on-write and nothing of MPI's state is duplicated. */
#ifndef VB_IO_INPUT_CHECK_H
#define VB_IO_INPUT_CHECK_H

#include <stdbool.h>

#include "util/errors.h"

/* The hidden subcommand main.c hands to vb_input_check_main. */
#define VB_INPUT_CHECK_COMMAND "__check-input"

/* Reads every dataset of every input (specs as vb_input_open takes them)
 * in this process, and returns 0 or -1 with err naming the file and the
 * dataset. With allow_output and one spec, a file that holds /completions
 * (an output file, which `unpack` also reads) sets *is_output and is not
 * read further. This is what runs in the child, and what the fuzzer
 * (tests/io/fuzz_input_reader.c) calls. */
int vb_input_check(const char *const *specs, int n_specs, bool allow_output, bool *is_output,
                   vb_err *err);

/* Declares that this executable's main hands VB_INPUT_CHECK_COMMAND to
 * vb_input_check_main (voltbatch's does), so that vb_input_check_isolated
 * may run it as the child. In any other program (a test that calls
 * vb_unpack) the check runs in-process: /proc/self/exe would be that
 * program, which does not know the command. */
void vb_input_check_register_child(void);

/* vb_input_check in a child process. A child killed by a signal, or one
 * that reports no progress for timeout_s seconds (it is then killed), is a
 * corrupt input: err names the file, the dataset and the rows it was
 * reading. Without vb_input_check_register_child, and (with a warning)
 * when the child cannot be started (no /proc/self/exe, no memory), the
 * check runs in this process instead. Stop signals
 * (SIGINT, SIGTERM, SIGUSR1, SIGHUP) are held off in the child: they are
 * for this process to act on, and must not be mistaken for a crash. */
int vb_input_check_isolated(const char *const *specs, int n_specs, bool allow_output,
                            double timeout_s, bool *is_output, vb_err *err);

/* The child: argv = {VB_INPUT_CHECK_COMMAND, [--allow-output], --, SPEC...},
 * reporting on file descriptor 3. Returns the exit status. */
int vb_input_check_main(int argc, char **argv);

#endif

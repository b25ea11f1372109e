/* Option scanning and value parsing shared by the subcommands.
 *
 * getopt_long (libc) scans; these helpers turn its outcomes and the values
 * into one-line errors that name the subcommand and the option, e.g.
 *   voltbatch generate: --tp: 'x' is not an integer
 * Every error path here means exit status 2 (VB_EXIT_USAGE). */
#ifndef VB_CLI_ARGS_H
#define VB_CLI_ARGS_H

#include <getopt.h>
#include <stdint.h>

/* Returns the next option's val, -1 at the end, or '?' after printing an
 * error for an unknown option or a missing value. `opts` must end with a
 * zeroed entry; short options are not used (only -h). */
int cli_next_option(const char *cmd, int argc, char **argv, const struct option *opts);

/* "--name" of the option whose val is `val`, for messages. */
const char *cli_option_name(const struct option *opts, int val);

/* --max-model-len at most, for every command that takes it (generate,
 * bench, inspect: inspect plans only what the engine would run) */
#define VB_MAX_MODEL_LEN (1L << 24)

int cli_parse_int(const char *cmd, const char *opt, const char *s, long min, long max,
                  long *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double min,
                     double max, double *out);
/* --temperature: 0 (greedy) or from SAMPLER_MIN_TEMPERATURE
 * (engine/sampler.h) to 100: a positive value far below it (1e-40) turned
 * every logit into +-Inf, every row an error row after the whole run.
 * Near-greedy sampling needs nothing smaller. */
int cli_parse_temperature(const char *cmd, const char *opt, const char *s, double *out);
/* --gpu-memory-utilization's range, generate's, bench's and inspect's
 * alike (bench took 0.01 while its help said "as generate"; inspect
 * planned 0.01 runs that generate refuses) */
#define VB_MIN_GPU_MEMORY_UTILIZATION 0.05
/* --max-batched-tokens' largest value, generate's, bench's and inspect's */
#define VB_MAX_BATCHED_TOKENS (1L << 20)
/* --tp's largest value, generate's, bench's and inspect's (inspect took
 * 1024 at most, so it could not plan what generate runs) */
#define VB_MAX_TP 4096
/* Text that goes into a prompt, a stop string or the run settings (JSON):
 * refused unless valid UTF-8 (a stop string of other bytes was dropped
 * from the settings, a system prompt ended the run as "out of memory"). */
int cli_require_utf8(const char *cmd, const char *opt, const char *s);
/* Plain bytes or with a KiB/MiB/GiB/TiB suffix (K/M/G/T and KB/MB/GB are
 * read as the same powers of two, as nvidia-smi and Slurm do). */
int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out);

/* Prints "voltbatch CMD: MESSAGE (see voltbatch CMD --help)" on stderr. */
void cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For subcommands whose body has not landed yet: says so, returns 2. */
int cli_not_built(const char *cmd, const char *issue);

#endif

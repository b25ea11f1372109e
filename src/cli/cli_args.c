/* Option scanning and value parsing with one-line errors; see cli_args.h. */
#include "cli/cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "util/exit_codes.h"
#include "util/utf8_valid.h"

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "voltbatch %s: %s (see voltbatch %s --help)\n", cmd, msg, cmd);
}

int cli_next_option(const char *cmd, int argc, char **argv, const struct option *opts)
{
    opterr = 0; /* we print our own one-line errors */
    int c = getopt_long(argc, argv, ":h", opts, NULL);
    if (c == ':' || c == '?') {
        const char *arg = (optind - 1 >= 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
        if (c == ':') {
            cli_usage_error(cmd, "option '%s' needs a value", arg);
        } else if (optopt && optopt != '?') {
            cli_usage_error(cmd, "unknown option '-%c'", optopt);
        } else {
            cli_usage_error(cmd, "unknown option '%s'", arg);
        }
        return '?';
    }
    return c;
}

const char *cli_option_name(const struct option *opts, int val)
{
    static char name[80];
    snprintf(name, sizeof name, "--?");
    for (const struct option *o = opts; o->name; o++)
        if (o->val == val) {
            snprintf(name, sizeof name, "--%s", o->name);
            break;
        }
    return name;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long min, long max,
                  long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) {
        cli_usage_error(cmd, "%s: '%s' is not an integer", opt, s);
        return -1;
    }
    if (v < min || v > max) {
        cli_usage_error(cmd, "%s: %ld is out of range [%ld, %ld]", opt, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    /* a digit first: strtoull skips blanks and negates a '-' after them
     * (" -1" was read as 2^64 - 1) */
    if (s[0] < '0' || s[0] > '9') {
        cli_usage_error(cmd, "%s: '%s' is not a non-negative integer", opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0') {
        cli_usage_error(cmd, "%s: '%s' is not a non-negative integer", opt, s);
        return -1;
    }
    if (errno == ERANGE) {
        cli_usage_error(cmd, "%s: '%s' is too large (at most %llu)", opt, s,
                        (unsigned long long)UINT64_MAX);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_require_utf8(const char *cmd, const char *opt, const char *s)
{
    size_t bad = 0;
    if (vb_utf8_valid(s, strlen(s), &bad))
        return 0;
    cli_usage_error(cmd, "%s: not valid UTF-8 text (byte %zu)", opt, bad + 1);
    return -1;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double min,
                     double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || (errno != ERANGE && !isfinite(v))) {
        cli_usage_error(cmd, "%s: '%s' is not a number", opt, s);
        return -1;
    }
    if (errno == ERANGE) { /* 1e400, 1e-320: a number, past what a double holds */
        cli_usage_error(cmd, "%s: '%s' is too large or too near zero (range [%g, %g])", opt, s,
                        min, max);
        return -1;
    }
    if (v < min || v > max) {
        cli_usage_error(cmd, "%s: %g is out of range [%g, %g]", opt, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_temperature(const char *cmd, const char *opt, const char *s, double *out)
{
    double v = 0;
    if (cli_parse_double(cmd, opt, s, 0, 100, &v))
        return -1;
    if (v > 0 && v < SAMPLER_MIN_TEMPERATURE) {
        cli_usage_error(cmd, "%s: %g is too small to divide the logits by (at least %g; 0 "
                        "is greedy)", opt, v, SAMPLER_MIN_TEMPERATURE);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {
        {"", 0},     {"B", 0},    {"K", 10},   {"KB", 10},  {"KiB", 10},
        {"M", 20},   {"MB", 20},  {"MiB", 20}, {"G", 30},   {"GB", 30},
        {"GiB", 30}, {"T", 40},   {"TB", 40},  {"TiB", 40},
    };
    char *end = NULL;
    errno = 0;
    if (s[0] == '-' || s[0] == '\0') {
        cli_usage_error(cmd, "%s: '%s' is not a size (bytes, or with KiB/MiB/GiB)", opt, s);
        return -1;
    }
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) {
        cli_usage_error(cmd, "%s: '%s' is not a size (bytes, or with KiB/MiB/GiB)", opt, s);
        return -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = ldexp(v, units[i].shift);
            if (bytes >= 9223372036854775807.0) { /* JSON reports write them signed */
                cli_usage_error(cmd, "%s: '%s' is too large", opt, s);
                return -1;
            }
            *out = (uint64_t)bytes;
            return 0;
        }
    }
    cli_usage_error(cmd, "%s: unknown size suffix in '%s' (use KiB, MiB, GiB or plain bytes)",
                    opt, s);
    return -1;
}

int cli_not_built(const char *cmd, const char *issue)
{
    fprintf(stderr, "voltbatch %s: not built yet in this version (tracked in %s)\n", cmd,
            issue);
    return VB_EXIT_USAGE;
}

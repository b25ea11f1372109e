/* Reading the input files once, in a child process; see input_check.h.
 *
 * The child reports on a pipe (its fd 3) in records: a 4-byte length, then
 * a kind letter and NUL-separated fields, so that any path survives:
 *   A path dataset first last   about to read (dataset "" = the file)
 *   E message                   a clean refusal (the message is the error)
 *   O                           every input read
 *   U                           an output file (allow_output)
 * The parent keeps the last A record. It waits with a deadline that each
 * record renews, so a child stuck in the library for timeout_s seconds is
 * killed and its last A record names what it was reading. */
#include "io/input_check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "io/h5_util.h"
#include "io/input_reader.h"
#include "util/env.h"
#include "util/exit_codes.h"
#include "util/log.h"

#define CHECK_BLOCK 4096   /* rows read at a time: a crash names rows this precisely */
#define REPORT_FD 3        /* the child's end of the pipe */
#define RECORD_MAX (2 * PATH_MAX + VB_ERR_LEN) /* a longer record is not ours */

/* ---- in this process ----------------------------------------------------- */

/* With allow_output: is `path` an output file (it holds /completions)?
 * Anything that is not an openable HDF5 file is left for vb_input_open to
 * refuse in its own words. */
static void probe_output(const char *path, bool *is_output)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    vb_input_trace(path, NULL, -1, -1);
    if (H5Fis_hdf5(path) <= 0)
        return;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return;
    *is_output = h5_exists(f, "completions");
    (void)H5Fclose(f); /* opened read-only to look: nothing of it to lose */
}

/* Reads every row of every shard, CHECK_BLOCK rows at a time. */
static int read_all_rows(const vb_input *in, vb_err *err)
{
    int64_t *rows = malloc(CHECK_BLOCK * sizeof *rows);
    vb_input_row *r = malloc(CHECK_BLOCK * sizeof *r);
    int rc = rows && r ? 0 : vb_err_set(err, "checking the inputs: out of memory");
    for (int64_t b = 0; rc == 0 && b < in->n_rows; b += CHECK_BLOCK) {
        int64_t m = in->n_rows - b < CHECK_BLOCK ? in->n_rows - b : CHECK_BLOCK;
        for (int64_t i = 0; i < m; i++)
            rows[i] = b + i;
        rc = vb_input_read_rows(in, rows, m, r, err);
        if (rc == 0)
            vb_input_rows_free(r, m);
    }
    free(rows);
    free(r);
    return rc;
}

int vb_input_check(const char *const *specs, int n_specs, bool allow_output, bool *is_output,
                   vb_err *err)
{
    *is_output = false;
    h5_quiet();
    if (allow_output && n_specs == 1) {
        probe_output(specs[0], is_output);
        if (*is_output)
            return 0;
    }
    vb_input in;
    int rc = vb_input_open(&in, specs, n_specs, err);
    if (rc == 0)
        rc = read_all_rows(&in, err);
    vb_input_close(&in);
    return rc;
}

/* ---- the child ------------------------------------------------------------ */

/* Sends one record: kind, then the fields, each NUL-terminated. A parent
 * that has gone away makes the write fail; the child then ends anyway. */
static void send_record(char kind, const char *const *fields, int n)
{
    char buf[4 + RECORD_MAX];
    size_t len = 1;
    buf[4] = kind;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(fields[i]);
        if (len + l + 1 > RECORD_MAX)
            l = RECORD_MAX - len - 1;
        memcpy(buf + 4 + len, fields[i], l);
        buf[4 + len + l] = '\0';
        len += l + 1;
    }
    uint32_t n32 = (uint32_t)len;
    memcpy(buf, &n32, 4);
    size_t off = 0, total = 4 + len;
    while (off < total) {
        ssize_t w = write(REPORT_FD, buf + off, total - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static void report_step(const char *path, const char *dataset, int64_t first, int64_t last)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%" PRId64, first);
    snprintf(b, sizeof b, "%" PRId64, last);
    const char *f[] = {path, dataset ? dataset : "", a, b};
    send_record('A', f, 4);
}

int vb_input_check_main(int argc, char **argv)
{
    if (fcntl(REPORT_FD, F_GETFD) < 0) {
        fprintf(stderr, "voltbatch: %s is run by voltbatch itself, not by hand\n",
                VB_INPUT_CHECK_COMMAND);
        return VB_EXIT_USAGE;
    }
#ifdef __linux__
    /* An orphaned check (its parent killed) must not read on, or loop on,
     * with nobody waiting: the stop signals are blocked here. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* A corrupt length makes HDF5 allocate (and clear) up to 4 GiB per
     * element before anything can refuse it: if that exhausts the node, the
     * kernel's OOM killer should take this child, not a rank. Raising
     * one's own score needs no privilege; failing to is harmless. */
    FILE *oom = fopen("/proc/self/oom_score_adj", "w");
    if (oom) {
        fputs("1000\n", oom);
        fclose(oom);
    }
#endif
    bool allow_output = false;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++)
        allow_output |= strcmp(argv[i], "--allow-output") == 0;
    i += i < argc;
    vb_input_set_trace(report_step);
    bool is_output = false;
    vb_err err = {{0}};
    if (vb_input_check((const char *const *)argv + i, argc - i, allow_output, &is_output,
                       &err) < 0) {
        const char *f[] = {err.msg};
        send_record('E', f, 1);
        return VB_EXIT_USAGE;
    }
    send_record(is_output ? 'U' : 'O', NULL, 0);
    return VB_EXIT_OK;
}

/* ---- the parent ----------------------------------------------------------- */

static bool child_registered;

void vb_input_check_register_child(void)
{
    child_registered = true;
}

typedef struct child_report {
    bool have_step, done, output, refused;
    char path[PATH_MAX], dataset[PATH_MAX];
    int64_t first, last;
    char error[VB_ERR_LEN];
} child_report;

/* Copies the index-th NUL-terminated field of p[0..n) into dst. */
static void field(const char *p, size_t n, int index, char *dst, size_t cap)
{
    size_t at = 0;
    for (int k = 0; k < index && at < n; k++)
        at += strnlen(p + at, n - at) + 1;
    size_t l = at < n ? strnlen(p + at, n - at) : 0;
    if (l >= cap)
        l = cap - 1;
    memcpy(dst, p + at, l);
    dst[l] = '\0';
}

static void take_record(child_report *rep, const char *p, size_t n)
{
    char num[24];
    switch (p[0]) {
    case 'A':
        rep->have_step = true;
        field(p + 1, n - 1, 0, rep->path, sizeof rep->path);
        field(p + 1, n - 1, 1, rep->dataset, sizeof rep->dataset);
        field(p + 1, n - 1, 2, num, sizeof num);
        rep->first = strtoll(num, NULL, 10);
        field(p + 1, n - 1, 3, num, sizeof num);
        rep->last = strtoll(num, NULL, 10);
        break;
    case 'E':
        rep->refused = true;
        field(p + 1, n - 1, 0, rep->error, sizeof rep->error);
        break;
    case 'O':
    case 'U':
        rep->done = true;
        rep->output = p[0] == 'U';
        break;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reads records from fd until the child closes its end (true) or sends
 * nothing for timeout_s seconds (false). */
static bool collect(int fd, double timeout_s, child_report *rep)
{
    static char buf[2 * (4 + RECORD_MAX)];
    size_t have = 0;
    double deadline = now_s() + timeout_s;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left > 3600 ? 3600000 : (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) /* poll itself failing is as good as no progress */
            return false;
        ssize_t got = read(fd, buf + have, sizeof buf - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return true;
        have += (size_t)got;
        deadline = now_s() + timeout_s;
        size_t at = 0;
        uint32_t len;
        while (have - at >= 4 && (memcpy(&len, buf + at, 4), have - at - 4 >= len)) {
            if (len > 0 && len <= RECORD_MAX)
                take_record(rep, buf + at + 4, len);
            at += 4 + len;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
        if (have == sizeof buf) /* a record longer than any we send: not our child */
            return true;
    }
}

/* "rows 0-4095", "row 0", "its metadata" or "the file's metadata": what
 * the child was reading when it stopped. */
static void describe_step(const child_report *rep, char *what, size_t cap)
{
    if (rep->first >= 0 && rep->first == rep->last)
        snprintf(what, cap, "row %" PRId64, rep->first);
    else if (rep->first >= 0)
        snprintf(what, cap, "rows %" PRId64 "-%" PRId64, rep->first, rep->last);
    else
        snprintf(what, cap, "%s", rep->dataset[0] ? "its metadata" : "the file's metadata");
}

/* "FILE: /prompts" or "FILE": what is corrupt. */
static void describe_subject(const child_report *rep, char *who, size_t cap)
{
    if (rep->dataset[0])
        snprintf(who, cap, "%s: %s", rep->path, rep->dataset);
    else
        snprintf(who, cap, "%s", rep->path);
}

/* err for a child that crashed (sig > 0, or 0 when unknown) or was killed
 * after timeout_s seconds without progress (timed_out). */
static int corrupt(const child_report *rep, const char *first_spec, int sig, bool timed_out,
                   double timeout_s, vb_err *err)
{
    char who[PATH_MAX + 64], what[64];
    if (!rep->have_step && timed_out)
        return vb_err_set(err, "%s: checking the inputs made no progress in %g s before any file "
                          "was opened (VB_INPUT_CHECK_TIMEOUT; a file system that stalls on "
                          "open, or a limit too short for the check to start)", first_spec,
                          timeout_s);
    if (!rep->have_step)
        return vb_err_set(err, "%s: checking the inputs failed before any file was opened "
                          "(signal %d)", first_spec, sig);
    describe_subject(rep, who, sizeof who);
    describe_step(rep, what, sizeof what);
    if (timed_out)
        return vb_err_set(err, "%s is corrupt (or its file system stalls): reading %s made no "
                          "progress in %g s (VB_INPUT_CHECK_TIMEOUT)", who, what, timeout_s);
    if (sig > 0)
        return vb_err_set(err, "%s is corrupt: the HDF5 library crashed reading %s (signal %d, "
                          "%s)", who, what, sig, strsignal(sig));
    return vb_err_set(err, "%s is corrupt: the HDF5 library ended the check reading %s",
                      who, what);
}

/* Starts the child with its fd 3 = wfd, its stdin, stdout and stderr on
 * /dev/null (the library's own complaints would break the one-line error;
 * the parent words it), and the stop signals blocked. */
static int spawn_child(const char *exe, char **argv, int wfd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return ENOMEM;
    if (posix_spawnattr_init(&at) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return ENOMEM;
    }
    sigset_t block, dflt;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGHUP);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    int rc = posix_spawn_file_actions_adddup2(&fa, wfd, REPORT_FD);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &block);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &dflt);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawn(pid, exe, &fa, &at, argv, vb_env_all());
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* A pipe whose write end is not REPORT_FD: dup2 onto the same number
 * would leave it close-on-exec. Both ends close on exec; the child gets
 * its copy through dup2. */
static int report_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        int moved = fcntl(fds[k], F_DUPFD_CLOEXEC, REPORT_FD + 1);
        if (moved < 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
        close(fds[k]);
        fds[k] = moved;
    }
    return 0;
}

/* argv for the child: exe, the command, [--allow-output], --, specs. */
static char **child_argv(const char *exe, const char *const *specs, int n, bool allow_output)
{
    char **argv = calloc((size_t)n + 5, sizeof *argv);
    if (!argv)
        return NULL;
    int k = 0;
    argv[k++] = (char *)exe;
    argv[k++] = (char *)VB_INPUT_CHECK_COMMAND;
    if (allow_output)
        argv[k++] = (char *)"--allow-output";
    argv[k++] = (char *)"--";
    for (int i = 0; i < n; i++)
        argv[k++] = (char *)specs[i];
    return argv;
}

/* Runs the child to its end; *status is its wait status (-1: unknown). */
static int run_child(const char *exe, const char *const *specs, int n, bool allow_output,
                     double timeout_s, child_report *rep, int *status, bool *timed_out)
{
    int fds[2];
    char **argv = child_argv(exe, specs, n, allow_output);
    if (!argv || report_pipe(fds) != 0) {
        free(argv);
        return ENOMEM;
    }
    pid_t pid = 0;
    int rc = spawn_child(exe, argv, fds[1], &pid);
    free(argv);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return rc;
    }
    *timed_out = !collect(fds[0], timeout_s, rep);
    if (*timed_out)
        kill(pid, SIGKILL);
    close(fds[0]);
    *status = -1;
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

int vb_input_check_isolated(const char *const *specs, int n_specs, bool allow_output,
                            double timeout_s, bool *is_output, vb_err *err)
{
    *is_output = false;
    if (!child_registered)
        return vb_input_check(specs, n_specs, allow_output, is_output, err);
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    static child_report rep;
    memset(&rep, 0, sizeof rep);
    int status = -1, rc = ENOENT;
    bool timed_out = false;
    if (l > 0) {
        exe[l] = '\0';
        rc = run_child(exe, specs, n_specs, allow_output, timeout_s > 0 ? timeout_s : 300,
                       &rep, &status, &timed_out);
    }
    if (rep.refused)
        return vb_err_set(err, "%s", rep.error);
    bool clean_exit = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (rc == 0 && rep.done && !timed_out && (clean_exit || status == -1)) {
        *is_output = rep.output;
        return 0;
    }
    int sig = status != -1 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    /* A child that never ran (no /proc/self/exe, no memory, an exec that
     * failed) says nothing about the files: check here without the net. */
    if (rc != 0 || (!rep.have_step && !timed_out && sig == 0)) {
        vb_warn("cannot check the inputs in a child process (%s): reading them here, where a "
                "crash of the HDF5 library on a corrupt file ends the job",
                rc ? strerror(rc) : "it reported nothing");
        return vb_input_check(specs, n_specs, allow_output, is_output, err);
    }
    return corrupt(&rep, n_specs > 0 ? specs[0] : "", sig, timed_out, timeout_s, err);
}

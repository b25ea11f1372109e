/* fake_launcher: stands in for mpirun or srun in tests/jobs/test_job_scripts.sh,
 * with the signal handling the job scripts rely on:
 *
 *   mpirun (Open MPI 4.1, measured): SIGUSR1 and SIGUSR2 are forwarded to the
 *     ranks; SIGTERM, SIGINT and SIGHUP start its own abort (the ranks get
 *     SIGCONT and SIGTERM) and it exits 1 whatever the ranks return.
 *   srun: SIGUSR1 and SIGUSR2 are forwarded to the tasks; SIGTERM and SIGHUP
 *     it turns into SIGKILL of its tasks ("srun: forcing job termination");
 *     a single SIGINT only prints the tasks' state.
 *
 * Either way it exits with the task's status (128+n when a signal ended it).
 * The task runs in a process group of its own, as Open MPI's ranks and
 * srun's remote tasks do, so a signal to the script's process group (Ctrl-C)
 * reaches the launcher but not the task. Each signal received is appended to
 * LOG as "mpirun forwarded USR1", "mpirun aborted on TERM", "srun killed
 * on TERM", "srun ignored INT", so the test can check what the script sent.
 *
 * usage: fake_launcher mpirun|srun LOG CMD [ARGS...]
 *        fake_launcher newgroup CMD [ARGS...]
 * newgroup runs CMD in a process group of its own with the default action
 * for every signal above (a job script started from a test as a batch
 * system or a terminal would start it: able to trap SIGINT, and the leader
 * of the group a Ctrl-C goes to). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int handled[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
#define N_HANDLED (sizeof handled / sizeof handled[0])

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "TERM";
    case SIGINT: return "INT";
    case SIGHUP: return "HUP";
    case SIGUSR1: return "USR1";
    case SIGUSR2: return "USR2";
    default: return "?";
    }
}

static void log_line(const char *path, const char *who, const char *what, int sig)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s %s %s\n", who, what, sig_name(sig));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            perror("fake_launcher: log");
        close(fd);
    }
}

static int exit_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "newgroup") == 0) {
        setpgid(0, 0);
        for (size_t i = 0; i < N_HANDLED; i++)
            signal(handled[i], SIG_DFL);
        execvp(argv[2], argv + 2);
        perror("fake_launcher: exec");
        return 127;
    }
    if (argc < 4 || (strcmp(argv[1], "mpirun") != 0 && strcmp(argv[1], "srun") != 0)) {
        fprintf(stderr, "usage: fake_launcher mpirun|srun LOG CMD [ARGS...]\n"
                        "       fake_launcher newgroup CMD [ARGS...]\n");
        return 2;
    }
    const char *who = argv[1], *log = argv[2];
    const int is_mpirun = strcmp(who, "mpirun") == 0;

    /* Blocked and taken with sigtimedwait: no signal is lost between
     * checks. Default actions first: a background job of a shell without
     * job control starts with SIGINT ignored, and a blocked signal that is
     * ignored may be dropped; the real mpirun installs its handlers over
     * an inherited SIG_IGN too. */
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < N_HANDLED; i++) {
        signal(handled[i], SIG_DFL);
        sigaddset(&set, handled[i]);
    }
    sigprocmask(SIG_BLOCK, &set, &old);

    pid_t child = fork();
    if (child < 0) {
        perror("fake_launcher: fork");
        return 1;
    }
    if (child == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[3], argv + 3);
        perror("fake_launcher: exec");
        _exit(127);
    }
    setpgid(child, child); /* both sides, so it holds before any signal */

    const struct timespec tick = {0, 50 * 1000 * 1000};
    for (;;) {
        int st;
        pid_t r = waitpid(child, &st, WNOHANG);
        if (r == child)
            return exit_status(st);
        if (r < 0 && errno != EINTR) {
            perror("fake_launcher: waitpid");
            return 1;
        }
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0)
            continue; /* timeout or EINTR: check the child again */
        if (is_mpirun && (sig == SIGUSR1 || sig == SIGUSR2)) {
            log_line(log, who, "forwarded", sig);
            kill(child, sig);
        } else if (is_mpirun) {
            /* Open MPI's abort: SIGCONT and SIGTERM to the ranks, then
             * exit 1 once they are gone. */
            log_line(log, who, "aborted on", sig);
            kill(child, SIGCONT);
            kill(child, SIGTERM);
            while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
            }
            return 1;
        } else if (sig == SIGINT) {
            log_line(log, who, "ignored", sig);
        } else if (sig == SIGTERM || sig == SIGHUP) {
            log_line(log, who, "killed on", sig);
            kill(child, SIGKILL);
        } else {
            log_line(log, who, "forwarded", sig);
            kill(child, sig);
        }
    }
}

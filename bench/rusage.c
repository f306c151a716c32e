/*
 * bench/rusage.c: runs a bench client and reports what it cost.
 *
 *     rusage [-t SECONDS] [-n NOFILE] [-r RUNS] COMMAND [ARG...]
 *
 * Raises RLIMIT_NOFILE to NOFILE (default: the hard limit), forks, execs
 * COMMAND, waits for it, and then prints on stdout
 *     RUSAGE user=<s> sys=<s> maxrss_kb=<n> status=<exit code or -signal>
 *            wall=<s> runs=<n>
 * (one line). With -r, COMMAND runs RUNS times (default 1), one after the
 * other, until one fails: user, sys and wall (fork to the last wait) are
 * the totals, maxrss_kb the largest, runs how many ended. After SECONDS
 * (default 300, all runs together) the running child is killed (SIGKILL,
 * by its PID) and status is -9. Exits with the last child's status (124 on
 * timeout).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static unsigned limit_s = 300; /* -t */

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs argv once: its exit code (or -signal), its rusage added to *sum. */
static int run_once(char **argv, int first, struct rusage *sum)
{
    struct rusage ru;
    pid_t pid;
    int st;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        exit(1);
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        perror("rusage: exec");
        _exit(127);
    }
    if (first) /* one alarm for all the runs */
        alarm(limit_s);
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("rusage: wait4");
            exit(1);
        }
        if (timed_out) {
            fprintf(stderr, "rusage: %s timed out after %us\n", argv[0],
                    limit_s);
            kill(pid, SIGKILL);
        }
    }
    timeradd(&sum->ru_utime, &ru.ru_utime, &sum->ru_utime);
    timeradd(&sum->ru_stime, &ru.ru_stime, &sum->ru_stime);
    if (ru.ru_maxrss > sum->ru_maxrss)
        sum->ru_maxrss = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

int main(int argc, char **argv)
{
    long nofile = -1, runs = 1, done = 0;
    struct rlimit rl;
    struct rusage sum;
    struct sigaction act;
    double wall0;
    int i = 1, code = 0;

    while (i + 1 < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-t") == 0)
            limit_s = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-n") == 0)
            nofile = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0)
            runs = atol(argv[i + 1]);
        else
            break;
        i += 2;
    }
    if (i >= argc || runs < 1) {
        fprintf(stderr, "usage: rusage [-t SECONDS] [-n NOFILE] [-r RUNS] "
                        "COMMAND [ARG...]\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        struct rlimit want = rl;
        if (nofile > 0 && (rlim_t)nofile > rl.rlim_max)
            want.rlim_max = (rlim_t)nofile; /* root may raise the hard limit */
        want.rlim_cur = nofile > 0 ? (rlim_t)nofile : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
            rl.rlim_cur = rl.rlim_max; /* not root: as far as allowed */
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                perror("rusage: setrlimit");
        }
    }
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_alarm; /* no SA_RESTART: wait4 returns EINTR */
    sigaction(SIGALRM, &act, NULL);
    memset(&sum, 0, sizeof(sum));
    wall0 = mono_s();
    while (done < runs && code == 0 && !timed_out) {
        code = run_once(argv + i, done == 0, &sum);
        done++;
    }
    printf("RUSAGE user=%.6f sys=%.6f maxrss_kb=%ld status=%d wall=%.6f "
           "runs=%ld\n",
           tv_s(sum.ru_utime), tv_s(sum.ru_stime), sum.ru_maxrss, code,
           mono_s() - wall0, done);
    if (timed_out)
        return 124;
    return code >= 0 ? code : 128 - code;
}

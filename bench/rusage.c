/*
 * bench/rusage.c: runs a bench client and reports what it cost.
 *
 *     rusage [-t SECONDS] [-n NOFILE] COMMAND [ARG...]
 *
 * Raises RLIMIT_NOFILE to NOFILE (default: the hard limit), forks, execs
 * COMMAND, waits for it, and then prints on stdout
 *     RUSAGE user=<s> sys=<s> maxrss_kb=<n> status=<exit code or -signal>
 * After SECONDS (default 300) the child is killed (SIGKILL, by its PID) and
 * status is -9. Exits with the child's status (124 on timeout).
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
#include <unistd.h>

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    unsigned seconds = 300;
    long nofile = -1;
    struct rlimit rl;
    struct rusage ru;
    struct sigaction act;
    pid_t pid;
    int i = 1, st, code;

    while (i + 1 < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-t") == 0)
            seconds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-n") == 0)
            nofile = atol(argv[i + 1]);
        else
            break;
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: rusage [-t SECONDS] [-n NOFILE] COMMAND "
                        "[ARG...]\n");
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
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(argv[i], argv + i);
        perror("rusage: exec");
        _exit(127);
    }
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_alarm; /* no SA_RESTART: wait4 returns EINTR */
    sigaction(SIGALRM, &act, NULL);
    alarm(seconds);
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("rusage: wait4");
            return 1;
        }
        if (timed_out) {
            fprintf(stderr, "rusage: %s timed out after %us\n", argv[i],
                    seconds);
            kill(pid, SIGKILL);
        }
    }
    code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    printf("RUSAGE user=%.6f sys=%.6f maxrss_kb=%ld status=%d\n",
           tv_s(ru.ru_utime), tv_s(ru.ru_stime), ru.ru_maxrss, code);
    if (timed_out)
        return 124;
    return code >= 0 ? code : 128 - code;
}

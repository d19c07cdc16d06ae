/* A SIGCHLD handler (SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP) reaps children with
 * waitpid(-1, WNOHANG) in a loop and counts them; the main thread waits with sigsuspend
 * (SIGCHLD blocked outside it) until all 8 children, which exit with codes 1..8 at staggered
 * times, were counted; a read in progress is not disturbed by SIGCHLD (SA_RESTART).
 * Mode "ignore": SIGCHLD set to SIG_IGN, or a handler with SA_NOCLDWAIT, makes children be
 * reaped automatically (waitpid blocks until the child is gone, then fails with ECHILD). */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILDREN 8

static volatile sig_atomic_t reaped;
static volatile sig_atomic_t code_sum;
static volatile sig_atomic_t handler_calls;
static volatile sig_atomic_t info_ok = 1;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    handler_calls++;
    if (sig != SIGCHLD || si->si_signo != SIGCHLD || si->si_code != CLD_EXITED) info_ok = 0;
    int saved = errno;
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        reaped++;
        if (WIFEXITED(st)) code_sum += WEXITSTATUS(st);
    }
    errno = saved;
}

static int ignore_mode(void);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "ignore") == 0) return ignore_mode();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    CHECK(sigprocmask(SIG_BLOCK, &chld, &old) == 0);
    for (int i = 1; i <= CHILDREN; i++) {
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
            struct timespec ts = {0, i * 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            _exit(i);
        }
    }
    int suspends = 0;
    while (reaped < CHILDREN) {
        sigsuspend(&old);
        suspends++;
    }
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
    printf("reaped %d children, exit codes sum %d (expected %d), handler ran: %d, "
           "siginfo ok %d\n",
           (int)reaped, (int)code_sum, CHILDREN * (CHILDREN + 1) / 2, handler_calls > 0,
           (int)info_ok);
    printf("sigsuspend returned at least once: %d\n", suspends > 0);

    /* The child writes, then exits; the reads in progress are not disturbed by SIGCHLD. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (write(p[1], "x", 1) != 1) _exit(3);
        _exit(9);
    }
    close(p[1]);
    char buf[4];
    ssize_t n = read(p[0], buf, 4);
    n += read(p[0], buf, 4) * 10; /* EOF after the child is gone: 0 */
    printf("reads around the child's exit: %zd\n", n);
    while (reaped < CHILDREN + 1) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("reaped %d, sum %d\n", (int)reaped, (int)code_sum);
    printf("done\n");
    return 0;
}

static void nop(int sig) { (void)sig; }

static int ignore_mode(void) {
    /* SIGCHLD ignored: no zombies, wait reports ECHILD once the child is gone. */
    signal(SIGCHLD, SIG_IGN);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) _exit(4);
    int st;
    pid_t w = waitpid(c, &st, 0);
    printf("with SIGCHLD ignored: waitpid %s\n",
           w < 0 && errno == ECHILD ? "ECHILD" : "returned the child");
    /* A handler with SA_NOCLDWAIT: the same. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = nop;
    sa.sa_flags = SA_NOCLDWAIT;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) _exit(5);
    do {
        w = waitpid(c, &st, 0);
    } while (w < 0 && errno == EINTR);
    printf("with SA_NOCLDWAIT: waitpid %s\n",
           w < 0 && errno == ECHILD ? "ECHILD" : "returned the child");
    printf("done\n");
    return 0;
}

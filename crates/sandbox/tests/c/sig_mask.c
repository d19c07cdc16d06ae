/* Blocked signals. Default mode: SIGUSR1 blocked, kill(getpid(), SIGUSR1) leaves it pending
 * (sigpending shows it, the handler has not run), unblocking delivers it before sigprocmask
 * returns, once (standard signals do not queue); sigtimedwait takes a blocked signal
 * (si_signo, si_code SI_USER, si_pid), one sent by a child process, times out with EAGAIN,
 * polls with a zero timeout; sigwait after raise.
 * Mode "ignore": setting a blocked pending signal's action to SIG_IGN discards it.
 * Mode "sigqueue": sigqueue's value reaches sigtimedwait (SI_QUEUE).
 * Mode "rt": real-time signals queue: three kills of a blocked SIGRTMIN+1, three deliveries
 * on unblocking, in send order (sigqueue values when sigqueue works, "kill" otherwise). */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count;
static volatile sig_atomic_t in_sigprocmask;
static volatile sig_atomic_t rt_values[8];
static volatile sig_atomic_t rt_count;

static void on_usr1(int sig) {
    (void)sig;
    usr1_count++;
}

static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (rt_count < 8) rt_values[rt_count] = si->si_value.sival_int;
    rt_count++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *code_name(int c) {
    switch (c) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    default: return "other";
    }
}

static int ignore_mode(void);
static int sigqueue_mode(void);
static int rt_mode(void);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "ignore") == 0) return ignore_mode();
    if (strcmp(mode, "sigqueue") == 0) return sigqueue_mode();
    if (strcmp(mode, "rt") == 0) return rt_mode();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    sigset_t usr1, pending, cur;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0);
    CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0);
    printf("SIGUSR1 blocked: %d\n", sigismember(&cur, SIGUSR1));
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(sigpending(&pending) == 0);
    printf("after kill: handler ran %d times, SIGUSR1 pending %d, SIGUSR2 pending %d\n",
           (int)usr1_count, sigismember(&pending, SIGUSR1), sigismember(&pending, SIGUSR2));
    CHECK(sigprocmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    printf("after unblocking: handler ran %d time(s) (standard signals do not queue)\n",
           (int)usr1_count);
    CHECK(sigpending(&pending) == 0);
    printf("SIGUSR1 still pending: %d\n", sigismember(&pending, SIGUSR1));


    /* sigtimedwait. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    siginfo_t si;
    struct timespec ts = {5, 0};
    int r = sigtimedwait(&usr2, &si, &ts);
    printf("sigtimedwait: %d (SIGUSR2 %d), si_signo %d, si_code %s, si_pid is mine %d, "
           "si_uid matches %d\n",
           r, SIGUSR2, si.si_signo, code_name(si.si_code), si.si_pid == getpid(),
           si.si_uid == getuid());

    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        struct timespec d = {0, 200 * 1000 * 1000};
        nanosleep(&d, NULL);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    memset(&si, 0, sizeof si);
    r = sigtimedwait(&usr2, &si, &ts);
    printf("from a child: %d, si_pid is the child %d\n", r, si.si_pid == c);
    CHECK(waitpid(c, NULL, 0) == c);

    struct timespec short_ts = {0, 300 * 1000 * 1000};
    double t0 = now();
    r = sigtimedwait(&usr2, &si, &short_ts);
    double dt = now() - t0;
    printf("timeout: %d, errno %s, waited at least 0.25 s %d, at most 5 s %d\n", r,
           r < 0 ? errname(errno) : "0", dt >= 0.25, dt < 5);
    struct timespec zero = {0, 0};
    r = sigtimedwait(&usr2, &si, &zero);
    printf("poll (zero timeout): %d, errno %s\n", r, r < 0 ? errname(errno) : "0");

    /* sigwaitinfo via sigwait on a signal raised by another thread-less path: raise(). */
    CHECK(raise(SIGUSR2) == 0);
    int got = 0;
    CHECK(sigwait(&usr2, &got) == 0);
    printf("sigwait after raise: %d\n", got);
    printf("done\n");
    return 0;
}

static int ignore_mode(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t usr1, pending;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0);
    CHECK(raise(SIGUSR1) == 0);
    CHECK(sigpending(&pending) == 0);
    printf("pending before SIG_IGN: %d\n", sigismember(&pending, SIGUSR1));
    signal(SIGUSR1, SIG_IGN);
    CHECK(sigpending(&pending) == 0);
    printf("pending after SIG_IGN: %d\n", sigismember(&pending, SIGUSR1));
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    CHECK(sigprocmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    printf("handler ran after unblocking: %d\n", (int)usr1_count);
    /* The same for SIG_DFL of a signal whose default is to ignore (SIGWINCH). */
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    CHECK(sigprocmask(SIG_BLOCK, &winch, NULL) == 0);
    signal(SIGWINCH, on_usr1);
    CHECK(raise(SIGWINCH) == 0);
    signal(SIGWINCH, SIG_DFL);
    CHECK(sigpending(&pending) == 0);
    printf("SIGWINCH pending after SIG_DFL: %d\n", sigismember(&pending, SIGWINCH));
    printf("done\n");
    return 0;
}

static int sigqueue_mode(void) {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0);
    union sigval v = {.sival_int = 1234};
    int r = sigqueue(getpid(), SIGUSR2, v);
    printf("sigqueue: %d, errno %s\n", r, r < 0 ? errname(errno) : "0");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec ts = {2, 0};
    r = sigtimedwait(&usr2, &si, &ts);
    printf("sigtimedwait: %d, si_code %s, value %d, si_pid is mine %d\n", r,
           code_name(si.si_code), si.si_value.sival_int, si.si_pid == getpid());
    printf("done\n");
    return 0;
}

static int rt_mode(void) {
    /* Real-time signals queue, and are delivered in send order. */
    struct sigaction rt;
    memset(&rt, 0, sizeof rt);
    rt.sa_sigaction = on_rt;
    rt.sa_flags = SA_SIGINFO;
    sigemptyset(&rt.sa_mask);
    CHECK(sigaction(SIGRTMIN + 1, &rt, NULL) == 0);
    sigset_t rts;
    sigemptyset(&rts);
    sigaddset(&rts, SIGRTMIN + 1);
    CHECK(sigprocmask(SIG_BLOCK, &rts, NULL) == 0);
    for (int i = 1; i <= 3; i++) CHECK(kill(getpid(), SIGRTMIN + 1) == 0);
    CHECK(sigprocmask(SIG_UNBLOCK, &rts, NULL) == 0);
    printf("real-time signal deliveries after 3 kills: %d\n", (int)rt_count);
    rt_count = 0;
    CHECK(sigprocmask(SIG_BLOCK, &rts, NULL) == 0);
    for (int i = 1; i <= 3; i++) {
        union sigval val = {.sival_int = i * 11};
        if (sigqueue(getpid(), SIGRTMIN + 1, val) != 0) {
            printf("sigqueue failed: %s\n", errname(errno));
            break;
        }
    }
    CHECK(sigprocmask(SIG_UNBLOCK, &rts, NULL) == 0);
    printf("after 3 sigqueues: %d deliveries, values %d %d %d\n", (int)rt_count,
           (int)rt_values[0], (int)rt_values[1], (int)rt_values[2]);
    printf("done\n");
    return 0;
}

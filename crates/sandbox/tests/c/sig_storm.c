/* Signals at a high rate must not stop the program. Every mode runs a 50 us interval timer
 * (setitimer ITIMER_REAL, SIGALRM) and must end in about the time it takes natively; the
 * harness's time limit catches a hang.
 *   busy      the handler counts; the main loop only reads the clock for 0.3 s
 *   calls     the main loop makes system calls (getppid) for 0.3 s
 *   sleep     the main loop sleeps 1 ms at a time (nanosleep, EINTR expected) for 0.3 s
 *   blocked   SIGALRM blocked: a nanosleep of 0.3 s is not disturbed, and the pending
 *             signal is there afterwards (sigpending)
 *   thread    a second thread takes the signals while the main thread, which blocks them,
 *             sleeps 0.3 s in nanosleep, poll and a futex wait (relative timeouts must keep
 *             counting however often the host interrupts them)
 *   children  20 children die of SIGSEGV one after the other; a SIGCHLD handler counts them,
 *             waitpid sees WTERMSIG 11 for each
 *   dumped    (no timer) with the soft RLIMIT_CORE raised to the hard one, 3 children die of
 *             SIGSEGV in a subdirectory (whose cores are removed): the SIGCHLD si_code is
 *             CLD_DUMPED exactly when waitpid reports WCOREDUMP, and whether they dumped is the
 *             same natively and sandboxed (it depends on the host's limits)
 *   pipes     300 round trips of one byte through a pipe (write, then read: calls that may
 *             block, so the supervisor's cancellation points) under a 20 us timer: a call that
 *             did not start because a signal came first, made again after the handler, must not
 *             be stopped again by the signals of that time (each write took up to a second: 300 round trips 20 to 70 s)
 *   term      prints "ready" and runs under a 20 us timer until a signal ends it (the
 *             harness sends SIGTERM)
 *   handler   like term with a SIGTERM handler that exits with status 3
 *   order     (no timer) SIGTERM, SIGUSR2 and SIGUSR1 become pending at once (blocked, raised,
 *             unblocked): as in Linux, all three handlers run before the program continues,
 *             the one of the highest number first (the lowest is delivered first, and each
 *             later frame goes on top of the previous one); this is what keeps one signal from
 *             starving the others */
#define _GNU_SOURCE
#include "common.h"
#include <dirent.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, chlds, stop;
static volatile uintptr_t bad_address = 16;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void on_chld(int sig) {
    (void)sig;
    chlds++;
}

static volatile sig_atomic_t dumped_codes, killed_codes;

static void on_chld_info(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (si->si_code == CLD_DUMPED) dumped_codes++;
    if (si->si_code == CLD_KILLED) killed_codes++;
}

/* Removes the files in directory `d`, then `d`. */
static void remove_dir(const char *d) {
    DIR *dir = opendir(d);
    CHECK(dir != NULL);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char f[512];
        snprintf(f, sizeof f, "%s/%s", d, e->d_name);
        CHECK(unlink(f) == 0);
    }
    closedir(dir);
    CHECK(rmdir(d) == 0);
}

static void on_term(int sig) {
    (void)sig;
    _exit(3);
}

static char order[8];
static volatile sig_atomic_t ordered;

static void on_order(int sig) {
    if (ordered < 7) order[ordered++] = sig == SIGUSR1 ? '1' : sig == SIGUSR2 ? '2' : 'T';
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void handle(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void storm(long us) {
    struct itimerval it = {{0, us}, {0, us}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

static void calm(void) {
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
}

static void block_alarm(int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    CHECK(pthread_sigmask(how, &s, NULL) == 0);
}

/* Sleeps 0.3 s three ways with SIGALRM blocked; prints how long each took (in bounds). */
static void blocked_waits(const char *who) {
    double t0 = now();
    struct timespec ts = {0, 300 * 1000 * 1000};
    int r = nanosleep(&ts, NULL);
    double dt = now() - t0;
    printf("%s: nanosleep 0.3 s returned %d, took at least 0.3 s %d, less than 5 s %d\n", who, r,
           dt >= 0.29, dt < 5);
    t0 = now();
    r = poll(NULL, 0, 300);
    dt = now() - t0;
    printf("%s: poll 300 ms returned %d, took at least 0.3 s %d, less than 5 s %d\n", who, r,
           dt >= 0.29, dt < 5);
    int word = 0;
    t0 = now();
    r = (int)syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    int e = errno;
    dt = now() - t0;
    printf("%s: futex wait 0.3 s returned %d (%s), took at least 0.3 s %d, less than 5 s %d\n",
           who, r, r < 0 ? errname(e) : "0", dt >= 0.29, dt < 5);
}

static void *taker(void *arg) {
    (void)arg;
    while (!stop) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "busy";
    handle(SIGALRM, on_alarm, 0);
    if (strcmp(mode, "busy") == 0 || strcmp(mode, "calls") == 0 || strcmp(mode, "sleep") == 0) {
        storm(50);
        double t0 = now();
        long rounds = 0;
        while (now() - t0 < 0.3) {
            if (mode[0] == 'c') {
                getppid();
            } else if (mode[0] == 's') {
                struct timespec ts = {0, 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            rounds++;
        }
        calm();
        printf("%s: ran 0.3 s under a 50 us timer, rounds > 0 %d, signals handled %d\n", mode,
               rounds > 0, alarms > 0);
    } else if (strcmp(mode, "blocked") == 0) {
        block_alarm(SIG_BLOCK);
        storm(50);
        blocked_waits("main");
        calm();
        sigset_t p;
        CHECK(sigpending(&p) == 0);
        printf("SIGALRM pending afterwards %d, handled %d\n", sigismember(&p, SIGALRM),
               (int)alarms);
    } else if (strcmp(mode, "thread") == 0) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, taker, NULL) == 0); /* SIGALRM unblocked there */
        block_alarm(SIG_BLOCK);
        storm(50);
        blocked_waits("main");
        calm();
        stop = 1;
        CHECK(pthread_join(t, NULL) == 0);
        printf("the other thread handled signals: %d\n", alarms > 0);
    } else if (strcmp(mode, "children") == 0) {
        handle(SIGCHLD, on_chld, SA_RESTART);
        storm(50);
        int segv = 0;
        for (int i = 0; i < 20; i++) {
            pid_t c = fork();
            CHECK(c >= 0);
            if (c == 0) {
                calm();
                *(volatile int *)bad_address = 1;
                _exit(0);
            }
            int st;
            pid_t w;
            while ((w = waitpid(c, &st, 0)) < 0 && errno == EINTR) {
            }
            CHECK(w == c);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) segv++;
        }
        calm();
        printf("children killed by SIGSEGV: %d of 20, SIGCHLD handled %d\n", segv, chlds > 0);
    } else if (strcmp(mode, "pipes") == 0) {
        int p[2];
        CHECK(pipe(p) == 0);
        storm(20);
        int ok = 1;
        for (int i = 0; i < 300; i++) {
            char c = (char)i, back = 0;
            ssize_t w, r;
            do w = write(p[1], &c, 1);
            while (w < 0 && errno == EINTR);
            do r = read(p[0], &back, 1);
            while (r < 0 && errno == EINTR);
            ok &= w == 1 && r == 1 && back == c;
        }
        calm();
        printf("pipes: 300 round trips under a 20 us timer, all bytes back %d, signals handled %d\n",
               ok, alarms > 0);
    } else if (strcmp(mode, "term") == 0 || strcmp(mode, "handler") == 0) {
        /* SIGALRM is lower than SIGTERM: delivered lowest first, it must not starve SIGTERM
         * however fast it comes. */
        if (mode[0] == 'h') handle(SIGTERM, on_term, 0);
        storm(20);
        printf("ready\n");
        double t0 = now();
        while (now() - t0 < 60) getppid();
        printf("not ended by the signal\n");
        return 4;
    } else if (strcmp(mode, "dumped") == 0) {
        struct rlimit rl;
        CHECK(getrlimit(RLIMIT_CORE, &rl) == 0);
        rl.rlim_cur = rl.rlim_max;
        CHECK(setrlimit(RLIMIT_CORE, &rl) == 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_chld_info;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
        CHECK(mkdir("cores", 0700) == 0);
        int wcore = 0;
        for (int i = 0; i < 3; i++) {
            pid_t c = fork();
            CHECK(c >= 0);
            if (c == 0) {
                if (chdir("cores") != 0) _exit(3);
                *(volatile int *)bad_address = 1;
                _exit(0);
            }
            int st;
            pid_t w;
            while ((w = waitpid(c, &st, 0)) < 0 && errno == EINTR) {
            }
            CHECK(w == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
            if (WCOREDUMP(st)) wcore++;
        }
        remove_dir("cores");
        printf("SIGCHLD says dumped exactly when waitpid does: %d, dumped %d of 3\n",
               dumped_codes == wcore && killed_codes == 3 - wcore, wcore);
    } else if (strcmp(mode, "order") == 0) {
        handle(SIGUSR1, on_order, 0);
        handle(SIGUSR2, on_order, 0);
        handle(SIGTERM, on_order, 0);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        sigaddset(&s, SIGUSR2);
        sigaddset(&s, SIGTERM);
        CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
        raise(SIGTERM);
        raise(SIGUSR2);
        raise(SIGUSR1);
        CHECK(sigprocmask(SIG_UNBLOCK, &s, NULL) == 0);
        int n = ordered;
        printf("handlers run before sigprocmask returned: %d, in the order %s\n", n, order);
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}

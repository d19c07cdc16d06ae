/* Signals between processes whose numbers the sandbox's runtime uses itself (SIGRTMAX-1 and
 * SIGRTMAX-2), and a SIGIO-style signal with a fault's number. Natively these are ordinary
 * signals; a sandboxed process must treat them so too (the sandbox runs each process in its
 * own supervisor, which must not take another process's signal for its own kick).
 *   kill      a child waits (pause, a busy loop, a blocking read) with default dispositions;
 *             the parent sends SIGRTMAX-1 or SIGRTMAX-2 with kill, sigqueue, tgkill or
 *             pidfd_send_signal: the child dies of that signal
 *   handler   the child has SA_SIGINFO handlers for both; the parent sends each of them by
 *             each route; the child reports what arrived (si_code, value, sender)
 *   setsig    F_SETSIG(SIGSEGV) and O_ASYNC on a pipe: writing to the pipe raises SIGSEGV with
 *             si_code POLL_IN (SI_SIGIO since Linux 4.17) in a handler; with the default
 *             action the process dies of it
 *   routes    the runtime's numbers by F_SETSIG + O_ASYNC (handled, si_code POLL_IN), by the
 *             parent's death (PR_SET_PDEATHSIG: the orphan dies of it), and sent to another
 *             thread of the process itself (pthread_kill)
 *   window    50 rounds each of SIGTERM, SIGRTMAX-1 and SIGRTMAX-2 sent the moment a child
 *             says it is about to block in read: the child dies of it every time (a signal
 *             that came just before the blocking call must not leave it blocked) */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static const char *routes[] = {"kill", "sigqueue", "tgkill", "pidfd"};

static const char *signame(int sig) {
    if (sig == SIGRTMAX - 1) return "SIGRTMAX-1";
    if (sig == SIGRTMAX - 2) return "SIGRTMAX-2";
    if (sig == SIGSEGV) return "SIGSEGV";
    if (sig == SIGTERM) return "SIGTERM";
    return "other";
}

/* Sends `sig` to process `pid` by `route`; 0 or -errno. */
static int send(pid_t pid, int sig, const char *route) {
    int r;
    if (strcmp(route, "kill") == 0) {
        r = kill(pid, sig);
    } else if (strcmp(route, "sigqueue") == 0) {
        union sigval v = {.sival_int = 4242};
        r = sigqueue(pid, sig, v);
    } else if (strcmp(route, "tgkill") == 0) {
        r = (int)syscall(SYS_tgkill, pid, pid, sig);
    } else {
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) return -errno;
        r = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
        int e = errno;
        close(fd);
        errno = e;
    }
    return r < 0 ? -errno : 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for the child's "ready" byte on `rd`. */
static void await_ready(int rd) {
    char c;
    CHECK(read(rd, &c, 1) == 1);
}

static void describe_status(const char *what, int st) {
    if (WIFSIGNALED(st))
        printf("%s: killed by %s\n", what, signame(WTERMSIG(st)));
    else if (WIFEXITED(st))
        printf("%s: exited with %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: status %#x\n", what, st);
}

static void waiter(const char *how, int ready, int hold) {
    CHECK(write(ready, "r", 1) == 1);
    if (strcmp(how, "pause") == 0) {
        for (;;) pause();
    } else if (strcmp(how, "busy") == 0) {
        double t0 = now();
        while (now() - t0 < 60) {
        }
    } else {
        char c;
        if (read(hold, &c, 1) < 0) _exit(6);
    }
    _exit(5);
}

static int kill_mode(void) {
    const char *hows[] = {"pause", "busy", "read"};
    for (int s = 0; s < 2; s++) {
        int sig = SIGRTMAX - 1 - s;
        for (size_t r = 0; r < 4; r++) {
            for (size_t h = 0; h < 3; h++) {
                int ready[2], hold[2];
                CHECK(pipe(ready) == 0 && pipe(hold) == 0);
                pid_t c = fork();
                CHECK(c >= 0);
                if (c == 0) {
                    close(ready[0]);
                    close(hold[1]);
                    waiter(hows[h], ready[1], hold[0]);
                }
                close(ready[1]);
                close(hold[0]);
                await_ready(ready[0]);
                int e = send(c, sig, routes[r]);
                if (e != 0) printf("%s of %s failed: %s\n", routes[r], signame(sig), errname(-e));
                int st;
                CHECK(waitpid(c, &st, 0) == c);
                char what[96];
                snprintf(what, sizeof what, "%s by %s to a child in %s", signame(sig), routes[r],
                         hows[h]);
                describe_status(what, st);
                close(ready[0]);
                close(hold[1]);
            }
        }
    }
    return 0;
}

static volatile sig_atomic_t got_sig, got_code, got_value, got_from_parent;
static pid_t parent;

static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_value = si->si_code == SI_QUEUE ? si->si_value.sival_int : 0;
    got_from_parent = si->si_pid == parent;
}

static int handler_mode(void) {
    parent = getpid();
    int ready[2], report[2];
    CHECK(pipe(ready) == 0 && pipe(report) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_rt;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGRTMAX - 1, &sa, NULL) == 0);
        CHECK(sigaction(SIGRTMAX - 2, &sa, NULL) == 0);
        for (int i = 0; i < 8; i++) {
            got_sig = 0;
            CHECK(write(ready[1], "r", 1) == 1);
            while (!got_sig) pause();
            int msg[4] = {got_sig, got_code, got_value, got_from_parent};
            CHECK(write(report[1], msg, sizeof msg) == sizeof msg);
        }
        _exit(0);
    }
    for (int s = 0; s < 2; s++) {
        int sig = SIGRTMAX - 1 - s;
        for (size_t r = 0; r < 4; r++) {
            await_ready(ready[0]);
            int e = send(c, sig, routes[r]);
            if (e != 0) {
                printf("%s of %s failed: %s\n", routes[r], signame(sig), errname(-e));
                kill(c, SIGKILL);
                return 1;
            }
            int msg[4];
            CHECK(read(report[0], msg, sizeof msg) == sizeof msg);
            const char *code = msg[1] == SI_USER    ? "SI_USER"
                               : msg[1] == SI_QUEUE ? "SI_QUEUE"
                               : msg[1] == SI_TKILL ? "SI_TKILL"
                                                    : "other";
            /* tgkill reports SI_TKILL, or SI_USER on some kernels: both are a kill. */
            if (msg[1] == SI_TKILL) code = "SI_USER";
            printf("%s by %s: handler got %s, si_code %s, value %d, from the parent %d\n",
                   signame(sig), routes[r], signame(msg[0]), code, msg[2], msg[3]);
        }
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    describe_status("the child", st);
    return 0;
}

static volatile sig_atomic_t segv_code, segv_fd, segv_band_in, segvs;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    segvs++;
    segv_code = si->si_code;
    segv_fd = si->si_fd;
    segv_band_in = (si->si_band & POLLIN) != 0;
}

/* Sets up F_SETSIG(SIGSEGV) + O_ASYNC on the read end of a pipe owned by this process. */
static void async_pipe(int p[2]) {
    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[0], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(p[0], F_SETSIG, SIGSEGV) == 0);
    CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) == 0);
}

static int setsig_mode(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    int p[2];
    async_pipe(p);
    printf("F_GETSIG: %s\n", signame(fcntl(p[0], F_GETSIG)));
    for (int i = 0; i < 3; i++) {
        CHECK(write(p[1], "x", 1) == 1);
        double t0 = now();
        while (segvs <= i && now() - t0 < 10) {
        }
        char c;
        CHECK(read(p[0], &c, 1) == 1);
    }
    /* Linux 4.17 and later report SI_SIGIO for signals with codes of their own. */
    const char *code = segv_code == POLL_IN ? "POLL_IN" : segv_code == SI_SIGIO ? "SI_SIGIO" : "other";
    printf("SIGSEGV by SIGIO: %d handled, si_code %s, si_fd is the pipe %d, POLLIN in si_band %d\n",
           (int)segvs, code, segv_fd == p[0], (int)segv_band_in);
    /* With the default action, the process dies of it. */
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        signal(SIGSEGV, SIG_DFL);
        int q[2];
        async_pipe(q);
        CHECK(write(q[1], "x", 1) == 1);
        double t0 = now();
        while (now() - t0 < 10) {
        }
        _exit(7);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    describe_status("a child with the default action", st);
    return 0;
}

/* Counted by route (a late SIGIO of the F_SETSIG part must not count for pthread_kill). */
static volatile sig_atomic_t rt_hits, rt_code, tkill_hits, tkill_code, tkill_in_thread;
static pthread_t worker_thread;

static void on_rt_route(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    /* The counters last: the main thread reads the rest once it sees them change. */
    if (si->si_code == SI_TKILL) {
        tkill_code = si->si_code;
        tkill_in_thread = pthread_equal(pthread_self(), worker_thread);
        tkill_hits++;
    } else {
        rt_code = si->si_code;
        rt_hits++;
    }
}

static volatile sig_atomic_t worker_stop;

static void *worker(void *arg) {
    (void)arg;
    while (!worker_stop) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static const char *code_name(int code) {
    return code == POLL_IN ? "POLL_IN" : code == SI_SIGIO ? "SI_SIGIO" : code == SI_TKILL ? "SI_TKILL" : code == SI_QUEUE ? "SI_QUEUE" : code == SI_USER ? "SI_USER" : "other";
}

static int routes_mode(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt_route;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGRTMAX - 1, &sa, NULL) == 0);
    CHECK(sigaction(SIGRTMAX - 2, &sa, NULL) == 0);
    for (int s = 0; s < 2; s++) {
        int sig = SIGRTMAX - 1 - s;
        int p[2];
        CHECK(pipe(p) == 0);
        CHECK(fcntl(p[0], F_SETOWN, getpid()) == 0);
        CHECK(fcntl(p[0], F_SETSIG, sig) == 0);
        CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) == 0);
        rt_hits = 0;
        CHECK(write(p[1], "x", 1) == 1);
        double t0 = now();
        while (!rt_hits && now() - t0 < 10) {
        }
        printf("%s by F_SETSIG: handled %d, si_code %s\n", signame(sig), (int)rt_hits,
               code_name(rt_code));
        close(p[0]);
        close(p[1]);
    }
    CHECK(pthread_create(&worker_thread, NULL, worker, NULL) == 0);
    for (int s = 0; s < 2; s++) {
        int sig = SIGRTMAX - 1 - s;
        tkill_hits = 0;
        CHECK(pthread_kill(worker_thread, sig) == 0);
        double t0 = now();
        while (!tkill_hits && now() - t0 < 10) {
        }
        printf("%s by pthread_kill: handled %d, in the target thread %d, si_code %s\n",
               signame(sig), (int)tkill_hits, (int)tkill_in_thread, code_name(tkill_code));
    }
    worker_stop = 1;
    CHECK(pthread_join(worker_thread, NULL) == 0);
    /* The parent's death signal: the orphan is reparented to us (a subreaper) and dies. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        pid_t g = fork();
        if (g < 0) _exit(3);
        if (g == 0) {
            signal(SIGRTMAX - 1, SIG_DFL);
            if (prctl(PR_SET_PDEATHSIG, SIGRTMAX - 1) != 0) _exit(4);
            if (write(ready[1], &g, 1) != 1) _exit(5);
            for (;;) pause();
        }
        char b;
        if (read(ready[0], &b, 1) != 1) _exit(6);
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    pid_t g;
    CHECK((g = wait(&st)) > 0);
    describe_status("an orphan with PR_SET_PDEATHSIG SIGRTMAX-1", st);
    return 0;
}

static int window_mode(void) {
    int sigs[3] = {SIGTERM, SIGRTMAX - 1, SIGRTMAX - 2};
    for (int s = 0; s < 3; s++) {
        int ended = 0;
        for (int i = 0; i < 50; i++) {
            int ready[2], hold[2];
            CHECK(pipe(ready) == 0 && pipe(hold) == 0);
            pid_t c = fork();
            CHECK(c >= 0);
            if (c == 0) {
                close(ready[0]);
                close(hold[1]);
                char b;
                if (write(ready[1], "r", 1) != 1) _exit(3);
                if (read(hold[0], &b, 1) < 0) _exit(4);
                _exit(5);
            }
            close(ready[1]);
            close(hold[0]);
            await_ready(ready[0]);
            CHECK(kill(c, sigs[s]) == 0);
            int st = 0;
            double t0 = now();
            pid_t w;
            while ((w = waitpid(c, &st, WNOHANG)) == 0 && now() - t0 < 10) {
                struct timespec ts = {0, 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            if (w == 0) {
                kill(c, SIGKILL);
                CHECK(waitpid(c, &st, 0) == c);
            }
            if (WIFSIGNALED(st) && WTERMSIG(st) == sigs[s]) ended++;
            close(ready[0]);
            close(hold[1]);
        }
        printf("%s the moment a child is about to block in read: %d of 50 ended by it\n",
               signame(sigs[s]), ended);
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "kill";
    int r;
    if (strcmp(mode, "kill") == 0)
        r = kill_mode();
    else if (strcmp(mode, "handler") == 0)
        r = handler_mode();
    else if (strcmp(mode, "setsig") == 0)
        r = setsig_mode();
    else if (strcmp(mode, "routes") == 0)
        r = routes_mode();
    else if (strcmp(mode, "window") == 0)
        r = window_mode();
    else
        return 2;
    if (r == 0) printf("done\n");
    return r;
}

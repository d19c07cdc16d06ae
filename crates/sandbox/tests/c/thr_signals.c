/* Signals and threads: pthread_kill runs the handler in the target thread (pthread_self in the
 * handler equals the target); a process-directed kill() goes to the one thread that does not
 * block the signal; pthread_kill interrupts a thread blocked in read() (EINTR without
 * SA_RESTART); the signal mask is per thread and inherited by pthread_create.
 * Mode "sigwait": a dedicated thread takes process signals with sigwait (the common daemon
 * pattern) while the main thread, which sends them with kill(getpid()), blocks them.
 * Mode "exit": exit() from a thread ends the process while the main thread is blocked in
 * read(). */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static pthread_t target;
static volatile sig_atomic_t ran_in_target, handler_runs;
static volatile pthread_t ran_in;

static void on_usr1(int sig) {
    (void)sig;
    handler_runs++;
    ran_in = pthread_self();
    ran_in_target = pthread_equal(pthread_self(), target);
}

static pthread_barrier_t bar;
static int pipefd[2];
static volatile int read_result, read_errno;

static void *sleeper(void *arg) {
    (void)arg;
    pthread_barrier_wait(&bar);
    struct timespec ts = {0, 300 * 1000 * 1000};
    while (!handler_runs && nanosleep(&ts, NULL) != 0) {
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char c;
    pthread_barrier_wait(&bar);
    ssize_t n = read(pipefd[0], &c, 1);
    read_result = (int)n;
    read_errno = n < 0 ? errno : 0;
    return NULL;
}

static volatile int waited_sig;
static void *waiter(void *arg) {
    sigset_t *set = arg;
    int sig = 0;
    pthread_barrier_wait(&bar);
    if (sigwait(set, &sig) == 0) waited_sig = sig;
    return NULL;
}

static void *unblocked_receiver(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pthread_barrier_wait(&bar);
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 1000 && !handler_runs; i++) nanosleep(&ts, NULL);
    return NULL;
}

static void *inherits(void *arg) {
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    *(int *)arg = sigismember(&cur, SIGUSR2);
    return NULL;
}

static void *exiter(void *arg) {
    (void)arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    printf("exit(7) from a thread while the main thread is in read()\n");
    fflush(stdout);
    exit(7);
}

static int sigwait_mode(void) {
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr2, NULL) == 0);
    pthread_t t2;
    CHECK(pthread_create(&t2, NULL, waiter, &usr2) == 0);
    pthread_barrier_wait(&bar);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 10;
    int r = pthread_timedjoin_np(t2, NULL, &limit);
    if (r != 0) {
        printf("the sigwait thread did not return within 10 s (%s)\n",
               r == ETIMEDOUT ? "ETIMEDOUT" : errname(r));
        fflush(stdout);
        _exit(1);
    }
    printf("sigwait thread got signal %d (SIGUSR2 %d)\n", waited_sig, SIGUSR2);
    printf("done\n");
    return 0;
}

static int exit_mode(void) {
    int p2[2];
    CHECK(pipe(p2) == 0);
    pthread_t t2;
    CHECK(pthread_create(&t2, NULL, exiter, NULL) == 0);
    char c;
    ssize_t n = read(p2[0], &c, 1);
    printf("read returned %zd (wrong: the process should have exited)\n", n);
    return 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sigwait") == 0) return sigwait_mode();
    if (strcmp(mode, "exit") == 0) return exit_mode();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    /* 1. pthread_kill to a specific thread. */
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    CHECK(pthread_create(&target, NULL, sleeper, NULL) == 0);
    pthread_barrier_wait(&bar);
    CHECK(pthread_kill(target, SIGUSR1) == 0);
    CHECK(pthread_join(target, NULL) == 0);
    printf("pthread_kill: handler runs %d, ran in the target thread %d\n", (int)handler_runs,
           (int)ran_in_target);

    /* 2. kill() to the process while the main thread blocks SIGUSR1: the other thread gets it. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
    handler_runs = 0;
    CHECK(pthread_create(&target, NULL, unblocked_receiver, NULL) == 0);
    pthread_barrier_wait(&bar);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(pthread_join(target, NULL) == 0);
    printf("kill with the main thread blocking: handler runs %d, in the other thread %d\n",
           (int)handler_runs, (int)ran_in_target);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);

    /* 3. pthread_kill interrupts a blocking read (no SA_RESTART). */
    CHECK(pipe(pipefd) == 0);
    handler_runs = 0;
    CHECK(pthread_create(&target, NULL, reader, NULL) == 0);
    pthread_barrier_wait(&bar);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(pthread_kill(target, SIGUSR1) == 0);
    CHECK(pthread_join(target, NULL) == 0);
    printf("read interrupted: result %d, errno %s, handler in reader %d\n", read_result,
           errname(read_errno), (int)ran_in_target);

    /* 4. The mask is inherited by threads created after it is set. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr2, NULL) == 0);
    int inherited = -1;
    pthread_t t2;
    CHECK(pthread_create(&t2, NULL, inherits, &inherited) == 0);
    CHECK(pthread_join(t2, NULL) == 0);
    printf("new thread inherits the blocked SIGUSR2: %d\n", inherited);
    sigset_t cur;
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0);
    printf("main thread's own mask kept: USR2 %d USR1 %d\n", sigismember(&cur, SIGUSR2),
           sigismember(&cur, SIGUSR1));
    printf("done\n");
    return 0;
}

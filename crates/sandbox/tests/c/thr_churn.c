/* Thread churn. Default mode: 300 threads created and joined one after the other (never more
 * than two alive), then 40 rounds of 8 threads at once: a long-running program creates many
 * more threads over its life than it has at any moment. Mode "storm": 40 threads created and
 * joined while another thread keeps sending the process SIGUSR1 (handled, SA_RESTART): thread
 * creation must not fail because a signal arrived while the new thread was being set up. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t seen;
static volatile int stop;

static void on_usr1(int sig) {
    (void)sig;
    seen++;
}

static void *spammer(void *arg) {
    (void)arg;
    while (!stop) {
        kill(getpid(), SIGUSR1);
        for (volatile int i = 0; i < 3000; i++) {
        }
    }
    return NULL;
}

static void *echo(void *arg) { return arg; }

/* Creates and joins one thread; returns 1 if it ran and returned its argument. */
static int one(long i) {
    pthread_t t;
    int r = pthread_create(&t, NULL, echo, (void *)i);
    if (r != 0) {
        printf("pthread_create number %ld failed: %s\n", i, errname(r));
        return 0;
    }
    void *v;
    CHECK(pthread_join(t, &v) == 0);
    return (long)v == i;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "storm") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
        pthread_t sp;
        CHECK(pthread_create(&sp, NULL, spammer, NULL) == 0);
        int ok = 0;
        for (long i = 0; i < 40; i++) ok += one(i);
        /* Let the storm reach the handler at least once (natively the 40 threads may all be done
         * before the spammer sends anything), so the output does not depend on timing. */
        for (int i = 0; i < 5000 && !seen; i++) usleep(1000);
        stop = 1;
        CHECK(pthread_join(sp, NULL) == 0);
        printf("40 threads under a signal storm: %d ran, signals handled %d\n", ok, seen > 0);
        printf("done\n");
        return 0;
    }
    int ok = 0;
    for (long i = 0; i < 300; i++) {
        int r = one(i);
        ok += r;
        if (!r) break;
    }
    printf("300 threads one after the other: %d ran\n", ok);
    int batch_ok = 0;
    for (int round = 0; round < 40; round++) {
        pthread_t t[8];
        int made = 0;
        for (long i = 0; i < 8; i++) {
            if (pthread_create(&t[i], NULL, echo, (void *)i) != 0) break;
            made++;
        }
        for (int i = 0; i < made; i++) {
            void *v;
            CHECK(pthread_join(t[i], &v) == 0);
            batch_ok += (long)v == i;
        }
        if (made < 8) {
            printf("round %d: only %d of 8 threads could be created\n", round, made);
            break;
        }
    }
    printf("40 rounds of 8 concurrent threads: %d ran\n", batch_ok);
    printf("done\n");
    return 0;
}

/* 16 POSIX threads share a counter under a mutex: each waits on a condition variable for the
 * start signal, does 62,500 locked increments (1,000,000 in all), and reports completion
 * through a second condition variable; the main thread also checks per-thread TLS, join
 * values and that every thread had its own id. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define THREADS 16
#define PER_THREAD 62500

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int started;
static int go;
static int finished;
static long counter;
static __thread long tls_count = 1000;
static pid_t tids[THREADS];

static void *worker(void *arg) {
    long idx = (long)arg;
    CHECK(pthread_mutex_lock(&lock) == 0);
    tids[idx] = gettid();
    started++;
    pthread_cond_broadcast(&done_cv);
    while (!go) CHECK(pthread_cond_wait(&start_cv, &lock) == 0);
    CHECK(pthread_mutex_unlock(&lock) == 0);
    for (int i = 0; i < PER_THREAD; i++) {
        CHECK(pthread_mutex_lock(&lock) == 0);
        counter++;
        CHECK(pthread_mutex_unlock(&lock) == 0);
        tls_count++;
        if (i % 4096 == 0) sched_yield();
    }
    CHECK(pthread_mutex_lock(&lock) == 0);
    finished++;
    pthread_cond_signal(&done_cv);
    CHECK(pthread_mutex_unlock(&lock) == 0);
    return (void *)(tls_count * 100 + idx);
}

int main(void) {
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, (void *)i) == 0);
    CHECK(pthread_mutex_lock(&lock) == 0);
    while (started < THREADS) CHECK(pthread_cond_wait(&done_cv, &lock) == 0);
    printf("all %d threads waiting for the start signal; counter %ld\n", started, counter);
    go = 1;
    CHECK(pthread_cond_broadcast(&start_cv) == 0);
    while (finished < THREADS) CHECK(pthread_cond_wait(&done_cv, &lock) == 0);
    CHECK(pthread_mutex_unlock(&lock) == 0);
    int join_ok = 1;
    for (long i = 0; i < THREADS; i++) {
        void *ret;
        CHECK(pthread_join(th[i], &ret) == 0);
        if ((long)ret != (1000 + PER_THREAD) * 100 + i) join_ok = 0;
    }
    int distinct = 1;
    for (int i = 0; i < THREADS; i++) {
        if (tids[i] == getpid() || tids[i] <= 0) distinct = 0;
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j]) distinct = 0;
    }
    printf("total %ld (expected %d)\n", counter, THREADS * PER_THREAD);
    printf("join values ok %d, thread ids distinct %d, main tls untouched %d\n", join_ok,
           distinct, tls_count == 1000);
    printf("done\n");
    return counter == THREADS * PER_THREAD && join_ok && distinct ? 0 : 1;
}

/* 16 threads take turns on one mutex, N acquisitions in total: contention, so futex waits and
 * wakes (system calls) dominate. */
#include <pthread.h>
#include <stdlib.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static long left, count;
static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&m);
        if (left == 0) { pthread_mutex_unlock(&m); return 0; }
        left--; count++;
        pthread_mutex_unlock(&m);
    }
}
int main(int argc, char **argv) {
    left = argc > 1 ? atol(argv[1]) : 0;
    pthread_t t[16];
    for (int i = 0; i < 16; i++) pthread_create(&t[i], 0, worker, 0);
    for (int i = 0; i < 16; i++) pthread_join(t[i], 0);
    return count >= 0 ? 0 : 1;
}

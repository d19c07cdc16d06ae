/* thr: four threads (four vCPUs in the sandbox) doing system calls and sharing a mutex-protected
 * counter. Part of the VT-x rig's differential suite (cargo xtask vtx). */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *work(void *arg) {
    long id = (long)arg, local = 0;
    for (int i = 0; i < 300; i++) {
        local += syscall(SYS_getppid) > 0;
        pthread_mutex_lock(&lock);
        counter += id;
        pthread_mutex_unlock(&lock);
    }
    return (void *)local;
}

int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, work, (void *)(i + 1));
    long calls = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        calls += (long)r;
    }
    printf("threads joined: counter=%ld calls=%ld\n", counter, calls);
    return 0;
}

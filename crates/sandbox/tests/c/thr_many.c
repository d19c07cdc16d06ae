/* thr_many N
 *
 * Starts N threads at once (each sleeps 200 ms), forks while they all live (the child exits
 * with 3), then joins them. Prints how many threads started and the child's status: more
 * threads than the runtime's original 32 descriptor slots must work, and fork with them. */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static void *sleeper(void *arg) {
    usleep(200000);
    return arg;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    int n = atoi(argv[1]);
    CHECK(n > 0 && n <= 200);
    pthread_t t[200];
    int started = 0;
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t[i], 0, sleeper, 0);
        if (e != 0) {
            printf("pthread_create #%d: %s\n", i, errname(e));
            break;
        }
        started++;
    }
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0) _exit(3);
    int st;
    CHECK(waitpid(p, &st, 0) == p);
    for (int i = 0; i < started; i++) CHECK(pthread_join(t[i], 0) == 0);
    printf("threads %d child exit %d\n", started, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("done\n");
    return 0;
}

/* Descriptor calls from several threads at once, with fork: one thread forks (the child
 * exits) in a loop, one opens and closes /proc/self/status and a regular file, one duplicates
 * and closes, one starts and joins threads. In the sandbox these calls take the descriptor
 * window's gate and the process's locks in different orders; none may deadlock (the test's
 * time limit catches one). Prints the number of rounds each thread did (fixed) and "done".
 * Usage: thr_fd_stress [ROUNDS] */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

/* Rounds of the fork and thread loops (argv[1]; 60 by default); the others do 10 and 20 times
 * as many. */
static int ROUNDS = 60;

static void *forker(void *a) {
    int n = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t p = fork();
        if (p == 0) _exit(3);
        int st;
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 3) n++;
    }
    return (void *)(long)n;
}

static void *opener(void *a) {
    int n = 0;
    for (int i = 0; i < ROUNDS * 10; i++) {
        int f = open(i % 2 ? "/proc/self/status" : "data", O_RDONLY);
        if (f >= 0) {
            char b[64];
            if (read(f, b, sizeof b) > 0) n++;
            close(f);
        }
    }
    return (void *)(long)n;
}

static void *duper(void *a) {
    int n = 0;
    for (int i = 0; i < ROUNDS * 20; i++) {
        int d = dup(1);
        int e = fcntl(1, F_DUPFD_CLOEXEC, 0);
        if (d >= 0 && e >= 0) n++;
        if (d >= 0) close(d);
        if (e >= 0) close(e);
    }
    return (void *)(long)n;
}

static void *nothing(void *a) { return a; }

static void *spawner(void *a) {
    int n = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_t t[3];
        int k = 0;
        for (int j = 0; j < 3; j++) k += pthread_create(&t[j], NULL, nothing, NULL) == 0;
        for (int j = 0; j < k; j++) pthread_join(t[j], NULL);
        if (k == 3) n++;
    }
    return (void *)(long)n;
}

int main(int argc, char **argv) {
    if (argc > 1) ROUNDS = atoi(argv[1]);
    int f = open("data", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(f >= 0 && write(f, "some data\n", 10) == 10 && close(f) == 0);
    void *(*fns[4])(void *) = {forker, opener, duper, spawner};
    const char *names[4] = {"fork", "open", "dup", "threads"};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, fns[i], NULL) == 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        printf("%s rounds ok: %ld\n", names[i], (long)r);
    }
    unlink("data");
    printf("done\n");
    return 0;
}

/* Resource limits the sandbox's runtime depends on are the program's own to set, and none
 * stops the runtime: a lowered RLIMIT_NOFILE is enforced as Linux enforces it (EMFILE, EBADF
 * for dup2 above it, EINVAL for F_DUPFD above it) while threads and fork still work with the
 * table full; RLIMIT_SIGPENDING 0 does not stop a two-thread program's execve or its signals. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void *quick(void *arg) { return arg; }

static volatile sig_atomic_t got;
static void on_usr1(int s) { (void)s; got++; }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
        puts("exec from two threads: done");
        puts("done");
        return 0;
    }
    alarm(30);
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(old.rlim_cur >= 64 && old.rlim_cur <= old.rlim_max);

    /* A lowered soft limit. */
    struct rlimit low = {48, old.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    struct rlimit now;
    CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0);
    printf("soft limit reads back: %d\n", now.rlim_cur == 48);
    int highest = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) highest = fd;
    printf("open at the limit: %s, highest %d\n", errname(errno), highest);
    printf("dup2 above it: %s\n", dup2(0, 50) < 0 ? errname(errno) : "ok");
    printf("F_DUPFD above it: %s\n", fcntl(0, F_DUPFD, 60) < 0 ? errname(errno) : "ok");
    printf("socketpair at the limit: %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, (int[2]){0}) < 0 ? errname(errno) : "ok");

    /* Threads and fork need no descriptor. */
    pthread_t t;
    int e = pthread_create(&t, NULL, quick, NULL);
    printf("thread with a full table: %s\n", e ? errname(e) : "ok");
    if (!e) pthread_join(t, NULL);
    pid_t p = fork();
    if (p == 0) _exit(open("/dev/null", O_RDONLY) < 0 && errno == EMFILE ? 5 : 6);
    int st;
    CHECK(p > 0 && waitpid(p, &st, 0) == p);
    printf("fork with a full table: child exit %d\n", WEXITSTATUS(st));

    /* Closing one below the limit frees exactly that number. */
    close(20);
    printf("reopened: %d\n", open("/dev/null", O_RDONLY));
    /* Raised back: the numbers above the old soft limit are free again. */
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    fd = open("/dev/null", O_RDONLY);
    printf("after raising: got %d\n", fd);
    for (int i = 3; i <= highest + 1; i++) close(i);
    /* (Raising the hard limit: root may natively, the sandbox refuses: README.) */

    /* RLIMIT_SIGPENDING 0: queued signals to others need it, the program's own ones too. */
    struct rlimit zero = {0, 0};
    CHECK(setrlimit(RLIMIT_SIGPENDING, &zero) == 0);
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    printf("a signal to itself with SIGPENDING 0: %d\n", got);
    CHECK(pthread_create(&t, NULL, sleeper, NULL) == 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    fflush(stdout);
    char *args[] = {argv[0], "after-exec", NULL};
    execv(argv[0], args);
    printf("execv: %s\n", errname(errno));
    return 1;
}

/* A process that dropped its privileges (as root: to uid/gid 65534) still forks, vforks and
 * starts threads, as on Linux: none of them needs a privilege (in the sandbox each new
 * process builds a VM, from the KVM device descriptor its parent had open). Lines:
 * "dropped: 1|0", "fork: exit 7", "vfork: exit 8", "thread: ok", "fork in fork: exit 9". */
#define _GNU_SOURCE
#include "common.h"
#include <grp.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static int status_of(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void *thr(void *a) { return a; }

int main(void) {
    int dropped = 0;
    if (geteuid() == 0) {
        gid_t g = 65534;
        CHECK(setgroups(1, &g) == 0);
        CHECK(setresgid(65534, 65534, 65534) == 0);
        CHECK(setresuid(65534, 65534, 65534) == 0);
        dropped = getuid() == 65534;
    }
    printf("dropped: %d\n", dropped);
    fflush(stdout);
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0) _exit(7);
    printf("fork: exit %d\n", status_of(p));
    p = vfork();
    CHECK(p >= 0);
    if (p == 0) _exit(8);
    printf("vfork: exit %d\n", status_of(p));
    pthread_t t;
    void *r = NULL;
    CHECK(pthread_create(&t, NULL, thr, (void *)1) == 0 && pthread_join(t, &r) == 0);
    printf("thread: %s\n", r == (void *)1 ? "ok" : "wrong");
    fflush(stdout);
    p = fork();
    CHECK(p >= 0);
    if (p == 0) {
        pid_t q = fork();
        if (q < 0) _exit(1);
        if (q == 0) _exit(9);
        _exit(status_of(q));
    }
    printf("fork in fork: exit %d\n", status_of(p));
    printf("done\n");
    return 0;
}

/* Credentials belong to each thread: a raw setresuid(2) (not glibc's, which changes every
 * thread) in a second thread changes that thread's only. The thread asks getuid in a burst
 * before and getuid/geteuid in a burst after (which the sandbox could serve from another host thread), and opens a file only
 * root may read; the main thread keeps its own. Run as root: "root 1"; otherwise the raw call
 * fails with EPERM both ways and the lines say so. */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
    (void)arg;
    /* A burst first (a server thread made now would have the thread's credentials of now). */
    uid_t before = 0;
    for (int i = 0; i < 20000; i++) before |= (uid_t)syscall(SYS_getuid);
    printf("thread getuid before: %u\n", before);
    long r = syscall(SYS_setresuid, 65534, 65534, 65534);
    printf("thread setresuid: %s\n", r == 0 ? "ok" : errname(errno));
    int wrong = 0;
    for (int i = 0; i < 20000; i++) {
        uid_t u = (uid_t)syscall(SYS_getuid), e = (uid_t)syscall(SYS_geteuid);
        if (r == 0 && (u != 65534 || e != 65534)) wrong++;
    }
    printf("thread getuid burst wrong: %d\n", wrong);
    errno = 0;
    int fd = open("secret", O_RDONLY);
    printf("thread opens root's file: %s\n", fd >= 0 ? "ok" : errname(errno));
    return NULL;
}

int main(void) {
    printf("root %d\n", geteuid() == 0);
    int fd = open("secret", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1 && close(fd) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("main getuid unchanged: %d\n", getuid() == 0 || geteuid() != 0);
    fd = open("secret", O_RDONLY);
    printf("main opens its file: %s\n", fd >= 0 ? "ok" : errname(errno));
    unlink("secret");

    /* Reads that check permission at read time (a 0600 sysctl): after dropping privileges,
     * each pread of a descriptor opened as root fails, also in a burst of calls that could be
     * served from another host thread. In a child, which then exits. */
    fflush(stdout);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        int sfd = open("/proc/sys/kernel/cad_pid", O_RDONLY);
        for (int i = 0; i < 5000; i++) getppid();
        if (geteuid() == 0 && setresuid(65534, 65534, 65534) != 0) _exit(2);
        int ok = 0;
        char b[64];
        for (int k = 0; k < 200; k++) {
            for (int i = 0; i < 50; i++) getppid();
            if (sfd >= 0 && pread(sfd, b, sizeof b, 0) > 0) ok++;
        }
        printf("root's sysctl read after the drop: %d of 200\n", ok);
        fflush(stdout);
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    printf("done\n");
    return 0;
}

/* A race on execve's own descriptor: while the main thread calls execve on an executable copy
 * of this program ("good"), a second thread watches the descriptor number the supervisor's
 * open() is about to get, and once it is in use dup2s over it a non-executable copy ("evil",
 * mode 0644, which execve refuses with EACCES). Whatever the timing, the new image must be "good" (or execve
 * fails): never the file execve would have refused. Each round runs in a fresh child;
 * prints one line per round's outcome class, then a summary. Run as "role" it prints the
 * ROLE marker of the file it was loaded from. */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const volatile char role[] = "ROLE:good";
static int evil_fd, target;

static void *swapper(void *arg) {
    (void)arg;
    /* Wait until the descriptor number is in use (execve's file), then replace it atomically. */
    for (;;) {
        if (fcntl(target, F_GETFD) >= 0) {
            dup2(evil_fd, target);
            for (;;) pause();
        }
    }
    return NULL;
}

/* Copies this program to `path` with `mode`, replacing the ROLE marker with `marker`. */
static void copy_self(const char *path, mode_t mode, const char *marker) {
    int in = open("/proc/self/exe", O_RDONLY);
    CHECK(in >= 0);
    struct stat st;
    CHECK(fstat(in, &st) == 0);
    char *buf = malloc(st.st_size);
    CHECK(buf && read(in, buf, st.st_size) == st.st_size);
    close(in);
    /* Every copy of the marker (string literals are separate objects from `role`). */
    int found = 0;
    for (char *p = buf; (p = memmem(p, st.st_size - (p - buf), "ROLE:good", 9)); p += 9) {
        memcpy(p, marker, 9);
        found++;
    }
    CHECK(found > 0);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(out >= 0 && write(out, buf, st.st_size) == st.st_size);
    CHECK(fchmod(out, mode) == 0);
    close(out);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "role")) {
        char r[10];
        for (int i = 0; i < 10; i++) r[i] = role[i];
        puts(r);
        return 0;
    }
    copy_self("good", 0755, "ROLE:good");
    copy_self("evil", 0644, "ROLE:EVIL");
    int rounds = 20, evil_ran = 0, good_ran = 0, failed = 0;
    for (int k = 0; k < rounds; k++) {
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            dup2(p[1], 1);
            close(p[0]);
            close(p[1]);
            evil_fd = open("evil", O_RDONLY);
            CHECK(evil_fd >= 0);
            target = evil_fd + 1; /* the lowest free descriptor: what open() gets next */
            pthread_t t;
            CHECK(pthread_create(&t, NULL, swapper, NULL) == 0);
            usleep(1000 * (k % 4));
            char *av[] = {"good", "role", NULL};
            execv("./good", av);
            _exit(3);
        }
        close(p[1]);
        char out[64] = {0};
        ssize_t n = read(p[0], out, sizeof out - 1);
        (void)n;
        close(p[0]);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (strstr(out, "ROLE:EVIL")) evil_ran++;
        else if (strstr(out, "ROLE:good")) good_ran++;
        else failed++;
    }
    printf("rounds %d, the non-executable file ran %d times\n", rounds, evil_ran);
    fprintf(stderr, "good %d, failed %d\n", good_ran, failed);
    return evil_ran ? 1 : 0;
}

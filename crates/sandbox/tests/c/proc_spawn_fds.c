/* Descriptor numbers around vfork and posix_spawn: a child started with posix_spawn (glibc's
 * uses clone(CLONE_VM | CLONE_VFORK)) or vfork + execve gets the descriptors it should, with
 * posix_spawn's file actions applied, and every number below its limit works afterwards, in
 * the parent and the child: open returns usable descriptors, dup2 onto any of them works.
 * (The sandbox's vfork hand-off used to be a pipe whose number stayed marked as the runtime's
 * after execve: dup2 onto it failed and a descriptor open returned there answered EBADF.) */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Opens /dev/null until descriptor `upto`, checks each with fstat, then dup2s stdout over every
 * number 3..upto+5 and back; prints what failed, or "descriptors ok". */
static int check_numbers(const char *who, int upto) {
    int bad = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) { printf("%s: open: %s\n", who, errname(errno)); return 1; }
        struct stat st;
        if (fstat(fd, &st) != 0) { printf("%s: fstat(%d): %s\n", who, fd, errname(errno)); bad++; }
        if (fd >= upto) break;
    }
    for (int n = 3; n < upto + 5; n++) {
        if (dup2(1, n) != n) { printf("%s: dup2(1, %d): %s\n", who, n, errname(errno)); bad++; }
        if (fcntl(n, F_GETFD) < 0) { printf("%s: F_GETFD(%d): %s\n", who, n, errname(errno)); bad++; }
    }
    for (int n = 3; n < upto + 5; n++) close(n);
    if (!bad) printf("%s: descriptors ok\n", who);
    return bad != 0;
}

static int spawn(const char *self, const char *what, posix_spawn_file_actions_t *fa) {
    pid_t pid;
    char *argv[] = {(char *)self, (char *)what, NULL};
    int e = posix_spawn(&pid, self, fa, NULL, argv, environ);
    if (e) { printf("posix_spawn: %s\n", errname(e)); return 1; }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("%s: exit %d\n", what, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) return check_numbers("child", 12);
    if (argc > 1 && strcmp(argv[1], "actions") == 0) {
        /* fd 7 was opened by a file action, fd 8 is a dup2 of it, fd 5 closed. */
        char b[8];
        int ok = read(7, b, sizeof b) == 5 && memcmp(b, "hello", 5) == 0 && lseek(8, 0, SEEK_CUR) == 5 &&
                 fcntl(5, F_GETFD) < 0 && errno == EBADF;
        printf("actions: %s\n", ok ? "applied" : "NOT applied");
        return check_numbers("actions child", 12) || !ok;
    }
    int fd = open("spawn.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5);
    close(fd);
    for (int i = 0; i < 3; i++) spawn(argv[0], "child", NULL);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 7, "spawn.txt", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 7, 8);
    posix_spawn_file_actions_addclose(&fa, 5);
    spawn(argv[0], "actions", &fa);
    posix_spawn_file_actions_destroy(&fa);
    /* vfork + execve, and vfork + _exit. */
    pid_t pid = vfork();
    if (pid == 0) {
        char *cargv[] = {argv[0], "child", NULL};
        execve(argv[0], cargv, environ);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("vfork child: exit %d\n", WEXITSTATUS(st));
    pid = vfork();
    if (pid == 0) _exit(42);
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("vfork _exit: exit %d\n", WEXITSTATUS(st));
    int r = check_numbers("parent", 12);
    puts("done");
    return r;
}

/* proc: fork with a pipe and an exit status, vfork + execve, and waitpid statuses (a child
 * killed by SIGSEGV). Each child is a new VM in the sandbox. Part of the VT-x rig's
 * differential suite (cargo xtask vtx). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int p[2], st;
    char buf[64] = {0};
    setvbuf(stdout, 0, _IONBF, 0);
    if (pipe(p)) return 1;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        write(p[1], "from the child", 14);
        _exit(7);
    }
    close(p[1]);
    read(p[0], buf, sizeof buf - 1);
    waitpid(c, &st, 0);
    printf("fork: read '%s', child exited %d\n", buf, WEXITSTATUS(st));

    c = vfork();
    if (c == 0) {
        char *argv[] = {"/vtx/bin/hello", "5", "from", "exec", 0};
        execv(argv[0], argv);
        _exit(127);
    }
    waitpid(c, &st, 0);
    printf("vfork+exec: exited %d\n", WEXITSTATUS(st));

    c = fork();
    if (c == 0) {
        volatile int *volatile bad = (int *)8;
        *bad = 1;
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("faulting child: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}

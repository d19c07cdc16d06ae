/* execve of `#!` scripts that the test wrote into the working directory (see
 * tests/processes.rs: plain.sh, echo_arg, nested, nested2..nested5, noshebang, badinterp, notexec).
 * Each case runs in a child; the parent prints how the child ended. The scripts print their
 * arguments, so the output shows the argv Linux builds: interpreter, the optional argument
 * of the #! line (one argument, spaces included), the script path as given, then the rest. */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void run(const char *what, const char *path, char *const argv[]) {
    fflush(stdout);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        execve(path, argv, environ);
        printf("%s: execve failed with %s\n", what, errname(errno));
        fflush(stdout);
        _exit(127);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %d\n", what, WTERMSIG(st));
}

static int execveat_cases(void);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "execveat") == 0) return execveat_cases();
    char *a1[] = {"./plain.sh", "x", "y z", NULL};
    run("plain #!/bin/sh", "./plain.sh", a1);
    char *a2[] = {"./echo_arg", "a", "b", NULL};
    run("#!/bin/echo with an argument", "./echo_arg", a2);
    char *a3[] = {"./nested", "n1", NULL};
    run("#! interpreter is a #! script", "./nested", a3);
    char *a4[] = {"./nested2", "deep", NULL};
    run("two levels of #! scripts", "./nested2", a4);
    char *a4b[] = {"./nested4", "deepest", NULL};
    run("five #! rewrites (Linux's limit)", "./nested4", a4b);
    char *a4c[] = {"./nested5", "too-deep", NULL};
    run("six #! rewrites", "./nested5", a4c);
    char *a5[] = {"./noshebang", NULL};
    run("no #! line", "./noshebang", a5);
    char *a6[] = {"./badinterp", NULL};
    run("missing interpreter", "./badinterp", a6);
    char *a7[] = {"./notexec", NULL};
    run("not executable", "./notexec", a7);
    char *a8[] = {"argv0-differs", "q", NULL};
    run("argv[0] differs from the path", "./plain.sh", a8);

    /* Finally replace this process itself (no fork): the script's output ends the run. */
    char *last[] = {"./plain.sh", "final", NULL};
    fflush(stdout);
    execve("./plain.sh", last, environ);
    printf("final execve failed: %s\n", errname(errno));
    return 1;
}

/* Linux names a script run through execveat "/dev/fd/N/NAME" (dirfd) or "/dev/fd/N"
 * (AT_EMPTY_PATH), and refuses (ENOENT) a script whose descriptor is close-on-exec, since the
 * interpreter could not open that name. */
static int execveat_cases(void) {
    /* execveat relative to a directory descriptor, and of an open script (AT_EMPTY_PATH). */
    fflush(stdout);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        int d = open(".", O_RDONLY | O_DIRECTORY);
        CHECK(d >= 0);
        char *av[] = {"plain.sh", "via-execveat", NULL};
        syscall(SYS_execveat, d, "plain.sh", av, environ, 0);
        printf("execveat failed with %s\n", errname(errno));
        _exit(127);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    printf("execveat(dirfd, \"plain.sh\"): exit %d\n", WEXITSTATUS(st));
    fflush(stdout);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        int fd = open("./echo_arg", O_RDONLY);
        CHECK(fd >= 0);
        char *av[] = {"by-fd", "fd-arg", NULL};
        syscall(SYS_execveat, fd, "", av, environ, AT_EMPTY_PATH);
        printf("execveat(fd, \"\", AT_EMPTY_PATH) failed with %s\n", errname(errno));
        _exit(127);
    }
    CHECK(waitpid(c, &st, 0) == c);
    printf("execveat(fd, \"\", AT_EMPTY_PATH): exit %d\n", WEXITSTATUS(st));
    fflush(stdout);
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        int fd = open("./echo_arg", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        char *av[] = {"by-cloexec-fd", NULL};
        syscall(SYS_execveat, fd, "", av, environ, AT_EMPTY_PATH);
        printf("execveat of a close-on-exec script descriptor failed with %s\n", errname(errno));
        _exit(127);
    }
    CHECK(waitpid(c, &st, 0) == c);
    printf("execveat(cloexec fd): exit %d\n", WEXITSTATUS(st));
    printf("done\n");
    return 0;
}

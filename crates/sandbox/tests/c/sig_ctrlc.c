/* Ctrl-C: prints "ready", then waits for a signal from outside (the test sends SIGINT).
 * Mode "handler": a SIGINT handler prints "got SIGINT" and exits 3; the wait is pause().
 * Mode "default": no handler; the process must die of SIGINT.
 * Mode "read": the handler (without SA_RESTART) interrupts a read of stdin (a pipe the test
 * keeps open): the read fails with EINTR, then the program exits 4.
 * Mode "child": the program forks a child that pauses with the default action; the test
 * signals the sandbox process only, so the program's own handler runs, kills the child with
 * SIGINT and reports how it died. */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0) _exit(9);
}

static void on_int_exit(int sig) {
    (void)sig;
    say("got SIGINT\n");
    _exit(3);
}

static void on_int_flag(int sig) {
    (void)sig;
    got = 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "handler";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (strcmp(mode, "handler") == 0) {
        sa.sa_handler = on_int_exit;
        CHECK(sigaction(SIGINT, &sa, NULL) == 0);
        say("ready\n");
        for (;;) pause();
    }
    if (strcmp(mode, "default") == 0) {
        say("ready\n");
        for (;;) pause();
    }
    if (strcmp(mode, "read") == 0) {
        sa.sa_handler = on_int_flag;
        CHECK(sigaction(SIGINT, &sa, NULL) == 0);
        say("ready\n");
        char c;
        ssize_t n = read(0, &c, 1);
        printf("read returned %zd, errno %s, handler ran %d\n", n, n < 0 ? errname(errno) : "0",
               (int)got);
        return 4;
    }
    if (strcmp(mode, "child") == 0) {
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
            for (;;) pause();
        }
        sa.sa_handler = on_int_flag;
        CHECK(sigaction(SIGINT, &sa, NULL) == 0);
        say("ready\n");
        while (!got) pause();
        CHECK(kill(c, SIGINT) == 0);
        int st;
        CHECK(waitpid(c, &st, 0) == c);
        printf("got SIGINT; child ended by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
        return 5;
    }
    return 2;
}

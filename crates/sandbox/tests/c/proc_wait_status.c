/* Children that end in different ways, and what the parent's waitpid reports: exit(7),
 * raise(SIGTERM), an invalid memory access (SIGSEGV), abort() (SIGABRT), kill by the parent
 * with SIGKILL while the child sleeps, a signal the child ignores (SIGTERM with SIG_IGN, then
 * exit 5), and a grandchild's status seen by its own parent. Also fork's memory isolation and
 * getppid.
 * Mode "stopcont": 200 rounds of a paused child stopped (WUNTRACED), continued (WCONTINUED)
 * and then, 0 to 1000 us later (a different delay each round), sent SIGHUP, which must kill it
 * (the parent gives it 10 s, then reports the round and kills it with SIGKILL). */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int shared_value = 1;

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: WIFEXITED, status %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: WIFSIGNALED, WTERMSIG %d (%s)\n", what, WTERMSIG(status),
               sigabbrev_np(WTERMSIG(status)));
    else
        printf("%s: other status %#x\n", what, status);
}

static void run(const char *what, void (*body)(void)) {
    fflush(stdout);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        body();
        _exit(100);
    }
    int status;
    CHECK(waitpid(c, &status, 0) == c);
    describe(what, status);
}

static void exits(void) { exit(7); }
static void raises_term(void) { raise(SIGTERM); }
static volatile uintptr_t bad_address = 16;
static void segfaults(void) {
    volatile int *p = (volatile int *)bad_address;
    *p = 1;
}
static void aborts(void) { abort(); }
static void ignores_term(void) {
    signal(SIGTERM, SIG_IGN);
    raise(SIGTERM);
    kill(getpid(), SIGTERM);
    _exit(5);
}
static void forks_again(void) {
    pid_t g = fork();
    if (g < 0) _exit(99);
    if (g == 0) raise(SIGUSR1);
    int st;
    if (waitpid(g, &st, 0) != g) _exit(98);
    /* Report the grandchild's signal as our exit status. */
    _exit(WIFSIGNALED(st) ? 40 + WTERMSIG(st) : 97);
}
static void changes_memory(void) {
    shared_value = 42;
    _exit(getppid() > 0 ? shared_value : 96);
}

/* Busy-waits for `us` microseconds. */
static void spin(long us) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static int stopcont(void) {
    int died = 0;
    for (int round = 0; round < 200; round++) {
        fflush(stdout);
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
            for (;;) pause();
        }
        int status;
        CHECK(kill(c, SIGSTOP) == 0);
        CHECK(waitpid(c, &status, WUNTRACED) == c);
        CHECK(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
        CHECK(kill(c, SIGCONT) == 0);
        CHECK(waitpid(c, &status, WCONTINUED) == c);
        CHECK(WIFCONTINUED(status));
        spin((round * 53) % 1001);
        CHECK(kill(c, SIGHUP) == 0);
        pid_t w = 0;
        for (int i = 0; i < 1000 && w == 0; i++) {
            w = waitpid(c, &status, WNOHANG);
            if (w == 0) usleep(10000);
        }
        if (w == 0) {
            printf("round %d: the continued child did not die of SIGHUP within 10 s\n", round);
            kill(c, SIGKILL);
            CHECK(waitpid(c, &status, 0) == c);
            continue;
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP) died++;
    }
    printf("stopped, continued, then killed by SIGHUP: %d of 200\n", died);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "stopcont") == 0) return stopcont();
    run("exit(7)", exits);
    run("raise(SIGTERM)", raises_term);
    run("store to address 16", segfaults);
    run("abort()", aborts);
    run("SIGTERM ignored, then _exit(5)", ignores_term);
    run("grandchild raised SIGUSR1 (status 40+sig)", forks_again);
    run("child wrote 42 to its copy", changes_memory);
    printf("parent's copy still %d\n", shared_value);

    /* Killed by the parent while it sleeps. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        close(p[0]);
        int ppid_ok = getppid() > 1;
        CHECK(write(p[1], &ppid_ok, sizeof ppid_ok) == sizeof ppid_ok);
        for (;;) pause();
    }
    close(p[1]);
    int ppid_ok = 0;
    CHECK(read(p[0], &ppid_ok, sizeof ppid_ok) == sizeof ppid_ok);
    CHECK(kill(c, SIGKILL) == 0);
    int status;
    CHECK(waitpid(c, &status, 0) == c);
    printf("child saw a parent: %d\n", ppid_ok);
    describe("SIGKILL from the parent", status);

    /* Stopped and continued (WUNTRACED/WCONTINUED), then killed by SIGKILL. */
    c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        for (;;) pause();
    }
    CHECK(kill(c, SIGSTOP) == 0);
    CHECK(waitpid(c, &status, WUNTRACED) == c);
    printf("WIFSTOPPED %d, WSTOPSIG %d\n", WIFSTOPPED(status), WSTOPSIG(status));
    CHECK(kill(c, SIGCONT) == 0);
    CHECK(waitpid(c, &status, WCONTINUED) == c);
    printf("WIFCONTINUED %d\n", WIFCONTINUED(status));
    CHECK(kill(c, SIGKILL) == 0);
    CHECK(waitpid(c, &status, 0) == c);
    describe("SIGKILL after SIGCONT", status);
    printf("no more children: ECHILD %d\n", waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD);
    printf("done\n");
    return 0;
}

/* clone with an exit signal other than SIGCHLD (CSIGNAL): the parent gets that signal when the
 * child ends, with the child's pid and status in its siginfo, and no SIGCHLD; an exit signal of
 * 0 sends nothing. (Waited for with __WALL: such "clone children" need __WALL or __WCLONE.) */
#define _GNU_SOURCE
#include "common.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, chld, usr1_code, usr1_status;
static volatile pid_t usr1_pid;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    usr1++;
    usr1_pid = si->si_pid;
    usr1_code = si->si_code;
    usr1_status = si->si_status;
}
static void on_chld(int sig) {
    (void)sig;
    chld++;
}

static int child(void *arg) { return (int)(long)arg; }

static char stack[2][64 * 1024];

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGCHLD, on_chld);
    pid_t p = clone(child, stack[0] + sizeof stack[0], SIGUSR1, (void *)7L);
    CHECK(p > 0);
    int st;
    CHECK(waitpid(p, &st, __WALL) == p);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    printf("SIGUSR1 child: exit %d, SIGUSR1 %d (pid matches %d, CLD_EXITED %d, status %d), SIGCHLD %d\n",
           WEXITSTATUS(st), usr1, usr1_pid == p, usr1_code == CLD_EXITED, usr1_status, chld);
    usr1 = chld = 0;
    p = clone(child, stack[1] + sizeof stack[1], 0, (void *)3L);
    CHECK(p > 0);
    CHECK(waitpid(p, &st, __WALL) == p);
    nanosleep(&ts, NULL);
    printf("no-signal child: exit %d, SIGUSR1 %d, SIGCHLD %d\n", WEXITSTATUS(st), usr1, chld);
    puts("done");
    return 0;
}

/* sig: signal delivery through the sandbox's rt_sigframe: a handler for raise(), a SIGSEGV
 * handler that repairs the fault (mprotect) and returns into the faulting instruction through
 * sigreturn, blocked and pending signals, SIGALRM waking pause(). Part of the VT-x rig's
 * differential suite (cargo xtask vtx): on VT-x a fault stops the vCPU in the ring-0 exception
 * stub and a system call in the ring-0 LSTAR stub, and the handler must start in ring 3 from
 * either. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_alrm, segvs;
static char *page;

static void on_usr1(int s) { got_usr1 = s; }
static void on_alrm(int s) { got_alrm = s; }
static void on_segv(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    segvs++;
    if ((char *)si->si_addr != page + 100) _exit(3);
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    printf("usr1 handled: %d\n", got_usr1);

    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    got_usr1 = 0;
    sigprocmask(SIG_BLOCK, &set, 0);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("blocked: handled=%d pending=%d\n", got_usr1, sigismember(&pending, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &set, 0);
    printf("unblocked: handled=%d\n", got_usr1);

    page = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    page[100] = 42; /* faults once; the handler makes the page writable; the store is retried */
    printf("segv handled %d time(s), value %d\n", segvs, page[100]);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, 0);
    alarm(1);
    pause();
    printf("alarm: %d\n", got_alrm);
    return 0;
}

/* `int $0x80` (the 32-bit system-call gate): the sandbox ends it as a kernel without IA32
 * emulation does (README), with SIGSEGV: the gate is not there, a #GP (si_code SI_KERNEL). A
 * 32-bit call never runs unvalidated. */
#define _GNU_SOURCE
#include "common.h"

#include <setjmp.h>
#include <signal.h>

static sigjmp_buf jb;
static volatile int code = -1;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    code = si->si_code;
    siglongjmp(jb, 1);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    long ret = 0;
    if (sigsetjmp(jb, 1) == 0) {
        /* 32-bit getpid (20). */
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        printf("int $0x80 returned %ld\n", ret);
    } else {
        printf("int $0x80: SIGSEGV, si_code %d\n", code);
    }
    puts("done");
    return 0;
}

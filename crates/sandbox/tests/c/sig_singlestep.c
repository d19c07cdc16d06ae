/* sig_singlestep
 *
 * Single-steps (TF) over a `syscall` instruction 50 times with a SIGTRAP handler that records
 * where each trap landed, relative to the stepped sequence. Linux reports a trap after every
 * user instruction except inside the kernel, and (because `sysret` restores TF) the one after
 * `syscall` one instruction late. The sandbox must report exactly the same traps, although on
 * some hosts the system call runs through user-mode trampolines. Prints the trap count and the
 * offsets of the first round. */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <ucontext.h>

static volatile int traps;
static unsigned long rips[16];
extern char stepped[];

static void on_trap(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    if (traps < 16) rips[traps] = (unsigned long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
    traps++;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGTRAP, &sa, 0) == 0);
    long pid = 0;
    for (int round = 0; round < 50; round++) {
        __asm__ volatile("stepped:\n\t"
                         "pushf\n\t"
                         "orq $0x100, (%%rsp)\n\t"
                         "popf\n\t"
                         "nop\n\t"
                         "mov $39, %%eax\n\t"
                         "syscall\n\t"
                         "nop\n\t"
                         "pushf\n\t"
                         "andq $~0x100, (%%rsp)\n\t"
                         "popf\n\t"
                         : "=a"(pid)
                         :
                         : "rcx", "r11", "memory", "cc");
        CHECK(pid == getpid());
        if (round == 0) {
            printf("first round:");
            for (int i = 0; i < traps && i < 16; i++)
                printf(" +%lu", rips[i] - (unsigned long)stepped);
            printf("\n");
        }
    }
    printf("traps %d\n", traps);
    printf("done\n");
    return 0;
}

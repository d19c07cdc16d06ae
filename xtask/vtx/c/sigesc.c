/* sigesc MODE: escape attempts through signal frames; each must end as it does natively.
 *   iopl:       the handler sets IOPL=3 in the saved RFLAGS, then the program executes cli:
 *               sigreturn must not restore IOPL (SIGSEGV, 139).
 *   badrip:     the handler points the saved RIP at a non-canonical address (SIGSEGV).
 *   kernrip:    the handler points the saved RIP at a kernel-half address (SIGSEGV).
 *   badhandler: a handler at a non-canonical address (SIGSEGV).
 *   tf:         the handler sets TF in the saved RFLAGS: a single-step trap follows (SIGTRAP, 133).
 * Prints "returned" (and exits 0) only if the attempt had no effect. Part of the VT-x rig
 * (cargo xtask vtx): on VT-x the sandbox resumes the program from these frames with the vCPU
 * stopped in a ring-0 stub. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static const char *mode;

static void handler(int s, siginfo_t *si, void *uc_) {
    (void)s;
    (void)si;
    ucontext_t *uc = uc_;
    if (!strcmp(mode, "iopl")) uc->uc_mcontext.gregs[REG_EFL] |= 0x3000;
    if (!strcmp(mode, "badrip")) uc->uc_mcontext.gregs[REG_RIP] = 0x0000800000000000L;
    if (!strcmp(mode, "kernrip")) uc->uc_mcontext.gregs[REG_RIP] = (long)0xffffffff81000000UL;
    if (!strcmp(mode, "tf")) uc->uc_mcontext.gregs[REG_EFL] |= 0x100;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    mode = argv[1];
    printf("attempt %s\n", mode);
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    if (!strcmp(mode, "badhandler")) sa.sa_sigaction = (void *)0x0000800000000000L;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    if (!strcmp(mode, "iopl")) __asm__ volatile("cli; sti");
    __asm__ volatile("nop; nop; nop");
    printf("returned\n");
    return 0;
}

/* priv INSN: executes one instruction that ring 3 may not execute. Natively (and in the sandbox)
 * the program dies of SIGSEGV before printing "returned". INSN: hlt cli out rdmsr kread; and
 * vmcall, which is #UD on hardware (SIGILL) but which KVM on Intel answers itself for a CPL-3
 * caller (RAX = -KVM_EPERM, the program continues) and KVM on AMD turns into #GP (the sandbox
 * reports SIGILL as hardware would).
 * Escape attempts of the VT-x rig (cargo xtask vtx). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *i = argv[1];
    printf("executing %s\n", i);
    fflush(stdout);
    if (!strcmp(i, "hlt")) __asm__ volatile("hlt");
    else if (!strcmp(i, "cli")) __asm__ volatile("cli");
    else if (!strcmp(i, "out")) __asm__ volatile("outb %%al, $0x80" ::"a"(0));
    else if (!strcmp(i, "rdmsr")) __asm__ volatile("rdmsr" ::"c"(0xc0000082) : "rax", "rdx");
    else if (!strcmp(i, "kread")) printf("%d\n", *(volatile int *)0xffffffff81000000ul);
    else if (!strcmp(i, "vmcall")) __asm__ volatile("vmcall" ::: "rax", "memory");
    else return 2;
    printf("%s returned\n", i);
    return 0;
}

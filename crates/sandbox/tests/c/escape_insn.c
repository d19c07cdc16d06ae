/* escape_insn NAME: executes one instruction that ring 3 may not execute (or that traps), each
 * in its own run. Prints "executing NAME at 0x<rip>" (the instruction's own address) first; if
 * the instruction returns, prints "NAME returned" and exits 0.
 *
 * Natively: the privileged ones raise #GP, which Linux turns into SIGSEGV; vmcall raises #UD
 * (SIGILL) on bare metal but may return under a hypervisor; ud2 SIGILL; division by zero
 * SIGFPE; int3 SIGTRAP; int $n through a kernel-only gate #GP (SIGSEGV). */
#define _GNU_SOURCE
#include "common.h"

/* Each instruction gets a function insn_NAME (set-up, the instruction, ret) and a label
 * trap_NAME on the instruction itself: the faulting rip. */
#define INSN(name, setup, text)                                                          \
    ".globl insn_" #name "\n.type insn_" #name ",@function\ninsn_" #name ":\n" setup "\n" \
    ".globl trap_" #name "\ntrap_" #name ":\n" text "\nret\n"

__asm__(".text\n"
        INSN(hlt, "", "hlt")
        INSN(cli, "", "cli")
        INSN(sti, "", "sti")
        INSN(out, "xor %eax, %eax", "outb %al, $0x80")
        INSN(in, "", "inb $0x80, %al")
        INSN(lgdt, "", "lgdt (%rsp)")
        INSN(lidt, "", "lidt (%rsp)")
        INSN(ltr, "xor %eax, %eax", "ltr %ax")
        INSN(mov_cr3, "xor %eax, %eax", "mov %rax, %cr3")
        INSN(mov_cr0, "xor %eax, %eax", "mov %rax, %cr0")
        INSN(read_cr3, "", "mov %cr3, %rax")
        INSN(mov_dr7, "xor %eax, %eax", "mov %rax, %dr7")
        INSN(wrmsr, "mov $0xc0000100, %ecx\nxor %eax, %eax\nxor %edx, %edx", "wrmsr")
        INSN(rdmsr, "mov $0xc0000080, %ecx", "rdmsr")
        INSN(invlpg, "", "invlpg (%rsp)")
        INSN(wbinvd, "", "wbinvd")
        INSN(swapgs, "", "swapgs")
        INSN(sysret, "", "sysretq")
        INSN(clts, "", "clts")
        INSN(vmcall, "xor %eax, %eax", "vmcall")
        INSN(ud2, "", "ud2")
        INSN(div0, "xor %eax, %eax\nxor %edx, %edx\nxor %ecx, %ecx", "div %ecx")
        INSN(int3, "", "int3")
        INSN(int_0e, "", "int $0x0e")
        INSN(int_0d, "", "int $0x0d")
        INSN(int_20, "", "int $0x20")
        INSN(int_81, "", "int $0x81"));

#define INSNS(X)                                                                            \
    X(hlt) X(cli) X(sti) X(out) X(in) X(lgdt) X(lidt) X(ltr) X(mov_cr3) X(mov_cr0)          \
    X(read_cr3) X(mov_dr7) X(wrmsr) X(rdmsr) X(invlpg) X(wbinvd) X(swapgs) X(sysret) X(clts) \
    X(vmcall) X(ud2) X(div0) X(int3) X(int_0e) X(int_0d) X(int_20) X(int_81)
#define DECL(name) void insn_##name(void); extern const char trap_##name[];
INSNS(DECL)

static const struct {
    const char *name;
    void (*fn)(void);
    const char *rip;
} table[] = {
#define ENTRY(name) {#name, insn_##name, trap_##name},
    INSNS(ENTRY)
};

int main(int argc, char **argv) {
    CHECK(argc == 2);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(argv[1], table[i].name) != 0) continue;
        printf("executing %s at 0x%lx\n", argv[1], (unsigned long)table[i].rip);
        fflush(stdout);
        table[i].fn();
        printf("%s returned\n", argv[1]);
        return 0;
    }
    fprintf(stderr, "unknown instruction %s\n", argv[1]);
    return 2;
}

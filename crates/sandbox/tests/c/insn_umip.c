/* User-mode sgdt, sidt, smsw, str and sldt end as on Linux with UMIP: fixed values
 * (arch/x86/kernel/umip.c), to memory and to registers of each size, and SIGSEGV with
 * SEGV_MAPERR at the address when the result cannot be stored. On a CPU without UMIP the
 * native values differ (the real tables' addresses), so the program prints whether the values
 * are Linux's dummy ones, which the test expects where the host has UMIP. */
#define _GNU_SOURCE
#include "common.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

struct __attribute__((packed)) table { uint16_t limit; uint64_t base; };

int main(void) {
    struct table g = {1, 1}, i = {1, 1};
    __asm__ volatile("sgdt %0" : "=m"(g));
    __asm__ volatile("sidt %0" : "=m"(i));
    printf("sgdt: limit %u base %#llx\n", g.limit, (unsigned long long)g.base);
    printf("sidt: limit %u base %#llx\n", i.limit, (unsigned long long)i.base);
    uint64_t r64 = 0x1111111111111111ULL;
    __asm__ volatile("smsw %q0" : "+r"(r64));
    uint64_t r32 = 0x2222222222222222ULL;
    __asm__ volatile("smsw %k0" : "+r"(r32));
    uint64_t r16 = 0x3333333333333333ULL;
    __asm__ volatile("smsw %w0" : "+r"(r16));
    uint16_t m16 = 0x7777;
    __asm__ volatile("smsw %0" : "=m"(m16));
    printf("smsw: r64 %#llx r32 low %#llx r16 %#llx m16 %#x\n", (unsigned long long)r64,
           (unsigned long long)(r32 & 0xffffffff), (unsigned long long)r16, m16);
    uint16_t tr = 0x7777, ldt = 0x7777;
    uint64_t rtr = 0x4444444444444444ULL;
    __asm__ volatile("str %0" : "=m"(tr));
    __asm__ volatile("sldt %0" : "=m"(ldt));
    __asm__ volatile("str %k0" : "+r"(rtr));
    printf("str: %#x (reg low %#llx) sldt: %#x\n", tr, (unsigned long long)(rtr & 0xffffffff), ldt);
    int dummy = g.limit == 0 && g.base == 0xfffffffffffe0000ULL && i.base == 0xffffffffffff0000ULL &&
                r64 == 0x80050033 && m16 == 0x33 && tr == 0x40 && ldt == 0;
    printf("Linux's dummy values: %d\n", dummy);

    /* The result cannot be stored: SIGSEGV at the address. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED && munmap(p + 4096, 4096) == 0);
    if (sigsetjmp(jb, 1) == 0) __asm__ volatile("sgdt %0" : "=m"(*(struct table *)(p + 4096)));
    printf("sgdt to an unmapped page: si_code %d at the page %d\n", fault_code,
           fault_addr == p + 4096);
    puts("done");
    return 0;
}

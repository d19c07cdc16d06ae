/* SIGSEGV handlers that recover, the garbage-collector pattern: a page is made PROT_NONE, the
 * program touches it, and the SA_SIGINFO handler checks si_signo/si_code/si_addr, makes the
 * page read-write again and either returns (the faulting instruction runs again and now
 * succeeds) or siglongjmps out. Also: a write to a read-only page (SEGV_ACCERR), an access to
 * an unmapped page (SEGV_MAPERR), and the handler's ucontext (the saved RIP is inside main's
 * text, the saved mask is the one at the time of the fault). */
#define _GNU_SOURCE
#include "common.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile char *page;
static long pagesz;
static volatile int handled;
static volatile int last_code;
static volatile int addr_matched;
static volatile int signo_ok;
static volatile int mode_longjmp;
static volatile void *volatile expected_addr;
static volatile int mask_has_usr2;
static volatile int rip_nonzero;

static void handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    handled++;
    signo_ok = sig == SIGSEGV && si->si_signo == SIGSEGV;
    last_code = si->si_code;
    addr_matched = si->si_addr == expected_addr;
    mask_has_usr2 = sigismember(&uc->uc_sigmask, SIGUSR2) == 1;
    rip_nonzero = uc->uc_mcontext.gregs[REG_RIP] != 0;
    /* Make the page usable again (the GC pattern); for the unmapped case map it back. */
    void *base = (void *)((uintptr_t)si->si_addr & ~(uintptr_t)(pagesz - 1));
    if (mprotect(base, pagesz, PROT_READ | PROT_WRITE) != 0) {
        void *p = mmap(base, pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       -1, 0);
        if (p == MAP_FAILED) _exit(90);
    }
    if (mode_longjmp) siglongjmp(env, 1);
}

static const char *code_name(int c) {
    switch (c) {
    case SEGV_MAPERR: return "SEGV_MAPERR";
    case SEGV_ACCERR: return "SEGV_ACCERR";
    default: return "other";
    }
}

static void report(const char *what) {
    printf("%s: handled %d, signo ok %d, si_code %d (%s), si_addr matched %d, "
           "mask kept %d, rip %d\n",
           what, handled, signo_ok, last_code, code_name(last_code), addr_matched,
           mask_has_usr2, rip_nonzero);
    handled = 0;
}

int main(void) {
    pagesz = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    /* A blocked signal that must show in the handler's uc_sigmask. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0);

    page = mmap(NULL, 4 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    memset((char *)page, 'a', 4 * pagesz);

    /* 1. Returning handler: read of a PROT_NONE page, then the read is retried. */
    CHECK(mprotect((char *)page + pagesz, pagesz, PROT_NONE) == 0);
    expected_addr = page + pagesz + 123;
    mode_longjmp = 0;
    char c = page[pagesz + 123];
    report("read PROT_NONE, handler returns");
    printf("  value read after the retry: %c\n", c);

    /* 2. Returning handler: write to a PROT_NONE page; the retried store lands. */
    CHECK(mprotect((char *)page + 2 * pagesz, pagesz, PROT_NONE) == 0);
    expected_addr = page + 2 * pagesz + 7;
    page[2 * pagesz + 7] = 'W';
    report("write PROT_NONE, handler returns");
    printf("  value stored: %c\n", page[2 * pagesz + 7]);

    /* 3. siglongjmp out of the handler: write to a read-only page. */
    CHECK(mprotect((char *)page + 3 * pagesz, pagesz, PROT_READ) == 0);
    expected_addr = page + 3 * pagesz + 64;
    mode_longjmp = 1;
    if (sigsetjmp(env, 1) == 0) {
        page[3 * pagesz + 64] = 'X';
        printf("not reached\n");
    } else {
        report("write PROT_READ, siglongjmp");
        /* sigsetjmp(env, 1) restored the mask: SIGSEGV is unblocked again. */
        sigset_t cur;
        CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0);
        printf("  SIGSEGV blocked after siglongjmp: %d\n", sigismember(&cur, SIGSEGV));
        printf("  page value kept: %c\n", page[3 * pagesz + 64]);
    }

    /* 4. An unmapped page, siglongjmp (the handler maps it back). */
    CHECK(munmap((char *)page, pagesz) == 0);
    expected_addr = page + 5;
    if (sigsetjmp(env, 1) == 0) {
        c = page[5];
        printf("not reached\n");
    } else {
        report("read unmapped, siglongjmp");
        printf("  remapped page is zero: %d\n", page[5] == 0);
    }

    /* 5. Many faults in a row, as a GC write barrier would take them. */
    mode_longjmp = 0;
    int total = 0, matched = 0, stored = 0;
    for (int i = 0; i < 200; i++) {
        CHECK(mprotect((char *)page + pagesz, pagesz, PROT_NONE) == 0);
        expected_addr = page + pagesz + i;
        page[pagesz + i] = (char)i;
        total += handled;
        matched += addr_matched;
        stored += page[pagesz + i] == (char)i;
        handled = 0;
    }
    printf("200 protect/fault/unprotect rounds: %d faults handled, %d addresses matched, "
           "%d stores landed\n", total, matched, stored);
    printf("done\n");
    return 0;
}

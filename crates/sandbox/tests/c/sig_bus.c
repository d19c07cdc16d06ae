/* SIGBUS from a file mapping touched beyond the end of its file (mmap(2): "Use of a mapped
 * region can result in ... SIGBUS: attempted access to a page of the buffer that lies beyond
 * the end of the mapped file"). A handler with SA_SIGINFO reports si_code and si_addr as an
 * offset into the mapping: a 1-byte load, a 4-byte store, an 8-byte load that crosses from the
 * file's last page into the next, a `rep movsb` that runs into it or writes there, `xlatb`
 * (a byte register in the address) and a code fetch; shared and private
 * mappings. Then the same access without a handler kills the process with SIGBUS. */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf back;
static volatile uintptr_t fault_addr;
static volatile int fault_code;

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = (uintptr_t)si->si_addr;
    fault_code = si->si_code;
    siglongjmp(back, 1);
}

static void load8(const volatile char *p) {
    uint64_t v;
    __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(p) : "memory");
    (void)v;
}

static void rep_movsb(void *dst, const void *src, size_t n) {
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static char sink[3 * 4096];

static void xlat(const void *table, unsigned char index) {
    __asm__ volatile("xlatb" : "+a"(index) : "b"(table) : "memory");
}

static void try(const char *what, char *base, int how, size_t off) {
    fault_addr = 0;
    fault_code = 0;
    if (sigsetjmp(back, 1) == 0) {
        switch (how) {
        case 0: (void)*(volatile char *)(base + off); break;
        case 1: *(volatile uint32_t *)(base + off) = 7; break;
        case 2: load8(base + off); break;
        case 3: rep_movsb(sink, base + off, sizeof sink); break;
        case 4: xlat(base + off, 0x10); break;
        case 5: rep_movsb(base + off, sink, 4096); break; /* destination beyond EOF */
        case 6: ((void (*)(void))(base + off))(); break;  /* code fetch */
        }
        printf("%s: no fault\n", what);
        return;
    }
    printf("%s: SIGBUS si_code %d at mapping offset %ld\n", what, fault_code,
           (long)(fault_addr - (uintptr_t)base));
}

int main(int argc, char **argv) {
    int fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 4096 + 100) == 0); /* two pages of file, the second partly */
    if (argc > 1) {
        char *p = mmap(NULL, 4 * 4096, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(p != MAP_FAILED);
        puts("touching beyond EOF without a handler");
        fflush(stdout);
        (void)*(volatile char *)(p + 2 * 4096 + 5);
        puts("still alive");
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
    const int flags[2] = {MAP_SHARED, MAP_PRIVATE};
    const char *names[2] = {"shared", "private"};
    for (int i = 0; i < 2; i++) {
        char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, flags[i], fd, 0);
        CHECK(p != MAP_FAILED);
        char what[64];
        snprintf(what, sizeof what, "%s: byte past EOF in the last page", names[i]);
        try(what, p, 0, 4096 + 200);
        snprintf(what, sizeof what, "%s: 1-byte load", names[i]);
        try(what, p, 0, 2 * 4096 + 77);
        snprintf(what, sizeof what, "%s: 4-byte store", names[i]);
        try(what, p, 1, 3 * 4096 + 8);
        snprintf(what, sizeof what, "%s: 8-byte load across", names[i]);
        try(what, p, 2, 2 * 4096 - 4);
        snprintf(what, sizeof what, "%s: rep movsb into it", names[i]);
        try(what, p, 3, 100);
        snprintf(what, sizeof what, "%s: xlatb", names[i]);
        try(what, p, 4, 2 * 4096 + 32);
        snprintf(what, sizeof what, "%s: rep movsb writing there", names[i]);
        try(what, p, 5, 2 * 4096 + 512);
        CHECK(munmap(p, 4 * 4096) == 0);
        p = mmap(NULL, 4 * 4096, PROT_READ | PROT_EXEC, flags[i], fd, 0);
        CHECK(p != MAP_FAILED);
        snprintf(what, sizeof what, "%s: code fetch", names[i]);
        try(what, p, 6, 2 * 4096 + 64);
        CHECK(munmap(p, 4 * 4096) == 0);
    }
    puts("done");
    return 0;
}

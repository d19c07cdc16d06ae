/* Thread-local storage in the main thread: initialised (.tdata) and zeroed (.tbss) __thread
 * variables, the %fs-based thread pointer, arch_prctl(ARCH_GET_FS/ARCH_SET_FS). No threads. */
#define _GNU_SOURCE
#include "common.h"

#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread int counter = 42;
__thread char text[32] = "initial tls text";
__thread long zeroed[1000];
static __thread double ratio = 1.5;
__thread struct {
    short a;
    long long b;
    char c[3];
} mixed = {-7, 1234567890123LL, {'x', 'y', 'z'}};

static unsigned long read_fs0(void) {
    unsigned long v;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
    return v;
}

/* arch_prctl without libc's wrapper or errno (errno itself lives in TLS). */
static long raw_arch_prctl(long code, unsigned long addr) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"((long)SYS_arch_prctl), "D"(code), "S"(addr)
                     : "rcx", "r11", "memory");
    return ret;
}

static int bump(void) { return ++counter; }

int main(void) {
    printf("counter %d, text \"%s\", ratio %.2f\n", counter, text, ratio);
    printf("mixed %d %lld %.3s\n", mixed.a, mixed.b, mixed.c);
    int z = 1;
    for (int i = 0; i < 1000; i++) z &= zeroed[i] == 0;
    printf("tbss zero: %d\n", z);

    for (int i = 0; i < 10; i++) bump();
    strcpy(text, "changed");
    ratio *= 4;
    for (int i = 0; i < 1000; i++) zeroed[i] = i * i;
    long s = 0;
    for (int i = 0; i < 1000; i++) s += zeroed[i];
    printf("after update: counter %d, text \"%s\", ratio %.2f, sum %ld\n", counter, text, ratio, s);

    /* The TCB's first word points at itself; ARCH_GET_FS returns the same pointer, and the
     * TLS variables sit just below it (variant II). */
    unsigned long fs0 = read_fs0();
    unsigned long fs = 0;
    long r = raw_arch_prctl(ARCH_GET_FS, (unsigned long)&fs);
    printf("ARCH_GET_FS: %ld, matches %%fs:0: %d\n", r, fs == fs0 && fs != 0);
    unsigned long addr = (unsigned long)&counter;
    printf("tls below thread pointer: %d\n", addr < fs && fs - addr < (1UL << 20));
    printf("errno is thread-local: %d\n", (unsigned long)&errno < fs && fs - (unsigned long)&errno < (1UL << 20));

    /* Point %fs at a block of our own, read through it, then restore. */
    static unsigned long block[8];
    block[0] = (unsigned long)block;
    block[1] = 0x1122334455667788UL;
    long set = raw_arch_prctl(ARCH_SET_FS, (unsigned long)block);
    unsigned long via_fs;
    __asm__ volatile("mov %%fs:8, %0" : "=r"(via_fs));
    unsigned long self = read_fs0();
    long back = raw_arch_prctl(ARCH_SET_FS, fs);
    printf("ARCH_SET_FS: %ld, read through new fs: %d, self %d, restored: %ld\n", set,
           via_fs == 0x1122334455667788UL, self == (unsigned long)block, back);
    printf("counter after restore: %d\n", counter);
    long bad = raw_arch_prctl(0x9999, 0);
    printf("bad arch_prctl code: %ld\n", bad);
    printf("done\n");
    return 0;
}

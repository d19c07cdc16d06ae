/* escape_nosys: system-call numbers that do not exist on x86-64, through the raw `syscall`
 * instruction: -1, 335 (a hole in the table), 1000, and x32 numbers (__X32_SYSCALL_BIT
 * 0x40000000 | 0 read, | 39 getpid, | 512 x32 rt_sigaction). Each must return -ENOSYS (-38).
 * One line each: "nr <hex>: <raw return value> <errno name if negative>". Natively the x32
 * numbers return -ENOSYS unless the kernel runs x32 binaries (CONFIG_X86_X32_ABI and not
 * disabled); the sandbox supports no x32. */
#define _GNU_SOURCE
#include "common.h"

static long raw_syscall(long nr, long a0, long a1, long a2) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2)
                     : "rcx", "r11", "memory");
    return ret;
}

int main(void) {
    static const long nrs[] = {-1L, 335, 1000, 0x40000000L, 0x40000000L | 39, 0x40000000L | 512};
    char buf[16];
    for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
        /* Harmless arguments in case a number is (wrongly) taken as read: fd 0 (/dev/null or
         * a pipe), a valid buffer, length 0. */
        long r = raw_syscall(nrs[i], 0, (long)buf, 0);
        printf("nr 0x%lx: %ld %s\n", (unsigned long)nrs[i], r, r < 0 && r > -4096 ? errname((int)-r) : "");
        fflush(stdout);
    }
    printf("alive\n");
    return 0;
}

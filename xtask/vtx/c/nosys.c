/* nosys: system-call numbers that do not exist (1000, 4095, -1) through the raw `syscall`
 * instruction; each must return -ENOSYS (-38). Escape attempts of the VT-x rig. (Not 335: since
 * Linux 6.11 that is uretprobe, which kills a caller outside the uretprobe trampoline.) */
#include <stdio.h>

static long raw(long nr) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(0), "S"(0), "d"(0) : "rcx", "r11", "memory");
    return ret;
}

int main(void) {
    static const long nrs[] = {1000, 4095, -1};
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        long r = raw(nrs[k]);
        printf("nr %ld: %ld\n", nrs[k], r);
        bad |= r != -38;
    }
    return bad;
}

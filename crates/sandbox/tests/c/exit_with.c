/* exit_with N [MODE]: ends with status N (0..255) through exit(), _exit(), a return from main
 * or the raw exit system call (60, not exit_group), chosen by MODE (default exit). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: exit_with N [exit|_exit|return|raw]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    const char *mode = argc > 2 ? argv[2] : "exit";
    /* Buffered output that exit() and return must flush, and _exit/raw must not. */
    printf("exiting with %d via %s\n", n, mode);
    if (strcmp(mode, "_exit") == 0 || strcmp(mode, "raw") == 0) fflush(stdout);
    if (strcmp(mode, "return") == 0) return n;
    if (strcmp(mode, "_exit") == 0) _exit(n);
    if (strcmp(mode, "raw") == 0) {
        long nr = SYS_exit;
        __asm__ volatile("syscall" ::"a"(nr), "D"((long)n) : "rcx", "r11", "memory");
        __builtin_unreachable();
    }
    exit(n);
}

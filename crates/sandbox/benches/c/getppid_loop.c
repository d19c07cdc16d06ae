/* N raw getppid system calls (no libc caching): the per-call cost of a forwarded call. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    return 0;
}

/* capget of this process and of process PID (argv[1]): prints "capget-self R" and
 * "capget-other R", R "ok" or the errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *res(long r) {
    return r == 0 ? "ok" : errno == ESRCH ? "ESRCH" : strerror(errno);
}

int main(int argc, char **argv) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    printf("capget-self %s\n", res(syscall(SYS_capget, &h, d)));
    h.pid = argc > 1 ? atoi(argv[1]) : 1;
    printf("capget-other %s\n", res(syscall(SYS_capget, &h, d)));
    return 0;
}

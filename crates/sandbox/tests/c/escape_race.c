/* escape_race
 *
 * Time-of-check to time-of-use attack on nested pointers: a second thread keeps flipping an
 * iovec's base between the program's own buffer and an address in the runtime's memory while
 * the main thread calls writev() into a pipe with that iovec, 20,000 times. A supervisor that
 * checked the iovec in program memory and then let the kernel read it again would sometimes
 * copy runtime memory into the pipe. Every writev must either write the own buffer's bytes or
 * fail with EFAULT; anything else is a leak. Natively there is no runtime (exit 2). */
#define _GNU_SOURCE
#include "escape.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

static struct iovec iov[1];
static char own[64];
static uintptr_t foreign;
static atomic_int stop;

static void *flipper(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        iov[0].iov_base = (void *)foreign;
        __asm__ volatile("" ::: "memory");
        iov[0].iov_base = own;
        __asm__ volatile("" ::: "memory");
    }
    return 0;
}

int main(void) {
    static struct ctx c;
    int local = 0;
    CHECK(escape_init(&c, &local) > 0);
    int i = pick_or_exit(&c, "any", 0);
    foreign = inside(&c, i);
    memset(own, 'A', sizeof own);
    iov[0].iov_base = own;
    iov[0].iov_len = sizeof own;
    int p[2];
    CHECK(pipe(p) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, 0, flipper, 0) == 0);
    long ok = 0, faults = 0;
    char buf[64];
    for (int n = 0; n < 20000; n++) {
        ssize_t w = writev(p[1], iov, 1);
        if (w < 0) {
            if (errno != EFAULT) {
                printf("unexpected error %s\n", errname(errno));
                return 1;
            }
            faults++;
            continue;
        }
        CHECK(read(p[0], buf, (size_t)w) == w);
        for (ssize_t k = 0; k < w; k++) {
            if (buf[k] != 'A') {
                printf("LEAK: byte %zd of write %d is 0x%02x\n", k, n, (unsigned char)buf[k]);
                return 1;
            }
        }
        ok++;
    }
    atomic_store(&stop, 1);
    pthread_join(t, 0);
    printf("no leak (%s writes, %s faults)\n", ok > 0 ? "some" : "no", faults > 0 ? "some" : "no");
    return 0;
}

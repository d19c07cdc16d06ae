/* tls: thread-local storage through FS (arch_prctl(ARCH_SET_FS) at start-up) and errno.
 * Part of the VT-x rig's differential suite (cargo xtask vtx). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static __thread int counter = 40;
static __thread char name[16] = "tls-initial";

int main(void) {
    counter += 2;
    errno = 0;
    if (close(12345) == 0 || errno != EBADF) {
        printf("FAIL: close(12345) errno %d\n", errno);
        return 1;
    }
    printf("counter=%d name=%s errno=EBADF\n", counter, name);
    return 0;
}

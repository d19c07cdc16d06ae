/* fork with a full descriptor table: Linux's fork needs no descriptor, so it works, and so does
 * the child (the sandbox's child used to fail to open /dev/kvm for its own VM: EMFILE). */
#include "common.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int n = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            printf("table full: %s\n", errname(errno));
            break;
        }
        n++;
    }
    CHECK(n > 0);
    pid_t p = fork();
    if (p < 0) {
        printf("fork: %s\n", errname(errno));
        return 1;
    }
    if (p == 0) {
        /* The child's table is as full as the parent's. */
        int fd = open("/dev/null", O_RDONLY);
        _exit(fd < 0 && errno == EMFILE ? 7 : 8);
    }
    int st;
    CHECK(waitpid(p, &st, 0) == p);
    printf("child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    puts("done");
    return 0;
}

/* A vfork parent waiting for its child dies of a fatal signal meanwhile, as on Linux, whose vfork
 * wait is killable (a signal that will kill the process is made SIGKILL): here SIGALRM at its
 * default action after 1 s while the child sleeps 3 s before it exits. Exit status 142. */
#define _GNU_SOURCE
#include "common.h"

#include <time.h>
#include <unistd.h>

int main(void) {
    alarm(1);
    pid_t p = vfork();
    if (p == 0) {
        struct timespec ts = {3, 0};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    puts("the parent went on: not killed");
    return 0;
}

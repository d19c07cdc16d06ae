/* ioctls that reach past the sandbox (issue 14's process confinement, found by an attack
 * run): changing the host's network configuration and hanging up a terminal. Each is made
 * so that, were it allowed, it would change nothing: the loopback interface's queue length
 * set to its own value, and a hang-up of a pseudo-terminal this program opened itself.
 * Prints "name result" lines: "ok" or the errno's name. Run sandboxed only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *what, int r) {
    printf("%s %s\n", what, r == 0 ? "ok" : errno == EPERM ? "EPERM" : strerror(errno));
}

int main(void) {
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFTXQLEN, &ifr);
    report("get-txqlen", r);
    if (r == 0) report("set-txqlen", ioctl(s, SIOCSIFTXQLEN, &ifr));
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) {
        perror("pty");
        return 1;
    }
    int t = open(ptsname(m), O_RDWR | O_NOCTTY);
    report("vhangup-own-pty", ioctl(t, TIOCVHANGUP, 0));
    report("console-to-own-pty", ioctl(t, TIOCCONS, 0));
    report("steal-terminal", ioctl(t, TIOCSCTTY, 1));
    return 0;
}

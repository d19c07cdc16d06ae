/* Terminal ioctls on a pseudo-terminal: the pty set (TIOCGPTN, TIOCSPTLCK/TIOCGPTLCK,
 * TIOCGPTPEER), termios through TCGETS/TCSETS, TCGETA/TCSETA and TCGETS2, window size, queue
 * counts, exclusive mode, flush/flow/drain, and forkpty: the child is a session leader whose
 * controlling terminal is the pty (TIOCSCTTY), in the foreground (TIOCGPGRP, TIOCGSID), and
 * its output reaches the parent through the master. Errors: TIOCSCTTY by a process that is not
 * a session leader (EPERM), TIOCNOTTY on a terminal that is not the caller's (ENOTTY), and
 * terminal requests on a regular file (ENOTTY). */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termio.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif
#define TCGETS2_NR 0x802c542aUL

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* Reads what the child wrote through the pty until EIO (the slave side closed everywhere),
 * dropping the CRs that ONLCR added. */
static void drain(int master) {
    char buf[512];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(master, buf + used, sizeof buf - 1 - used);
        if (n <= 0) break;
        used += (size_t)n;
        if (used == sizeof buf - 1) break;
    }
    buf[used] = 0;
    for (char *line = strtok(buf, "\r\n"); line; line = strtok(NULL, "\r\n"))
        printf("from pty: %s\n", line);
}

static void pty_set(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0);
    int lock = -1;
    res("TIOCGPTLCK before unlock", ioctl(m, TIOCGPTLCK, &lock));
    printf("locked: %d\n", lock);
    CHECK(grantpt(m) == 0);
    CHECK(unlockpt(m) == 0);
    res("TIOCGPTLCK after unlock", ioctl(m, TIOCGPTLCK, &lock));
    printf("locked: %d\n", lock);
    unsigned ptn = 12345;
    res("TIOCGPTN", ioctl(m, TIOCGPTN, &ptn));
    char *name = ptsname(m);
    char expect[32];
    snprintf(expect, sizeof expect, "/dev/pts/%u", ptn);
    printf("ptsname matches TIOCGPTN: %d\n", name && strcmp(name, expect) == 0);
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    printf("TIOCGPTPEER: %s isatty %d\n", s >= 0 ? "ok" : errname(errno), s >= 0 && isatty(s));
    CHECK(s >= 0);

    struct termios t;
    res("TCGETS", ioctl(s, TCGETS, &t));
    printf("echo %d icanon %d\n", !!(t.c_lflag & ECHO), !!(t.c_lflag & ICANON));
    cfmakeraw(&t);
    res("TCSETS raw", ioctl(s, TCSETS, &t));
    struct termios back;
    CHECK(tcgetattr(s, &back) == 0);
    printf("after raw: echo %d icanon %d\n", !!(back.c_lflag & ECHO), !!(back.c_lflag & ICANON));
    struct termio old;
    res("TCGETA", ioctl(s, TCGETA, &old));
    printf("TCGETA echo %d\n", !!(old.c_lflag & ECHO));
    old.c_lflag |= ECHO | ICANON;
    res("TCSETA", ioctl(s, TCSETA, &old));
    res("TCSETAW", ioctl(s, TCSETAW, &old));
    CHECK(tcgetattr(s, &back) == 0);
    printf("after TCSETA: echo %d icanon %d\n", !!(back.c_lflag & ECHO), !!(back.c_lflag & ICANON));
    unsigned char t2[44];
    memset(t2, 0xee, sizeof t2);
    res("TCGETS2", ioctl(s, TCGETS2_NR, t2));
    unsigned ospeed;
    memcpy(&ospeed, t2 + 40, sizeof ospeed);
    printf("TCGETS2 output speed %u\n", ospeed);
    struct termios lck;
    res("TIOCGLCKTRMIOS", ioctl(s, TIOCGLCKTRMIOS, &lck));

    struct winsize ws = {24, 80, 0, 0}, got = {0, 0, 0, 0};
    res("TIOCSWINSZ", ioctl(m, TIOCSWINSZ, &ws));
    res("TIOCGWINSZ", ioctl(s, TIOCGWINSZ, &got));
    printf("window %ux%u\n", got.ws_row, got.ws_col);

    CHECK(write(s, "abc\n", 4) == 4);
    struct pollfd pfd = {m, POLLIN, 0};
    CHECK(poll(&pfd, 1, 5000) == 1);
    int q = -1;
    res("FIONREAD master", ioctl(m, FIONREAD, &q));
    printf("queued some %d\n", q > 0);
    res("TIOCOUTQ slave", ioctl(s, TIOCOUTQ, &q));
    res("TCFLSH", ioctl(m, TCFLSH, TCIOFLUSH));
    res("FIONREAD after flush", ioctl(m, FIONREAD, &q));
    printf("queued %d\n", q);
    res("TCXONC", ioctl(s, TCXONC, TCOON));
    res("TCSBRK drain", ioctl(s, TCSBRK, 1));
    int ex = -1;
    res("TIOCEXCL", ioctl(s, TIOCEXCL));
    res("TIOCGEXCL", ioctl(s, TIOCGEXCL, &ex));
    printf("exclusive %d\n", ex);
    res("TIOCNXCL", ioctl(s, TIOCNXCL));
    int disc = -1;
    res("TIOCGETD", ioctl(s, TIOCGETD, &disc));
    printf("line discipline %d\n", disc);
    int pkt = 1;
    res("TIOCPKT", ioctl(m, TIOCPKT, &pkt));
    res("TIOCGPKT", ioctl(m, TIOCGPKT, &pkt));
    printf("packet mode %d\n", pkt);

    /* Not a session leader (the test runs every program in a process group of its own). */
    res("TIOCSCTTY not session leader", ioctl(s, TIOCSCTTY, 0));
    res("TIOCNOTTY not our terminal", ioctl(s, TIOCNOTTY));
    pid_t sid = -1;
    res("TIOCGSID not a controlling terminal", ioctl(s, TIOCGSID, &sid));
    close(s);
    close(m);
}

static void fork_pty(void) {
    int master;
    struct winsize ws = {30, 100, 0, 0};
    fflush(stdout);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    CHECK(pid >= 0);
    if (pid == 0) {
        pid_t me = getpid(), sid = -1, pgrp = -1;
        int have_sid = ioctl(0, TIOCGSID, &sid) == 0;
        int have_pgrp = ioctl(0, TIOCGPGRP, &pgrp) == 0;
        struct winsize got;
        int have_ws = ioctl(1, TIOCGWINSZ, &got) == 0;
        int ctty = open("/dev/tty", O_RDWR);
        printf("child isatty %d%d%d\n", isatty(0), isatty(1), isatty(2));
        printf("child session leader %d, TIOCGSID %d, foreground TIOCGPGRP %d\n", getsid(0) == me,
               have_sid && sid == me, have_pgrp && pgrp == me);
        printf("child window %d %ux%u, /dev/tty opens %d\n", have_ws, got.ws_row, got.ws_col,
               ctty >= 0);
        fflush(stdout);
        _exit(3);
    }
    drain(master);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(master);
}

int main(void) {
    pty_set();
    fork_pty();
    int fd = open("file", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0);
    struct termios t;
    res("TCGETS on a file", ioctl(fd, TCGETS, &t));
    res("TIOCSCTTY on a file", ioctl(fd, TIOCSCTTY, 0));
    res("unknown request", ioctl(fd, 0x54ff, 0));
    close(fd);
    printf("done\n");
    return 0;
}

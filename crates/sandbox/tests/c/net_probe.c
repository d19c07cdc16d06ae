/* A network client and server for the firewall tests (tests/policy.rs): each command does one
 * kind of thing to peers the test started on loopback, and prints one line per step,
 * "<step>: ok" or "<step>: <ERRNO>", plus what it received. The test decides what is right
 * for the policy it runs under (and natively, where every step reaches its peer).
 *
 *   connect ADDR PORT               TCP: connect, send "ping\n", print the reply line
 *   udp ADDR PORT MODE              UDP: send "udp-MODE" (MODE: sendto, sendmsg, sendmmsg,
 *                                   connected, unspec), print the answer (or "timeout")
 *   udp-listen ADDR PORT MS MODE    bind, print "ready", print every datagram that arrives
 *                                   within MS ms (MODE: recvfrom, read, recvmmsg)
 *   unix PATH|@NAME                 unix stream: connect, send "ping\n", print the reply
 *   unix-dgram PATH|@NAME           unix datagram: sendto "ping"
 *   bind ADDR PORT                  TCP bind then listen
 *   listen                          TCP listen without bind (an implicit bind)
 *   bypass PORT UPORT APORT         every route around the firewall to the denied TCP port
 *                                   PORT and UDP port UPORT on loopback; APORT is an allowed
 *                                   UDP port (sendmmsg's first message)
 *   sockets                         socket kinds beyond TCP, UDP and unix
 *   scm PATH                        receive descriptors over the unix socket PATH and say
 *                                   what arrived (fstat type, peer)
 *   scm-mmsg PATH                   recvmmsg of two messages over the unix socket PATH, only
 *                                   the second with a control buffer ("mmsg: N", what the
 *                                   second's descriptors are), then recvmsg with one ("fd: ...")
 *   race ADDR PORT DPORT N          N connects to PORT while another thread flips the port
 *                                   in the address to DPORT and back: print how many
 *                                   connected
 *   inherited UFD TFD MS            descriptors from whoever started us: print "ready", every
 *                                   datagram on the bound UDP socket UFD (until "quit" or MS
 *                                   ms), then accept one connection on the TCP listener TFD
 *                                   and print its peer ("accepted: ADDR")
 *   connect-loop ADDR PORT N        N TCP connects (each a fresh socket, closed at once):
 *                                   print "ns-per-connect: T" (cargo xtask bench)
 *   send-loop ADDR PORT N           N 16-byte sends on one connected UDP socket: print
 *                                   "ns-per-send: T" (cargo xtask bench)
 *   accept-alarm                    accept on a TCP listener nobody connects to, interrupted
 *                                   by SIGALRM (a handler without SA_RESTART) after 300 ms:
 *                                   print accept's result and whether the handler ran */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static void result(const char *step, int r) {
    if (r < 0 && errno == ENETUNREACH)
        printf("%s: ENETUNREACH\n", step);
    else if (r < 0)
        printf("%s: %s\n", step, errname(errno));
    else
        printf("%s: ok\n", step);
    fflush(stdout);
}

/* A sockaddr for a numeric address: IPv4 or IPv6 (by the presence of ':'). */
static socklen_t make_addr(const char *addr, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        CHECK(inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    CHECK(inet_pton(AF_INET, addr, &s4->sin_addr) == 1);
    return sizeof *s4;
}

/* Reads a line (up to 200 bytes) from fd within 3 s and prints it as "reply: ...". */
static void print_reply(int fd) {
    char buf[256];
    size_t n = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (n < 200 && poll(&p, 1, 3000) > 0) {
        ssize_t r = read(fd, buf + n, 200 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(buf, '\n', n))
            break;
    }
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    printf("reply: %s\n", n ? buf : "none");
    fflush(stdout);
}

static int cmd_connect(const char *addr, int port) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int r = connect(fd, (struct sockaddr *)&ss, len);
    result("connect", r);
    if (r == 0) {
        CHECK(write(fd, "ping\n", 5) == 5);
        print_reply(fd);
    }
    close(fd);
    return 0;
}

static void udp_answer(int fd) {
    char buf[256];
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) {
        printf("answer: timeout\n");
        return;
    }
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) {
        printf("answer: %s\n", errname(errno));
        return;
    }
    buf[n] = 0;
    printf("answer: %s\n", buf);
}

static int cmd_udp(const char *addr, int port, const char *mode) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    char msg[64];
    snprintf(msg, sizeof msg, "udp-%s", mode);
    int r;
    if (!strcmp(mode, "sendto")) {
        r = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len);
    } else if (!strcmp(mode, "unspec")) {
        /* AF_UNSPEC: Linux's IPv4 UDP takes the address as AF_INET. */
        ss.ss_family = AF_UNSPEC;
        r = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len);
    } else if (!strcmp(mode, "sendmsg") || !strcmp(mode, "sendmmsg")) {
        struct iovec iov = {msg, strlen(msg)};
        struct mmsghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_hdr.msg_name = &ss;
        mh.msg_hdr.msg_namelen = len;
        mh.msg_hdr.msg_iov = &iov;
        mh.msg_hdr.msg_iovlen = 1;
        if (mode[7] == 0)
            r = (int)sendmsg(fd, &mh.msg_hdr, 0);
        else
            r = sendmmsg(fd, &mh, 1, 0) == 1 ? 0 : -1;
    } else if (!strcmp(mode, "connected")) {
        r = connect(fd, (struct sockaddr *)&ss, len);
        result("udp-connect", r);
        if (r == 0)
            r = (int)send(fd, msg, strlen(msg), 0);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    result("send", r);
    if (r >= 0)
        udp_answer(fd);
    fflush(stdout);
    close(fd);
    return 0;
}

static void recv_loop(int fd, int ms, const char *mode);

static int cmd_udp_listen(const char *addr, int port, int ms, const char *mode) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    int r = bind(fd, (struct sockaddr *)&ss, len);
    result("bind", r);
    if (r < 0)
        return 0;
    printf("ready\n");
    fflush(stdout);
    recv_loop(fd, ms, mode);
    printf("done\n");
    return 0;
}

static int cmd_inherited(int ufd, int tfd, int ms) {
    printf("ready\n");
    fflush(stdout);
    recv_loop(ufd, ms, "recvfrom");
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int c = accept(tfd, (struct sockaddr *)&peer, &len);
    if (c < 0) {
        printf("accept: %s\n", errname(errno));
        return 0;
    }
    char text[INET_ADDRSTRLEN];
    CHECK(inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text) != NULL);
    printf("accepted: %s\n", text);
    close(c);
    return 0;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmd_connect_loop(const char *addr, int port, int n) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        CHECK(fd >= 0);
        long long t0 = now_ns();
        int r = connect(fd, (struct sockaddr *)&ss, len);
        total += now_ns() - t0;
        if (r < 0) {
            result("connect", r);
            return 1;
        }
        close(fd);
    }
    printf("ns-per-connect: %lld\n", total / (n > 0 ? n : 1));
    return 0;
}

static int cmd_send_loop(const char *addr, int port, int n) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&ss, len) == 0);
    long long t0 = now_ns();
    for (int i = 0; i < n; i++)
        CHECK(send(fd, "0123456789abcdef", 16, 0) == 16);
    printf("ns-per-send: %lld\n", (now_ns() - t0) / (n > 0 ? n : 1));
    return 0;
}

static volatile sig_atomic_t alarmed;

static void on_alarm(int sig) {
    (void)sig;
    alarmed = 1;
}

static int cmd_accept_alarm(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(fd, 1) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 0}, {0, 300000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    result("accept", accept(fd, NULL, NULL));
    printf("handler: %d\n", (int)alarmed);
    return 0;
}

/* Prints every datagram that arrives on fd within ms ms ("got: TEXT"), until "quit". */
static void recv_loop(int fd, int ms, const char *mode) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        char buf[256];
        ssize_t n;
        if (!strcmp(mode, "read")) {
            n = read(fd, buf, sizeof buf - 1);
        } else if (!strcmp(mode, "recvmmsg")) {
            struct iovec iov = {buf, sizeof buf - 1};
            struct mmsghdr mh;
            memset(&mh, 0, sizeof mh);
            mh.msg_hdr.msg_iov = &iov;
            mh.msg_hdr.msg_iovlen = 1;
            int k = recvmmsg(fd, &mh, 1, MSG_DONTWAIT, NULL);
            n = k == 1 ? (ssize_t)mh.msg_len : -1;
        } else {
            n = recvfrom(fd, buf, sizeof buf - 1, 0, NULL, NULL);
        }
        if (n < 0) {
            printf("recv: %s\n", errname(errno));
            break;
        }
        buf[n] = 0;
        printf("got: %s\n", buf);
        fflush(stdout);
        if (!strcmp(buf, "quit"))
            break;
    }
}

static socklen_t make_unix(const char *name, struct sockaddr_un *su) {
    memset(su, 0, sizeof *su);
    su->sun_family = AF_UNIX;
    if (name[0] == '@') {
        size_t n = strlen(name + 1);
        memcpy(su->sun_path + 1, name + 1, n);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    }
    strncpy(su->sun_path, name, sizeof su->sun_path - 1);
    return sizeof *su;
}

static int cmd_unix(const char *name, int type) {
    struct sockaddr_un su;
    socklen_t len = make_unix(name, &su);
    int fd = socket(AF_UNIX, type, 0);
    CHECK(fd >= 0);
    if (type == SOCK_DGRAM) {
        result("sendto", (int)sendto(fd, "ping", 4, 0, (struct sockaddr *)&su, len));
        return 0;
    }
    int r = connect(fd, (struct sockaddr *)&su, len);
    result("connect", r);
    if (r == 0) {
        CHECK(write(fd, "ping\n", 5) == 5);
        print_reply(fd);
    }
    return 0;
}

static int cmd_bind(const char *addr, int port) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = bind(fd, (struct sockaddr *)&ss, len);
    result("bind", r);
    if (r == 0)
        result("listen", listen(fd, 1));
    return 0;
}

static void bypass_tcp(const char *step, int family, const void *addr, socklen_t len, int flags) {
    int fd = socket(family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int r;
    if (flags)
        r = (int)sendto(fd, "x", 1, flags, addr, len);
    else
        r = connect(fd, addr, len);
    result(step, r);
    close(fd);
}

static void bypass_udp(const char *step, int family, const void *addr, socklen_t len) {
    int fd = socket(family, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    result(step, (int)sendto(fd, "bypass", 6, 0, addr, len));
    close(fd);
}

static int cmd_bypass(int port, int uport, int aport) {
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    unsigned char big[128];
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(port);
    s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bypass_tcp("ipv4", AF_INET, &s4, sizeof s4, 0);
    /* The unspecified address: Linux connects to the loopback address. */
    struct sockaddr_in any = s4;
    any.sin_addr.s_addr = 0;
    bypass_tcp("unspecified", AF_INET, &any, sizeof any, 0);
    /* IPv4-mapped IPv6: an IPv6 socket's IPv4 connect. */
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(port);
    CHECK(inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr) == 1);
    bypass_tcp("mapped", AF_INET6, &s6, sizeof s6, 0);
    /* A mapped address with flow label and scope id set, and trailing bytes. */
    struct sockaddr_in6 odd = s6;
    odd.sin6_flowinfo = htonl(0x12345);
    odd.sin6_scope_id = 7;
    memset(big, 0xab, sizeof big);
    memcpy(big, &odd, sizeof odd);
    bypass_tcp("mapped-scope-trailing", AF_INET6, big, sizeof big, 0);
    /* A v4 address with garbage in sin_zero and trailing bytes. */
    memset(big, 0xcd, sizeof big);
    memcpy(big, &s4, 8);
    bypass_tcp("ipv4-trailing", AF_INET, big, sizeof big, 0);
    /* IPv4-compatible (deprecated) form. */
    struct sockaddr_in6 compat = s6;
    CHECK(inet_pton(AF_INET6, "::127.0.0.1", &compat.sin6_addr) == 1);
    bypass_tcp("compatible", AF_INET6, &compat, sizeof compat, 0);
    /* TCP Fast Open: sendto with an address is a connect. */
    bypass_tcp("fastopen", AF_INET, &s4, sizeof s4, MSG_FASTOPEN);
    /* UDP: sendto, AF_UNSPEC (read as AF_INET by IPv4 UDP), AF_INET on an IPv6 socket, a
     * mapped address, the unspecified address. */
    struct sockaddr_in u4 = s4;
    u4.sin_port = htons(uport);
    bypass_udp("udp", AF_INET, &u4, sizeof u4);
    struct sockaddr_in un = u4;
    un.sin_family = AF_UNSPEC;
    bypass_udp("udp-unspec", AF_INET, &un, sizeof un);
    bypass_udp("udp-inet-on-inet6", AF_INET6, &u4, sizeof u4);
    struct sockaddr_in6 u6 = s6;
    u6.sin6_port = htons(uport);
    bypass_udp("udp-mapped", AF_INET6, &u6, sizeof u6);
    struct sockaddr_in uz = u4;
    uz.sin_addr.s_addr = 0;
    bypass_udp("udp-unspecified", AF_INET, &uz, sizeof uz);
    /* sendmmsg: the first message to the allowed port, the second to the denied one. */
    {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(fd >= 0);
        struct sockaddr_in ok = u4;
        ok.sin_port = htons(aport);
        struct iovec iov = {"mmsg", 4};
        struct mmsghdr mh[2];
        memset(mh, 0, sizeof mh);
        mh[0].msg_hdr.msg_name = &ok;
        mh[0].msg_hdr.msg_namelen = sizeof ok;
        mh[1].msg_hdr.msg_name = &u4;
        mh[1].msg_hdr.msg_namelen = sizeof u4;
        for (int i = 0; i < 2; i++) {
            mh[i].msg_hdr.msg_iov = &iov;
            mh[i].msg_hdr.msg_iovlen = 1;
        }
        int n = sendmmsg(fd, mh, 2, 0);
        printf("sendmmsg: %d\n", n < 0 ? -errno : n);
        if (n == 1)
            result("sendmmsg-rest", sendmmsg(fd, mh + 1, 1, 0));
        close(fd);
    }
    /* A connected UDP socket, disconnected with AF_UNSPEC, then sent to the denied port. */
    {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(fd >= 0);
        struct sockaddr_in ok = u4;
        ok.sin_port = htons(aport);
        result("udp-connect-allowed", connect(fd, (struct sockaddr *)&ok, sizeof ok));
        struct sockaddr unspec = {.sa_family = AF_UNSPEC};
        result("udp-disconnect", connect(fd, &unspec, sizeof unspec));
        result("udp-after-disconnect", (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&u4, sizeof u4));
        close(fd);
    }
    /* Source routing: an IPv4 loose source route through the denied peer. */
    {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(fd >= 0);
        unsigned char opt[8] = {IPOPT_NOP, IPOPT_LSRR, 7, 4, 127, 0, 0, 1};
        result("ip-options", setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt));
        close(fd);
    }
    /* io_uring, and the x32 system-call numbers. */
    result("io_uring_setup", (int)syscall(425, 1, NULL));
    result("x32-connect", (int)syscall(0x40000000 | 42, 0, NULL, 0));
    return 0;
}

static int cmd_listen(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    result("listen", listen(fd, 1));
    return 0;
}

static int cmd_sockets(void) {
    struct {
        const char *name;
        int domain, type, protocol;
    } kinds[] = {
        {"tcp", AF_INET, SOCK_STREAM, 0},
        {"udp6", AF_INET6, SOCK_DGRAM, 0},
        {"unix", AF_UNIX, SOCK_STREAM, 0},
        {"netlink-route", AF_NETLINK, SOCK_RAW, 0},
        {"netlink-generic", AF_NETLINK, SOCK_RAW, 16},
        {"packet", AF_PACKET, SOCK_RAW, 0},
        {"raw", AF_INET, SOCK_RAW, IPPROTO_UDP},
        {"icmp", AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
        {"sctp", AF_INET, SOCK_STREAM, 132},
        {"vsock", 40, SOCK_STREAM, 0},
        {"socketpair-unix", -1, SOCK_STREAM, 0},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int r;
        if (kinds[i].domain < 0) {
            int sv[2];
            r = socketpair(AF_UNIX, kinds[i].type, 0, sv);
        } else {
            r = socket(kinds[i].domain, kinds[i].type, kinds[i].protocol);
        }
        /* Kinds the host itself refuses (no permission, no module) print what it said. */
        result(kinds[i].name, r);
        if (r >= 0)
            close(r);
    }
    return 0;
}

static int cmd_scm(const char *path) {
    struct sockaddr_un su;
    socklen_t len = make_unix(path, &su);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&su, len) == 0);
    char data[16];
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {data, sizeof data};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    CHECK(n >= 0);
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *fds = (int *)CMSG_DATA(c);
        for (int i = 0; i < k; i++) {
            struct stat st;
            count++;
            if (fstat(fds[i], &st) < 0) {
                printf("fd: %s\n", errname(errno));
                continue;
            }
            int type = 0;
            socklen_t tl = sizeof type;
            if (S_ISSOCK(st.st_mode) && getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) == 0)
                printf("fd: socket type %d\n", type);
            else
                printf("fd: %s\n", S_ISFIFO(st.st_mode) ? "pipe" : "file");
        }
    }
    printf("received: %d\n", count);
    return 0;
}

static void print_fds(struct msghdr *mh) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *fds = (int *)CMSG_DATA(c);
        for (int i = 0; i < k; i++) {
            struct stat st;
            if (fstat(fds[i], &st) < 0)
                printf("fd: %s\n", errname(errno));
            else
                printf("fd: %s\n", S_ISSOCK(st.st_mode) ? "socket" : S_ISFIFO(st.st_mode) ? "pipe" : "file");
        }
    }
}

static int cmd_scm_mmsg(const char *path) {
    struct sockaddr_un su;
    socklen_t len = make_unix(path, &su);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&su, len) == 0);
    char d0[3], d1[3];
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u, u2;
    struct iovec iov[2] = {{d0, sizeof d0}, {d1, sizeof d1}};
    struct mmsghdr mh[2];
    memset(mh, 0, sizeof mh);
    mh[0].msg_hdr.msg_iov = &iov[0];
    mh[0].msg_hdr.msg_iovlen = 1;
    mh[1].msg_hdr.msg_iov = &iov[1];
    mh[1].msg_hdr.msg_iovlen = 1;
    mh[1].msg_hdr.msg_control = u.buf;
    mh[1].msg_hdr.msg_controllen = sizeof u.buf;
    int n = recvmmsg(fd, mh, 2, MSG_CMSG_CLOEXEC, NULL);
    printf("mmsg: %d\n", n < 0 ? -errno : n);
    if (n == 2)
        print_fds(&mh[1].msg_hdr);
    if (n != 1)
        return 0;
    /* The second message, now with a control buffer. */
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov[1];
    m.msg_iovlen = 1;
    m.msg_control = u2.buf;
    m.msg_controllen = sizeof u2.buf;
    CHECK(recvmsg(fd, &m, MSG_CMSG_CLOEXEC) >= 0);
    print_fds(&m);
    return 0;
}

struct race {
    struct sockaddr_in *addr;
    int port, dport;
    volatile int stop;
};

static void *flip(void *p) {
    struct race *r = p;
    while (!r->stop) {
        r->addr->sin_port = htons(r->dport);
        r->addr->sin_port = htons(r->port);
    }
    return NULL;
}

static int cmd_race(const char *addr, int port, int dport, int n) {
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(port);
    CHECK(inet_pton(AF_INET, addr, &s4.sin_addr) == 1);
    struct race r = {&s4, port, dport, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flip, &r) == 0);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&s4, sizeof s4) == 0)
            ok++;
        close(fd);
    }
    r.stop = 1;
    pthread_join(t, NULL);
    printf("connected: %d\n", ok);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "connect"))
        return cmd_connect(argv[2], atoi(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "udp"))
        return cmd_udp(argv[2], atoi(argv[3]), argv[4]);
    if (argc >= 6 && !strcmp(argv[1], "udp-listen"))
        return cmd_udp_listen(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc >= 3 && !strcmp(argv[1], "unix"))
        return cmd_unix(argv[2], SOCK_STREAM);
    if (argc >= 3 && !strcmp(argv[1], "unix-dgram"))
        return cmd_unix(argv[2], SOCK_DGRAM);
    if (argc >= 4 && !strcmp(argv[1], "bind"))
        return cmd_bind(argv[2], atoi(argv[3]));
    if (argc >= 2 && !strcmp(argv[1], "listen"))
        return cmd_listen();
    if (argc >= 5 && !strcmp(argv[1], "bypass"))
        return cmd_bypass(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc >= 2 && !strcmp(argv[1], "sockets"))
        return cmd_sockets();
    if (argc >= 3 && !strcmp(argv[1], "scm"))
        return cmd_scm(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "scm-mmsg"))
        return cmd_scm_mmsg(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "accept-alarm"))
        return cmd_accept_alarm();
    if (argc >= 5 && !strcmp(argv[1], "connect-loop"))
        return cmd_connect_loop(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "send-loop"))
        return cmd_send_loop(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "inherited"))
        return cmd_inherited(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc >= 6 && !strcmp(argv[1], "race"))
        return cmd_race(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: see the comment at the top of net_probe.c\n");
    return 2;
}

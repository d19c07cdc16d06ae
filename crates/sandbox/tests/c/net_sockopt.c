/* Socket options with plain values across the levels, and RFC 3542's ancillary data over
 * IPv6 loopback: IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS and IPV6_RECVPKTINFO deliver the hop
 * limit, traffic class and packet info the sender set (IPV6_UNICAST_HOPS, IPV6_TCLASS, and an
 * IPV6_HOPLIMIT control message). One line per option: "<level> <name>: <result> [value]".
 * Values printed are those the kernel defines or the program set, never varying ones. */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef TCP_INQ
#define TCP_INQ 36
#endif
#ifndef TCP_IS_MPTCP
#define TCP_IS_MPTCP 43
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IP_PROTOCOL
#define IP_PROTOCOL 52
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

static void set_int(int s, int level, int name, const char *what, int v) {
    int r = setsockopt(s, level, name, &v, sizeof v);
    printf("set %s=%d: %s\n", what, v, r == 0 ? "0" : errname(errno));
}

static void get_int(int s, int level, int name, const char *what) {
    int v = -7;
    socklen_t len = sizeof v;
    int r = getsockopt(s, level, name, &v, &len);
    if (r == 0)
        printf("get %s: 0 len %u value %d\n", what, (unsigned)len, v);
    else
        printf("get %s: %s\n", what, errname(errno));
}

static void set_get(int s, int level, int name, const char *what, int v) {
    set_int(s, level, name, what, v);
    get_int(s, level, name, what);
}

static void ipv6(void) {
    int rx = socket(AF_INET6, SOCK_DGRAM, 0);
    int tx = socket(AF_INET6, SOCK_DGRAM, 0);
    CHECK(rx >= 0 && tx >= 0);
    struct sockaddr_in6 a = {0};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    CHECK(bind(rx, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t alen = sizeof a;
    CHECK(getsockname(rx, (struct sockaddr *)&a, &alen) == 0);

    set_get(rx, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, "IPV6_RECVHOPLIMIT", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVTCLASS, "IPV6_RECVTCLASS", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVRTHDR, "IPV6_RECVRTHDR", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVHOPOPTS, "IPV6_RECVHOPOPTS", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVDSTOPTS, "IPV6_RECVDSTOPTS", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVPATHMTU, "IPV6_RECVPATHMTU", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_DONTFRAG, "IPV6_DONTFRAG", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_MULTICAST_ALL, "IPV6_MULTICAST_ALL", 0);
    set_get(rx, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, "IPV6_AUTOFLOWLABEL", 0);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR", 1);
    set_get(rx, IPPROTO_IPV6, IPV6_RECVFRAGSIZE, "IPV6_RECVFRAGSIZE", 1);
    get_int(rx, IPPROTO_IPV6, IPV6_PATHMTU, "IPV6_PATHMTU unconnected");
    set_get(tx, IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x28);
    set_get(tx, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", 17);
    set_get(tx, IPPROTO_UDP, UDP_NO_CHECK6_TX, "UDP_NO_CHECK6_TX", 0);

    /* One datagram with the sticky options, one with an IPV6_HOPLIMIT control message. */
    CHECK(sendto(tx, "one", 3, 0, (struct sockaddr *)&a, sizeof a) == 3);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {"two", 3};
    struct msghdr m = {0};
    m.msg_name = &a;
    m.msg_namelen = sizeof a;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_HOPLIMIT;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int hl = 5;
    memcpy(CMSG_DATA(c), &hl, sizeof hl);
    CHECK(sendmsg(tx, &m, 0) == 3);

    for (int i = 0; i < 2; i++) {
        char data[16], ctl[512];
        struct iovec riov = {data, sizeof data};
        struct msghdr r = {0};
        r.msg_iov = &riov;
        r.msg_iovlen = 1;
        r.msg_control = ctl;
        r.msg_controllen = sizeof ctl;
        ssize_t n = recvmsg(rx, &r, 0);
        CHECK(n >= 0);
        printf("datagram %.*s:", (int)n, data);
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&r); h; h = CMSG_NXTHDR(&r, h)) {
            if (h->cmsg_level != IPPROTO_IPV6) {
                printf(" level%d/%d", h->cmsg_level, h->cmsg_type);
            } else if (h->cmsg_type == IPV6_HOPLIMIT) {
                int v;
                memcpy(&v, CMSG_DATA(h), sizeof v);
                printf(" hoplimit=%d", v);
            } else if (h->cmsg_type == IPV6_TCLASS) {
                int v;
                memcpy(&v, CMSG_DATA(h), sizeof v);
                printf(" tclass=%#x", v);
            } else if (h->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo p;
                memcpy(&p, CMSG_DATA(h), sizeof p);
                char txt[64];
                inet_ntop(AF_INET6, &p.ipi6_addr, txt, sizeof txt);
                printf(" pktinfo=%s", txt);
            } else if (h->cmsg_type == IPV6_ORIGDSTADDR) {
                printf(" origdstaddr");
            } else {
                printf(" ipv6/%d", h->cmsg_type);
            }
        }
        printf("\n");
    }
    CHECK(connect(tx, (struct sockaddr *)&a, sizeof a) == 0);
    struct ip6_mtuinfo mi;
    memset(&mi, 0, sizeof mi);
    socklen_t mlen = sizeof mi;
    int r = getsockopt(tx, IPPROTO_IPV6, IPV6_PATHMTU, &mi, &mlen);
    printf("get IPV6_PATHMTU connected: %s len %u mtu %u\n", r == 0 ? "0" : errname(errno),
           (unsigned)mlen, (unsigned)mi.ip6m_mtu);
    close(rx);
    close(tx);
}

static void ipv4(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    set_get(s, IPPROTO_IP, IP_RECVORIGDSTADDR, "IP_RECVORIGDSTADDR", 1);
    set_get(s, IPPROTO_IP, IP_MULTICAST_ALL, "IP_MULTICAST_ALL", 0);
    set_get(s, IPPROTO_IP, IP_MINTTL, "IP_MINTTL", 3);
    set_get(s, IPPROTO_IP, IP_RECVFRAGSIZE, "IP_RECVFRAGSIZE", 1);
    set_get(s, IPPROTO_IP, IP_PASSSEC, "IP_PASSSEC", 1);
    set_get(s, IPPROTO_IP, IP_NODEFRAG, "IP_NODEFRAG", 1);
    get_int(s, IPPROTO_IP, IP_PROTOCOL, "IP_PROTOCOL");
    unsigned range = (40000u << 16) | 30000u; /* upper << 16 | lower */
    int r = setsockopt(s, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range);
    printf("set IP_LOCAL_PORT_RANGE: %s\n", r == 0 ? "0" : errname(errno));
    unsigned got = 0;
    socklen_t len = sizeof got;
    r = getsockopt(s, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &got, &len);
    printf("get IP_LOCAL_PORT_RANGE: %s %u-%u\n", r == 0 ? "0" : errname(errno), got & 0xffff,
           got >> 16);
    close(s);
}

static void sol_socket(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    set_get(sv[0], SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF", 0);
    set_get(sv[0], SOL_SOCKET, SO_PASSPIDFD, "SO_PASSPIDFD", 1);
    set_get(sv[0], SOL_SOCKET, SO_SELECT_ERR_QUEUE, "SO_SELECT_ERR_QUEUE", 1);
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    int r = getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len);
    printf("get SO_PEERPIDFD: %s descriptor %d\n", r == 0 ? "0" : errname(errno), pidfd >= 0);
    if (pidfd >= 0) close(pidfd);
    unsigned long long cookie = 0;
    len = sizeof cookie;
    r = getsockopt(sv[0], SOL_SOCKET, SO_COOKIE, &cookie, &len);
    printf("get SO_COOKIE: %s len %u nonzero %d\n", r == 0 ? "0" : errname(errno), (unsigned)len,
           cookie != 0);
    unsigned meminfo[9];
    len = sizeof meminfo;
    r = getsockopt(sv[0], SOL_SOCKET, SO_MEMINFO, meminfo, &len);
    printf("get SO_MEMINFO: %s len %u\n", r == 0 ? "0" : errname(errno), (unsigned)len);
    char filter[64];
    len = sizeof filter;
    r = getsockopt(sv[0], SOL_SOCKET, SO_GET_FILTER, filter, &len);
    printf("get SO_GET_FILTER: %s len %u\n", r == 0 ? "0" : errname(errno), (unsigned)len);
    close(sv[0]);
    close(sv[1]);

    int t = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(t >= 0);
    set_get(t, IPPROTO_TCP, TCP_INQ, "TCP_INQ", 1);
    set_get(t, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, "TCP_THIN_LINEAR_TIMEOUTS", 1);
    set_get(t, IPPROTO_TCP, TCP_SAVE_SYN, "TCP_SAVE_SYN", 1);
    set_get(t, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, "TCP_FASTOPEN_CONNECT", 1);
    get_int(t, IPPROTO_TCP, TCP_IS_MPTCP, "TCP_IS_MPTCP");
    close(t);

    int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    CHECK(nl >= 0);
    set_get(nl, SOL_NETLINK, NETLINK_EXT_ACK, "NETLINK_EXT_ACK", 1);
    set_get(nl, SOL_NETLINK, NETLINK_GET_STRICT_CHK, "NETLINK_GET_STRICT_CHK", 1);
    close(nl);
}

int main(void) {
    ipv6();
    ipv4();
    sol_socket();
    printf("done\n");
    return 0;
}

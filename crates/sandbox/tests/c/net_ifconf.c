/* Network-interface ioctls on the loopback interface: SIOCGIFCONF (its length query with a
 * NULL buffer, a full list, a one-entry buffer), SIOCGIFINDEX / SIOCGIFNAME /
 * if_nametoindex / if_indextoname / if_nameindex, SIOCGIFFLAGS, MTU, addresses, hardware
 * type, queue length, and socket queue queries; the errors for a missing interface (ENODEV)
 * and for a file that is not a socket (ENOTTY). Only properties of "lo" are printed, which
 * are the same natively and sandboxed on one machine. */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

static void ifr_call(int s, unsigned long req, const char *what, struct ifreq *ifr) {
    int r = ioctl(s, req, ifr);
    printf("%s: %s", what, r == 0 ? "0" : errname(errno));
}

static const char *addr(const struct sockaddr *sa) {
    static char txt[64];
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (sa->sa_family != AF_INET) return "(not inet)";
    return inet_ntop(AF_INET, &in->sin_addr, txt, sizeof txt);
}

int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);

    /* SIOCGIFCONF: how long, everything, then room for one entry. */
    struct ifconf ifc = {0};
    ifc.ifc_buf = NULL;
    int r = ioctl(s, SIOCGIFCONF, &ifc);
    int need = ifc.ifc_len;
    printf("SIOCGIFCONF NULL buffer: %s length multiple of ifreq %d, some %d\n",
           r == 0 ? "0" : errname(errno), need % (int)sizeof(struct ifreq) == 0, need > 0);
    struct ifreq reqs[64];
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_req = reqs;
    r = ioctl(s, SIOCGIFCONF, &ifc);
    int n = ifc.ifc_len / (int)sizeof(struct ifreq);
    printf("SIOCGIFCONF: %s length as queried %d\n", r == 0 ? "0" : errname(errno),
           ifc.ifc_len == need);
    int lo = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(reqs[i].ifr_name, "lo") == 0) lo = i;
    printf("SIOCGIFCONF lo: %s\n", lo >= 0 ? addr(&reqs[lo].ifr_addr) : "missing");
    ifc.ifc_len = sizeof(struct ifreq);
    r = ioctl(s, SIOCGIFCONF, &ifc);
    printf("SIOCGIFCONF one entry: %s length %d\n", r == 0 ? "0" : errname(errno), ifc.ifc_len);
    ifc.ifc_len = 0;
    r = ioctl(s, SIOCGIFCONF, &ifc);
    printf("SIOCGIFCONF zero length: %s length %d\n", r == 0 ? "0" : errname(errno), ifc.ifc_len);

    unsigned idx = if_nametoindex("lo");
    printf("if_nametoindex(lo) > 0: %d\n", idx > 0);
    char name[IF_NAMESIZE];
    printf("if_indextoname: %s\n", if_indextoname(idx, name) ? name : errname(errno));
    errno = 0;
    unsigned none = if_nametoindex("nosuch0");
    printf("if_nametoindex(nosuch0): %u %s\n", none, errname(errno));
    struct if_nameindex *all = if_nameindex();
    int found = 0;
    for (struct if_nameindex *p = all; p && p->if_index; p++)
        if (strcmp(p->if_name, "lo") == 0 && p->if_index == idx) found = 1;
    printf("if_nameindex has lo: %d\n", found);
    if (all) if_freenameindex(all);
    struct ifaddrs *ifa;
    found = 0;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *p = ifa; p; p = p->ifa_next)
            if (strcmp(p->ifa_name, "lo") == 0 && p->ifa_addr && p->ifa_addr->sa_family == AF_INET)
                found = 1;
        freeifaddrs(ifa);
    }
    printf("getifaddrs has lo inet: %d\n", found);

    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    ifr_call(s, SIOCGIFINDEX, "SIOCGIFINDEX", &ifr);
    printf(" same as if_nametoindex %d\n", ifr.ifr_ifindex == (int)idx);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = (int)idx;
    ifr_call(s, SIOCGIFNAME, "SIOCGIFNAME", &ifr);
    printf(" %s\n", ifr.ifr_name);
    strcpy(ifr.ifr_name, "lo");
    ifr_call(s, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr);
    printf(" up %d loopback %d\n", !!(ifr.ifr_flags & IFF_UP), !!(ifr.ifr_flags & IFF_LOOPBACK));
    ifr_call(s, SIOCGIFMTU, "SIOCGIFMTU", &ifr);
    printf(" %d\n", ifr.ifr_mtu);
    ifr_call(s, SIOCGIFADDR, "SIOCGIFADDR", &ifr);
    printf(" %s\n", addr(&ifr.ifr_addr));
    ifr_call(s, SIOCGIFNETMASK, "SIOCGIFNETMASK", &ifr);
    printf(" %s\n", addr(&ifr.ifr_netmask));
    ifr_call(s, SIOCGIFHWADDR, "SIOCGIFHWADDR", &ifr);
    printf(" family %d\n", ifr.ifr_hwaddr.sa_family);
    ifr_call(s, SIOCGIFTXQLEN, "SIOCGIFTXQLEN", &ifr);
    printf(" positive %d\n", ifr.ifr_qlen > 0);
    ifr_call(s, SIOCGIFMETRIC, "SIOCGIFMETRIC", &ifr);
    printf(" %d\n", ifr.ifr_metric);
    strcpy(ifr.ifr_name, "nosuch0");
    ifr_call(s, SIOCGIFINDEX, "SIOCGIFINDEX nosuch0", &ifr);
    printf("\n");
    ifr_call(s, SIOCGIFFLAGS, "SIOCGIFFLAGS nosuch0", &ifr);
    printf("\n");

    int v = -1;
    r = ioctl(s, SIOCOUTQ, &v);
    printf("SIOCOUTQ: %s %d\n", r == 0 ? "0" : errname(errno), v);
    v = -1;
    r = ioctl(s, SIOCINQ, &v);
    printf("SIOCINQ: %s %d\n", r == 0 ? "0" : errname(errno), v);
    struct timeval tv;
    r = ioctl(s, SIOCGSTAMP, &tv);
    printf("SIOCGSTAMP no packet: %s\n", r == 0 ? "0" : errname(errno));
    int t = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(t >= 0);
    v = -1;
    r = ioctl(t, SIOCATMARK, &v);
    printf("SIOCATMARK: %s %d\n", r == 0 ? "0" : errname(errno), v);
    r = ioctl(t, FIOGETOWN, &v);
    printf("FIOGETOWN: %s %d\n", r == 0 ? "0" : errname(errno), v);
    close(t);

    /* Network requests on files that are not sockets. */
    int fd = open("plain", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0);
    strcpy(ifr.ifr_name, "lo");
    ifr_call(fd, SIOCGIFFLAGS, "SIOCGIFFLAGS on a file", &ifr);
    printf("\n");
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_req = reqs;
    r = ioctl(fd, SIOCGIFCONF, &ifc);
    printf("SIOCGIFCONF on a file: %s\n", r == 0 ? "0" : errname(errno));
    int p[2];
    CHECK(pipe(p) == 0);
    ifr_call(p[0], SIOCGIFINDEX, "SIOCGIFINDEX on a pipe", &ifr);
    printf("\n");
    close(fd);
    close(p[0]);
    close(p[1]);
    close(s);
    printf("done\n");
    return 0;
}

/* escape_kernel CASE
 *
 * Attacks that go through the host kernel's view of the program's arguments rather than
 * through memory. Each case prints result lines; the test compares them with the expectation
 * for the sandbox (and, where the behaviour is Linux's own, with the native run).
 *
 *   memrace     thread B keeps pread()ing the descriptor number thread A's next open() will
 *               get, at an address in the runtime's memory, while A opens /proc/self/mem
 *               2,000 times. A sandbox that opens first and refuses afterwards leaves a window
 *               in which B reads the runtime. Lines: "opens refused N of N", "leaks N".
 *               Natively there is no runtime (exit 2).
 *   sockopt     getsockopt/setsockopt options that take pointers or kernel objects (TCP_ZEROCOPY_
 *               RECEIVE, SO_ATTACH_FILTER, SO_PEERCRED is plain) and plain ones (the control).
 *   scmrights   sendmsg(SCM_RIGHTS) of every number from RLIMIT_NOFILE up 64 (in the sandbox
 *               the runtime's window: open, but not the program's; natively nothing), one
 *               line for the first and "send foreign all: ..." for whether every one gave the
 *               same, then of its own pipe (the control, used through the received copy).
 *   closerange  close_range(CLOSE_RANGE_UNSHARE) and (CLOSE_RANGE_CLOEXEC), then the
 *               program's own pipe still works.
 *   rlimit      setrlimit(RLIMIT_AS, 256 MiB) through setrlimit(2), getrlimit(2) reads it back,
 *               then a 64 MiB mapping and a thread still work (the limit must not strangle the
 *               supervisor, whose reservation is far larger).
 *   sigroutes   the runtime's signal numbers (SIGRTMAX-1, SIGRTMAX-2) through routes that come
 *               back to this process (process group and timer: refused in the sandbox;
 *               F_SETSIG, PR_SET_PDEATHSIG), and
 *               a forged "fault" (rt_sigqueueinfo to oneself with si_code SEGV_MAPERR) followed
 *               by a plain kill(SIGSEGV): the handler must see both, as natively.
 *   addrlen     accept/getsockname/getpeername with too-small, exact and too-large address
 *               lengths: the kernel's truncation and reported lengths. */
#define _GNU_SOURCE
#include "escape.h"

#include <dirent.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#ifndef TCP_ZEROCOPY_RECEIVE
#define TCP_ZEROCOPY_RECEIVE 35
#endif

static const char *res(long r) {
    static char buf[64];
    if (r < 0) return errname(errno);
    snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

/* ---- memrace ---- */
static atomic_int stop;
static atomic_long leaks;
static uintptr_t target;
static int next_fd;

static void *reader(void *arg) {
    (void)arg;
    unsigned char buf[16];
    while (!atomic_load(&stop)) {
        if (pread(next_fd, buf, sizeof buf, (off_t)target) == (ssize_t)sizeof buf)
            atomic_fetch_add(&leaks, 1);
    }
    return 0;
}

static int memrace(void) {
    static struct ctx c;
    int local = 0;
    CHECK(escape_init(&c, &local) > 0);
    int i = pick_or_exit(&c, "any", 0);
    target = inside(&c, i);
    next_fd = dup(0);
    CHECK(next_fd >= 0);
    close(next_fd);
    pthread_t t;
    CHECK(pthread_create(&t, 0, reader, 0) == 0);
    int refused = 0, n = 2000;
    for (int k = 0; k < n; k++) {
        int fd = open("/proc/self/mem", O_RDONLY);
        if (fd < 0)
            refused++;
        else
            close(fd);
    }
    atomic_store(&stop, 1);
    pthread_join(t, 0);
    printf("opens refused %d of %d\n", refused, n);
    printf("leaks %ld\n", atomic_load(&leaks));
    return 0;
}

/* ---- sockopt ---- */
static int sockopt(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    char big[256] = {0};
    socklen_t len = sizeof big;
    long r = getsockopt(s, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, big, &len);
    printf("getsockopt TCP_ZEROCOPY_RECEIVE: %s\n", res(r));
    struct sock_filter insn[] = {BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    struct sock_fprog prog = {1, insn};
    r = setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
    printf("setsockopt SO_ATTACH_FILTER: %s\n", res(r));
    int v = 65536;
    r = setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    printf("setsockopt SO_RCVBUF: %s\n", res(r));
    v = 0;
    len = sizeof v;
    r = getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &len);
    printf("getsockopt SO_RCVBUF: %s len %u value>0 %d\n", res(r), len, v > 0);
    v = 1;
    r = setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
    printf("setsockopt TCP_NODELAY: %s\n", res(r));
    len = (socklen_t)-1;
    r = getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len);
    printf("getsockopt negative optlen: %s\n", res(r));
    close(s);
    return 0;
}

/* ---- scmrights ---- */
static int send_fd(int sock, int fd) {
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return (int)sendmsg(sock, &m, 0);
}

static int recv_fd(int sock) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    if (recvmsg(sock, &m, 0) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static int scmrights(void) {
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    /* The runtime's window starts at the program's RLIMIT_NOFILE. */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    int foreign = (int)rl.rlim_cur;
    long first = send_fd(sv[0], foreign);
    printf("send foreign: %s\n", res(first));
    if (first == 1) close(recv_fd(sv[1]));
    int same = 1;
    for (int fd = foreign + 1; fd < foreign + 64; fd++) {
        long r = send_fd(sv[0], fd);
        if (r == 1) close(recv_fd(sv[1]));
        if (r != -1 || errno != EBADF) same = 0;
    }
    printf("send foreign all EBADF: %d\n", same);
    long r = send_fd(sv[0], p[1]);
    printf("send own: %s\n", res(r));
    int got = recv_fd(sv[1]);
    printf("received own: %d\n", got >= 0);
    if (got >= 0) {
        CHECK(write(got, "hi", 2) == 2);
        char buf[2];
        CHECK(read(p[0], buf, 2) == 2);
        printf("through copy: %d\n", memcmp(buf, "hi", 2) == 0);
    }
    return 0;
}

/* ---- closerange ---- */
static int closerange(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    long r = syscall(SYS_close_range, 1000u, ~0u, CLOSE_RANGE_UNSHARE);
    printf("close_range UNSHARE: %s\n", res(r));
    r = syscall(SYS_close_range, 1000u, ~0u, 1u << 30);
    printf("close_range unknown flag: %s\n", res(r));
    r = syscall(SYS_close_range, p[0], p[0], CLOSE_RANGE_CLOEXEC);
    printf("close_range CLOEXEC: %s\n", res(r));
    printf("cloexec set: %d\n", (fcntl(p[0], F_GETFD) & FD_CLOEXEC) != 0);
    r = syscall(SYS_close_range, 5u, 4u, 0u);
    printf("close_range first>last: %s\n", res(r));
    CHECK(write(p[1], "ok", 2) == 2);
    char buf[2];
    CHECK(read(p[0], buf, 2) == 2);
    printf("pipe works: %d\n", memcmp(buf, "ok", 2) == 0);
    return 0;
}

/* ---- rlimit ---- */
static void *thread_fn(void *arg) { return arg; }

static int rlimit(void) {
    struct rlimit rl = {256UL << 20, 256UL << 20};
    long r = syscall(SYS_setrlimit, RLIMIT_AS, &rl);
    printf("setrlimit AS: %s\n", res(r));
    struct rlimit got = {0, 0};
    r = syscall(SYS_getrlimit, RLIMIT_AS, &got);
    printf("getrlimit AS: %s cur %lu MiB max %lu MiB\n", res(r), (unsigned long)got.rlim_cur >> 20,
           (unsigned long)got.rlim_max >> 20);
    struct rlimit bad = {2, 1};
    r = syscall(SYS_setrlimit, RLIMIT_AS, &bad);
    printf("setrlimit cur>max: %s\n", res(r));
    char *m = mmap(0, 64UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap 64 MiB: %s\n", m == MAP_FAILED ? errname(errno) : "ok");
    if (m != MAP_FAILED) {
        memset(m, 1, 64UL << 20);
        munmap(m, 64UL << 20);
    }
    pthread_t t;
    int tr = pthread_create(&t, 0, thread_fn, 0);
    printf("thread: %s\n", tr == 0 ? "ok" : errname(tr));
    if (tr == 0) pthread_join(t, 0);
    r = syscall(SYS_getrlimit, RLIMIT_NOFILE, &got);
    printf("getrlimit NOFILE: %s\n", res(r));
    return 0;
}

/* ---- sigroutes ---- */
static volatile sig_atomic_t seen_code[4], seen_n;

static void on_sig(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (seen_n < 4) seen_code[seen_n] = si->si_code;
    seen_n++;
}

static int sigroutes(void) {
    CHECK(setpgid(0, 0) == 0 || errno == EPERM);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    for (int s = SIGRTMAX - 2; s <= SIGRTMAX - 1; s++) CHECK(sigaction(s, &sa, 0) == 0);
    CHECK(sigaction(SIGSEGV, &sa, 0) == 0);
    long r = kill(0, SIGRTMAX - 1);
    printf("kill(0, SIGRTMAX-1): %s\n", res(r));
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMAX - 1;
    timer_t tid;
    r = syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &tid);
    printf("timer_create SIGRTMAX-1: %s\n", res(r));
    int p[2];
    CHECK(pipe(p) == 0);
    r = fcntl(p[0], F_SETSIG, SIGRTMAX - 2);
    printf("F_SETSIG SIGRTMAX-2: %s\n", res(r));
    r = prctl(PR_SET_PDEATHSIG, SIGRTMAX - 1);
    printf("PR_SET_PDEATHSIG SIGRTMAX-1: %s\n", res(r));
    seen_n = 0;
    r = kill(getpid(), SIGRTMAX - 1);
    printf("kill(self, SIGRTMAX-1): %s seen %d\n", res(r), (int)seen_n);
    seen_n = 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGSEGV;
    si.si_code = SEGV_MAPERR;
    r = syscall(SYS_rt_sigqueueinfo, getpid(), SIGSEGV, &si);
    printf("forged SIGSEGV: %s seen %d code %d\n", res(r), (int)seen_n, (int)seen_code[0]);
    r = kill(getpid(), SIGSEGV);
    printf("then kill SIGSEGV: %s seen %d code %d\n", res(r), (int)seen_n, (int)seen_code[1]);
    return 0;
}

/* ---- addrlen ---- */
static int addrlen(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(l, 1) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    unsigned char buf[64];
    memset(buf, 0xee, sizeof buf);
    len = 2;
    int s = accept(l, (struct sockaddr *)buf, &len);
    printf("accept small: %s len %u family ok %d tail untouched %d\n", res(s), len,
           ((struct sockaddr_in *)buf)->sin_family == AF_INET, buf[2] == 0xee);
    len = 64;
    memset(buf, 0xee, sizeof buf);
    long r = getpeername(c, (struct sockaddr *)buf, &len);
    printf("getpeername large: %s len %u tail untouched %d\n", res(r), len, buf[16] == 0xee);
    len = sizeof(struct sockaddr_in);
    r = getsockname(c, (struct sockaddr *)buf, &len);
    printf("getsockname exact: %s len %u\n", res(r), len);
    len = 0;
    r = getsockname(c, (struct sockaddr *)buf, &len);
    printf("getsockname zero: %s len %u\n", res(r), len);
    r = getsockname(c, (struct sockaddr *)buf, (socklen_t *)8);
    printf("getsockname bad len pointer: %s\n", res(r));
    close(s);
    close(c);
    close(l);
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    setvbuf(stdout, 0, _IOLBF, 0);
    const char *k = argv[1];
    int r;
    if (!strcmp(k, "memrace"))
        r = memrace();
    else if (!strcmp(k, "sockopt"))
        r = sockopt();
    else if (!strcmp(k, "scmrights"))
        r = scmrights();
    else if (!strcmp(k, "closerange"))
        r = closerange();
    else if (!strcmp(k, "rlimit"))
        r = rlimit();
    else if (!strcmp(k, "sigroutes"))
        r = sigroutes();
    else if (!strcmp(k, "addrlen"))
        r = addrlen();
    else
        return 64;
    printf("alive\n");
    return r;
}

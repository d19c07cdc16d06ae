/* escape_nested_ptr runtime|own|fds|tiocsti
 *
 * Pointers the kernel follows from inside a structure, or reads and writes as a buffer of the
 * newer calls: struct ifconf's ifc_buf, ifreq and termios buffers, the io_submit iocb array,
 * an iocb, its aio_buf and its iovec array, io_getevents' events, struct msgbuf, sembuf
 * arrays, the semctl/msgctl/shmctl structures, xattr values and struct xattr_args (and its
 * value), socket option values. With "runtime" they point into the runtime's memory (see
 * escape.h), with "own" at the program's own buffers (the control). In the sandbox every
 * "runtime" call must fail with EFAULT; natively there is no foreign mapping (exit 2). One line
 * per call: "<call>: <result>".
 *
 * With "fds": the same calls with a runtime descriptor (the first number at the program's
 * RLIMIT_NOFILE: in the sandbox the runtime's window starts there, always open; natively
 * nothing) as aio_fildes, aio_resfd, the ioctl descriptor, the fsetxattr descriptor: EBADF. The clock and host-name settings are
 * left out on purpose: a sandbox that failed this test there would set the host's clock or
 * name from the runtime's memory.
 *
 * With "tiocsti": TIOCSTI, which pushes bytes into a terminal's input as if typed there (into
 * the shell the sandbox was started from, on a real terminal), on a fresh pty: EIO in the
 * sandbox, whatever the host allows natively; then whether the bytes arrived. */
#define _GNU_SOURCE
#include "escape.h"

#include <sys/resource.h>

#include <dirent.h>
#include <linux/aio_abi.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>

#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#endif

struct xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
}

static aio_context_t ctx;

/* Submits one iocb; reaps its event if it was submitted (so the own run stays in step). */
static void submit(const char *what, struct iocb **v) {
    long r = syscall(SYS_io_submit, ctx, 1, v);
    result(what, r);
    if (r == 1) {
        struct io_event ev;
        CHECK(syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) == 1);
    }
}

static void prep(struct iocb *cb, int op, int fd, const void *buf, size_t n) {
    memset(cb, 0, sizeof *cb);
    cb->aio_lio_opcode = (unsigned short)op;
    cb->aio_fildes = (unsigned)fd;
    cb->aio_buf = (unsigned long long)(uintptr_t)buf;
    cb->aio_nbytes = n;
}

/* The first number of the runtime's window in the sandbox: the program's RLIMIT_NOFILE. */
static int foreign_fd(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    return (int)rl.rlim_cur;
}

static int fds(void) {
    int foreign = foreign_fd();
    if (foreign < 0) {
        printf("foreign none\n");
        return 2;
    }
    CHECK(syscall(SYS_io_setup, 8, &ctx) == 0);
    int fd = open("scratch", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char buf[16];
    struct iocb cb;
    struct iocb *v[1] = {&cb};
    prep(&cb, IOCB_CMD_PREAD, foreign, buf, sizeof buf);
    submit("io_submit(aio_fildes)", v);
    prep(&cb, IOCB_CMD_FSYNC, foreign, NULL, 0);
    submit("io_submit(fsync aio_fildes)", v);
    int efd = eventfd(0, 0);
    CHECK(efd >= 0);
    prep(&cb, IOCB_CMD_PREAD, fd, buf, sizeof buf);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = (unsigned)foreign;
    submit("io_submit(aio_resfd)", v);
    struct termios t;
    result("ioctl(TCGETS fd)", ioctl(foreign, TCGETS, &t));
    struct ifconf ifc = {0};
    result("ioctl(SIOCGIFCONF fd)", ioctl(foreign, SIOCGIFCONF, &ifc));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    result("ioctl(SIOCGIFFLAGS fd)", ioctl(foreign, SIOCGIFFLAGS, &ifr));
    result("fsetxattr(fd)", fsetxattr(foreign, "user.x", "v", 1, 0));
    result("fremovexattr(fd)", fremovexattr(foreign, "user.x"));
    result("setxattrat(dirfd)", syscall(SYS_setxattrat, foreign, "x", 0, "user.x", NULL, 16));
    printf("alive\n");
    return 0;
}

static int tiocsti(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    CHECK(s >= 0);
    char c = 'x';
    result("ioctl(TIOCSTI)", ioctl(s, TIOCSTI, &c));
    int n = 0;
    CHECK(ioctl(s, FIONREAD, &n) == 0);
    printf("input queued: %d\n", n);
    printf("alive\n");
    return 0;
}

static char own_src[256] = "own source bytes";
static struct iocb own_iocb;

int main(int argc, char **argv) {
    CHECK(argc == 2);
    if (strcmp(argv[1], "fds") == 0) return fds();
    if (strcmp(argv[1], "tiocsti") == 0) return tiocsti();
    int runtime = strcmp(argv[1], "runtime") == 0;
    CHECK(runtime || strcmp(argv[1], "own") == 0);
    char *src, *dst;
    int local = 0;
    if (runtime) {
        static struct ctx c;
        CHECK(escape_init(&c, &local) > 0);
        int r = pick_or_exit(&c, "any", 0);
        int w = pick(&c, "heap", 1);
        if (w < 0) w = pick_or_exit(&c, "any", 1);
        src = (char *)inside(&c, r);
        dst = (char *)inside(&c, w);
        printf("source %s %s, destination %s %s\n", c.maps[r].perms, c.maps[r].path,
               c.maps[w].perms, c.maps[w].path);
    } else {
        src = own_src;
        dst = own_bss_page;
        printf("source own data, destination own bss\n");
    }

    int fd = open("scratch", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789abcdefghijklmnopqrstuvwxyz", 36) == 36);

    /* ioctl: ifconf and its buffer, ifreq, termios. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct ifconf ifc;
    ifc.ifc_len = 40;
    ifc.ifc_buf = dst;
    result("ioctl(SIOCGIFCONF ifc_buf)", ioctl(s, SIOCGIFCONF, &ifc) < 0 ? -1 : 0);
    static struct ifconf own_ifc; /* a NULL buffer: the kernel only reports the length */
    result("ioctl(SIOCGIFCONF ifconf)",
           ioctl(s, SIOCGIFCONF, runtime ? (struct ifconf *)src : &own_ifc) < 0 ? -1 : 0);
    struct ifreq *ifr = (struct ifreq *)dst;
    if (!runtime) {
        memset(ifr, 0, sizeof *ifr);
        strcpy(ifr->ifr_name, "lo");
    }
    result("ioctl(SIOCGIFFLAGS ifreq)", ioctl(s, SIOCGIFFLAGS, ifr) < 0 ? -1 : 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0);
    result("ioctl(TCGETS termios)", ioctl(m, TCGETS, (struct termios *)dst));
    result("ioctl(TCSETS termios)", ioctl(m, TCSETS, (struct termios *)(runtime ? src : dst)));
    int v = 1;
    result("setsockopt(value)", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, runtime ? src : (char *)&v, 4));
    socklen_t len = 4;
    result("getsockopt(value)", getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, dst, &len));

    /* AIO: the iocb array, an iocb, its buffer, its iovec array and their buffers, events. */
    aio_context_t *ctxp = runtime ? (aio_context_t *)dst : &ctx;
    if (!runtime) ctx = 0;
    long r = syscall(SYS_io_setup, 8, ctxp);
    result("io_setup(ctxp)", r);
    if (runtime) CHECK(syscall(SYS_io_setup, 8, &ctx) == 0);
    struct iocb cb;
    struct iocb *vec[1] = {&cb};
    prep(&cb, IOCB_CMD_PREAD, fd, dst, 16);
    submit("io_submit(pread aio_buf)", vec);
    prep(&cb, IOCB_CMD_PWRITE, fd, src, 16);
    submit("io_submit(pwrite aio_buf)", vec);
    struct iovec iov = {dst, 16};
    prep(&cb, IOCB_CMD_PREADV, fd, &iov, 1);
    submit("io_submit(preadv iov_base)", vec);
    static struct iovec own_iov;
    own_iov.iov_base = own_bss_page;
    own_iov.iov_len = 16;
    prep(&cb, IOCB_CMD_PREADV, fd, runtime ? (void *)src : (void *)&own_iov, 1);
    submit("io_submit(preadv iovec array)", vec);
    prep(&own_iocb, IOCB_CMD_PREAD, fd, own_bss_page, 16);
    struct iocb *to_src[1] = {runtime ? (struct iocb *)src : &own_iocb};
    submit("io_submit(iocb)", to_src);
    static struct iocb *own_array[1];
    own_array[0] = &own_iocb;
    submit("io_submit(iocb array)", runtime ? (struct iocb **)src : own_array);
    struct timespec zero = {0, 0};
    result("io_getevents(events)",
           syscall(SYS_io_getevents, ctx, 0, 4, (struct io_event *)dst, &zero));
    CHECK(syscall(SYS_io_destroy, ctx) == 0);

    /* Message queues, semaphores, shared memory. */
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(q >= 0);
    static struct {
        long type;
        char text[16];
    } own_msg = {1, "message"};
    result("msgsnd(msgbuf)", msgsnd(q, runtime ? (void *)src : (void *)&own_msg, 8, IPC_NOWAIT));
    CHECK(msgsnd(q, &own_msg, 8, IPC_NOWAIT) == 0);
    result("msgrcv(msgbuf)", msgrcv(q, dst, 8, 0, IPC_NOWAIT));
    result("msgctl(IPC_STAT buf)", msgctl(q, IPC_STAT, (struct msqid_ds *)dst));
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
    int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    CHECK(sem >= 0);
    static struct sembuf own_ops[1] = {{0, 1, 0}};
    result("semop(sops)", semop(sem, runtime ? (struct sembuf *)src : own_ops, 1));
    static struct timespec own_ts = {0, 1000};
    struct sembuf give = {1, 1, 0};
    result("semtimedop(timeout)",
           semtimedop(sem, &give, 1, runtime ? (struct timespec *)src : &own_ts));
    result("semctl(IPC_STAT buf)", semctl(sem, 0, IPC_STAT, (struct semid_ds *)dst));
    result("semctl(GETALL array)", semctl(sem, 0, GETALL, (unsigned short *)dst));
    static unsigned short own_vals[2] = {3, 4};
    result("semctl(SETALL array)", semctl(sem, 0, SETALL, runtime ? (unsigned short *)src : own_vals));
    CHECK(semctl(sem, 0, IPC_RMID) == 0);
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK(shm >= 0);
    result("shmctl(IPC_STAT buf)", shmctl(shm, IPC_STAT, (struct shmid_ds *)dst) < 0 ? -1 : 0);
    CHECK(shmctl(shm, IPC_RMID, NULL) == 0);

    /* Extended attributes: values, names, struct xattr_args and its value. */
    result("setxattr(value)", setxattr("scratch", "user.v", src, 8, 0));
    result("getxattr(value)", getxattr("scratch", "user.v", dst, 8));
    if (!runtime) strcpy(own_src + 128, "user.name");
    result("setxattr(name)", setxattr("scratch", runtime ? src : own_src + 128, "v", 1, 0));
    struct xattr_args args = {(uint64_t)(uintptr_t)src, 8, 0};
    result("setxattrat(args.value)", syscall(SYS_setxattrat, AT_FDCWD, "scratch", 0, "user.at", &args, sizeof args));
    static struct xattr_args own_args;
    own_args.value = (uint64_t)(uintptr_t)own_src;
    own_args.size = 4;
    result("setxattrat(args)", syscall(SYS_setxattrat, AT_FDCWD, "scratch", 0, "user.at2",
                                       runtime ? (void *)src : (void *)&own_args, sizeof args));
    struct xattr_args get = {(uint64_t)(uintptr_t)dst, 8, 0};
    result("getxattrat(args.value)", syscall(SYS_getxattrat, AT_FDCWD, "scratch", 0, "user.v", &get, sizeof get));
    CHECK(close(fd) == 0);
    printf("alive\n");
    return local;
}

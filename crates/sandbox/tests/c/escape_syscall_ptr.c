/* escape_syscall_ptr runtime|own
 *
 * Passes pointers to system calls: with "runtime", pointers into the runtime's memory (a
 * readable foreign mapping as source, a writable one as destination; see escape.h); with "own",
 * the program's own buffers (the control). In the sandbox every "runtime" call must fail with
 * EFAULT; natively there is no foreign mapping (exit 2). One line per call: "<call>: <result>". */
#define _GNU_SOURCE
#include "escape.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
}

static char own_src[64] = "scratch";              /* a valid path and readable bytes */
static struct iovec own_iov[1];                    /* a valid iovec array */
static char own_iov_buf[16] = "iov data";          /* what own_iov points at */
static struct msghdr own_mh;                       /* a valid message header */
static struct sockaddr_un own_name;                /* zeroed: family 0 */
static struct timespec own_ts = {0, 1000};         /* a valid timespec */

int main(int argc, char **argv) {
    CHECK(argc == 2);
    int runtime = strcmp(argv[1], "runtime") == 0;
    CHECK(runtime || strcmp(argv[1], "own") == 0);
    char *src, *dst; /* src: read by the kernel; dst: written by the kernel */
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
        own_iov[0].iov_base = own_iov_buf;
        own_iov[0].iov_len = 8;
        printf("source own data, destination own bss\n");
    }
    const struct iovec *iov_array = runtime ? (const struct iovec *)src : own_iov;

    int fd = open("scratch", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789abcdefghijklmnopqrstuvwxyz", 36) == 36);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(symlink("scratch", "scratch-link") == 0);

    result("read(buf)", read(fd, dst, 16));
    result("pread(buf)", pread(fd, dst, 16, 0));
    result("write(buf)", write(fd, src, 16));
    result("pwrite(buf)", pwrite(fd, src, 16, 100));
    struct iovec rv = {dst, 16}, wv = {src, 16};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    result("readv(iov_base)", readv(fd, &rv, 1));
    result("writev(iov_base)", writev(fd, &wv, 1));
    result("readv(iov array)", readv(fd, iov_array, 1));
    result("writev(iov array)", writev(fd, iov_array, 1));

    struct stat st;
    result("stat(path)", stat(src, &st));
    result("stat(buf)", stat("scratch", (struct stat *)dst));
    result("fstat(buf)", fstat(fd, (struct stat *)dst));
    result("open(path)", open(src, O_RDONLY));
    result("readlink(buf)", readlink("scratch-link", dst, 16));
    long cwd = syscall(SYS_getcwd, dst, 4096); /* the length varies: print success as 1 */
    result("getcwd(buf)", cwd > 0 ? 1 : cwd);
    result("uname(buf)", syscall(SYS_uname, dst));
    result("clock_gettime(buf)", syscall(SYS_clock_gettime, CLOCK_REALTIME, dst));
    result("nanosleep(req)", syscall(SYS_nanosleep, runtime ? (void *)src : (void *)&own_ts, NULL));
    result("getrandom(buf)", syscall(SYS_getrandom, dst, 16, 0));
    result("pipe(fds)", syscall(SYS_pipe, dst));

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &wv;
    mh.msg_iovlen = 1;
    result("sendmsg(iov_base)", sendmsg(sv[0], &mh, 0));
    memset(&mh, 0, sizeof mh);
    struct iovec okv = {"hello", 5};
    mh.msg_iov = &okv;
    mh.msg_iovlen = 1;
    mh.msg_name = runtime ? (void *)src : (void *)&own_name;
    mh.msg_namelen = sizeof(struct sockaddr_un);
    result("sendmsg(msg_name)", sendmsg(sv[0], &mh, 0));
    own_mh.msg_iov = &okv;
    own_mh.msg_iovlen = 1;
    result("sendmsg(msghdr)", sendmsg(sv[0], runtime ? (const struct msghdr *)src : &own_mh, 0));
    CHECK(send(sv[0], "queued", 6, 0) == 6);
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &rv;
    mh.msg_iovlen = 1;
    result("recvmsg(iov_base)", recvmsg(sv[1], &mh, MSG_DONTWAIT));
    result("send(buf)", send(sv[0], src, 16, 0));
    CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
    CHECK(close(fd) == 0);
    printf("alive\n");
    return local;
}

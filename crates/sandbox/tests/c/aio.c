/* Linux AIO through the raw system calls: pwrite, pread, preadv/pwritev, fsync/fdsync and poll
 * requests, several in one io_submit, completions whose obj and data are the program's own,
 * IOCB_FLAG_RESFD with an eventfd, the key the kernel stores in each iocb, partial
 * submission at the first invalid iocb, cancelling a pending poll, the kernel's errors
 * (EINVAL, EBADF), a forked child that cannot use its parent's context, and io_destroy. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long io_setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_destroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
static long io_submit(aio_context_t ctx, long n, struct iocb **v) {
    return syscall(SYS_io_submit, ctx, n, v);
}
static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev,
                         struct timespec *t) {
    return syscall(SYS_io_getevents, ctx, min, max, ev, t);
}
static long io_cancel(aio_context_t ctx, struct iocb *cb, struct io_event *ev) {
    return syscall(SYS_io_cancel, ctx, cb, ev);
}

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void prep(struct iocb *cb, int op, int fd, void *buf, size_t n, long long off,
                 unsigned long long data) {
    memset(cb, 0, sizeof *cb);
    cb->aio_lio_opcode = (unsigned short)op;
    cb->aio_fildes = (unsigned)fd;
    cb->aio_buf = (unsigned long long)(uintptr_t)buf;
    cb->aio_nbytes = n;
    cb->aio_offset = off;
    cb->aio_data = data;
}

/* Submits one iocb and waits for its completion; prints what came back. */
static void one(aio_context_t ctx, const char *what, struct iocb *cb) {
    struct iocb *v[1] = {cb};
    long r = io_submit(ctx, 1, v);
    if (r != 1) {
        res(what, r);
        return;
    }
    struct io_event ev;
    memset(&ev, 0, sizeof ev);
    r = io_getevents(ctx, 1, 1, &ev, NULL);
    printf("%s: events %ld, obj is the iocb %d, data %#llx, res %lld\n", what, r,
           ev.obj == (uintptr_t)cb, (unsigned long long)ev.data, (long long)ev.res);
}

int main(void) {
    aio_context_t ctx = 0;
    res("io_setup", io_setup(8, &ctx));
    printf("context id nonzero %d, ring header readable %d\n", ctx != 0,
           ctx && *(volatile unsigned *)(uintptr_t)ctx + 1 != 0);
    aio_context_t other = 1;
    res("io_setup with nonzero id", io_setup(8, &other));
    other = 0;
    res("io_setup 0 events", io_setup(0, &other));

    int fd = open("data", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    struct iocb cb;
    char hello[] = "hello aio";
    prep(&cb, IOCB_CMD_PWRITE, fd, hello, 9, 0, 0x11);
    cb.aio_key = 0x1234;
    one(ctx, "pwrite", &cb);
    printf("aio_key after submit %u\n", cb.aio_key);
    char buf[16];
    memset(buf, 0, sizeof buf);
    prep(&cb, IOCB_CMD_PREAD, fd, buf, 9, 0, 0x22);
    one(ctx, "pread", &cb);
    printf("read back \"%s\"\n", buf);
    char a[4], b[6];
    memset(b, 0, sizeof b);
    struct iovec iov[2] = {{a, 4}, {b, 5}};
    prep(&cb, IOCB_CMD_PREADV, fd, iov, 2, 0, 0x33);
    one(ctx, "preadv", &cb);
    printf("pieces \"%.4s\" \"%s\"\n", a, b);
    struct iovec wv[2] = {{"AB", 2}, {"CDE", 3}};
    prep(&cb, IOCB_CMD_PWRITEV, fd, wv, 2, 100, 0x44);
    one(ctx, "pwritev", &cb);
    char tail[8] = {0};
    CHECK(pread(fd, tail, 5, 100) == 5);
    printf("written by pwritev \"%s\"\n", tail);
    prep(&cb, IOCB_CMD_FSYNC, fd, NULL, 0, 0, 0x55);
    one(ctx, "fsync", &cb);
    prep(&cb, IOCB_CMD_FDSYNC, fd, NULL, 0, 0, 0x66);
    one(ctx, "fdsync", &cb);

    /* Three at once, and one that notifies an eventfd. */
    struct iocb three[3];
    struct iocb *v3[3];
    char bufs[3][4];
    for (int i = 0; i < 3; i++) {
        prep(&three[i], IOCB_CMD_PREAD, fd, bufs[i], 3, i * 3, 0x100 + (unsigned)i);
        v3[i] = &three[i];
    }
    int efd = eventfd(0, 0);
    CHECK(efd >= 0);
    three[2].aio_flags = IOCB_FLAG_RESFD;
    three[2].aio_resfd = (unsigned)efd;
    res("io_submit three", io_submit(ctx, 3, v3));
    struct io_event evs[8];
    long n = io_getevents(ctx, 3, 8, evs, NULL);
    int match = 0;
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (evs[i].obj == (uintptr_t)&three[k] && evs[i].data == 0x100u + (unsigned)k &&
                evs[i].res == 3)
                match++;
    printf("io_getevents three: %ld, matching their iocbs %d\n", n, match);
    unsigned long long count = 0;
    CHECK(read(efd, &count, sizeof count) == sizeof count);
    printf("eventfd count %llu\n", count);

    /* The first invalid iocb ends the submission; the ones before it go. */
    struct iocb good, bad;
    prep(&good, IOCB_CMD_PREAD, fd, buf, 2, 0, 0x200);
    prep(&bad, 99, fd, buf, 2, 0, 0x201);
    struct iocb *v2[2] = {&good, &bad};
    res("io_submit good then bad opcode", io_submit(ctx, 2, v2));
    n = io_getevents(ctx, 1, 1, evs, NULL);
    printf("its event: %ld data %#llx\n", n, (unsigned long long)evs[0].data);
    struct iocb *vb[1] = {&bad};
    res("io_submit bad opcode", io_submit(ctx, 1, vb));
    prep(&bad, IOCB_CMD_PREAD, fd, buf, 2, 0, 0);
    bad.aio_reserved2 = 1;
    res("io_submit reserved field set", io_submit(ctx, 1, vb));
    prep(&bad, IOCB_CMD_PREAD, -1, buf, 2, 0, 0);
    res("io_submit bad descriptor", io_submit(ctx, 1, vb));
    prep(&bad, IOCB_CMD_PREAD, fd, buf, 2, 0, 0);
    bad.aio_flags = IOCB_FLAG_RESFD;
    bad.aio_resfd = (unsigned)fd;
    res("io_submit resfd not an eventfd", io_submit(ctx, 1, vb));
    res("io_submit negative count", io_submit(ctx, -1, vb));
    res("io_submit zero count", io_submit(ctx, 0, vb));
    res("io_submit unknown context", io_submit(ctx + 4096, 1, vb));
    struct timespec zero = {0, 0}, ten_ms = {0, 10 * 1000 * 1000};
    res("io_getevents nothing pending", io_getevents(ctx, 0, 8, evs, &zero));
    res("io_getevents timeout", io_getevents(ctx, 1, 8, evs, &ten_ms));
    res("io_getevents min above max", io_getevents(ctx, 2, 1, evs, NULL));
    res("io_cancel completed", io_cancel(ctx, &good, evs));

    /* A pending poll: cancelled, then completed by a write. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct iocb pc;
    prep(&pc, IOCB_CMD_POLL, p[0], (void *)(uintptr_t)POLLIN, 0, 0, 0x300);
    struct iocb *vp[1] = {&pc};
    res("io_submit poll", io_submit(ctx, 1, vp));
    res("io_cancel pending poll", io_cancel(ctx, &pc, evs));
    n = io_getevents(ctx, 1, 1, evs, &ten_ms);
    printf("cancelled poll event: %ld obj is the iocb %d\n", n, n == 1 && evs[0].obj == (uintptr_t)&pc);
    prep(&pc, IOCB_CMD_POLL, p[0], (void *)(uintptr_t)POLLIN, 0, 0, 0x301);
    res("io_submit poll", io_submit(ctx, 1, vp));
    CHECK(write(p[1], "x", 1) == 1);
    n = io_getevents(ctx, 1, 1, evs, NULL);
    printf("poll event: %ld data %#llx POLLIN %d\n", n, (unsigned long long)evs[0].data,
           !!(evs[0].res & POLLIN));

    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prep(&good, IOCB_CMD_PREAD, fd, buf, 2, 0, 0x400);
        struct iocb *vc[1] = {&good};
        long r = io_submit(ctx, 1, vc);
        printf("child io_submit on the parent's context: %s\n", r < 0 ? errname(errno) : "submitted");
        fflush(stdout);
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    res("io_destroy", io_destroy(ctx));
    res("io_destroy again", io_destroy(ctx));
    res("io_submit after destroy", io_submit(ctx, 1, v3));
    close(fd);
    printf("done\n");
    return 0;
}

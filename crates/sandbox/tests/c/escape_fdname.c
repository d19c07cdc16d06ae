/* escape_fdname names TRACE [user] | kvmrace [user]
 *
 * names: reaches for the runtime's descriptors by name. In the sandbox every number from the
 * program's RLIMIT_NOFILE up is the runtime's (the trace file, /dev/kvm, the VM, the vCPUs,
 * placeholders); natively nothing is open there. For each route (/proc/self/fd/N, /dev/fd/N,
 * /proc/thread-self/fd/N, /proc/PID/fd/N, /proc/PID/task/TID/fd/N, openat and openat2 on a
 * /proc/self/fd directory descriptor, a symlink to /proc/self/fd/N) and each of 288 numbers it
 * tries to open (read, write, append, truncate, O_PATH, O_PATH|O_NOFOLLOW; through the symlink
 * all but the last), readlink and truncate(2); whatever opens for
 * writing gets "PWNED" written. One line per route: "route R: opened K readlink L truncated T".
 * Then the trace file TRACE by its own path, a hard link and a symlink to it, and /dev/kvm:
 * "<what>: ok|E...". Natively TRACE is a stand-in file the harness made.
 *
 * kvmrace: a second thread duplicates the lowest free descriptor number in a loop while the
 * main thread starts threads (each needs a new vCPU in the sandbox, whose descriptor appears
 * at that number for a moment before the runtime moves it into its window). A copy caught
 * that way must be inert: mmap of it, sending it with SCM_RIGHTS and KVM_GET_REGS on it fail.
 * Lines: "kvm copies caught: N" (varies), "mmap ok: K", "scm ok: K", "ioctl ok: K".
 *
 * inherited VCPU VM: descriptors of a vCPU and a VM (of the harness's own VM) handed to the
 * program at those numbers. Natively the vCPU's kvm_run page maps and both can be sent with
 * SCM_RIGHTS; in the sandbox, what is a KVM object is refused whatever its number: mmap and
 * SCM_RIGHTS EBADF, reopening through /proc/self/fd EACCES, KVM requests ENOTTY. Lines:
 * "<call>: ok|E...".
 *
 * "user": when run as root, first drop to uid/gid 65534 (and stay dumpable, as the program's
 * own /proc files then stay readable natively). */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPAN 288

static void drop_to_user(void) {
    if (geteuid() != 0) return;
    gid_t g = 65534;
    CHECK(setgroups(1, &g) == 0);
    CHECK(setresgid(65534, 65534, 65534) == 0);
    CHECK(setresuid(65534, 65534, 65534) == 0);
    CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
}

static int limit(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    return (int)rl.rlim_cur;
}

struct open_how_v0 {
    unsigned long long flags, mode, resolve;
};

static const int flag_sets[] = {O_RDONLY, O_RDWR, O_WRONLY | O_APPEND, O_RDONLY | O_TRUNC,
                                O_PATH, O_PATH | O_NOFOLLOW};

/* The symlink of route 7 (in /tmp: the working directory may not be writable for "user"). */
static char symlink_name[64];

/* One attempt: route 0..4 by path, 5 openat, 6 openat2 (relative to dirfd), 7 the symlink. */
static int open_route(int route, int dirfd, const char *path, const char *rel, int flags) {
    if (route == 5) return openat(dirfd, rel, flags);
    if (route == 7) return open(symlink_name, flags);
    if (route == 6) {
        struct open_how_v0 how = {(unsigned long long)flags, 0, 0};
        return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    }
    return open(path, flags);
}

static void poke(int fd, int flags) {
    if ((flags & O_ACCMODE) != O_RDONLY && !(flags & O_PATH)) {
        ssize_t r = write(fd, "PWNED\n", 6);
        (void)r;
    }
}

static int names(const char *trace) {
    const int lim = limit();
    const long pid = (long)getpid();
    const long tid = (long)syscall(SYS_gettid);
    static const char *const labels[] = {"/proc/self/fd/N", "/dev/fd/N", "/proc/thread-self/fd/N",
                                         "/proc/PID/fd/N", "/proc/PID/task/TID/fd/N",
                                         "openat(/proc/self/fd, N)", "openat2(/proc/self/fd, N)",
                                         "a symlink to /proc/self/fd/N"};
    snprintf(symlink_name, sizeof symlink_name, "/tmp/sbx-fdlink-%ld", pid);
    int dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    CHECK(dirfd >= 0);
    for (int route = 0; route < 8; route++) {
        int opened = 0, links = 0, truncs = 0;
        for (int n = lim; n < lim + SPAN; n++) {
            char path[128], rel[32];
            snprintf(rel, sizeof rel, "%d", n);
            switch (route) {
            case 0: snprintf(path, sizeof path, "/proc/self/fd/%d", n); break;
            case 1: snprintf(path, sizeof path, "/dev/fd/%d", n); break;
            case 2: snprintf(path, sizeof path, "/proc/thread-self/fd/%d", n); break;
            case 3: snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, n); break;
            case 4: snprintf(path, sizeof path, "/proc/%ld/task/%ld/fd/%d", pid, tid, n); break;
            default: snprintf(path, sizeof path, "/proc/self/fd/%d", n); break;
            }
            if (route == 7) {
                unlink(symlink_name);
                CHECK(symlink(path, symlink_name) == 0);
            }
            for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
                /* O_PATH|O_NOFOLLOW on the symlink opens the symlink itself. */
                if (route == 7 && (flag_sets[i] & O_NOFOLLOW)) continue;
                int fd = open_route(route, dirfd, path, rel, flag_sets[i]);
                if (fd >= 0) {
                    opened++;
                    poke(fd, flag_sets[i]);
                    close(fd);
                }
            }
            if (route < 5) {
                char buf[256];
                if (readlink(path, buf, sizeof buf) >= 0) links++;
                if (truncate(path, 0) == 0) truncs++;
            } else if (route == 7) {
                /* Attribute changes by the name too (each a no-op where it succeeds: the same
                 * mode again, owner and group -1), counted with truncate. */
                if (truncate(symlink_name, 0) == 0) truncs++;
                if (chown(symlink_name, (uid_t)-1, (gid_t)-1) == 0) truncs++;
                if (fchownat(AT_FDCWD, symlink_name, (uid_t)-1, (gid_t)-1, 0) == 0) truncs++;
                struct stat st;
                if (stat(symlink_name, &st) == 0 && chmod(symlink_name, st.st_mode & 07777) == 0)
                    truncs++;
                unlink(symlink_name);
            } else {
                char buf[256];
                if (readlinkat(dirfd, rel, buf, sizeof buf) >= 0) links++;
            }
        }
        printf("route %s: opened %d readlink %d truncated %d\n", labels[route], opened, links,
               truncs);
        fflush(stdout);
    }
    close(dirfd);

    /* The trace file by its own name, and by names made for it. */
    static const char *const flag_names[] = {"O_RDONLY", "O_RDWR", "O_WRONLY|O_APPEND",
                                             "O_RDONLY|O_TRUNC", "O_PATH", "O_PATH|O_NOFOLLOW"};
    const char *targets[3] = {trace, "hard-link", "sym-link"};
    printf("link: %s\n", link(trace, "hard-link") == 0 ? "ok" : errname(errno));
    printf("symlink: %s\n", symlink(trace, "sym-link") == 0 ? "ok" : errname(errno));
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
            if (t == 2 && (flag_sets[i] & O_NOFOLLOW)) continue; /* the symlink itself */
            int fd = open(targets[t], flag_sets[i]);
            printf("%s %s: %s\n", t == 0 ? "trace" : targets[t], flag_names[i],
                   fd >= 0 ? "ok" : errname(errno));
            if (fd >= 0) {
                poke(fd, flag_sets[i]);
                close(fd);
            }
        }
        printf("truncate %s: %s\n", t == 0 ? "trace" : targets[t],
               truncate(targets[t], 0) == 0 ? "ok" : errname(errno));
    }
    int kvm = open("/dev/kvm", O_RDWR);
    printf("/dev/kvm O_RDWR: %s\n", kvm >= 0 ? "ok" : errname(errno));
    if (kvm >= 0) close(kvm);
    kvm = open("/dev/kvm", O_PATH);
    printf("/dev/kvm O_PATH: %s\n", kvm >= 0 ? "ok" : errname(errno));
    if (kvm >= 0) close(kvm);
    printf("done\n");
    return 0;
}

/* ---- kvmrace ---- */
static atomic_int stop_flag;
static int lowest, sv[2];
static int caught, mmap_ok, scm_ok, ioctl_ok;

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
    return (int)sendmsg(sock, &m, MSG_DONTWAIT);
}

static void *grabber(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_flag)) {
        int c = dup(lowest);
        if (c < 0) continue;
        char path[64], link[128] = {0};
        snprintf(path, sizeof path, "/proc/self/fd/%d", c);
        if (readlink(path, link, sizeof link - 1) > 0 && strncmp(link, "anon_inode:kvm", 14) == 0) {
            caught++;
            void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0);
            if (p != MAP_FAILED) {
                mmap_ok++;
                munmap(p, 4096);
            }
            if (send_fd(sv[0], c) == 1) {
                scm_ok++;
                char b[CMSG_SPACE(sizeof(int))], byte;
                struct iovec iov = {&byte, 1};
                struct msghdr m = {0};
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                m.msg_control = b;
                m.msg_controllen = sizeof b;
                if (recvmsg(sv[1], &m, 0) == 1 && CMSG_FIRSTHDR(&m)) {
                    int got;
                    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
                    close(got);
                }
            }
            unsigned char regs[144];
            if (ioctl(c, 0x8090ae81UL /* KVM_GET_REGS */, regs) == 0) ioctl_ok++;
        }
        close(c);
    }
    return NULL;
}

static int gate[2];

static void *sleeper(void *arg) {
    (void)arg;
    char b;
    ssize_t r = read(gate[0], &b, 1);
    (void)r;
    return NULL;
}

static int kvmrace(void) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(gate) == 0);
    pthread_t g;
    CHECK(pthread_create(&g, NULL, grabber, NULL) == 0);
    /* The lowest free number, once the grabber exists (its own vCPU is made already). */
    usleep(10000);
    lowest = dup(0);
    CHECK(lowest >= 0);
    close(lowest);
    enum { N = 96 };
    static pthread_t t[N];
    int started = 0;
    for (int i = 0; i < N; i++) {
        if (pthread_create(&t[i], NULL, sleeper, NULL) != 0) break;
        started++;
        usleep(200);
    }
    close(gate[1]);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    atomic_store(&stop_flag, 1);
    pthread_join(g, NULL);
    printf("threads started: %d\n", started == N);
    printf("kvm copies caught: %d\n", caught);
    printf("mmap ok: %d\n", mmap_ok);
    printf("scm ok: %d\n", scm_ok);
    printf("ioctl ok: %d\n", ioctl_ok);
    printf("done\n");
    return 0;
}

static int inherited(int vcpu, int vm) {
    int sv2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    printf("mmap vcpu: %s\n", p != MAP_FAILED ? "ok" : errname(errno));
    if (p != MAP_FAILED) munmap(p, 4096);
    p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, vcpu, 0);
    printf("mmap vcpu private: %s\n", p != MAP_FAILED ? "ok" : errname(errno));
    if (p != MAP_FAILED) munmap(p, 4096);
    int fds[2] = {vcpu, vm};
    const char *names[2] = {"vcpu", "vm"};
    for (int i = 0; i < 2; i++) {
        int r = send_fd(sv2[0], fds[i]);
        printf("SCM_RIGHTS %s: %s\n", names[i], r == 1 ? "ok" : errname(errno));
        if (r == 1) {
            char b[CMSG_SPACE(sizeof(int))], byte;
            struct iovec iov = {&byte, 1};
            struct msghdr m = {0};
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            m.msg_control = b;
            m.msg_controllen = sizeof b;
            if (recvmsg(sv2[1], &m, 0) == 1 && CMSG_FIRSTHDR(&m)) {
                int got;
                memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
                close(got);
            }
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        int fd = open(path, O_PATH);
        printf("reopen %s O_PATH: %s\n", names[i], fd >= 0 ? "ok" : errname(errno));
        if (fd >= 0) close(fd);
    }
    unsigned char regs[144];
    printf("KVM_GET_REGS: %s\n",
           ioctl(vcpu, 0x8090ae81UL /* KVM_GET_REGS */, regs) == 0 ? "ok" : errname(errno));
    printf("KVM_CHECK_EXTENSION on the VM: %s\n",
           ioctl(vm, 0xae03UL /* KVM_CHECK_EXTENSION */, 0) >= 0 ? "ok" : errname(errno));
    printf("done\n");
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    int user = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "user") == 0) user = 1;
    if (user) drop_to_user();
    if (strcmp(argv[1], "names") == 0) {
        CHECK(argc >= 3);
        return names(argv[2]);
    }
    if (strcmp(argv[1], "kvmrace") == 0) return kvmrace();
    if (strcmp(argv[1], "inherited") == 0) {
        CHECK(argc >= 4);
        return inherited(atoi(argv[2]), atoi(argv[3]));
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 1;
}

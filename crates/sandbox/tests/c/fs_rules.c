/* Filesystem rules: every path call of the filesystem issue against one area of a test tree.
 *
 *   fs_rules calls AREA     each call on AREA/f (a file), AREA/d (a directory), AREA/l (a
 *                           symlink to f) and new names in AREA; prints "call result" lines,
 *                           result "ok" or the errno's name. The caller compares with the area's
 *                           rule (rw: all ok; ro: reads ok, writes EROFS; hidden: ENOENT;
 *                           unlisted: EACCES).
 *   fs_rules escape ROOT    the tricks of item 6 against ROOT/{rw,ro,hidden}: prints one line
 *                           per trick, "trick result".
 *   fs_rules bindrace ROOT N thread|proc|fd
 *                           N unix binds at ROOT/rw/bsw/s while a thread or a child process
 *                           swaps symlink bsw between ROOT/rw/d and ROOT/ro/d (fd: binds at
 *                           /proc/self/fd/50/s while a thread dup2s the two over 50): prints
 *                           "bindrace bound K" and "bindrace ro-sockets M".
 *   fs_rules race ROOT N    N rounds of a thread swapping ROOT/rw/sw between a file of rw and a
 *                           symlink to ROOT/ro/f while the main thread opens ROOT/rw/sw for
 *                           writing and writes "X": prints "race ro-written N" with the number
 *                           of writes that reached ROOT/ro/f.
 */
#define _GNU_SOURCE
/* Paths are built with snprintf into PATH_MAX buffers; the tree is shallow. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EROFS: return "EROFS";
    case EXDEV: return "EXDEV";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case ELOOP: return "ELOOP";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOSYS: return "ENOSYS";
    default: {
        static char b[32];
        snprintf(b, sizeof b, "errno%d", e);
        return b;
    }
    }
}

static void report(const char *what, long r) {
    printf("%s %s\n", what, ename(r < 0 ? errno : 0));
}

static char P[8][4096];
static const char *at(int slot, const char *a, const char *b) {
    snprintf(P[slot], sizeof P[slot], "%s/%s", a, b);
    return P[slot];
}

static long closing(long fd) {
    if (fd >= 0) close((int)fd);
    return fd;
}

/* A unix socket of type TY bound (BIND) or connected/sent to (else) at PATH: 0 or -1. */
static long unix_at(int ty, const char *path, int bind_it) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int s = socket(AF_UNIX, ty, 0);
    if (s < 0) return -1;
    long r;
    if (bind_it) r = bind(s, (struct sockaddr *)&a, sizeof a);
    else if (ty == SOCK_DGRAM) r = sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1 ? 0 : -1;
    else r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static void calls(const char *area) {
    struct stat st;
    struct statfs sfs;
    char buf[256];
    const char *f = at(0, area, "f"), *d = at(1, area, "d"), *l = at(2, area, "l");
    errno = 0;
    /* Reads. */
    report("open-read", closing(open(f, O_RDONLY)));
    report("open-path", closing(open(f, O_PATH)));
    report("stat", stat(f, &st));
    report("lstat", lstat(l, &st));
    report("fstatat", fstatat(AT_FDCWD, f, &st, 0));
    report("statx", syscall(SYS_statx, AT_FDCWD, f, 0, 0x7ff, buf));
    report("access-f", access(f, F_OK));
    report("access-r", access(f, R_OK));
    report("readlink", readlink(l, buf, sizeof buf));
    report("statfs", statfs(f, &sfs));
    long g = getxattr(f, "user.none", buf, sizeof buf);
    if (g < 0 && (errno == ENODATA || errno == ENOTSUP)) g = 0;
    report("getxattr", g);
    report("listxattr", listxattr(f, buf, sizeof buf));
    DIR *dir = opendir(d);
    report("opendir", dir ? 0 : -1);
    if (dir) closedir(dir);
    int in = inotify_init1(IN_CLOEXEC);
    report("inotify", inotify_add_watch(in, f, IN_MODIFY));
    close(in);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    report("chdir", chdir(d));
    if (chdir(cwd)) { /* back where we were */ }
    /* Writes. */
    report("access-w", access(f, W_OK));
    report("open-write", closing(open(f, O_WRONLY | O_APPEND)));
    report("open-trunc", closing(open(at(3, area, "t"), O_RDONLY | O_TRUNC)));
    report("creat", closing(open(at(3, area, "new"), O_WRONLY | O_CREAT | O_EXCL, 0644)));
    report("creat2", closing(creat(at(3, area, "new2"), 0644)));
    report("mkdir", mkdir(at(3, area, "nd"), 0755));
    report("mknod", mknod(at(3, area, "fifo"), S_IFIFO | 0644, 0));
    report("symlink", symlink("f", at(3, area, "sl")));
    report("link", link(f, at(3, area, "hl")));
    report("chmod", chmod(f, 0644));
    report("chown", chown(f, getuid(), getgid()));
    report("lchown", lchown(l, getuid(), getgid()));
    report("utimes", utimes(f, NULL));
    report("utime", utime(f, NULL));
    report("utimensat", utimensat(AT_FDCWD, f, NULL, 0));
    report("truncate", truncate(at(3, area, "t"), 0));
    long s = setxattr(f, "user.x", "1", 1, 0);
    if (s < 0 && errno == ENOTSUP) s = 0;
    report("setxattr", s);
    s = removexattr(f, "user.x");
    if (s < 0 && (errno == ENOTSUP || errno == ENODATA)) s = 0;
    report("removexattr", s);
    report("rename", rename(at(3, area, "r1"), at(4, area, "r2")));
    report("unlink", unlink(at(3, area, "u")));
    report("rmdir", rmdir(at(3, area, "rd")));
    report("unix-bind", unix_at(SOCK_STREAM, at(3, area, "sk"), 1));
    report("unix-connect", unix_at(SOCK_STREAM, at(3, area, "srv"), 0));
    report("unix-sendto", unix_at(SOCK_DGRAM, at(3, area, "dsrv"), 0));
    /* A descriptor opened for reading cannot change the file's attributes. */
    int fd = open(f, O_RDONLY);
    report("fchmod", fd < 0 ? -1 : fchmod(fd, 0644));
    report("fchown", fd < 0 ? -1 : fchown(fd, getuid(), getgid()));
    report("futimens", fd < 0 ? -1 : futimens(fd, NULL));
    /* A lease stalls every other opener of the file: only on files the rules let change. */
    s = fd < 0 ? -1 : fcntl(fd, F_SETLEASE, F_RDLCK);
    if (s == 0) fcntl(fd, F_SETLEASE, F_UNLCK);
    report("lease", s);
    /* Linux 6.13's *xattrat with a NULL path and AT_EMPTY_PATH: the descriptor's file. */
    struct { unsigned long long value; unsigned size, flags; } xa = {(unsigned long)"1", 1, 0};
    s = fd < 0 ? -1 : syscall(463, fd, NULL, AT_EMPTY_PATH, "user.y", &xa, sizeof xa);
    if (s < 0 && errno == ENOTSUP) s = 0;
    report("setxattrat-null", s);
    s = fd < 0 ? -1 : syscall(466, fd, NULL, AT_EMPTY_PATH, "user.y");
    if (s < 0 && (errno == ENOTSUP || errno == ENODATA)) s = 0;
    report("removexattrat-null", s);
    if (fd >= 0) close(fd);
}

static void escape(const char *root) {
    char buf[64];
    const char *rw = at(0, root, "rw"), *ro = at(1, root, "ro"), *hid = at(2, root, "hidden");
    /* execve tells nothing of what is hidden: a directory, a path below a file. */
    char *argv0[] = {"x", NULL};
    report("execve-hidden-dir", execve(hid, argv0, NULL));
    report("execve-below-hidden-file", execve(at(3, hid, "f/x"), argv0, NULL));
    /* A symlink in rw to the read-only file: writing through it is a write to ro/f. */
    report("symlink-to-ro-write", closing(open(at(3, rw, "to_ro"), O_WRONLY)));
    report("symlink-to-ro-read", closing(open(at(3, rw, "to_ro"), O_RDONLY)));
    report("symlink-to-hidden", closing(open(at(3, rw, "to_hidden"), O_RDONLY)));
    report("relative-symlink-to-hidden", closing(open(at(3, rw, "rel_hidden"), O_RDONLY)));
    report("dotdot", closing(open(at(3, rw, "../hidden/f"), O_RDONLY)));
    snprintf(P[4], sizeof P[4], "/proc/self/root%s/hidden/f", root);
    report("proc-root", closing(open(P[4], O_RDONLY)));
    if (chdir(root) == 0) {
        report("proc-cwd", closing(open("/proc/self/cwd/hidden/f", O_RDONLY)));
        report("relative-dotdot", closing(open("rw/../hidden/f", O_RDONLY)));
    } else {
        report("chdir-root", -1);
    }
    int p = open(at(3, ro, "f"), O_PATH);
    snprintf(P[5], sizeof P[5], "/proc/self/fd/%d", p);
    report("magic-link-write", closing(open(P[5], O_WRONLY)));
    report("magic-link-read", closing(open(P[5], O_RDONLY)));
    report("empty-path-chown", fchownat(p, "", getuid(), getgid(), AT_EMPTY_PATH));
    int rwd = open(rw, O_PATH | O_DIRECTORY);
    report("dirfd-dotdot", closing(openat(rwd, "../hidden/f", O_RDONLY)));
    report("dirfd-dotdot-create", closing(openat(rwd, "../ro/new", O_WRONLY | O_CREAT, 0644)));
    report("linkat-empty-path", linkat(p, "", rwd, "hl_empty", AT_EMPTY_PATH));
    report("hardlink-ro", link(at(3, ro, "f"), at(4, rw, "hl_ro")));
    report("hardlink-follow", linkat(AT_FDCWD, at(3, rw, "to_ro"), rwd, "hl_follow", AT_SYMLINK_FOLLOW));
    report("rename-ro-into-rw", rename(at(3, ro, "d"), at(4, rw, "stolen")));
    report("rename-rw-into-ro", rename(at(3, rw, "d"), at(4, ro, "pushed")));
    report("rename-hidden-out", rename(at(3, root, "hidden"), at(4, rw, "h")));
    report("rename-parent-of-hidden", rename(root, at(4, rw, "up")));
    report("symlink-trailing-slash", mkdir(at(3, rw, "to_hidden_dir/"), 0755));
    struct stat ts;
    report("stat-trailing-slash", stat(at(3, rw, "to_hidden_dir/"), &ts));
    /* Through an O_PATH descriptor of the hidden directory's parent. */
    int rootfd = open(root, O_PATH | O_DIRECTORY);
    report("dirfd-hidden", closing(openat(rootfd, "hidden/f", O_RDONLY)));
    struct stat st;
    report("fstatat-hidden", fstatat(rootfd, "hidden", &st, AT_SYMLINK_NOFOLLOW));
    /* The directory listing leaves hidden names out. */
    DIR *dir = opendir(root);
    int seen = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, "hidden") == 0) seen = 1;
    if (dir) closedir(dir);
    printf("listing-shows-hidden %s\n", seen ? "yes" : "no");
    (void)buf;
}

static const char *race_rw, *race_ro;
static volatile int stop;

static void *swapper(void *arg) {
    (void)arg;
    char tmp[4096], file[4096];
    snprintf(tmp, sizeof tmp, "%s/sw.tmp", race_rw);
    snprintf(file, sizeof file, "%s/sw.file", race_rw);
    char sw[4096];
    snprintf(sw, sizeof sw, "%s/sw", race_rw);
    char target[4096];
    snprintf(target, sizeof target, "%s/f", race_ro);
    while (!stop) {
        unlink(tmp);
        if (symlink(target, tmp) == 0) rename(tmp, sw);
        close(open(file, O_WRONLY | O_CREAT, 0644));
        link(file, tmp);
        rename(tmp, sw);
        unlink(file);
    }
    return NULL;
}

static void race(const char *root, int rounds) {
    static char rw[4096], ro[4096], sw[4096], f[4096];
    snprintf(rw, sizeof rw, "%s/rw", root);
    snprintf(ro, sizeof ro, "%s/ro", root);
    snprintf(sw, sizeof sw, "%s/sw", rw);
    snprintf(f, sizeof f, "%s/f", ro);
    race_rw = rw;
    race_ro = ro;
    struct stat before;
    stat(f, &before);
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    int opened = 0;
    for (int i = 0; i < rounds; i++) {
        int fd = open(sw, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            opened++;
            if (write(fd, "X", 1) != 1) { /* counted by size below */ }
            close(fd);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    struct stat after;
    stat(f, &after);
    printf("race opened %d\n", opened);
    printf("race ro-written %ld\n", (long)(after.st_size - before.st_size));
}

/* A thread swaps symlink RW/slink between a directory of RW and RO/d while the main thread
 * makes the no-follow calls that a trailing slash makes follow (utimensat with
 * AT_SYMLINK_NOFOLLOW, lsetxattr) on "slink/", N rounds. Prints how many of each succeeded,
 * and whether RO/d's times or attributes changed. */
#define SLASH_CHECK(c)                                                                       \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "slashrace: %s failed: %s\n", #c, strerror(errno));              \
            exit(3);                                                                         \
        }                                                                                    \
    } while (0)

static volatile int slash_stop;
static char slash_good[4096], slash_evil[4096], slash_link[4096], slash_tmp[4096];

static void *slash_swap(void *arg) {
    (void)arg;
    while (!slash_stop) {
        unlink(slash_tmp);
        if (symlink(slash_evil, slash_tmp) == 0) rename(slash_tmp, slash_link);
        unlink(slash_tmp);
        if (symlink(slash_good, slash_tmp) == 0) rename(slash_tmp, slash_link);
    }
    return NULL;
}

static void slashrace(const char *root, int rounds) {
    snprintf(slash_good, sizeof slash_good, "%s/rw/d", root);
    snprintf(slash_evil, sizeof slash_evil, "%s/ro/d", root);
    snprintf(slash_link, sizeof slash_link, "%s/rw/slink", root);
    snprintf(slash_tmp, sizeof slash_tmp, "%s/rw/slink.tmp", root);
    char with_slash[4200];
    snprintf(with_slash, sizeof with_slash, "%s/", slash_link);
    struct stat before;
    SLASH_CHECK(stat(slash_evil, &before) == 0);
    unlink(slash_link);
    SLASH_CHECK(symlink(slash_good, slash_link) == 0);
    pthread_t t;
    SLASH_CHECK(pthread_create(&t, NULL, slash_swap, NULL) == 0);
    struct timespec ts[2] = {{1234567890, 0}, {1234567890, 0}};
    int times = 0, attrs = 0;
    for (int i = 0; i < rounds; i++) {
        if (syscall(SYS_utimensat, AT_FDCWD, with_slash, ts, AT_SYMLINK_NOFOLLOW) == 0) times++;
        if (lsetxattr(with_slash, "user.fs_rules", "x", 1, 0) == 0) attrs++;
    }
    slash_stop = 1;
    pthread_join(t, NULL);
    struct stat after;
    SLASH_CHECK(stat(slash_evil, &after) == 0);
    printf("slashrace times-set %d\n", times);
    printf("slashrace ro-times-changed %d\n", after.st_mtime != before.st_mtime);
    printf("slashrace ro-attr-set %d\n", lgetxattr(slash_evil, "user.fs_rules", NULL, 0) >= 0);
    (void)attrs;
}

/* A thread (or, with "proc", a child process) swaps symlink RW/bsw between RW/d and RO/d
 * while the main thread binds a unix socket at RW/bsw/s, N rounds (each bound one removed
 * through RW/d). Prints how many binds succeeded and how many sockets reached RO/d. */
static volatile int bind_stop;
static char bind_good[4096], bind_evil[4096], bind_link[4096], bind_tmp[4096];

static void bind_swap_loop(void) {
    while (!bind_stop) {
        unlink(bind_tmp);
        if (symlink(bind_evil, bind_tmp) == 0) rename(bind_tmp, bind_link);
        unlink(bind_tmp);
        if (symlink(bind_good, bind_tmp) == 0) rename(bind_tmp, bind_link);
    }
}

static void *bind_swap(void *arg) {
    (void)arg;
    bind_swap_loop();
    return NULL;
}

static int fd_good, fd_evil;

static void *fd_flip(void *arg) {
    (void)arg;
    while (!bind_stop) {
        dup2(fd_evil, 50);
        dup2(fd_good, 50);
    }
    return NULL;
}

static void bindrace(const char *root, int rounds, int mode) {
    int as_process = mode == 1, by_fd = mode == 2;
    snprintf(bind_good, sizeof bind_good, "%s/rw/d", root);
    snprintf(bind_evil, sizeof bind_evil, "%s/ro/d", root);
    snprintf(bind_link, sizeof bind_link, "%s/rw/bsw", root);
    snprintf(bind_tmp, sizeof bind_tmp, "%s/rw/bsw.tmp", root);
    char path[4200], good[4200], evil[4200];
    snprintf(path, sizeof path, "%s/s", bind_link);
    if (by_fd) {
        /* The directory is reached through a magic link whose descriptor a thread swaps. */
        fd_good = open(bind_good, O_RDONLY | O_DIRECTORY);
        fd_evil = open(bind_evil, O_RDONLY | O_DIRECTORY);
        SLASH_CHECK(fd_good >= 0 && fd_evil >= 0 && dup2(fd_good, 50) == 50);
        snprintf(path, sizeof path, "/proc/self/fd/50/s");
    }
    snprintf(good, sizeof good, "%s/s", bind_good);
    snprintf(evil, sizeof evil, "%s/s", bind_evil);
    unlink(bind_link);
    SLASH_CHECK(symlink(bind_good, bind_link) == 0);
    pthread_t t;
    pid_t child = -1;
    if (as_process) {
        child = fork();
        SLASH_CHECK(child >= 0);
        if (child == 0) {
            for (;;) bind_swap_loop();
        }
    } else {
        SLASH_CHECK(pthread_create(&t, NULL, by_fd ? fd_flip : bind_swap, NULL) == 0);
    }
    int bound = 0, evil_seen = 0;
    struct stat st;
    for (int i = 0; i < rounds; i++) {
        if (unix_at(SOCK_STREAM, path, 1) == 0) bound++;
        unlink(good);
        if (lstat(evil, &st) == 0) evil_seen++;
    }
    if (as_process) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    } else {
        bind_stop = 1;
        pthread_join(t, NULL);
    }
    printf("bindrace bound %d\n", bound);
    printf("bindrace ro-sockets %d\n", evil_seen + (lstat(evil, &st) == 0));
}

/* Two sandboxes sharing ROOT/rw: "xswap ROOT" swaps directory ROOT/rw/xd with a symlink
 * ROOT/rw/xl to ROOT/ro/d (RENAME_EXCHANGE) until killed; "xbind ROOT N" binds ROOT/rw/xd/s
 * N times (each bound one removed through the same path), then prints "xbind bound K". */
static void xswap(const char *root) {
    char d[4096], l[4096], target[4096];
    snprintf(d, sizeof d, "%s/rw/xd", root);
    snprintf(l, sizeof l, "%s/rw/xl", root);
    snprintf(target, sizeof target, "%s/ro/d", root);
    mkdir(d, 0777);
    unlink(l);
    SLASH_CHECK(symlink(target, l) == 0);
    for (;;) {
        if (syscall(SYS_renameat2, AT_FDCWD, d, AT_FDCWD, l, 2 /* RENAME_EXCHANGE */) < 0) {
            perror("renameat2");
            exit(1);
        }
    }
}

static void xbind(const char *root, int rounds) {
    char path[4200];
    snprintf(path, sizeof path, "%s/rw/xd/s", root);
    int bound = 0;
    for (int i = 0; i < rounds; i++) {
        if (unix_at(SOCK_STREAM, path, 1) == 0) {
            bound++;
            unlink(path);
        }
    }
    printf("xbind bound %d\n", bound);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "calls") == 0) {
        calls(argv[2]);
    } else if (argc == 3 && strcmp(argv[1], "escape") == 0) {
        escape(argv[2]);
    } else if (argc == 4 && strcmp(argv[1], "race") == 0) {
        race(argv[2], atoi(argv[3]));
    } else if (argc == 4 && strcmp(argv[1], "slashrace") == 0) {
        slashrace(argv[2], atoi(argv[3]));
    } else if (argc == 3 && strcmp(argv[1], "xswap") == 0) {
        xswap(argv[2]);
    } else if (argc == 4 && strcmp(argv[1], "xbind") == 0) {
        xbind(argv[2], atoi(argv[3]));
    } else if (argc == 5 && strcmp(argv[1], "bindrace") == 0) {
        bindrace(argv[2], atoi(argv[3]), strcmp(argv[4], "proc") == 0 ? 1 : strcmp(argv[4], "fd") == 0 ? 2 : 0);
    } else {
        fprintf(stderr, "usage: fs_rules calls AREA | escape ROOT | race ROOT N | slashrace ROOT N | bindrace ROOT N thread|proc\n");
        return 2;
    }
    return 0;
}

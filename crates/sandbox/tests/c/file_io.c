/* File and directory I/O through the common system calls. Runs in an empty working directory
 * and leaves a small tree there (kept/, b.txt, link) for the harness to compare. */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static const char *kind(mode_t m) {
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "symlink";
    if (S_ISFIFO(m)) return "fifo";
    return "other";
}

static void show_stat(const char *path, int follow) {
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r != 0) {
        printf("%s %s: -1 %s\n", follow ? "stat" : "lstat", path, errname(errno));
        return;
    }
    /* Directory sizes depend on the file system, not the program: print them only for files. */
    printf("%s %s: %s mode %04o nlink %lu", follow ? "stat" : "lstat", path, kind(st.st_mode),
           (unsigned)(st.st_mode & 07777), (unsigned long)st.st_nlink);
    if (!S_ISDIR(st.st_mode)) printf(" size %lld", (long long)st.st_size);
    printf("\n");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a directory through opendir/readdir (getdents64), sorted, with lstat data. */
static void list_dir(const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    char *names[64];
    int n = 0;
    struct dirent *e;
    int saw_dot = 0, saw_dotdot = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0) { saw_dot = 1; continue; }
        if (strcmp(e->d_name, "..") == 0) { saw_dotdot = 1; continue; }
        CHECK(n < 64);
        names[n] = strdup(e->d_name);
        CHECK(names[n] != NULL);
        n++;
    }
    CHECK(closedir(d) == 0);
    qsort(names, n, sizeof names[0], cmp_str);
    printf("listing %s: %d entries (dot %d, dotdot %d)\n", dir, n, saw_dot, saw_dotdot);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        printf("  ");
        show_stat(path, 0);
        free(names[i]);
    }
}

static void write_file(const char *path, size_t size, int seed) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char buf[1000];
    size_t done = 0;
    while (done < size) {
        size_t n = size - done < sizeof buf ? size - done : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + (done + i + seed) % 26);
        CHECK(write(fd, buf, n) == (ssize_t)n);
        done += n;
    }
    CHECK(close(fd) == 0);
}

int main(void) {
    char start[4096];
    CHECK(getcwd(start, sizeof start) != NULL);
    umask(022);

    /* Create, write, read back, lseek. The first descriptor must be 3, the lowest free one,
     * as natively: a runtime descriptor (e.g. /dev/kvm) visible to the program would take it. */
    int fd = open("a.txt", O_CREAT | O_EXCL | O_RDWR, 0666);
    CHECK(fd >= 0);
    printf("first open gives descriptor 3: %d\n", fd == 3);
    result("open O_EXCL again", open("a.txt", O_CREAT | O_EXCL | O_RDWR, 0666));
    const char *msg = "hello, sandbox\n";
    result("write", write(fd, msg, strlen(msg)));
    result("lseek cur", lseek(fd, 0, SEEK_CUR));
    result("lseek set 0", lseek(fd, 0, SEEK_SET));
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    result("read", n);
    printf("read back: %.*s", (int)n, buf);
    result("read at eof", read(fd, buf, sizeof buf));
    result("lseek end", lseek(fd, 0, SEEK_END));
    result("lseek end+100", lseek(fd, 100, SEEK_END));
    result("write past end", write(fd, "Z", 1));
    result("lseek negative", lseek(fd, -1000, SEEK_SET));

    /* pread/pwrite do not move the offset. */
    result("lseek set 3", lseek(fd, 3, SEEK_SET));
    result("pwrite", pwrite(fd, "XY", 2, 7));
    memset(buf, 0, sizeof buf);
    result("pread", pread(fd, buf, 16, 0));
    printf("pread data: %.16s\n", buf);
    result("offset after pread/pwrite", lseek(fd, 0, SEEK_CUR));

    /* writev/readv with uneven pieces. */
    struct iovec wv[3] = {{"one-", 4}, {"two-two-", 8}, {"three\n", 6}};
    result("lseek 0", lseek(fd, 0, SEEK_SET));
    result("writev", writev(fd, wv, 3));
    char r1[3], r2[10], r3[5];
    struct iovec rv[3] = {{r1, sizeof r1}, {r2, sizeof r2}, {r3, sizeof r3}};
    result("lseek 0", lseek(fd, 0, SEEK_SET));
    result("readv", readv(fd, rv, 3));
    printf("readv pieces: [%.3s] [%.10s] [%.5s]\n", r1, r2, r3);

    /* ftruncate down and up; fstat follows. */
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    printf("fstat size %lld mode %04o nlink %lu %s\n", (long long)st.st_size,
           (unsigned)(st.st_mode & 07777), (unsigned long)st.st_nlink, kind(st.st_mode));
    result("ftruncate 10", ftruncate(fd, 10));
    CHECK(fstat(fd, &st) == 0);
    printf("size after ftruncate 10: %lld\n", (long long)st.st_size);
    result("ftruncate 100000", ftruncate(fd, 100000));
    CHECK(fstat(fd, &st) == 0);
    printf("size after ftruncate 100000: %lld\n", (long long)st.st_size);
    memset(buf, 1, sizeof buf);
    result("pread tail", pread(fd, buf, 100, 99900));
    int zeros = 1;
    for (int i = 0; i < 100; i++) zeros &= buf[i] == 0;
    printf("tail is zero: %d\n", zeros);
    result("fsync", fsync(fd));
    result("fdatasync", fdatasync(fd));
    result("ftruncate 18", ftruncate(fd, 18));

    /* dup shares the offset; fcntl flags. */
    int fd2 = dup(fd);
    CHECK(fd2 >= 0);
    result("lseek fd 5", lseek(fd, 5, SEEK_SET));
    result("offset via dup", lseek(fd2, 0, SEEK_CUR));
    result("F_GETFD", fcntl(fd2, F_GETFD));
    result("F_SETFD", fcntl(fd2, F_SETFD, FD_CLOEXEC));
    result("F_GETFD", fcntl(fd2, F_GETFD));
    result("F_GETFL accmode", fcntl(fd, F_GETFL) & O_ACCMODE);
    result("close dup", close(fd2));
    result("close", close(fd));
    result("close again", close(fd));
    result("read closed", read(fd, buf, 1));

    /* O_APPEND always writes at the end. */
    fd = open("a.txt", O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    result("lseek 0 (append)", lseek(fd, 0, SEEK_SET));
    result("append", write(fd, "END\n", 4));
    CHECK(close(fd) == 0);
    show_stat("a.txt", 1);

    /* rename, access, hard link, unlink. */
    result("rename", rename("a.txt", "b.txt"));
    result("access a.txt", access("a.txt", F_OK));
    result("access b.txt rw", access("b.txt", R_OK | W_OK));
    result("link", link("b.txt", "c.txt"));
    show_stat("b.txt", 1);
    result("unlink c.txt", unlink("c.txt"));
    show_stat("b.txt", 1);
    result("unlink missing", unlink("c.txt"));
    result("open missing", open("nope/none", O_RDONLY));

    /* Directories. */
    result("mkdir d", mkdir("d", 0777));
    result("mkdir d again", mkdir("d", 0777));
    result("mkdir d/e", mkdir("d/e", 0700));
    for (int i = 1; i <= 5; i++) {
        char p[64];
        snprintf(p, sizeof p, "d/f%d", i);
        write_file(p, (size_t)i * 1111, i);
    }
    result("chmod d/f3", chmod("d/f3", 0600));
    result("mkfifo d/pipe", mkfifo("d/pipe", 0640));
    show_stat("d", 1);
    list_dir("d");
    result("rmdir non-empty", rmdir("d"));
    result("rmdir file", rmdir("d/f1"));
    result("unlink dir", unlink("d/e"));

    /* *at variants relative to a directory descriptor. */
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    fd = openat(dfd, "g", O_CREAT | O_WRONLY, 0640);
    result("openat ok", fd < 0 ? -1 : 0);
    result("write g", write(fd, "gee\n", 4));
    CHECK(close(fd) == 0);
    CHECK(fstatat(dfd, "g", &st, AT_SYMLINK_NOFOLLOW) == 0);
    printf("fstatat g: size %lld mode %04o\n", (long long)st.st_size,
           (unsigned)(st.st_mode & 07777));
    result("mkdirat", mkdirat(dfd, "h", 0755));
    result("renameat", renameat(dfd, "g", dfd, "h/g"));
    result("unlinkat dir", unlinkat(dfd, "e", AT_REMOVEDIR));
    result("faccessat", faccessat(dfd, "h/g", R_OK, 0));
    list_dir("d");

    /* Symbolic links. */
    result("symlink", symlink("b.txt", "link"));
    result("symlink dangling", symlink("does/not/exist", "dangling"));
    char target[256];
    n = readlink("link", target, sizeof target);
    result("readlink", n);
    printf("readlink: %.*s\n", (int)(n > 0 ? n : 0), target);
    result("readlink file", readlink("b.txt", target, sizeof target));
    show_stat("link", 0);
    show_stat("link", 1);
    show_stat("dangling", 1);
    result("unlink dangling", unlink("dangling"));

    /* chdir/fchdir/getcwd, printed relative to the start directory. */
    char cwd[4096];
    size_t base = strlen(start);
    result("chdir d/h", chdir("d/h"));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    printf("cwd: .%s (prefix ok %d)\n", cwd + base, strncmp(cwd, start, base) == 0);
    fd = open("g", O_RDONLY);
    result("open relative ok", fd < 0 ? -1 : 0);
    n = read(fd, buf, sizeof buf);
    printf("g via relative path: %.*s", (int)(n > 0 ? n : 0), buf);
    CHECK(close(fd) == 0);
    result("chdir ../..", chdir("../.."));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    printf("back at start: %d\n", strcmp(cwd, start) == 0);
    result("fchdir d", fchdir(dfd));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    printf("cwd: .%s\n", cwd + base);
    result("chdir missing", chdir("missing"));
    result("chdir file", chdir("f1"));
    CHECK(chdir(start) == 0);
    CHECK(close(dfd) == 0);
    char small[2];
    result("getcwd small buffer", getcwd(small, sizeof small) == NULL ? -1 : 0);

    /* Clean up part of it, keep the rest for the tree comparison. */
    result("rename d kept", rename("d", "kept"));
    result("unlink kept/f5", unlink("kept/f5"));
    result("unlink kept/pipe", unlink("kept/pipe"));
    result("mkdir tmpdir", mkdir("tmpdir", 0755));
    result("rmdir tmpdir", rmdir("tmpdir"));
    list_dir(".");
    printf("done\n");
    return 0;
}

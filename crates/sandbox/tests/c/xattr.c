/* Extended attributes in the working directory: the writes (setxattr, lsetxattr, fsetxattr,
 * removexattr and friends, setxattrat/removexattrat), their Linux errors (EEXIST, ENODATA,
 * EINVAL for flags, ERANGE for names, E2BIG for values, EPERM for user.* on a symlink), and
 * the reads that show what was written. One line per call: "<call>: <result> [value]". */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif

struct xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void show(const char *what, long r, const char *v) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld \"%.*s\"\n", what, r, (int)r, v);
}

/* The names listxattr returns, sorted (the order is the filesystem's). */
static void list(const char *what, long n, char *buf) {
    if (n < 0) {
        printf("%s: %s\n", what, errname(errno));
        return;
    }
    const char *names[32];
    int k = 0;
    for (char *p = buf; p < buf + n && k < 32; p += strlen(p) + 1) names[k++] = p;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (strcmp(names[j], names[i]) < 0) {
                const char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    printf("%s: %ld", what, n);
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
}

int main(void) {
    int fd = open("f", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(symlink("f", "l") == 0);
    char buf[256], lbuf[1024];

    res("setxattr user.a", setxattr("f", "user.a", "hello", 5, 0));
    show("getxattr user.a", getxattr("f", "user.a", buf, sizeof buf), buf);
    res("setxattr XATTR_CREATE existing", setxattr("f", "user.a", "x", 1, XATTR_CREATE));
    res("setxattr XATTR_REPLACE missing", setxattr("f", "user.b", "x", 1, XATTR_REPLACE));
    res("setxattr XATTR_REPLACE", setxattr("f", "user.a", "replaced", 8, XATTR_REPLACE));
    show("getxattr user.a", getxattr("f", "user.a", buf, sizeof buf), buf);
    res("setxattr bad flags", setxattr("f", "user.a", "x", 1, 4));
    res("setxattr empty name", setxattr("f", "", "x", 1, 0));
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[sizeof longname - 1] = 0;
    res("setxattr long name", setxattr("f", longname, "x", 1, 0));
    static char big[65537];
    res("setxattr 65537 bytes", setxattr("f", "user.big", big, sizeof big, 0));
    res("setxattr 65536 bytes", setxattr("f", "user.big", big, 65536, 0));
    res("getxattr user.big size", getxattr("f", "user.big", NULL, 0));
    res("setxattr empty value", setxattr("f", "user.empty", NULL, 0, 0));
    res("getxattr user.empty", getxattr("f", "user.empty", buf, sizeof buf));
    res("setxattr missing file", setxattr("missing", "user.a", "x", 1, 0));
    res("lsetxattr symlink", lsetxattr("l", "user.x", "x", 1, 0));
    res("setxattr through symlink", setxattr("l", "user.through", "t", 1, 0));
    res("fsetxattr", fsetxattr(fd, "user.fd", "by fd", 5, 0));
    show("fgetxattr", fgetxattr(fd, "user.fd", buf, sizeof buf), buf);
    list("listxattr", listxattr("f", lbuf, sizeof lbuf), lbuf);

    res("removexattr user.a", removexattr("f", "user.a"));
    res("removexattr user.a again", removexattr("f", "user.a"));
    res("lremovexattr symlink", lremovexattr("l", "user.x"));
    res("removexattr long name", removexattr("f", longname));
    res("fremovexattr", fremovexattr(fd, "user.fd"));
    res("fremovexattr bad fd", fremovexattr(-1, "user.fd"));

    struct xattr_args args = {(uint64_t)(uintptr_t) "at value", 8, 0};
    res("setxattrat", syscall(SYS_setxattrat, AT_FDCWD, "f", 0, "user.at", &args, sizeof args));
    memset(buf, 0, sizeof buf);
    struct xattr_args get = {(uint64_t)(uintptr_t)buf, sizeof buf, 0};
    show("getxattrat", syscall(SYS_getxattrat, AT_FDCWD, "f", 0, "user.at", &get, sizeof get), buf);
    res("setxattrat short args", syscall(SYS_setxattrat, AT_FDCWD, "f", 0, "user.at", &args, 8));
    struct {
        struct xattr_args a;
        uint64_t extra;
    } longer = {{(uint64_t)(uintptr_t) "v", 1, 0}, 1};
    res("setxattrat non-zero tail",
        syscall(SYS_setxattrat, AT_FDCWD, "f", 0, "user.at", &longer, sizeof longer));
    longer.extra = 0;
    res("setxattrat zero tail",
        syscall(SYS_setxattrat, AT_FDCWD, "f", 0, "user.tail", &longer, sizeof longer));
    args.flags = XATTR_CREATE;
    res("setxattrat XATTR_CREATE existing",
        syscall(SYS_setxattrat, AT_FDCWD, "f", 0, "user.at", &args, sizeof args));
    args.flags = 0;
    res("setxattrat AT_EMPTY_PATH",
        syscall(SYS_setxattrat, fd, "", AT_EMPTY_PATH, "user.empty_path", &args, sizeof args));
    res("setxattrat bad at_flags", syscall(SYS_setxattrat, AT_FDCWD, "f", 0x4, "user.at", &args, sizeof args));
    res("listxattrat", syscall(SYS_listxattrat, AT_FDCWD, "f", 0, lbuf, sizeof lbuf));
    list("listxattr", listxattr("f", lbuf, sizeof lbuf), lbuf);
    res("removexattrat", syscall(SYS_removexattrat, AT_FDCWD, "f", 0, "user.at"));
    res("removexattrat again", syscall(SYS_removexattrat, AT_FDCWD, "f", 0, "user.at"));
    list("listxattr", listxattr("f", lbuf, sizeof lbuf), lbuf);
    CHECK(close(fd) == 0);
    printf("done\n");
    return 0;
}

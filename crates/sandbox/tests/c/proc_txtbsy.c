/* The running executable cannot be written (open(2): ETXTBSY "pathname refers to an executable
 * image which is currently being executed and write access was requested"): opening it for
 * writing, with O_TRUNC, or truncate(2) fail; reading it and writing a copy work; a forked
 * child is refused too. The program keeps running with its text intact. It works on a copy of
 * itself in the working directory, which it executes first (so a failure cannot damage the
 * test binary). */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self;

static void try_open(const char *what, const char *path, int flags) {
    int fd = open(path, flags);
    printf("%s: %s\n", what, fd >= 0 ? "ok" : errname(errno));
    if (fd >= 0) close(fd);
}

static void all(const char *who) {
    char what[64];
    snprintf(what, sizeof what, "%s: open O_WRONLY", who);
    try_open(what, self, O_WRONLY);
    snprintf(what, sizeof what, "%s: open O_RDWR", who);
    try_open(what, self, O_RDWR);
    snprintf(what, sizeof what, "%s: open O_RDONLY|O_TRUNC", who);
    try_open(what, self, O_RDONLY | O_TRUNC);
    snprintf(what, sizeof what, "%s: open O_RDONLY", who);
    try_open(what, self, O_RDONLY);
    printf("%s: truncate: %s\n", who, truncate(self, 0) == 0 ? "ok" : errname(errno));
    fflush(stdout);
}

/* Copies file `from` to `to` (mode 0755). */
static void copy(const char *from, const char *to) {
    char buf[4096];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) CHECK(write(out, buf, n) == n);
    close(in);
    close(out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        copy(argv[0], "running");
        execl("./running", "./running", "check", (char *)NULL);
        perror("execl");
        return 1;
    }
    self = argv[0];
    all("parent");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        all("child");
        _exit(0);
    }
    CHECK(waitpid(pid, NULL, 0) == pid);
    /* A copy is an ordinary file. */
    copy(self, "copy");
    try_open("copy: open O_WRONLY", "copy", O_WRONLY);
    printf("copy: truncate: %s\n", truncate("copy", 0) == 0 ? "ok" : errname(errno));
    puts("done");
    return 0;
}

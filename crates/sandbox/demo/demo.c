/* The demo `cargo xtask run` shows: an ordinary static Linux program that says what it sees.
 * Under `sandbox run` it runs in guest ring 3 of a KVM VM, and every system call below goes
 * through the supervisor, which checks it and forwards it to Linux.
 * Build: gcc -static -O2 -o demo demo.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int calls; /* a rough count of the system calls made on purpose */

static void fail(const char *what) {
    fprintf(stderr, "demo: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    printf("Hello from inside the sandbox!\n");

    struct utsname u;
    if (uname(&u) != 0) fail("uname");
    calls++;
    printf("  kernel:     %s %s (%s)\n", u.sysname, u.release, u.machine);

    printf("  pid:        %ld (parent %ld)\n", (long)getpid(), (long)getppid());
    calls += 2;

    time_t now = time(NULL);
    calls++;
    char when[64];
    if (!ctime_r(&now, when)) snprintf(when, sizeof when, "(unknown)\n");
    printf("  time:       %s", when);

    printf("  page size:  %ld bytes\n", sysconf(_SC_PAGESIZE));

    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) {
        calls++;
        printf("  cwd:        %s\n", cwd);
    }

    printf("  argc:       %d\n", argc);
    for (int i = 0; i < argc; i++) printf("  argv[%d]:    %s\n", i, argv[i]);

    /* A file: write, read back, remove. Here if writable, else in /tmp. */
    char path[256];
    snprintf(path, sizeof path, "sandbox-demo-%ld.txt", (long)getpid());
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        snprintf(path, sizeof path, "/tmp/sandbox-demo-%ld.txt", (long)getpid());
        fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    }
    if (fd < 0) fail("open");
    calls++;
    const char *msg = "written by the demo, read back through the supervisor";
    if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) fail("write");
    if (lseek(fd, 0, SEEK_SET) != 0) fail("lseek");
    char buf[128] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) fail("read");
    struct stat st;
    if (fstat(fd, &st) != 0) fail("fstat");
    close(fd);
    unlink(path);
    calls += 6;
    printf("  file:       %s (%lld bytes)\n", path, (long long)st.st_size);
    printf("  wrote:      %s\n", msg);
    printf("  read back:  %.*s\n", (int)n, buf);
    printf("  same:       %s\n", strcmp(msg, buf) == 0 ? "yes" : "NO");

    /* Some memory from the kernel. */
    size_t size = 8 << 20;
    char *mem = malloc(size);
    if (!mem) fail("malloc");
    memset(mem, 0x2a, size);
    long sum = 0;
    for (size_t i = 0; i < size; i += 4096) sum += mem[i];
    free(mem);
    calls += 2;
    printf("  memory:     touched %zu MiB (check %ld)\n", size >> 20, sum);

    calls++; /* the write(2) of all this output, at least */
    printf("done: %d system calls' worth of normal Linux, inside a KVM guest\n", calls);
    return 0;
}

/* switchless_burst FILE [threads]
 *
 * Bursts of the calls a switchless server may serve, interleaved with ones it must not, under
 * a 1 ms interval timer whose handler makes system calls of its own (so some arrive while the
 * main flow's call is posted and not yet answered). Prints what a program can check: the
 * FNV-1a hash of FILE read in 4 KiB blocks three ways (read, pread64, lseek+read), fstat
 * sizes, getppid/getpid consistency, a pipe round trip in every block (never served by the
 * server), monotonic time never going back, and whether the handler ran. Natively and in
 * the sandbox the output must be the same (except "handler ran" counts, printed as yes/no).
 * With "threads", it then prints the names of its process's threads as it sees them
 * (/proc/self/task/N/comm: only the program's, in the sandbox too), then "waiting", and waits
 * for stdin to close (the harness looks at the sandbox's real threads meanwhile). */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static volatile long handler_bad;

static void on_alarm(int sig) {
    (void)sig;
    struct timespec t;
    if (syscall(SYS_getppid) <= 0) handler_bad++;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) handler_bad++;
    handled++;
}

static unsigned long long fnv(unsigned long long h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int main(int argc, char **argv) {
    CHECK(argc == 2 || (argc == 3 && strcmp(argv[2], "threads") == 0));
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, 0) == 0);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    CHECK(setitimer(ITIMER_REAL, &it, 0) == 0);
    int fd = open(argv[1], O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t ppid = getppid(), pid = getpid();
    static unsigned char buf[4096];
    unsigned long long h1 = FNV_INIT, h2 = FNV_INIT, h3 = FNV_INIT;
    long blocks = 0, bad = 0;
    struct timespec last = {0, 0};
    for (int round = 0; round < 3; round++) {
        off_t off = 0;
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        for (;;) {
            ssize_t n;
            if (round == 0) {
                n = read(fd, buf, sizeof buf);
            } else if (round == 1) {
                n = pread(fd, buf, sizeof buf, off);
            } else {
                CHECK(lseek(fd, off, SEEK_SET) == off);
                n = read(fd, buf, sizeof buf);
            }
            if (n < 0 && errno == EINTR) continue;
            CHECK(n >= 0);
            if (n == 0) break;
            off += n;
            unsigned long long *h = round == 0 ? &h1 : round == 1 ? &h2 : &h3;
            *h = fnv(*h, buf, (size_t)n);
            blocks++;
            struct stat s2;
            if (fstat(fd, &s2) != 0 || s2.st_size != st.st_size) bad++;
            if (getppid() != ppid || getpid() != pid) bad++;
            struct timespec now;
            CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0);
            if (now.tv_sec < last.tv_sec || (now.tv_sec == last.tv_sec && now.tv_nsec < last.tv_nsec))
                bad++;
            last = now;
            if ((blocks & 15) == 0) {
                char c = (char)blocks;
                CHECK(write(p[1], &c, 1) == 1);
                char d;
                ssize_t r;
                while ((r = read(p[0], &d, 1)) < 0 && errno == EINTR) {
                }
                if (r != 1 || d != c) bad++;
            }
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, 0) == 0);
    printf("size %lld blocks %ld\n", (long long)st.st_size, blocks);
    printf("hash read %016llx\n", h1);
    printf("hash pread %016llx\n", h2);
    printf("hash lseek %016llx\n", h3);
    printf("all three equal %d\n", h1 == h2 && h2 == h3);
    printf("inconsistencies %ld handler errors %ld\n", bad, handler_bad);
    printf("handler ran %s\n", handled > 0 ? "yes" : "no");
    if (argc == 3) {
        DIR *d = opendir("/proc/self/task");
        CHECK(d);
        struct dirent *e;
        printf("threads:");
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[300], name[32] = {0};
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
            int f = open(path, O_RDONLY);
            if (f < 0) continue;
            ssize_t n = read(f, name, sizeof name - 1);
            close(f);
            if (n > 0 && name[n - 1] == '\n') name[n - 1] = 0;
            printf(" %s", name);
        }
        closedir(d);
        printf("\nwaiting\n");
        fflush(stdout);
        char b;
        while (read(0, &b, 1) > 0) {
        }
    }
    return 0;
}

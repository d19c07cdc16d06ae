/* What a program sees of the system, in forms equal natively and sandboxed: no raw pids or
 * times, only properties. argv[1] is the test's clock (seconds since the epoch). */
#define _GNU_SOURCE
#include "common.h"

#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    CHECK(argc == 2);
    long long test_clock = atoll(argv[1]);
    struct utsname u;
    CHECK(uname(&u) == 0);
    printf("sysname: %s\n", u.sysname);
    printf("machine: %s\n", u.machine);
    printf("getpid() > 0: %d\n", getpid() > 0);
    printf("getpid() == raw gettid: %d\n", getpid() == (pid_t)syscall(SYS_gettid));
    printf("getppid() > 0: %d\n", getppid() > 0);
    printf("uid %u euid %u gid %u egid %u\n", (unsigned)getuid(), (unsigned)geteuid(),
           (unsigned)getgid(), (unsigned)getegid());

    time_t now = time(NULL);
    long long d = (long long)now - test_clock;
    printf("time() within a minute of the test's clock: %d\n", d > -60 && d < 60);
    struct timespec rt, mono1, mono2;
    CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0);
    printf("CLOCK_REALTIME agrees with time(): %d\n", rt.tv_sec - now >= 0 && rt.tv_sec - now < 5);
    struct timeval tv;
    CHECK(gettimeofday(&tv, NULL) == 0);
    printf("gettimeofday agrees: %d\n", tv.tv_sec - now >= 0 && tv.tv_sec - now < 5);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &mono1) == 0);
    struct timespec nap = {0, 2000000};
    CHECK(nanosleep(&nap, NULL) == 0);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &mono2) == 0);
    long long ns = (mono2.tv_sec - mono1.tv_sec) * 1000000000LL + (mono2.tv_nsec - mono1.tv_nsec);
    printf("monotonic clock advanced at least 2 ms over nanosleep: %d\n", ns >= 2000000);

    printf("sysconf page size: %ld\n", sysconf(_SC_PAGESIZE));
    printf("AT_PAGESZ: %lu\n", getauxval(AT_PAGESZ));
    printf("AT_RANDOM present: %d\n", getauxval(AT_RANDOM) != 0);
    printf("AT_PHDR present: %d\n", getauxval(AT_PHDR) != 0);
    printf("AT_ENTRY present: %d\n", getauxval(AT_ENTRY) != 0);
    printf("AT_UID matches: %d\n", getauxval(AT_UID) == (unsigned long)getuid());
    printf("AT_SECURE: %lu\n", getauxval(AT_SECURE));
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    const char *base = execfn ? strrchr(execfn, '/') : NULL;
    printf("AT_EXECFN basename: %s\n", base ? base + 1 : "(none)");

    unsigned char rnd[64];
    printf("getrandom: %ld\n", (long)getrandom(rnd, sizeof rnd, 0));
    struct rlimit rl;
    printf("getrlimit(RLIMIT_NOFILE): %d\n", getrlimit(RLIMIT_NOFILE, &rl));
    char cwd[4096];
    printf("getcwd works: %d\n", getcwd(cwd, sizeof cwd) != NULL && cwd[0] == '/');
    printf("isatty(stdout): %d\n", isatty(1));
    printf("done\n");
    return 0;
}

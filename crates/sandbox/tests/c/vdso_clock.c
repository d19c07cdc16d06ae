/* The clocks through the vDSO against the host's clocks through the system call.
 *
 * Each libc call (clock_gettime, gettimeofday, time: the vDSO where there is one) is read
 * between two raw system calls of the same clock, which the sandbox forwards to the host; it
 * must lie between them. The monotonic clock never goes backwards, in one thread, across
 * threads, in a forked child and after execve. Output is deterministic (properties only).
 *
 * Modes: no argument runs every check; `burst N` makes N clock_gettime calls through libc and
 * nothing else (the test counts how many reach the supervisor); `exec` is the re-executed
 * image's check; `quick` runs every check with fewer iterations (the VT-x rig, where Bochs makes
 * each exit cost ~150 us). */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int rounds = 2000, reads = 200000;

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static long long raw_clock(clockid_t c) {
    struct timespec t;
    CHECK(syscall(SYS_clock_gettime, c, &t) == 0);
    return ns(t);
}

static long long libc_clock(clockid_t c) {
    struct timespec t;
    CHECK(clock_gettime(c, &t) == 0);
    return ns(t);
}

static void between(const char *name, clockid_t c) {
    int bad = 0;
    for (int i = 0; i < rounds; i++) {
        long long a = raw_clock(c), v = libc_clock(c), b = raw_clock(c);
        if (!(a <= v && v <= b)) {
            if (bad++ < 3)
                fprintf(stderr, "%s: %lld not in [%lld, %lld]\n", name, v, a, b);
        }
    }
    printf("%s between the host's readings: %d\n", name, bad == 0);
}

static void monotonic_forward(const char *what, long long from) {
    long long last = from;
    int back = 0;
    for (int i = 0; i < reads; i++) {
        long long now = libc_clock(CLOCK_MONOTONIC);
        back += now < last;
        last = now;
    }
    printf("monotonic never backwards (%s): %d\n", what, back == 0);
}

static void *thread_main(void *arg) {
    monotonic_forward("thread", *(long long *)arg);
    return NULL;
}

static int has_vdso(void) {
    const unsigned char *e = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    return e && memcmp(e, "\177ELF", 4) == 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "burst") == 0) {
        long n = atol(argv[2]);
        long long first = libc_clock(CLOCK_MONOTONIC), last = first;
        for (long i = 0; i < n; i++)
            last = libc_clock(CLOCK_MONOTONIC);
        CHECK(last >= first);
        printf("vdso: %d\n", has_vdso());
        return 0;
    }
    if (argc >= 2 && strcmp(argv[argc - 1], "quick") == 0) {
        rounds = 50;
        reads = 2000;
        argc--;
    }
    if (argc == 3 && strcmp(argv[1], "exec") == 0) {
        printf("after execve, vdso: %d\n", has_vdso());
        monotonic_forward("after execve", atoll(argv[2]));
        between("CLOCK_REALTIME after execve", CLOCK_REALTIME);
        printf("done\n");
        return 0;
    }
    printf("vdso: %d\n", has_vdso());
    between("CLOCK_REALTIME", CLOCK_REALTIME);
    between("CLOCK_MONOTONIC", CLOCK_MONOTONIC);
    between("CLOCK_BOOTTIME", CLOCK_BOOTTIME);
    between("CLOCK_MONOTONIC_RAW", CLOCK_MONOTONIC_RAW);
    between("CLOCK_TAI", CLOCK_TAI);
    between("CLOCK_REALTIME_COARSE", CLOCK_REALTIME_COARSE);
    between("CLOCK_MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE);

    int bad = 0;
    for (int i = 0; i < rounds; i++) {
        struct timeval a, v, b;
        CHECK(syscall(SYS_gettimeofday, &a, NULL) == 0);
        CHECK(gettimeofday(&v, NULL) == 0);
        CHECK(syscall(SYS_gettimeofday, &b, NULL) == 0);
        long long x = a.tv_sec * 1000000LL + a.tv_usec, y = v.tv_sec * 1000000LL + v.tv_usec,
                  z = b.tv_sec * 1000000LL + b.tv_usec;
        bad += !(x <= y && y <= z);
        time_t t0 = syscall(SYS_time, NULL), t = time(NULL), t1 = syscall(SYS_time, NULL);
        bad += !(t0 <= t && t <= t1);
    }
    printf("gettimeofday and time between the host's readings: %d\n", bad == 0);

    unsigned cpu = 99999, node = 99999;
    CHECK(getcpu(&cpu, &node) == 0);
    printf("getcpu in range: %d\n", cpu < (unsigned)sysconf(_SC_NPROCESSORS_CONF) && node < 1024);

    struct timespec res;
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0);
    printf("clock_getres(CLOCK_MONOTONIC) in (0, 1 ms]: %d\n",
           ns(res) > 0 && ns(res) <= 1000000);

    /* The mappings, as /proc/self/maps names them; the data pages cannot be made writable. */
    FILE *m = fopen("/proc/self/maps", "r");
    CHECK(m != NULL);
    char line[512];
    unsigned long vvar = 0, vvar_end = 0;
    int vdso_named = 0;
    while (fgets(line, sizeof line, m)) {
        if (strstr(line, "[vdso]"))
            vdso_named = 1;
        if (strstr(line, "[vvar]")) {
            char *dash;
            vvar = strtoul(line, &dash, 16);
            vvar_end = strtoul(dash + 1, NULL, 16);
        }
    }
    fclose(m);
    printf("maps names [vdso] and [vvar]: %d\n", vdso_named && vvar != 0);
    if (vvar) {
        int r = mprotect((void *)vvar, 4096, PROT_READ | PROT_WRITE);
        printf("mprotect([vvar], PROT_WRITE): %s\n", r == 0 ? "0" : errname(errno));
        r = mprotect((void *)vvar, 4096, PROT_READ | PROT_EXEC);
        printf("mprotect([vvar], PROT_EXEC): %s\n", r == 0 ? "0" : errname(errno));
        if (vvar_end - vvar > 4096) {
            r = munmap((void *)vvar, 4096);
            printf("munmap of part of [vvar]: %s\n", r == 0 ? "0" : errname(errno));
            r = mprotect((void *)vvar, 4096, PROT_NONE);
            printf("mprotect of part of [vvar]: %s\n", r == 0 ? "0" : errname(errno));
        }
    }

    if (vvar) {
        /* New memory mapped over the data pages (in a child: its clocks read it afterwards)
         * is what the program reads there, not the data pages. */
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
            size_t n = vvar_end - vvar;
            (void)libc_clock(CLOCK_MONOTONIC); /* the data pages are in the child's TLB */
            (void)*(volatile unsigned char *)vvar; /* the time data: the first page */
            unsigned char *q = mmap((void *)vvar, n, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            CHECK(q == (void *)vvar);
            int same = 1;
            for (size_t i = 0; i < n; i++) /* read first: fresh memory is zero */
                same &= q[i] == 0;
            memset(q, 0x5a, n);
            for (size_t i = 0; i < n; i++)
                same &= q[i] == 0x5a;
            CHECK(munmap(q, n) == 0);
            q = mmap((void *)vvar, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            CHECK(q == (void *)vvar);
            for (size_t i = 0; i < n; i++)
                same &= q[i] == 0;
            printf("memory mapped over [vvar] reads as written: %d\n", same);
            _exit(0);
        }
        int st;
        CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    monotonic_forward("one thread", libc_clock(CLOCK_MONOTONIC));
    long long before = libc_clock(CLOCK_MONOTONIC);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, &before) == 0);
    CHECK(pthread_join(th, NULL) == 0);

    before = libc_clock(CLOCK_MONOTONIC);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        printf("in the child, vdso: %d\n", has_vdso());
        monotonic_forward("forked child", before);
        between("CLOCK_REALTIME in the child", CLOCK_REALTIME);
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    before = libc_clock(CLOCK_MONOTONIC);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%lld", before);
        execl("/proc/self/exe", argv[0], "exec", arg, rounds == 50 ? "quick" : NULL, (char *)NULL);
        _exit(127);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
}

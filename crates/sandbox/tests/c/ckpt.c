/* Checkpoint/restore test programs in the style of CRIU's zdtm (tests/checkpoint.rs): each
 * scenario (argv[1]) sets up its state, prints "ready", then waits until a file "go" exists
 * in its working directory. The harness checkpoints it while it waits (the original run never
 * sees "go"), creates "go", and restores the image: the program then checks its state and
 * prints "pass", or "FAIL: ..." with exit status 1. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        printf("FAIL: ");                                                                    \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        exit(1);                                                                             \
    } while (0)

static void ready(void) {
    printf("ready\n");
    fflush(stdout);
}

static int go(void) { return access("go", F_OK) == 0; }

static void nap(void) {
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Waits for "go" in syscalls (nanosleep, access). */
static void wait_go(void) {
    while (!go())
        nap();
}

static void pass(void) {
    printf("pass\n");
    fflush(stdout);
    exit(0);
}

/* A compute loop: the counter and the stack must survive. */
static int counter(void) {
    volatile uint64_t n = 0;
    uint64_t stack[64];
    for (int i = 0; i < 64; i++)
        stack[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    uint64_t at_ready = 0;
    int said = 0;
    for (;;) {
        for (int i = 0; i < 2000000; i++)
            n++;
        if (!said && n >= 20000000) {
            at_ready = n;
            ready();
            said = 1;
        }
        if (said && go())
            break;
    }
    if (n <= at_ready)
        FAIL("counter went back: %llu <= %llu", (unsigned long long)n,
             (unsigned long long)at_ready);
    for (int i = 0; i < 64; i++)
        if (stack[i] != (uint64_t)i * 0x9e3779b97f4a7c15ULL)
            FAIL("stack word %d changed", i);
    printf("counter %s\n", n % 2000000 == 0 ? "whole" : "torn");
    pass();
    return 0;
}

static __thread uint64_t tls_word = 0x1234;
static __thread char tls_buf[64];

static void *tls_thread(void *arg) {
    tls_word = (uint64_t)(uintptr_t)arg * 1000 + 7;
    snprintf(tls_buf, sizeof tls_buf, "thread %d", (int)(uintptr_t)arg);
    return NULL;
}

static int tls(void) {
    tls_word = 0xabcdef;
    strcpy(tls_buf, "main thread");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, tls_thread, (void *)(uintptr_t)3) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    ready();
    wait_go();
    if (tls_word != 0xabcdef || strcmp(tls_buf, "main thread") != 0)
        FAIL("TLS changed: %llx %s", (unsigned long long)tls_word, tls_buf);
    /* A new thread still gets fresh TLS from the restored image. */
    CHECK(pthread_create(&t, NULL, tls_thread, (void *)(uintptr_t)5) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    if (tls_word != 0xabcdef)
        FAIL("main TLS changed by a new thread");
    pass();
    return 0;
}

/* The vDSO after restore: at the same address, its clocks the restoring host's (between two
 * of its system-call readings), the monotonic clock not behind its value before. */
static int vdso_clock(void) {
    unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
    if (!vdso)
        FAIL("no vDSO before the checkpoint");
    struct timespec before;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &before) == 0);
    ready();
    wait_go();
    if (getauxval(AT_SYSINFO_EHDR) != vdso || memcmp((void *)vdso, "\177ELF", 4) != 0)
        FAIL("the vDSO moved or is gone");
    for (int i = 0; i < 1000; i++) {
        struct timespec a, v, b;
        CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &a) == 0);
        CHECK(clock_gettime(CLOCK_REALTIME, &v) == 0);
        CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &b) == 0);
        long long x = a.tv_sec * 1000000000LL + a.tv_nsec, y = v.tv_sec * 1000000000LL + v.tv_nsec,
                  z = b.tv_sec * 1000000000LL + b.tv_nsec;
        if (!(x <= y && y <= z))
            FAIL("CLOCK_REALTIME %lld not in [%lld, %lld]", y, x, z);
    }
    struct timespec after;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &after) == 0);
    if (after.tv_sec < before.tv_sec ||
        (after.tv_sec == before.tv_sec && after.tv_nsec < before.tv_nsec))
        FAIL("CLOCK_MONOTONIC went backwards");
    pass();
    return 0;
}

/* Vector and x87 registers live across the checkpoint: loaded before "ready", waited on with
 * raw system calls in assembly (nothing of libc runs in between), stored and compared. */
static int fpu(void) {
    static const char path[] = "go";
    static uint8_t in[8][32], out[8][32];
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 32; i++)
            in[r][i] = (uint8_t)(r * 37 + i * 11 + 1);
    int avx = __builtin_cpu_supports("avx");
    double pi_out = 0;
    unsigned mxcsr_in = 0x1f80 | (3u << 13), mxcsr_out = 0; /* round toward zero */
    struct timespec ts = {0, 2 * 1000 * 1000};
    ready();
    if (avx) {
        __asm__ volatile("vmovdqu 0(%0), %%ymm8\n\tvmovdqu 32(%0), %%ymm9\n\t"
                         "vmovdqu 64(%0), %%ymm10\n\tvmovdqu 96(%0), %%ymm11\n\t"
                         "vmovdqu 128(%0), %%ymm12\n\tvmovdqu 160(%0), %%ymm13\n\t"
                         "vmovdqu 192(%0), %%ymm14\n\tvmovdqu 224(%0), %%ymm15\n\t"
                         :
                         : "r"(in)
                         : "memory");
    } else {
        __asm__ volatile("movdqu 0(%0), %%xmm8\n\tmovdqu 32(%0), %%xmm9\n\t"
                         "movdqu 64(%0), %%xmm10\n\tmovdqu 96(%0), %%xmm11\n\t"
                         "movdqu 128(%0), %%xmm12\n\tmovdqu 160(%0), %%xmm13\n\t"
                         "movdqu 192(%0), %%xmm14\n\tmovdqu 224(%0), %%xmm15\n\t"
                         :
                         : "r"(in)
                         : "memory");
    }
    __asm__ volatile("ldmxcsr %0\n\tfldpi" : : "m"(mxcsr_in));
    /* until access("go") == 0: nanosleep(&ts) */
    __asm__ volatile("1:\n\t"
                     "mov $21, %%eax\n\tmov %0, %%rdi\n\txor %%esi, %%esi\n\tsyscall\n\t"
                     "test %%rax, %%rax\n\tjz 2f\n\t"
                     "mov $35, %%eax\n\tmov %1, %%rdi\n\txor %%esi, %%esi\n\tsyscall\n\t"
                     "jmp 1b\n"
                     "2:\n\t"
                     :
                     : "r"(path), "r"(&ts)
                     : "rax", "rdi", "rsi", "rcx", "r11", "memory");
    __asm__ volatile("fstpl %0\n\tstmxcsr %1" : "=m"(pi_out), "=m"(mxcsr_out));
    if (avx) {
        __asm__ volatile("vmovdqu %%ymm8, 0(%0)\n\tvmovdqu %%ymm9, 32(%0)\n\t"
                         "vmovdqu %%ymm10, 64(%0)\n\tvmovdqu %%ymm11, 96(%0)\n\t"
                         "vmovdqu %%ymm12, 128(%0)\n\tvmovdqu %%ymm13, 160(%0)\n\t"
                         "vmovdqu %%ymm14, 192(%0)\n\tvmovdqu %%ymm15, 224(%0)\n\t"
                         "vzeroupper\n\t"
                         :
                         : "r"(out)
                         : "memory");
    } else {
        __asm__ volatile("movdqu %%xmm8, 0(%0)\n\tmovdqu %%xmm9, 32(%0)\n\t"
                         "movdqu %%xmm10, 64(%0)\n\tmovdqu %%xmm11, 96(%0)\n\t"
                         "movdqu %%xmm12, 128(%0)\n\tmovdqu %%xmm13, 160(%0)\n\t"
                         "movdqu %%xmm14, 192(%0)\n\tmovdqu %%xmm15, 224(%0)\n\t"
                         :
                         : "r"(out)
                         : "memory");
    }
    size_t n = avx ? 32 : 16;
    for (int r = 0; r < 8; r++)
        if (memcmp(in[r], out[r], n) != 0)
            FAIL("%smm%d changed", avx ? "y" : "x", r + 8);
    if (mxcsr_out != mxcsr_in)
        FAIL("MXCSR %#x, expected %#x", mxcsr_out, mxcsr_in);
    if (pi_out < 3.14159 || pi_out > 3.1416)
        FAIL("x87 st(0) is %f", pi_out);
    printf("registers: %s\n", avx ? "ymm" : "xmm");
    pass();
    return 0;
}

/* Descriptors: a file at an offset (appended to after the restore), a directory, /dev/null,
 * a close-on-exec flag. */
static int files(void) {
    int fd = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "before\n", 7) == 7);
    int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dir >= 0);
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0);
    int wanted = 42;
    CHECK(dup2(fd, wanted) == wanted);
    ready();
    wait_go();
    if (lseek(fd, 0, SEEK_CUR) != 7)
        FAIL("offset %lld, expected 7", (long long)lseek(fd, 0, SEEK_CUR));
    CHECK(write(fd, "after\n", 6) == 6);
    /* 42 is a dup of fd: one offset. */
    if (lseek(wanted, 0, SEEK_CUR) != 13)
        FAIL("the duplicate's offset is %lld, expected 13", (long long)lseek(wanted, 0, SEEK_CUR));
    char buf[64] = {0};
    CHECK(pread(wanted, buf, sizeof buf - 1, 0) == 13);
    if (strcmp(buf, "before\nafter\n") != 0)
        FAIL("file holds %s", buf);
    if (!(fcntl(dir, F_GETFD) & FD_CLOEXEC))
        FAIL("the directory lost FD_CLOEXEC");
    if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
        FAIL("the file got FD_CLOEXEC");
    struct stat st;
    CHECK(fstatat(dir, "data.txt", &st, 0) == 0);
    CHECK(write(null, "x", 1) == 1);
    pass();
    return 0;
}

/* A private file mapping: one page written (copied), the others still the file's. */
static int filemap(void) {
    int fd = open("map.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char page[4096];
    for (int p = 0; p < 3; p++) {
        memset(page, 'a' + p, sizeof page);
        CHECK(write(fd, page, sizeof page) == sizeof page);
    }
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    close(fd);
    memset(m + 4096, 'X', 4096);
    ready();
    wait_go();
    for (int i = 0; i < 4096; i++)
        if (m[i] != 'a' || m[4096 + i] != 'X' || m[8192 + i] != 'c')
            FAIL("mapping byte %d: %c %c %c", i, m[i], m[4096 + i], m[8192 + i]);
    pass();
    return 0;
}

static volatile sig_atomic_t usr1;
static void on_usr1(int s) {
    (void)s;
    usr1++;
}

/* A handler installed, a signal pending (blocked), an alternate stack, an ignored signal. */
static int signals(void) {
    static char alt[65536];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    CHECK(sigaltstack(&ss, NULL) == 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    CHECK(signal(SIGTERM, SIG_IGN) != SIG_ERR);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    ready();
    wait_go();
    sigset_t pend;
    CHECK(sigpending(&pend) == 0);
    if (!sigismember(&pend, SIGUSR1))
        FAIL("SIGUSR1 is no longer pending");
    if (usr1 != 0)
        FAIL("the handler ran while the signal was blocked");
    stack_t now;
    CHECK(sigaltstack(NULL, &now) == 0);
    if (now.ss_sp != alt || now.ss_size != sizeof alt)
        FAIL("alternate stack changed");
    struct sigaction old;
    CHECK(sigaction(SIGTERM, NULL, &old) == 0);
    if (old.sa_handler != SIG_IGN)
        FAIL("SIGTERM is no longer ignored");
    CHECK(kill(getpid(), SIGTERM) == 0);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
    if (usr1 != 1)
        FAIL("handler ran %d times after unblocking", (int)usr1);
    pass();
    return 0;
}

/* brk grown by 100 MiB, one word written every 64 KiB. */
static int brk_grow(void) {
    const size_t len = 100u << 20;
    char *start = sbrk(0);
    CHECK(sbrk(len) == start);
    for (size_t i = 0; i < len; i += 65536)
        *(uint64_t *)(start + i) = i ^ 0x5a5a5a5a;
    ready();
    wait_go();
    if (sbrk(0) != start + len)
        FAIL("the break moved");
    for (size_t i = 0; i < len; i += 65536)
        if (*(uint64_t *)(start + i) != (i ^ 0x5a5a5a5a))
            FAIL("heap word at +%zu changed", i);
    CHECK(sbrk(4096) == start + len);
    start[len] = 1;
    pass();
    return 0;
}

/* A 1 GiB mapping with 16 pages touched: the image stays small. A PROT_NONE reservation. */
static int sparse(void) {
    const size_t len = 1u << 30;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    CHECK(m != MAP_FAILED);
    char *none = mmap(NULL, 1u << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(none != MAP_FAILED);
    for (int i = 0; i < 16; i++)
        m[(size_t)i * (len / 16) + 123] = (char)(i + 1);
    ready();
    wait_go();
    for (int i = 0; i < 16; i++)
        if (m[(size_t)i * (len / 16) + 123] != (char)(i + 1))
            FAIL("page %d lost its byte", i);
    if (m[len / 2 + 4096 * 7] != 0)
        FAIL("an untouched page is not zero");
    CHECK(mprotect(none, 4096, PROT_READ) == 0);
    if (none[0] != 0)
        FAIL("the reservation holds data");
    /* Memory that came from the image is zero again after MADV_DONTNEED. */
    CHECK(madvise(m, 4096, MADV_DONTNEED) == 0);
    if (m[123] != 0)
        FAIL("MADV_DONTNEED brought back the checkpointed page");
    pass();
    return 0;
}

#define NTHREADS 4
static volatile int go_flag;
static volatile uint64_t counts[NTHREADS];
static pthread_barrier_t barrier;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static volatile int started;

static void *worker(void *arg) {
    int id = (int)(uintptr_t)arg;
    tls_word = 100 + id;
    pthread_mutex_lock(&mutex);
    started++;
    pthread_mutex_unlock(&mutex);
    while (!go_flag) {
        counts[id]++;
        if (id % 2 == 1 && counts[id] % 4096 == 0)
            nap(); /* odd threads sleep in system calls, even ones compute */
    }
    if (tls_word != (uint64_t)(100 + id))
        FAIL("thread %d's TLS changed", id);
    pthread_barrier_wait(&barrier);
    return NULL;
}

static int threads(void) {
    pthread_t t[NTHREADS];
    CHECK(pthread_barrier_init(&barrier, NULL, NTHREADS + 1) == 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    while (started < NTHREADS)
        nap();
    uint64_t before[NTHREADS];
    for (;;) {
        int all = 1;
        for (int i = 0; i < NTHREADS; i++)
            all &= counts[i] > 1000;
        if (all)
            break;
        nap();
    }
    ready();
    wait_go();
    for (int i = 0; i < NTHREADS; i++)
        before[i] = counts[i];
    nap();
    nap();
    for (int i = 0; i < 50 && counts[NTHREADS - 1] == before[NTHREADS - 1]; i++)
        nap();
    go_flag = 1;
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < NTHREADS; i++)
        if (counts[i] <= before[i] && i == NTHREADS - 1)
            FAIL("thread %d did not run after the restore", i);
    printf("threads: %d joined\n", NTHREADS);
    pass();
    return 0;
}

/* What cannot be checkpointed: the checkpoint is refused and the program carries on. */
static int refuse(const char *what) {
    int fds[2];
    pid_t child = -1;
    if (strcmp(what, "socket") == 0) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    } else if (strcmp(what, "pipe") == 0) {
        /* Only the read end stays: the other is "outside" (here: nowhere). */
        CHECK(pipe(fds) == 0);
        CHECK(close(fds[1]) == 0);
    } else {
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            wait_go();
            _exit(0);
        }
    }
    ready();
    wait_go();
    if (child > 0) {
        int st;
        CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st));
    }
    printf("carried on\n");
    pass();
    return 0;
}

/* A pipe inside the program with bytes waiting, a duplicated read end, a non-blocking write
 * end. */
static int pipein(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "hello", 5) == 5);
    int q = dup(p[0]);
    CHECK(q >= 0);
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    ready();
    wait_go();
    char buf[16] = {0};
    CHECK(read(q, buf, 5) == 5);
    if (memcmp(buf, "hello", 5) != 0)
        FAIL("the pipe held %s", buf);
    if (!(fcntl(p[1], F_GETFL) & O_NONBLOCK))
        FAIL("the write end lost O_NONBLOCK");
    CHECK(write(p[1], "world", 5) == 5);
    memset(buf, 0, sizeof buf);
    CHECK(read(p[0], buf, 5) == 5);
    if (memcmp(buf, "world", 5) != 0)
        FAIL("the pipe passed %s", buf);
    CHECK(close(p[1]) == 0);
    if (read(q, buf, 1) != 0)
        FAIL("no end of file on the duplicate once the write end is closed");
    pass();
    return 0;
}

static volatile sig_atomic_t alarms;
static void on_alarm(int s) {
    (void)s;
    alarms++;
}

/* An interval timer armed before the checkpoint keeps running after the restore. */
static int itimer(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval v = {.it_interval = {1, 0}, .it_value = {3, 0}};
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    ready();
    wait_go();
    struct itimerval now;
    CHECK(getitimer(ITIMER_REAL, &now) == 0);
    if (now.it_interval.tv_sec != 1 || now.it_interval.tv_usec != 0)
        FAIL("the timer's interval is %ld.%06ld", (long)now.it_interval.tv_sec,
             (long)now.it_interval.tv_usec);
    int before = alarms;
    for (int i = 0; i < 5000 && alarms == before; i++)
        nap();
    if (alarms == before)
        FAIL("no SIGALRM within 10 s of the restore");
    pass();
    return 0;
}

/* The program asks its own supervisor for a checkpoint through the request channel of
 * `sandbox checkpoint PID`: refused. */
static int selfck(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "dune-sandbox/checkpoint/%d",
                     (int)getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    if (connect(s, (struct sockaddr *)&a, len) != 0) {
        printf("connect: %s\n", strerror(errno));
        pass();
    }
    const char req[] = "checkpoint v1\nleave-running 1\n/tmp/self.img\n";
    CHECK(write(s, req, sizeof req - 1) == (ssize_t)(sizeof req - 1));
    char buf[512] = {0};
    ssize_t got = read(s, buf, sizeof buf - 1);
    CHECK(got > 0);
    printf("answer: %s", buf);
    if (access("/tmp/self.img", F_OK) == 0)
        FAIL("an image was written");
    pass();
    return 0;
}

/* A process the program forked, orphaned by its parent (no child of the sandbox any more),
 * asks the sandbox to checkpoint itself to a path of its choice: refused as well. */
static int orphanck(void) {
    pid_t root = getpid();
    char img[4096];
    CHECK(getcwd(img, sizeof img - 16) != NULL);
    strcat(img, "/orphan.img");
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        pid_t parent = getpid();
        if (fork() != 0) _exit(0);
        /* The grandchild, orphaned once its parent exits. */
        while (getppid() == parent) usleep(1000);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(s >= 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "dune-sandbox/checkpoint/%d",
                         (int)root);
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        char buf[512] = {0};
        if (connect(s, (struct sockaddr *)&a, len) != 0) {
            snprintf(buf, sizeof buf, "connect: %s\n", strerror(errno));
        } else {
            char req[4200];
            int m = snprintf(req, sizeof req, "checkpoint v1\nleave-running 1\n%s\n", img);
            CHECK(write(s, req, (size_t)m) == m);
            CHECK(read(s, buf, sizeof buf - 1) > 0);
        }
        int f = open("answer", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        CHECK(f >= 0);
        CHECK(write(f, buf, strlen(buf)) == (ssize_t)strlen(buf));
        close(f);
        _exit(0);
    }
    CHECK(waitpid(c, NULL, 0) == c);
    for (int i = 0; i < 1000 && access("answer", F_OK) != 0; i++) usleep(10 * 1000);
    usleep(50 * 1000);
    char buf[512] = {0};
    int f = open("answer", O_RDONLY);
    if (f < 0) FAIL("the orphan never answered");
    CHECK(read(f, buf, sizeof buf - 1) >= 0);
    printf("answer: %s", buf);
    if (access(img, F_OK) == 0) FAIL("an image was written");
    pass();
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *s = argc > 1 ? argv[1] : "";
    if (!strcmp(s, "counter"))
        return counter();
    if (!strcmp(s, "tls"))
        return tls();
    if (!strcmp(s, "vdso"))
        return vdso_clock();
    if (!strcmp(s, "fpu"))
        return fpu();
    if (!strcmp(s, "files"))
        return files();
    if (!strcmp(s, "filemap"))
        return filemap();
    if (!strcmp(s, "signals"))
        return signals();
    if (!strcmp(s, "brk"))
        return brk_grow();
    if (!strcmp(s, "sparse"))
        return sparse();
    if (!strcmp(s, "threads"))
        return threads();
    if (!strcmp(s, "pipein"))
        return pipein();
    if (!strcmp(s, "itimer"))
        return itimer();
    if (!strcmp(s, "selfck"))
        return selfck();
    if (!strcmp(s, "orphanck"))
        return orphanck();
    if (!strcmp(s, "socket") || !strcmp(s, "pipe") || !strcmp(s, "child"))
        return refuse(s);
    fprintf(stderr, "usage: ckpt SCENARIO\n");
    return 2;
}

/* sigaltstack: (1) a SA_ONSTACK handler runs on the alternate stack (the address of one of its
 * locals lies inside the stack given to sigaltstack, and sigaltstack(NULL, &old) in the
 * handler reports SS_ONSTACK); a handler without SA_ONSTACK runs on the normal stack;
 * (2) unbounded recursion overflows the main stack and the SIGSEGV handler, on the alternate
 * stack, siglongjmps back to main; (3) the same in a thread with its own small stack and its
 * own alternate stack. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static char *alt;
static volatile int on_alt;
static volatile int ss_onstack;
static volatile int ran;

static int inside(const void *p, const char *base, size_t size) {
    return (const char *)p >= base && (const char *)p < base + size;
}

static void usr_handler(int sig) {
    volatile char local = (char)sig;
    stack_t cur;
    ran++;
    on_alt = inside((const void *)&local, alt, ALT_SIZE);
    ss_onstack = sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK) != 0;
}

static sigjmp_buf env;
static volatile int overflow_on_alt;
static volatile int overflow_code;
static volatile char *overflow_alt;
static volatile size_t overflow_alt_size;

static void segv_handler(int sig, siginfo_t *si, void *uc) {
    volatile char local = 0;
    (void)sig;
    (void)uc;
    overflow_on_alt = inside((const void *)&local, (const char *)overflow_alt, overflow_alt_size);
    overflow_code = si->si_code;
    siglongjmp(env, 1);
}

static volatile unsigned long depth;
static volatile unsigned long limit = ~0UL;

/* Recursion the compiler cannot turn into a loop: each frame has a live 512-byte buffer. */
static unsigned long recurse(unsigned long n) {
    volatile char buf[512];
    buf[0] = (char)n;
    buf[511] = (char)(n >> 8);
    depth = n;
    if (n == limit) return 0;
    return recurse(n + 1) + buf[0] + buf[511];
}

static void install_segv(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
}

static void *thread_main(void *arg) {
    (void)arg;
    char *talt = malloc(ALT_SIZE);
    CHECK(talt != NULL);
    stack_t ss = {.ss_sp = talt, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0);
    overflow_alt = talt;
    overflow_alt_size = ALT_SIZE;
    overflow_on_alt = 0;
    depth = 0;
    if (sigsetjmp(env, 1) == 0) {
        recurse(0);
        printf("thread: not reached\n");
    } else {
        printf("thread: overflow caught on the thread's altstack %d, deep %d\n",
               overflow_on_alt, depth > 100);
    }
    return NULL;
}

int main(void) {
    alt = malloc(ALT_SIZE);
    CHECK(alt != NULL);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0);
    stack_t old;
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("altstack installed: sp matches %d, size matches %d, flags %d\n",
           old.ss_sp == alt, old.ss_size == ALT_SIZE, old.ss_flags);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr_handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sa.sa_flags = 0;
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);

    CHECK(raise(SIGUSR1) == 0);
    printf("SA_ONSTACK handler: ran %d, local on altstack %d, SS_ONSTACK %d\n", ran, on_alt,
           ss_onstack);
    ran = 0;
    CHECK(raise(SIGUSR2) == 0);
    printf("plain handler: ran %d, local on altstack %d, SS_ONSTACK %d\n", ran, on_alt,
           ss_onstack);
    CHECK(sigaltstack(NULL, &old) == 0);
    printf("after the handlers: flags %d\n", old.ss_flags);

    /* Stack overflow on the main thread. */
    install_segv();
    overflow_alt = alt;
    overflow_alt_size = ALT_SIZE;
    if (sigsetjmp(env, 1) == 0) {
        recurse(0);
        printf("main: not reached\n");
    } else {
        printf("main: overflow caught on altstack %d, si_code %d, deep %d\n", overflow_on_alt,
               overflow_code, depth > 1000);
    }
    /* The process goes on normally afterwards, and can overflow again. */
    overflow_on_alt = 0;
    if (sigsetjmp(env, 1) == 0) {
        recurse(0);
    } else {
        printf("main: second overflow caught on altstack %d\n", overflow_on_alt);
    }

    /* In a thread with a 256 KiB stack and its own altstack. */
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, thread_main, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("done\n");
    return 0;
}

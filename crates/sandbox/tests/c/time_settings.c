/* The clock and host-name settings, through paths that change nothing: adjtimex and
 * clock_adjtime read-only queries, and values the kernel rejects before it changes anything
 * (an out-of-range tick, a negative microsecond count, a time zone beyond 15 hours, a host
 * name of 100 bytes). The kernel checks privilege in between, so the errors depend on it
 * (EINVAL as root, EPERM otherwise), the same natively and sandboxed. Never a valid value:
 * the test must not change the host's clock or name. */
#define _GNU_SOURCE
#include "common.h"

#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef ADJ_ADJTIME
#define ADJ_ADJTIME 0x8000
#endif

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* adjtimex's result is the clock state, TIME_OK (0) to TIME_ERROR (5): print whether it is
 * one (the state itself depends on the host's time synchronisation). */
static void state(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: a clock state %d\n", what, r >= TIME_OK && r <= TIME_ERROR);
}

int main(void) {
    struct utsname before, after;
    CHECK(uname(&before) == 0);

    struct timex tx;
    memset(&tx, 0, sizeof tx);
    state("adjtimex read", adjtimex(&tx));
    printf("adjtimex tick plausible %d\n", tx.tick > 0);
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_OFFSET_SS_READ;
    state("adjtimex ADJ_OFFSET_SS_READ", adjtimex(&tx));
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_ADJTIME;
    res("adjtimex ADJ_ADJTIME without SINGLESHOT", adjtimex(&tx));
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_TICK;
    tx.tick = 1;
    res("adjtimex ADJ_TICK out of range", adjtimex(&tx));
    res("adjtimex NULL", syscall(SYS_adjtimex, NULL));
    memset(&tx, 0, sizeof tx);
    state("clock_adjtime REALTIME read", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
    memset(&tx, 0, sizeof tx);
    res("clock_adjtime MONOTONIC", syscall(SYS_clock_adjtime, CLOCK_MONOTONIC, &tx));
    res("clock_adjtime bad clock", syscall(SYS_clock_adjtime, 1000, &tx));

    struct timespec now;
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0);
    struct timespec bad = {now.tv_sec, -1};
    res("clock_settime negative nanoseconds", clock_settime(CLOCK_REALTIME, &bad));
    struct timespec mono;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &mono) == 0);
    res("clock_settime MONOTONIC", clock_settime(CLOCK_MONOTONIC, &mono));
    res("clock_settime NULL", syscall(SYS_clock_settime, CLOCK_REALTIME, NULL));
    struct timeval tv = {now.tv_sec, -1};
    res("settimeofday negative microseconds", settimeofday(&tv, NULL));
    struct timezone tz = {100000, 0};
    res("settimeofday time zone beyond 15 hours", syscall(SYS_settimeofday, NULL, &tz));
    res("settimeofday bad time pointer", syscall(SYS_settimeofday, (void *)8, NULL));

    char name[128];
    memset(name, 'h', sizeof name);
    res("sethostname 100 bytes", sethostname(name, 100));
    res("sethostname negative length", syscall(SYS_sethostname, name, -1));
    res("sethostname NULL", syscall(SYS_sethostname, NULL, 5));
    res("setdomainname 100 bytes", setdomainname(name, 100));
    res("setdomainname NULL", syscall(SYS_setdomainname, NULL, 5));
    CHECK(uname(&after) == 0);
    printf("host name unchanged %d, domain name unchanged %d\n",
           strcmp(before.nodename, after.nodename) == 0,
           strcmp(before.domainname, after.domainname) == 0);
    printf("done\n");
    return 0;
}

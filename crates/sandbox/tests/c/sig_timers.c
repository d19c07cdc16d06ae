/* Interval timers. Mode "itimer": setitimer(ITIMER_REAL, 50 ms interval) delivers SIGALRM to
 * a handler three times (the program pauses until it has), then the timer is disarmed and
 * getitimer reads zero. Mode "posix": timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL with
 * SIGRTMIN and a value) fires three times into an SA_SIGINFO handler that checks si_code
 * SI_TIMER and the value; timer_gettime, timer_delete. A failing timer_create is reported
 * with its errno (ENOSYS is a failure of the sandbox). */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;
static volatile sig_atomic_t timer_hits;
static volatile sig_atomic_t info_ok = 1;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void on_timer(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    timer_hits++;
    if (sig != SIGRTMIN || si->si_code != SI_TIMER || si->si_value.sival_int != 4242)
        info_ok = 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int itimer(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 50000}, {0, 50000}};
    double t0 = now();
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    int pauses = 0;
    while (alarms < 3) {
        pause();
        pauses++;
        if (now() - t0 > 20) break;
    }
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    CHECK(setitimer(ITIMER_REAL, &off, &old) == 0);
    int count = alarms;
    double dt = now() - t0;
    printf("SIGALRM handled %d times (at least 3: %d), pause returned each time %d\n",
           count >= 3 ? 3 : count, count >= 3, pauses >= 3);
    printf("interval read back 50 ms: %d\n", old.it_interval.tv_sec == 0 &&
                                              old.it_interval.tv_usec == 50000);
    printf("took at least 0.14 s: %d, less than 10 s: %d\n", dt >= 0.14, dt < 10);
    struct itimerval cur;
    CHECK(getitimer(ITIMER_REAL, &cur) == 0);
    printf("disarmed: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
    /* No more alarms after disarming. */
    int before = alarms;
    struct timespec ts = {0, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    printf("no alarm after disarming: %d\n", alarms == before);
    /* alarm() and its return value. */
    alarm(100);
    printf("alarm(0) returns the seconds left (about 100): %d\n", (int)(alarm(0) >= 98));
    printf("done\n");
    return 0;
}

static int posix_timer(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGRTMIN, &sa, NULL) == 0);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 4242;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) {
        printf("timer_create failed: %s\n", errname(errno));
        return 1;
    }
    printf("timer_create: ok\n");
    struct itimerspec its = {{0, 40 * 1000 * 1000}, {0, 40 * 1000 * 1000}};
    double t0 = now();
    CHECK(timer_settime(t, 0, &its, NULL) == 0);
    while (timer_hits < 3 && now() - t0 < 20) pause();
    struct itimerspec cur;
    CHECK(timer_gettime(t, &cur) == 0);
    printf("interval read back 40 ms: %d\n",
           cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 40 * 1000 * 1000);
    CHECK(timer_delete(t) == 0);
    int hits = timer_hits;
    printf("timer signal handled %d times (at least 3: %d), siginfo ok %d\n",
           hits >= 3 ? 3 : hits, hits >= 3, (int)info_ok);
    struct timespec ts = {0, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    printf("no signal after timer_delete: %d\n", timer_hits == hits);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "itimer";
    if (strcmp(mode, "itimer") == 0) return itimer();
    if (strcmp(mode, "posix") == 0) return posix_timer();
    return 2;
}

/* alarm(1) interrupts a blocking read of an empty pipe; a child process writes to the pipe two
 * seconds after the alarm. With SA_RESTART ("restart") the read is restarted and returns the
 * child's data after the handler ran; without ("norestart") it fails with EINTR, after which
 * a second read gets the data. Also a restarting handler around a blocking wait4. */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int restart = argc > 1 && strcmp(argv[1], "restart") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);

    int p[2];
    CHECK(pipe(p) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(p[0]);
        /* Write well after the parent's alarm (1 s): 3 s from the start. */
        struct timespec ts = {3, 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        if (write(p[1], "hello", 5) != 5) _exit(2);
        _exit(0);
    }
    close(p[1]);
    double t0 = now();
    alarm(1);
    char buf[16] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    int e = errno;
    double t1 = now();
    printf("mode %s: read returned %zd (%s), errno %s, alarm handler ran %d time(s)\n",
           restart ? "SA_RESTART" : "no SA_RESTART", n, n > 0 ? buf : "-", n < 0 ? errname(e) : "0",
           (int)alarms);
    if (restart)
        printf("read completed after the alarm: %d\n", t1 - t0 > 1.5);
    else
        printf("read interrupted before the write: %d\n", t1 - t0 < 2.5);
    if (n < 0) {
        n = read(p[0], buf, sizeof buf - 1);
        printf("second read returned %zd (%s)\n", n, n > 0 ? buf : "-");
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    printf("child exited %d with status %d\n", WIFEXITED(status), WEXITSTATUS(status));

    /* A blocking wait4 interrupted by a second alarm. */
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct timespec ts = {2, 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        _exit(7);
    }
    alarm(1);
    pid_t w = waitpid(child, &status, 0);
    e = errno;
    printf("waitpid returned child %d, errno %s, alarms %d\n", w == child, w < 0 ? errname(e) : "0",
           (int)alarms);
    if (w < 0) {
        w = waitpid(child, &status, 0);
        printf("second waitpid returned child %d\n", w == child);
    }
    printf("child exit status %d\n", WEXITSTATUS(status));
    printf("done\n");
    return 0;
}

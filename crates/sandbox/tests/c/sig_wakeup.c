/* Wake-ups must not be lost: a child keeps SIGUSR1 blocked and waits for it with the race-free
 * primitives, sigsuspend() (mode "sigsuspend"), ppoll() with a signal mask (mode "ppoll") or
 * sigtimedwait() (mode "sigtimedwait"), acknowledging each signal through a pipe; the parent
 * sends the next SIGUSR1 after reading the acknowledgement and spinning for 0 to 300 us (a
 * different delay each round, so the signals land all along the child's way back to sleep),
 * 1000 times. A signal that arrives just before the child goes to sleep must still wake it: the
 * parent waits at most 10 s for each acknowledgement and reports the round that got stuck. (pause() is not tested
 * this way: a signal between the program's check and pause() is lost natively too.) */
#define _GNU_SOURCE
#include "common.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 1000

static volatile sig_atomic_t count;

/* Busy-waits for `us` microseconds. */
static void spin(long us) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void on_usr1(int sig) {
    (void)sig;
    count++;
}

static void child(const char *mode, int ack) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int mode_suspend = strcmp(mode, "sigsuspend") == 0;
    int mode_wait = strcmp(mode, "sigtimedwait") == 0;
    int mode_ppoll = strcmp(mode, "ppoll") == 0;
    if (!mode_suspend && !mode_wait && !mode_ppoll) _exit(5);
    CHECK(sigprocmask(SIG_BLOCK, &usr1, &old) == 0);
    char c = 'r';
    if (write(ack, &c, 1) != 1) _exit(3);
    for (int i = 0; i < ROUNDS; i++) {
        int before = count;
        if (mode_wait) {
            struct timespec ts = {60, 0};
            if (sigtimedwait(&usr1, NULL, &ts) == SIGUSR1) count++;
        } else {
            while (count == before) {
                if (mode_suspend)
                    sigsuspend(&old);
                else
                    ppoll(NULL, 0, NULL, &old);
            }
        }
        c = 'a';
        if (write(ack, &c, 1) != 1) _exit(3);
    }
    _exit(count == ROUNDS ? 0 : 4);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "sigsuspend";
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        close(p[0]);
        child(mode, p[1]);
    }
    close(p[1]);
    char ch;
    CHECK(read(p[0], &ch, 1) == 1);
    int stuck = -1;
    for (int i = 0; i < ROUNDS; i++) {
        spin((i * 37) % 301);
        CHECK(kill(c, SIGUSR1) == 0);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int r = poll(&pfd, 1, 10000);
        if (r != 1 || read(p[0], &ch, 1) != 1) {
            stuck = i;
            break;
        }
    }
    if (stuck >= 0) {
        printf("mode %s: the child missed the signal of round %d\n", mode, stuck);
        kill(c, SIGKILL);
    } else {
        printf("mode %s: %d signals, every one woke the child\n", mode, ROUNDS);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    printf("child %s %d\n", WIFEXITED(st) ? "exited" : "killed by", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return stuck >= 0;
}

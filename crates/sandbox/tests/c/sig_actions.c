/* Signal dispositions and flags, one mode per run (argv[1]):
 *   resethand     SA_RESETHAND: the first SIGUSR1 runs the handler (which sees the action
 *                 already reset to SIG_DFL), the second kills the process (death by SIGUSR1).
 *   nodefer       a handler that raises its own signal: without SA_NODEFER the second
 *                 delivery waits until the handler returns (depth 1 twice); with SA_NODEFER it
 *                 nests (depth 2). sa_mask blocks SIGUSR2 inside the handler.
 *   raise_abrt    raise(SIGABRT): death by SIGABRT.
 *   abort         abort(): death by SIGABRT.
 *   abort_handler abort() with a SIGABRT handler that returns: the handler runs, then the
 *                 process still dies by SIGABRT.
 *   term          kill(getpid(), SIGTERM) without a handler: death by SIGTERM.
 *   ignored       SIGTERM and SIGINT ignored, then sent: the process carries on, exit 0.
 *   siginfo       an SA_SIGINFO handler's siginfo (si_signo, si_code, si_pid) and its
 *                 ucontext's saved mask; a handler that changes a register through the
 *                 ucontext changes it after sigreturn. */
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t calls, depth, max_depth, usr2_blocked_inside, usr1_blocked_inside;
static volatile sig_atomic_t reset_seen;

static void on_usr1_reset(int sig) {
    struct sigaction cur;
    calls++;
    if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL) reset_seen = 1;
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    usr1_blocked_inside = sigismember(&m, SIGUSR1);
}

static void on_usr1_nest(int sig) {
    calls++;
    depth++;
    if (depth > max_depth) max_depth = depth;
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    usr2_blocked_inside = sigismember(&m, SIGUSR2);
    if (calls == 1) raise(sig);
    depth--;
}

static volatile sig_atomic_t abrt_calls;
static void on_abrt(int sig) {
    (void)sig;
    abrt_calls++;
    const char msg[] = "SIGABRT handler ran, returning\n";
    if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
}

static volatile int info_signo, info_code, info_pid_ok, info_mask_ok;
static void on_info(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    info_signo = si->si_signo == sig;
    info_code = si->si_code;
    info_pid_ok = si->si_pid == getpid();
    info_mask_ok = sigismember(&uc->uc_sigmask, SIGUSR2) == 1 &&
                   sigismember(&uc->uc_sigmask, SIGUSR1) == 0;
}

static void install(int sig, void (*h)(int), int flags, int mask_sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (mask_sig) sigaddset(&sa.sa_mask, mask_sig);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "resethand") == 0) {
        install(SIGUSR1, on_usr1_reset, SA_RESETHAND, 0);
        CHECK(raise(SIGUSR1) == 0);
        printf("first SIGUSR1: handler calls %d, action reset inside %d, SIGUSR1 blocked "
               "inside %d\n",
               (int)calls, (int)reset_seen, (int)usr1_blocked_inside);
        struct sigaction cur;
        CHECK(sigaction(SIGUSR1, NULL, &cur) == 0);
        printf("action now SIG_DFL: %d\n", cur.sa_handler == SIG_DFL);
        CHECK(raise(SIGUSR1) == 0);
        printf("survived the second SIGUSR1 (wrong)\n");
        return 0;
    }
    if (strcmp(mode, "nodefer") == 0) {
        install(SIGUSR1, on_usr1_nest, 0, SIGUSR2);
        CHECK(raise(SIGUSR1) == 0);
        printf("without SA_NODEFER: calls %d, max depth %d, SIGUSR2 blocked inside %d\n",
               (int)calls, (int)max_depth, (int)usr2_blocked_inside);
        calls = max_depth = 0;
        install(SIGUSR1, on_usr1_nest, SA_NODEFER, 0);
        CHECK(raise(SIGUSR1) == 0);
        printf("with SA_NODEFER: calls %d, max depth %d, SIGUSR2 blocked inside %d\n",
               (int)calls, (int)max_depth, (int)usr2_blocked_inside);
        sigset_t m;
        CHECK(sigprocmask(SIG_BLOCK, NULL, &m) == 0);
        printf("mask restored after the handlers: USR1 %d USR2 %d\n", sigismember(&m, SIGUSR1),
               sigismember(&m, SIGUSR2));
        printf("done\n");
        return 0;
    }
    if (strcmp(mode, "raise_abrt") == 0) {
        printf("raising SIGABRT\n");
        raise(SIGABRT);
        printf("survived SIGABRT (wrong)\n");
        return 0;
    }
    if (strcmp(mode, "abort") == 0) {
        printf("calling abort()\n");
        abort();
    }
    if (strcmp(mode, "abort_handler") == 0) {
        install(SIGABRT, on_abrt, 0, 0);
        printf("calling abort() with a returning SIGABRT handler\n");
        abort();
    }
    if (strcmp(mode, "term") == 0) {
        printf("sending myself SIGTERM\n");
        kill(getpid(), SIGTERM);
        printf("survived SIGTERM (wrong)\n");
        return 0;
    }
    if (strcmp(mode, "ignored") == 0) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        CHECK(kill(getpid(), SIGTERM) == 0);
        CHECK(raise(SIGINT) == 0);
        printf("ignored SIGTERM and SIGINT, still running\n");
        printf("done\n");
        return 0;
    }
    if (strcmp(mode, "siginfo") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_info;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0);
        CHECK(kill(getpid(), SIGUSR1) == 0);
        printf("kill: signo ok %d, si_code %d (SI_USER %d), si_pid ok %d, uc_sigmask ok %d\n",
               info_signo, info_code, SI_USER, info_pid_ok, info_mask_ok);
        CHECK(raise(SIGUSR1) == 0);
        printf("raise: si_code %d (SI_TKILL %d)\n", info_code, SI_TKILL);
        printf("done\n");
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}

/* Process creation: fork (copy-on-write isolation of data, heap, stack and a private file
 * mapping; a MAP_SHARED anonymous page stays shared; descriptors are shared with their offset),
 * vfork + _exit and vfork + execve, posix_spawn(p) of echo (with file actions), popen,
 * clone(SIGCHLD) via syscall, fork from a thread, a chain of nested forks (each generation
 * reports its depth through its exit status), 32 children at once.
 * Mode "vfork_memory": what POSIX guarantees of vfork and posix_spawn. Linux's vfork child runs
 * in the parent's memory until it execs or exits, and glibc's posix_spawn reports an exec
 * failure through that memory (ENOENT); the sandbox runs vfork as fork-and-wait, which POSIX
 * allows (a vfork child's stores are undefined behaviour, and posix_spawn may report an exec
 * failure as exit status 127 instead). The program prints the parts both must agree on.
 * Mode "signal_storm": 50 children are each sent SIGUSR1 (handled, inherited from the parent)
 * over and over from the moment fork returns until they exit: a signal that arrives while a
 * child is still being set up must not kill or break it (each child spins 20 ms and exits 7). */
#define _GNU_SOURCE
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int data_var = 10;

static int wait_code(pid_t c) {
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static int chain(int depth) {
    if (depth == 5) return depth;
    pid_t c = fork();
    if (c < 0) return 100;
    if (c == 0) _exit(chain(depth + 1));
    return wait_code(c);
}

static void *thread_forks(void *arg) {
    (void)arg;
    pid_t c = fork();
    if (c < 0) return (void *)-1L;
    if (c == 0) {
        /* Only the forking thread exists in the child. */
        _exit(21);
    }
    return (void *)(long)wait_code(c);
}

static int vfork_memory(void) {
    volatile int vf = 0;
    fflush(stdout);
    pid_t c = vfork();
    CHECK(c >= 0);
    if (c == 0) {
        vf = 1;
        _exit(6);
    }
    printf("vfork + _exit: child exit %d\n", wait_code(c));
    (void)vf;
    char *av[] = {"missing", NULL};
    int r = posix_spawn(&c, "/nonexistent/program", NULL, NULL, av, environ);
    int failed = r == ENOENT || (r == 0 && wait_code(c) == 127);
    printf("posix_spawn of a missing program fails (ENOENT or exit 127): %d\n", failed);
    printf("done\n");
    return 0;
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
    (void)sig;
    usr1_seen++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int signal_storm(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    int ok = 0, signalled = 0;
    for (int round = 0; round < 50; round++) {
        fflush(stdout);
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
            double t0 = now();
            while (now() - t0 < 0.02) {
            }
            _exit(usr1_seen > 0 ? 7 : 8);
        }
        int st;
        pid_t w = 0;
        int sent = 0;
        double t0 = now();
        while (w == 0 && now() - t0 < 30) {
            if (kill(c, SIGUSR1) == 0) sent++;
            for (volatile int i = 0; i < 2000; i++) {
            }
            w = waitpid(c, &st, WNOHANG);
        }
        if (w == 0) {
            printf("round %d: the child did not exit within 30 s\n", round);
            kill(c, SIGKILL);
            CHECK(waitpid(c, &st, 0) == c);
            continue;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 7)
            ok++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 8)
            signalled++;
        else if (WIFEXITED(st))
            printf("round %d: the child exited %d\n", round, WEXITSTATUS(st));
        else
            printf("round %d: the child died of signal %d\n", round, WTERMSIG(st));
        (void)sent;
    }
    printf("children that ran their handler and exited 7: %d of 50 (exit 8, no signal seen: %d)\n",
           ok, signalled);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "vfork_memory") == 0) return vfork_memory();
    if (argc > 1 && strcmp(argv[1], "signal_storm") == 0) return signal_storm();
    /* fork: isolation. */
    int stack_var = 20;
    int *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    *heap = 30;
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    *shared = 40;
    int fd = open("fork.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "parent1\n", 8) == 8);
    fflush(stdout);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        data_var = 11;
        stack_var = 21;
        *heap = 31;
        *shared = 41;
        if (write(fd, "child\n", 6) != 6) _exit(2);
        _exit(getpid() != getppid() ? 0 : 3);
    }
    printf("fork: child exit %d\n", wait_code(c));
    printf("parent sees data %d stack %d heap %d shared %d\n", data_var, stack_var, *heap,
           *shared);
    CHECK(write(fd, "parent2\n", 8) == 8);
    close(fd);

    /* vfork + _exit. */
    fflush(stdout);
    c = vfork();
    CHECK(c >= 0);
    if (c == 0) _exit(6);
    printf("vfork + _exit: child exit %d\n", wait_code(c));

    /* vfork + execve. */
    fflush(stdout);
    c = vfork();
    CHECK(c >= 0);
    if (c == 0) {
        char *av[] = {"/bin/echo", "from", "vfork+execve", NULL};
        execve(av[0], av, environ);
        _exit(127);
    }
    printf("vfork + execve: exit %d\n", wait_code(c));

    /* posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK)). */
    char *sv[] = {"echo", "from", "posix_spawn", NULL};
    fflush(stdout);
    CHECK(posix_spawn(&c, "/bin/echo", NULL, NULL, sv, environ) == 0);
    printf("posix_spawn: exit %d\n", wait_code(c));
    posix_spawn_file_actions_t fa;
    CHECK(posix_spawn_file_actions_init(&fa) == 0);
    CHECK(posix_spawn_file_actions_addopen(&fa, 1, "spawn.txt", O_WRONLY | O_CREAT | O_TRUNC,
                                           0644) == 0);
    char *sv2[] = {"echo", "redirected by file actions", NULL};
    CHECK(posix_spawnp(&c, "echo", &fa, NULL, sv2, environ) == 0);
    printf("posix_spawnp with file actions: exit %d\n", wait_code(c));
    posix_spawn_file_actions_destroy(&fa);

    /* popen. */
    FILE *p = popen("echo popen-line; exit 3", "r");
    CHECK(p != NULL);
    char line[64] = {0};
    CHECK(fgets(line, sizeof line, p) != NULL);
    int pst = pclose(p);
    printf("popen read: %s", line);
    printf("pclose status: %d\n", WEXITSTATUS(pst));

    /* Raw clone(SIGCHLD), like fork. */
    fflush(stdout);
    long r = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    CHECK(r >= 0);
    if (r == 0) _exit(17);
    printf("clone(SIGCHLD): exit %d\n", wait_code((pid_t)r));

    /* fork from a second thread. */
    pthread_t t;
    void *ret;
    CHECK(pthread_create(&t, NULL, thread_forks, NULL) == 0);
    CHECK(pthread_join(t, &ret) == 0);
    printf("fork from a thread: child exit %ld\n", (long)ret);

    /* A chain of 5 nested forks. */
    printf("nested fork chain depth: %d\n", chain(0));

    /* Many short-lived children at once. */
    pid_t kids[32];
    for (int i = 0; i < 32; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0) _exit(i);
    }
    int sum = 0;
    for (int i = 0; i < 32; i++) sum += wait_code(kids[i]);
    printf("32 concurrent children, exit codes sum %d\n", sum);
    printf("done\n");
    return 0;
}

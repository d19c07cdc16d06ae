/* prlimit64 on other processes and on one's own threads: a forked child's limits are read and
 * changed by its parent (the child sees the change), invalid requests get the kernel's errors
 * (EINVAL, ESRCH), and a thread id names the calling process (its address-space limit is the
 * one the process set). Nothing printed depends on the host's limits. */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static long plimit(pid_t pid, int resource, const struct rlimit *new, struct rlimit *old) {
    return syscall(SYS_prlimit64, pid, resource, new, old);
}

static pid_t thread_tid;
static int go[2];

static void *thread(void *arg) {
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    char c;
    CHECK(read(go[0], &c, 1) == 1);
    return NULL;
}

int main(void) {
    int to_child[2], from_child[2];
    CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        CHECK(read(to_child[0], &c, 1) == 1);
        struct rlimit core;
        CHECK(getrlimit(RLIMIT_CORE, &core) == 0);
        printf("child sees RLIMIT_CORE soft %llu\n", (unsigned long long)core.rlim_cur);
        fflush(stdout);
        _exit(0);
    }
    struct rlimit mine, got, set, prev;
    CHECK(getrlimit(RLIMIT_NOFILE, &mine) == 0);
    res("prlimit child NOFILE read", plimit(pid, RLIMIT_NOFILE, NULL, &got));
    printf("child NOFILE equals ours %d\n",
           got.rlim_cur == mine.rlim_cur && got.rlim_max == mine.rlim_max);
    CHECK(getrlimit(RLIMIT_CORE, &mine) == 0);
    set.rlim_cur = 0;
    set.rlim_max = mine.rlim_max;
    res("prlimit child CORE set", plimit(pid, RLIMIT_CORE, &set, &prev));
    printf("previous equals ours %d\n", prev.rlim_cur == mine.rlim_cur);
    res("prlimit child CORE read", plimit(pid, RLIMIT_CORE, NULL, &got));
    printf("child CORE soft %llu\n", (unsigned long long)got.rlim_cur);
    struct rlimit inverted = {2, 1};
    res("prlimit child soft above hard", plimit(pid, RLIMIT_CORE, &inverted, NULL));
    res("prlimit child bad resource", plimit(pid, 1000, NULL, &got));
    res("prlimit no such process", plimit(0x3ffffff0, RLIMIT_CORE, NULL, &got));
    res("prlimit negative pid", plimit(-5, RLIMIT_CORE, NULL, &got));
    CHECK(write(to_child[1], "x", 1) == 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    res("prlimit reaped child", plimit(pid, RLIMIT_CORE, NULL, &got));

    /* A thread's id names the process: its RLIMIT_AS is the one just set. */
    CHECK(pipe(go) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread, NULL) == 0);
    while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0) usleep(1000);
    struct rlimit as = {1ULL << 40, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_AS, &as) == 0);
    res("prlimit own thread AS read", plimit(thread_tid, RLIMIT_AS, NULL, &got));
    printf("thread sees AS soft 2^40 %d\n", got.rlim_cur == 1ULL << 40);
    res("prlimit own pid AS read", plimit(getpid(), RLIMIT_AS, NULL, &got));
    printf("pid sees AS soft 2^40 %d\n", got.rlim_cur == 1ULL << 40);
    CHECK(write(go[1], "x", 1) == 1);
    CHECK(pthread_join(t, NULL) == 0);
    printf("done\n");
    return 0;
}

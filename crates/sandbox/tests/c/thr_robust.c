/* Robust mutexes (pthread_mutexattr_setrobust): a lock whose owner ends without unlocking goes
 * to the next locker with EOWNERDEAD, as Linux's robust futex lists make it (kernel/futex/
 * core.c). Covers an owner thread that exits, one that exits while another thread waits, a
 * process-shared mutex whose owning process exits, waits while its owner exits, dies of a
 * signal, or calls execve, or ends while another of its threads keeps retaking it. Every lock has a 3 s timeout, so a lost release prints ETIMEDOUT
 * instead of hanging. */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void robust_init(pthread_mutex_t *m, int pshared) {
    pthread_mutexattr_t a;
    CHECK(pthread_mutexattr_init(&a) == 0);
    CHECK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0);
    if (pshared) CHECK(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) == 0);
    CHECK(pthread_mutex_init(m, &a) == 0);
}

/* Locks m with a 3 s timeout; prints what the lock returned, makes it consistent and checks
 * that it can be unlocked and locked again. */
static void take(const char *what, pthread_mutex_t *m) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 3;
    int r = pthread_mutex_timedlock(m, &t);
    printf("%s: %s\n", what, errname(r));
    if (r == EOWNERDEAD) CHECK(pthread_mutex_consistent(m) == 0);
    if (r == 0 || r == EOWNERDEAD) {
        CHECK(pthread_mutex_unlock(m) == 0);
        CHECK(pthread_mutex_lock(m) == 0);
        CHECK(pthread_mutex_unlock(m) == 0);
    }
    fflush(stdout);
}

static pthread_mutex_t m_thread, m_wait;
static sem_t locked;

static void *lock_and_exit(void *arg) {
    CHECK(pthread_mutex_lock(arg) == 0);
    return NULL;
}

static void *lock_wait_exit(void *arg) {
    CHECK(pthread_mutex_lock(arg) == 0);
    sem_post(&locked);
    usleep(200000); /* the main thread is blocked in the lock by now */
    pthread_exit(NULL);
}

/* A child process locks the shared mutex, tells the parent through a pipe, then ends as
 * `how` says. */
static void child_case(const char *what, pthread_mutex_t *m, const char *how, char **argv) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK(pthread_mutex_lock(m) == 0);
        CHECK(write(p[1], "x", 1) == 1);
        if (!strcmp(how, "wait")) usleep(200000);
        if (!strcmp(how, "abort")) abort();
        if (!strcmp(how, "exec")) {
            execl(argv[0], argv[0], "sleep", (char *)NULL);
            _exit(99);
        }
        _exit(0);
    }
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    close(p[0]);
    close(p[1]);
    int st = 0;
    if (strcmp(how, "wait") && strcmp(how, "exec")) CHECK(waitpid(pid, &st, 0) == pid);
    take(what, m);
    if (!strcmp(how, "wait") || !strcmp(how, "exec")) CHECK(waitpid(pid, &st, 0) == pid);
    printf("%s: child %s %d\n", what, WIFSIGNALED(st) ? "killed by" : "exited",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static pthread_mutex_t *retaken;

static void *retake_forever(void *arg) {
    (void)arg;
    for (;;) {
        int r = pthread_mutex_lock(retaken);
        if (r == EOWNERDEAD) pthread_mutex_consistent(retaken);
        for (volatile int i = 0; i < 20000; i++) {
        }
        pthread_mutex_unlock(retaken);
    }
    return NULL;
}

/* A process ends (exit_group) while another of its threads keeps taking and releasing a shared
 * robust mutex: whoever holds it then, the next locker must get it (EOWNERDEAD or free), never
 * wait forever. Prints how many of `rounds` left it orphaned. */
static void exit_group_while_retaking(pthread_mutex_t *m, int rounds) {
    int orphaned = 0;
    retaken = m;
    for (int k = 0; k < rounds; k++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            pthread_t t;
            CHECK(pthread_create(&t, NULL, retake_forever, NULL) == 0);
            usleep(20000);
            _exit(0);
        }
        CHECK(waitpid(pid, NULL, 0) == pid);
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 3;
        int r = pthread_mutex_timedlock(m, &t);
        if (r == ETIMEDOUT) {
            orphaned++;
            robust_init(m, 1);
            continue;
        }
        CHECK(r == 0 || r == EOWNERDEAD);
        if (r == EOWNERDEAD) CHECK(pthread_mutex_consistent(m) == 0);
        CHECK(pthread_mutex_unlock(m) == 0);
    }
    printf("exit_group while a thread retakes it: %d of %d rounds orphaned\n", orphaned, rounds);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "sleep")) {
        /* The exec'd image: outlive the parent's lock attempt, which must not wait for us. */
        usleep(500000);
        return 7;
    }
    robust_init(&m_thread, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, lock_and_exit, &m_thread) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    take("thread exited holding it", &m_thread);
    take("after consistent", &m_thread);

    robust_init(&m_wait, 0);
    CHECK(sem_init(&locked, 0, 0) == 0);
    CHECK(pthread_create(&t, NULL, lock_wait_exit, &m_wait) == 0);
    CHECK(sem_wait(&locked) == 0);
    take("waiting while the owner thread exits", &m_wait);
    CHECK(pthread_join(t, NULL) == 0);

    pthread_mutex_t *shared =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    robust_init(shared, 1);
    child_case("process exited holding it", shared, "exit", argv);
    child_case("waiting while the owner process exits", shared, "wait", argv);
    child_case("owner process aborted", shared, "abort", argv);
    child_case("owner process called execve", shared, "exec", argv);
    exit_group_while_retaking(shared, 8);
    take("shared mutex at the end", shared);
    puts("done");
    return 0;
}

/* System V IPC, private objects only (IPC_PRIVATE, removed at the end): semaphores (SETALL/
 * GETALL, SETVAL/GETVAL, semop and semtimedop, a child waking its blocked parent, IPC_STAT/
 * IPC_SET/IPC_INFO), message queues (types, MSG_NOERROR, E2BIG, ENOMSG, a child's message to
 * a blocked parent, IPC_STAT/IPC_SET), and shared memory (attached where the kernel chooses
 * and at a given address, SHM_RND, SHM_REMAP, shared with a forked child, detached in pieces
 * after a partial munmap and after mremap, RMID while attached). Prints no ids or addresses. */
#define _GNU_SOURCE
#include "common.h"

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *info;
};

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void wait_child(pid_t pid) {
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void semaphores(void) {
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK(id >= 0);
    unsigned short vals[3] = {1, 2, 3}, got[3] = {0, 0, 0};
    union semun u;
    u.array = vals;
    res("SETALL", semctl(id, 0, SETALL, u));
    u.array = got;
    res("GETALL", semctl(id, 0, GETALL, u));
    printf("values %u %u %u\n", got[0], got[1], got[2]);
    u.val = 7;
    res("SETVAL", semctl(id, 1, SETVAL, u));
    res("GETVAL", semctl(id, 1, GETVAL));
    struct semid_ds ds;
    u.buf = &ds;
    res("IPC_STAT", semctl(id, 0, IPC_STAT, u));
    printf("nsems %lu mode %o\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777);
    ds.sem_perm.mode = 0640;
    res("IPC_SET", semctl(id, 0, IPC_SET, u));
    res("IPC_STAT", semctl(id, 0, IPC_STAT, u));
    printf("mode %o\n", ds.sem_perm.mode & 0777);
    struct seminfo si;
    u.info = &si;
    long r = semctl(id, 0, IPC_INFO, u);
    printf("IPC_INFO: %s semmsl positive %d\n", r < 0 ? errname(errno) : "ok", si.semmsl > 0);
    unsigned short big[3] = {1, 40000, 1};
    u.array = big;
    res("SETALL above SEMVMX", semctl(id, 0, SETALL, u));
    res("semctl unknown command", semctl(id, 0, 99));
    res("semctl negative id", semctl(-1, 0, GETVAL));

    struct sembuf take = {0, -1, IPC_NOWAIT};
    res("semop take", semop(id, &take, 1));
    res("GETVAL after take", semctl(id, 0, GETVAL));
    res("semop take again", semop(id, &take, 1));
    struct sembuf wait0 = {0, -1, 0};
    struct timespec ts = {0, 10 * 1000 * 1000};
    res("semtimedop timeout", semtimedop(id, &wait0, 1, &ts));
    struct timespec badts = {0, -1};
    res("semtimedop bad timeout", semtimedop(id, &wait0, 1, &badts));
    res("semop no operations", semop(id, &take, 0));
    static struct sembuf many[100000];
    res("semop too many operations", semop(id, many, 100000));
    res("GETPID is ours", semctl(id, 0, GETPID) == getpid());
    res("GETNCNT", semctl(id, 0, GETNCNT));

    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
        struct sembuf give = {2, 1, 0};
        CHECK(semop(id, &give, 1) == 0);
        _exit(0);
    }
    struct sembuf need4 = {2, -4, 0};
    res("semop waits for the child", semop(id, &need4, 1));
    wait_child(pid);
    res("GETVAL 2", semctl(id, 2, GETVAL));
    res("IPC_RMID", semctl(id, 0, IPC_RMID));
    res("semop removed", semop(id, &take, 1) < 0 && (errno == EINVAL || errno == EIDRM) ? 0 : -1);
}

struct msg {
    long type;
    char text[32];
};

static void queues(void) {
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(q >= 0);
    struct msg m = {2, "second type"};
    res("msgsnd type 2", msgsnd(q, &m, strlen(m.text) + 1, 0));
    struct msg m1 = {1, "first type"};
    res("msgsnd type 1", msgsnd(q, &m1, strlen(m1.text) + 1, 0));
    struct msqid_ds ds;
    res("IPC_STAT", msgctl(q, IPC_STAT, &ds));
    printf("qnum %lu cbytes %lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.msg_cbytes);
    struct msg in;
    memset(&in, 0, sizeof in);
    long n = msgrcv(q, &in, sizeof in.text, 1, 0);
    printf("msgrcv type 1: %ld type %ld \"%s\"\n", n, in.type, in.text);
    memset(&in, 0, sizeof in);
    res("msgrcv too small", msgrcv(q, &in, 3, 0, 0));
    n = msgrcv(q, &in, 3, 0, MSG_NOERROR);
    printf("msgrcv MSG_NOERROR: %ld \"%.3s\"\n", n, in.text);
    res("msgrcv empty", msgrcv(q, &in, sizeof in.text, 0, IPC_NOWAIT));
    m.type = 0;
    res("msgsnd type 0", msgsnd(q, &m, 4, 0));
    m.type = 1;
    res("msgsnd negative size", syscall(SYS_msgsnd, q, &m, (size_t)-1, 0));
    res("msgrcv negative size", syscall(SYS_msgrcv, q, &in, (size_t)-1, 0, 0));
    res("msgctl unknown command", msgctl(q, 99, &ds));
    ds.msg_qbytes = 4096;
    res("IPC_SET qbytes", msgctl(q, IPC_SET, &ds));
    res("IPC_STAT", msgctl(q, IPC_STAT, &ds));
    printf("qbytes %lu\n", (unsigned long)ds.msg_qbytes);
    struct msginfo mi;
    n = msgctl(q, MSG_INFO, (struct msqid_ds *)&mi);
    printf("MSG_INFO: %s\n", n < 0 ? errname(errno) : "ok");

    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
        struct msg c = {5, "from the child"};
        CHECK(msgsnd(q, &c, strlen(c.text) + 1, 0) == 0);
        _exit(0);
    }
    memset(&in, 0, sizeof in);
    n = msgrcv(q, &in, sizeof in.text, 5, 0);
    printf("msgrcv waits for the child: %ld type %ld \"%s\"\n", n, in.type, in.text);
    wait_child(pid);
    res("IPC_RMID", msgctl(q, IPC_RMID, NULL));
    res("msgsnd removed", msgsnd(q, &m1, 4, 0) < 0 && (errno == EINVAL || errno == EIDRM) ? 0 : -1);
}

static long nattch(int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0) return -1;
    return (long)ds.shm_nattch;
}

static void shared(void) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t size = 3 * (size_t)pg + 100;
    int id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    CHECK(id >= 0);
    struct shmid_ds ds;
    res("IPC_STAT", shmctl(id, IPC_STAT, &ds));
    printf("segsz %lu nattch %lu\n", (unsigned long)ds.shm_segsz, (unsigned long)ds.shm_nattch);
    char *p = shmat(id, NULL, 0);
    CHECK(p != (char *)-1);
    printf("attached, nattch %ld, zero-filled %d\n", nattch(id), p[0] == 0 && p[size - 1] == 0);
    strcpy(p, "written by the parent");
    strcpy(p + 3 * pg, "last page");

    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char *q = shmat(id, NULL, 0);
        CHECK(q != (char *)-1);
        printf("child: second attachment sees \"%s\", nattch %ld\n", q, nattch(id));
        strcpy(q + 100, "written by the child");
        CHECK(shmdt(q) == 0);
        printf("child: after shmdt nattch %ld\n", nattch(id));
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    printf("parent sees \"%s\", nattch %ld\n", p + 100, nattch(id));

    /* At a given address: SHM_RND, EINVAL over a mapping, SHM_REMAP over it. */
    char *area = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    char *at = area + 2 * pg;
    res("shmat over a mapping", (long)shmat(id, at, 0) == -1 ? -1 : 0);
    char *r = shmat(id, at, SHM_REMAP);
    printf("shmat SHM_REMAP at the address %d, sees \"%s\"\n", r == at, r == at ? r : "");
    res("shmat unaligned", (long)shmat(id, at + 10, 0) == -1 ? -1 : 0);
    res("shmdt", shmdt(at));
    res("mincore after shmdt", mincore(at, pg, (unsigned char *)area));
    r = shmat(id, at + 10, SHM_RND);
    printf("shmat SHM_RND rounds down %d, sees \"%s\"\n", r == at, r == at ? r : "");
    /* Detach in pieces: a partial munmap leaves two, shmdt takes both. */
    CHECK(munmap(at + pg, pg) == 0);
    printf("after partial munmap nattch %ld\n", nattch(id));
    res("shmdt pieces", shmdt(at));
    printf("after shmdt nattch %ld\n", nattch(id));
    res("mincore of the last piece", mincore(at + 2 * (size_t)pg, pg, (unsigned char *)area));
    res("shmdt again", shmdt(at));
    res("shmdt unaligned", shmdt(p + 1));
    res("shmdt not an attachment", shmdt(area));

    /* Read-only attachment, and one moved with mremap. */
    char *ro = shmat(id, NULL, SHM_RDONLY);
    CHECK(ro != (char *)-1);
    printf("read-only attachment sees \"%s\"\n", ro);
    res("shmdt read-only", shmdt(ro));
    char *moved = mremap(p, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, area + 4 * pg);
    printf("mremap moved %d, sees \"%s\"\n", moved == area + 4 * pg,
           moved == area + 4 * pg ? moved : "");
    res("shmdt moved", shmdt(moved));
    printf("nattch %ld\n", nattch(id));

    char *last = shmat(id, NULL, 0);
    CHECK(last != (char *)-1);
    res("IPC_RMID attached", shmctl(id, IPC_RMID, NULL));
    printf("still readable after IPC_RMID \"%s\"\n", last + 3 * pg);
    res("shmdt last", shmdt(last));
    res("shmat removed", (long)shmat(id, NULL, 0) == -1 ? -1 : 0);
    struct shminfo info;
    long n = shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
    printf("IPC_INFO: %s shmmni positive %d\n", n < 0 ? errname(errno) : "ok", info.shmmni > 0);
    res("shmctl unknown command", shmctl(0, 99, NULL));
    CHECK(munmap(area, 8 * pg) == 0 || errno == EINVAL);
}

int main(void) {
    semaphores();
    queues();
    shared();
    printf("done\n");
    return 0;
}

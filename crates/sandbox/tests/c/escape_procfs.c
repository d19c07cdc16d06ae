/* escape_procfs own SANDBOX [user] | refused [user] | other [user]
 *
 * own: the program's own procfs entries must show the program. One line per check,
 * "<check>: 1" when it holds, so the output is the same natively and in the sandbox (where the
 * kernel alone would show the supervisor: its layout in maps, its stack in environ and
 * cmdline, its auxv, name, sizes and threads, the runtime's descriptors in fd/). SANDBOX is the
 * sandbox binary's path: no mapping may name it.
 *
 * refused: entries that would expose the supervisor's memory or state (mem, pagemap,
 * map_files/, syscall, stack, wchan, personality, numa_maps, timers, clear_refs) through
 * /proc/self, /proc/thread-self, /proc/PID, /proc/PID/task/TID: "<path>: ok|E...".
 *
 * other: the same and more (maps, smaps, environ, auxv, fd/, fdinfo/) of a forked child (in
 * the sandbox a sandboxed process of its own, a supervisor too), then what its stat shows of
 * its addresses and whether status and cmdline are readable.
 *
 * "user": when run as root, first drop to uid/gid 65534 (staying dumpable, so the program's
 * own entries stay readable natively). */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void drop_to_user(void) {
    if (geteuid() != 0) return;
    gid_t g = 65534;
    CHECK(setgroups(1, &g) == 0);
    CHECK(setresgid(65534, 65534, 65534) == 0);
    CHECK(setresuid(65534, 65534, 65534) == 0);
    CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
}

/* Reads a whole file into a static buffer (no allocation: reading maps must not change them).
 * Returns the length, or -1 with errno. */
#define BUF (4 << 20)
static char buf_a[BUF], buf_b[BUF];
static long slurp_into(const char *path, char *buf) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    long n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, BUF - 1 - n);
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        n += r;
        if (n >= BUF - 1) break;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

static void say(const char *what, int ok) {
    printf("%s: %d\n", what, ok ? 1 : 0);
    fflush(stdout);
}

/* The value of "Name:\t..." style field `key` in a status text (copied into out). */
static int status_field(const char *text, const char *key, char *out, size_t cap) {
    size_t k = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, k) == 0 && l[k] == ':') {
            const char *v = l + k + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t n = strcspn(v, "\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 1;
        }
    }
    return 0;
}

static unsigned long long status_num(const char *text, const char *key) {
    char v[128];
    if (!status_field(text, key, v, sizeof v)) return ~0ULL;
    return strtoull(v, NULL, 10);
}

static unsigned long long status_hex(const char *text, const char *key) {
    char v[128];
    if (!status_field(text, key, v, sizeof v)) return 0;
    return strtoull(v, NULL, 16);
}

/* The fields of a stat line: comm into `comm`, field n (1-based, proc(5)) in f[n]. */
static int parse_stat(const char *text, char *comm, size_t cap, unsigned long long f[64]) {
    const char *open_p = strchr(text, '(');
    const char *close_p = strrchr(text, ')');
    if (!open_p || !close_p || close_p < open_p) return 0;
    size_t n = (size_t)(close_p - open_p - 1);
    if (n >= cap) n = cap - 1;
    memcpy(comm, open_p + 1, n);
    comm[n] = 0;
    memset(f, 0, 64 * sizeof f[0]);
    const char *p = close_p + 2;
    int i = 3;
    while (*p && i < 64) {
        if (i == 3) {
            p += 2; /* state */
        } else {
            char *end;
            f[i] = strtoull(p, &end, 10);
            if (end == p) break;
            p = end;
            if (*p == ' ') p++;
        }
        i++;
    }
    return i > 52;
}

struct line {
    unsigned long start, end, off, ino;
    char perms[8], dev[16], path[PATH_MAX];
};

static int parse_line(const char *text, struct line *m) {
    char l[PATH_MAX + 128];
    size_t len = strcspn(text, "\n");
    if (len >= sizeof l) return 0;
    memcpy(l, text, len);
    l[len] = 0;
    int pos = 0;
    m->path[0] = 0;
    if (sscanf(l, "%lx-%lx %7s %lx %15s %lu %n", &m->start, &m->end, m->perms, &m->off, m->dev,
               &m->ino, &pos) < 6)
        return 0;
    if (pos > 0) snprintf(m->path, sizeof m->path, "%s", l + pos);
    return 1;
}

#define MAXL 4096
static struct line lines[MAXL];
static int nlines;

static int load_maps(const char *path) {
    if (slurp_into(path, buf_a) < 0) return 0;
    nlines = 0;
    for (char *l = buf_a; *l && nlines < MAXL;) {
        char *nl = strchr(l, '\n');
        if (!parse_line(l, &lines[nlines])) return 0;
        nlines++;
        if (!nl) break;
        l = nl + 1;
    }
    return nlines > 0;
}

static const struct line *containing(unsigned long a) {
    for (int i = 0; i < nlines; i++)
        if (lines[i].start <= a && a < lines[i].end) return &lines[i];
    return NULL;
}

static char expected_comm[16];
static const char *argv0, *env0;
static char own_exe[PATH_MAX];
static volatile int sink;

static void on_usr1(int s) { (void)s; }

/* ---- threads for the task/ checks ---- */
static int gate[2];
static pid_t tids[3];
static void *waiter(void *arg) {
    tids[(long)arg] = (pid_t)syscall(SYS_gettid);
    char b;
    ssize_t r = read(gate[0], &b, 1);
    (void)r;
    return NULL;
}

static void check_maps(const char *sandbox) {
    int local = 0;
    /* A file mapping at an offset, an mprotect split, shared anonymous memory, a grown heap. */
    int fd = open("mapped-file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 3 * 4096) == 0);
    char *file = mmap(NULL, 2 * 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
    CHECK(file != MAP_FAILED);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    char *three = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(three != MAP_FAILED);
    CHECK(mprotect(three + 4096, 4096, PROT_READ) == 0);
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    shared[0] = 1;
    char *brk0 = sbrk(0);
    CHECK(sbrk(64 << 10) != (void *)-1);
    brk0[100] = 1;
    char real[PATH_MAX];
    CHECK(realpath("mapped-file", real));

    CHECK(load_maps("/proc/self/maps"));
    int sorted = 1, names_sandbox = 0;
    for (int i = 0; i < nlines; i++) {
        if (lines[i].start >= lines[i].end) sorted = 0;
        if (i && lines[i].start < lines[i - 1].end) sorted = 0;
        if (strcmp(lines[i].path, sandbox) == 0) names_sandbox = 1;
    }
    say("maps lines ordered, not overlapping", sorted);
    say("maps never names the sandbox binary", !names_sandbox);
    const struct line *s = containing((unsigned long)&local);
    say("maps [stack] holds a local variable", s && strcmp(s->path, "[stack]") == 0);
    const struct line *h = containing((unsigned long)brk0 + 100);
    say("maps [heap] holds the grown break", h && strcmp(h->path, "[heap]") == 0);
    const struct line *f = containing((unsigned long)file);
    char dev[16];
    snprintf(dev, sizeof dev, "%02x:%02x", major(st.st_dev), minor(st.st_dev));
    say("maps file mapping: range, r--p, offset, device, inode, path",
        f && f->start == (unsigned long)file && f->end == (unsigned long)file + 2 * 4096 &&
            strcmp(f->perms, "r--p") == 0 && f->off == 4096 && strcmp(f->dev, dev) == 0 &&
            f->ino == st.st_ino && strcmp(f->path, real) == 0);
    const struct line *a = containing((unsigned long)three);
    const struct line *b = containing((unsigned long)three + 4096);
    const struct line *c = containing((unsigned long)three + 8192);
    say("maps mprotect splits a mapping in three",
        a && b && c && a != b && b != c && strcmp(a->perms, "rw-p") == 0 &&
            strcmp(b->perms, "r--p") == 0 && strcmp(c->perms, "rw-p") == 0 &&
            a->end == (unsigned long)three + 4096 && c->start == (unsigned long)three + 8192);
    const struct line *sh = containing((unsigned long)shared);
    say("maps shared anonymous memory is rw-s /dev/zero (deleted)",
        sh && strcmp(sh->perms, "rw-s") == 0 && strcmp(sh->path, "/dev/zero (deleted)") == 0);
    const struct line *x = containing((unsigned long)&check_maps);
    say("maps the code is an r-x mapping of the program's file",
        x && x->perms[2] == 'x' && strcmp(x->path, own_exe) == 0);
    /* Names start at column 73, as the kernel pads them. */
    int col = 1;
    for (char *l = buf_a; *l;) {
        char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        struct line m;
        if (parse_line(l, &m) && m.path[0] && len > 73 && (l[72] != ' ' || l[73] == ' '))
            col = 0;
        if (!nl) break;
        l = nl + 1;
    }
    say("maps names at column 73", col);

    /* /proc/PID/maps is the same text. */
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/maps", (long)getpid());
    long n1 = slurp_into("/proc/self/maps", buf_a), n2 = slurp_into(p, buf_b);
    say("maps /proc/PID/maps is /proc/self/maps", n1 > 0 && n1 == n2 && !memcmp(buf_a, buf_b, n1));

    /* smaps: the same mappings, each with its fields. */
    CHECK(load_maps("/proc/self/maps"));
    long sn = slurp_into("/proc/self/smaps", buf_b);
    int heads = 0, same = sn > 0, sizes = 1, flags = 0, rss_touched = 0;
    for (char *l = buf_b; sn > 0 && *l;) {
        char *nl = strchr(l, '\n');
        struct line m;
        if (parse_line(l, &m) && strchr(l, '-') < strchr(l, ' ')) {
            if (heads >= nlines || m.start != lines[heads].start || m.end != lines[heads].end ||
                strcmp(m.perms, lines[heads].perms) || strcmp(m.path, lines[heads].path))
                same = 0;
            unsigned long kb = 0;
            char *sz = strstr(l, "\nSize:");
            if (!sz || sscanf(sz + 6, "%lu", &kb) != 1 || kb != (m.end - m.start) / 1024) sizes = 0;
            char *vf = strstr(l, "\nVmFlags:");
            char *next = strstr(l + 1, "\n");
            (void)next;
            if (vf) flags++;
            if (m.start == (unsigned long)brk0 - ((unsigned long)brk0 % 4096) ||
                (m.start <= (unsigned long)brk0 + 100 && (unsigned long)brk0 + 100 < m.end)) {
                char *rss = strstr(l, "\nRss:");
                unsigned long r = 0;
                if (rss && sscanf(rss + 5, "%lu", &r) == 1 && r >= 4) rss_touched = 1;
            }
            heads++;
        }
        if (!nl) break;
        l = nl + 1;
    }
    say("smaps headers are the maps lines", same && heads == nlines);
    say("smaps Size is each mapping's size", sizes);
    say("smaps VmFlags for every mapping", flags == heads);
    say("smaps Rss of a touched page", rss_touched);
    long rn = slurp_into("/proc/self/smaps_rollup", buf_b);
    unsigned long rss = 0;
    char *r = rn > 0 ? strstr(buf_b, "\nRss:") : NULL;
    say("smaps_rollup [rollup] with an Rss",
        rn > 0 && strstr(buf_b, "[rollup]\n") && r && sscanf(r + 5, "%lu", &rss) == 1 && rss > 0);

    /* glibc finds the main thread's stack in maps. */
    pthread_attr_t at;
    void *addr = NULL;
    size_t size = 0;
    CHECK(pthread_getattr_np(pthread_self(), &at) == 0);
    CHECK(pthread_attr_getstack(&at, &addr, &size) == 0);
    pthread_attr_destroy(&at);
    say("pthread_getattr_np: the main stack holds a local",
        (char *)addr <= (char *)&local && (char *)&local < (char *)addr + size);
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_STACK, &rl) == 0);
    say("pthread_getattr_np: stack size within RLIMIT_STACK",
        size >= 64 << 10 && (rl.rlim_cur == RLIM_INFINITY || size <= rl.rlim_cur));
    munmap(file, 2 * 4096);
    munmap(three, 3 * 4096);
    munmap(shared, 4096);
    close(fd);
}

static void check_args(int argc, char **argv) {
    long n = slurp_into("/proc/self/cmdline", buf_a);
    long want = 0;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        if (n < want + (long)l || memcmp(buf_a + want, argv[i], l)) want = -1000000;
        want += (long)l;
    }
    say("cmdline is argv", n == want);
    n = slurp_into("/proc/self/environ", buf_a);
    want = 0;
    for (char **e = environ; *e; e++) {
        size_t l = strlen(*e) + 1;
        if (n < want + (long)l || memcmp(buf_a + want, *e, l)) want = -1000000;
        want += (long)l;
    }
    say("environ is the environment", n == want);
    n = slurp_into("/proc/self/auxv", buf_a);
    int ok = n >= 16 && n % 16 == 0, seen = 0;
    const unsigned long *v = (const unsigned long *)buf_a;
    for (long i = 0; ok && i < n / 16; i++) {
        unsigned long k = v[2 * i], val = v[2 * i + 1];
        if (k == AT_NULL) {
            ok = i == n / 16 - 1;
            break;
        }
        if (k == AT_PHDR || k == AT_ENTRY || k == AT_RANDOM || k == AT_EXECFN || k == AT_PAGESZ ||
            k == AT_UID || k == AT_BASE || k == AT_PHNUM) {
            if (getauxval(k) != val) ok = 0;
            seen++;
        }
    }
    say("auxv is the program's (AT_PHDR, AT_ENTRY, AT_RANDOM, ...), ending in AT_NULL",
        ok && seen >= 7);
}

static void check_status(const char *path, int threads, int self) {
    char label[160];
    CHECK(slurp_into(path, buf_b) > 0);
    char name[64] = "";
    status_field(buf_b, "Name", name, sizeof name);
    snprintf(label, sizeof label, "%s Name is the program's", self ? "status" : "task status");
    say(label, strcmp(name, expected_comm) == 0);
    if (!self) return;
    say("status Threads", status_num(buf_b, "Threads") == (unsigned long long)threads);
    unsigned long long vm = status_num(buf_b, "VmSize");
    say("status VmSize is the program's (below 64 GiB)", vm > 0 && vm < (64ULL << 20));
    say("status VmRSS above zero", status_num(buf_b, "VmRSS") > 0);
    say("status SigIgn has SIGPIPE", status_hex(buf_b, "SigIgn") & (1ULL << (SIGPIPE - 1)));
    say("status SigCgt has SIGUSR1", status_hex(buf_b, "SigCgt") & (1ULL << (SIGUSR1 - 1)));
    say("status SigBlk has SIGUSR2", status_hex(buf_b, "SigBlk") & (1ULL << (SIGUSR2 - 1)));
    unsigned long long vmsize = vm;
    CHECK(slurp_into("/proc/self/stat", buf_b) > 0);
    char comm[64];
    unsigned long long f[64];
    CHECK(parse_stat(buf_b, comm, sizeof comm, f));
    say("stat comm is the program's", strcmp(comm, expected_comm) == 0);
    say("stat num_threads", f[20] == (unsigned long long)threads);
    say("stat vsize is VmSize", f[23] / 1024 == vmsize);
    int local = 0;
    sink = local;
    CHECK(load_maps("/proc/self/maps"));
    const struct line *st = containing((unsigned long)f[28]);
    say("stat startstack is in [stack], above a local",
        st && strcmp(st->path, "[stack]") == 0 && f[28] > (unsigned long)&local);
    say("stat startcode..endcode holds the code",
        f[26] < f[27] && f[26] <= (unsigned long)&check_status &&
            (unsigned long)&check_status < f[27]);
    say("stat arg_start..arg_end holds argv[0]",
        f[48] <= (unsigned long)argv0 && (unsigned long)argv0 < f[49]);
    say("stat env_start..env_end holds the environment",
        !env0 || (f[50] <= (unsigned long)env0 && (unsigned long)env0 < f[51]));
    say("stat blocked/sigignore/sigcatch",
        (f[32] & (1ULL << (SIGUSR2 - 1))) && (f[33] & (1ULL << (SIGPIPE - 1))) &&
            (f[34] & (1ULL << (SIGUSR1 - 1))));
    CHECK(slurp_into("/proc/self/statm", buf_b) > 0);
    unsigned long pages = 0;
    say("statm size is VmSize", sscanf(buf_b, "%lu", &pages) == 1 && pages * 4 == vmsize);
    CHECK(slurp_into("/proc/self/comm", buf_b) > 0);
    buf_b[strcspn(buf_b, "\n")] = 0;
    say("comm is the program's", strcmp(buf_b, expected_comm) == 0);
}

static int is_number(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static void check_fds(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    int lim = (int)rl.rlim_cur;
    int mine = open("mapped-file", O_RDONLY);
    CHECK(mine >= 0);
    const char *dirs[2] = {"/proc/self/fd", "/proc/self/fdinfo"};
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        CHECK(dir);
        int below = 1, has_std = 0, has_mine = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!is_number(e->d_name)) continue;
            int n = atoi(e->d_name);
            if (n >= lim) below = 0;
            if (n <= 2) has_std++;
            if (n == mine) has_mine = 1;
        }
        closedir(dir);
        char label[128];
        snprintf(label, sizeof label, "%s lists only descriptors below RLIMIT_NOFILE", dirs[d]);
        say(label, below);
        snprintf(label, sizeof label, "%s lists 0, 1, 2 and an open file", dirs[d]);
        say(label, has_std == 3 && has_mine);
    }
    char p[64], link[256];
    snprintf(p, sizeof p, "/proc/self/fd/%d", lim);
    say("readlink fd/RLIMIT_NOFILE: ENOENT", readlink(p, link, sizeof link) < 0 && errno == ENOENT);
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", lim);
    int fd = open(p, O_RDONLY);
    say("open fdinfo/RLIMIT_NOFILE: ENOENT", fd < 0 && errno == ENOENT);
    if (fd >= 0) close(fd);
    snprintf(p, sizeof p, "/proc/self/fd/%d", mine);
    ssize_t n = readlink(p, link, sizeof link - 1);
    char real[PATH_MAX];
    CHECK(realpath("mapped-file", real));
    say("readlink fd/N of an open file", n > 0 && (link[n] = 0, strcmp(link, real) == 0));
    close(mine);
}

static void check_tasks(void) {
    CHECK(pipe(gate) == 0);
    tids[0] = (pid_t)syscall(SYS_gettid);
    pthread_t t[2];
    for (long i = 1; i <= 2; i++) CHECK(pthread_create(&t[i - 1], NULL, waiter, (void *)i) == 0);
    while (!tids[1] || !tids[2]) usleep(1000);
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir);
    int count = 0, known = 1, names = 1;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!is_number(e->d_name)) continue;
        pid_t tid = atoi(e->d_name);
        count++;
        if (tid != tids[0] && tid != tids[1] && tid != tids[2]) known = 0;
        char p[96];
        snprintf(p, sizeof p, "/proc/self/task/%d/comm", tid);
        if (slurp_into(p, buf_b) <= 0) {
            names = 0;
            continue;
        }
        buf_b[strcspn(buf_b, "\n")] = 0;
        if (strcmp(buf_b, expected_comm)) names = 0;
    }
    closedir(dir);
    say("task lists the program's three threads", count == 3 && known);
    say("task threads are named as the program", names);
    char p[96];
    snprintf(p, sizeof p, "/proc/self/task/%d/status", tids[1]);
    check_status(p, 3, 0);
    snprintf(p, sizeof p, "/proc/%d/stat", tids[2]);
    char comm[64];
    unsigned long long f[64];
    say("a thread's own /proc/TID/stat has num_threads 3",
        slurp_into(p, buf_b) > 0 && parse_stat(buf_b, comm, sizeof comm, f) && f[20] == 3);
    CHECK(slurp_into("/proc/self/status", buf_b) > 0);
    say("status Threads with three threads", status_num(buf_b, "Threads") == 3);
    close(gate[1]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    close(gate[0]);
}

static void check_exe(void) {
    struct stat want, got;
    CHECK(stat(own_exe, &want) == 0);
    int fd = open("/proc/self/exe", O_RDONLY);
    say("open /proc/self/exe opens the program's file",
        fd >= 0 && fstat(fd, &got) == 0 && got.st_ino == want.st_ino && got.st_dev == want.st_dev);
    if (fd >= 0) close(fd);
    int dir = open("/proc/self", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    fd = openat(dir, "exe", O_RDONLY);
    say("openat(/proc/self, exe) opens the program's file",
        fd >= 0 && fstat(fd, &got) == 0 && got.st_ino == want.st_ino && got.st_dev == want.st_dev);
    if (fd >= 0) close(fd);
    char link[PATH_MAX];
    ssize_t n = readlinkat(dir, "exe", link, sizeof link - 1);
    say("readlinkat(/proc/self, exe) names the program", n > 0 && (link[n] = 0, !strcmp(link, own_exe)));
    close(dir);
    n = readlink("/proc/self/exe", link, sizeof link - 1);
    say("readlink /proc/self/exe names the program", n > 0 && (link[n] = 0, !strcmp(link, own_exe)));
    CHECK(slurp_into("/proc/self/limits", buf_b) > 0);
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    char *l = strstr(buf_b, "Max open files");
    unsigned long soft = 0;
    say("limits Max open files is RLIMIT_NOFILE",
        l && sscanf(l + 26, "%lu", &soft) == 1 && soft == rl.rlim_cur);
}

static int own(int argc, char **argv, const char *sandbox) {
    const char *fn = (const char *)getauxval(AT_EXECFN);
    CHECK(fn && realpath(fn, own_exe));
    argv0 = argv[0];
    env0 = environ[0];
    const char *base = strrchr(argv[0], '/');
    snprintf(expected_comm, sizeof expected_comm, "%s", base ? base + 1 : argv[0]);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    check_maps(sandbox);
    check_args(argc, argv);
    check_status("/proc/self/status", 1, 1);
    check_fds();
    check_tasks();
    check_exe();
    /* A new name shows everywhere. */
    CHECK(prctl(PR_SET_NAME, "renamed-proc") == 0);
    strcpy(expected_comm, "renamed-proc");
    CHECK(slurp_into("/proc/self/comm", buf_b) > 0);
    say("comm after PR_SET_NAME", strcmp(buf_b, "renamed-proc\n") == 0);
    check_status("/proc/thread-self/status", 1, 0);
    /* A forked child (in the sandbox a process of its own) sees its own entries, after the
     * parent used them. A sandboxed process needs /dev/kvm to fork: where the user may not
     * open it, there is no child to ask (the line says 1 both ways). */
    fflush(stdout);
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        say("a forked child sees its own entries", 1);
        printf("done\n");
        return 0;
    }
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        char comm[64];
        unsigned long long f[64];
        int ok = slurp_into("/proc/self/stat", buf_b) > 0 &&
                 parse_stat(buf_b, comm, sizeof comm, f) && atol(buf_b) == (long)getpid();
        DIR *d = opendir("/proc/self/fd");
        ok = ok && d && load_maps("/proc/self/maps") && containing((unsigned long)&comm);
        if (d) closedir(d);
        _exit(ok ? 0 : 3);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    say("a forked child sees its own entries", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("done\n");
    return 0;
}

static void try_open(const char *label, const char *path, int flags) {
    int fd = open(path, flags);
    printf("%s: %s\n", label, fd >= 0 ? "ok" : errname(errno));
    if (fd >= 0) close(fd);
}

static const char *const refused_entries[] = {"mem", "pagemap", "syscall", "stack", "wchan",
                                              "personality", "numa_maps", "timers", "map_files"};

static void refused_under(const char *label, const char *dir) {
    char p[256], l[256];
    for (size_t i = 0; i < sizeof refused_entries / sizeof refused_entries[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, refused_entries[i]);
        snprintf(l, sizeof l, "%s/%s", label, refused_entries[i]);
        try_open(l, p, O_RDONLY);
    }
    snprintf(p, sizeof p, "%s/clear_refs", dir);
    snprintf(l, sizeof l, "%s/clear_refs (write)", label);
    try_open(l, p, O_WRONLY);
    /* A map_files entry: the program's own code mapping. */
    const char *fn = (const char *)getauxval(AT_EXECFN);
    char real[PATH_MAX];
    CHECK(fn && realpath(fn, real));
    if (load_maps("/proc/self/maps")) {
        const struct line *x = containing((unsigned long)&refused_under);
        if (x) {
            snprintf(p, sizeof p, "%s/map_files/%lx-%lx", dir, x->start, x->end);
            snprintf(l, sizeof l, "%s/map_files/<code>", label);
            try_open(l, p, O_RDONLY);
            char link[PATH_MAX];
            ssize_t n = readlink(p, link, sizeof link);
            printf("%s readlink: %s\n", l, n >= 0 ? "ok" : errname(errno));
        }
    }
}

static int refused(void) {
    char pid[64], task[96];
    snprintf(pid, sizeof pid, "/proc/%ld", (long)getpid());
    snprintf(task, sizeof task, "/proc/%ld/task/%ld", (long)getpid(), (long)syscall(SYS_gettid));
    refused_under("/proc/self", "/proc/self");
    refused_under("/proc/thread-self", "/proc/thread-self");
    refused_under("/proc/PID", pid);
    refused_under("/proc/PID/task/TID", task);
    printf("done\n");
    return 0;
}

/* The child is forked first and both drop to the user then ("user"): a sandboxed process
 * needs /dev/kvm to fork, which may be root's only. */
static int other(int user) {
    int go[2], ready[2];
    CHECK(pipe(go) == 0 && pipe(ready) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(go[1]);
        close(ready[0]);
        if (user) drop_to_user();
        CHECK(write(ready[1], "r", 1) == 1);
        char b;
        ssize_t r = read(go[0], &b, 1);
        (void)r;
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    if (user) drop_to_user();
    char rb;
    CHECK(read(ready[0], &rb, 1) == 1);
    usleep(50000);
    char dir[64], p[128], l[128];
    snprintf(dir, sizeof dir, "/proc/%ld", (long)child);
    static const char *const entries[] = {"maps", "smaps", "smaps_rollup", "numa_maps", "mem",
                                          "pagemap", "environ", "auxv", "syscall", "stack",
                                          "wchan", "personality", "timers", "fd/0", "fdinfo/0"};
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, entries[i]);
        snprintf(l, sizeof l, "child/%s", entries[i]);
        try_open(l, p, O_RDONLY);
    }
    const char *dirs[3] = {"fd", "fdinfo", "map_files"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, dirs[i]);
        DIR *d = opendir(p);
        printf("child/%s opendir: %s\n", dirs[i], d ? "ok" : errname(errno));
        if (d) closedir(d);
    }
    snprintf(p, sizeof p, "%s/fd/0", dir);
    char link[256];
    printf("child/fd/0 readlink: %s\n", readlink(p, link, sizeof link) >= 0 ? "ok" : errname(errno));
    snprintf(p, sizeof p, "%s/stat", dir);
    char comm[64];
    unsigned long long f[64];
    int got = slurp_into(p, buf_b) > 0 && parse_stat(buf_b, comm, sizeof comm, f);
    int hidden = got && f[28] == 0 && f[26] <= 1 && f[27] <= 1;
    for (int i = 45; i <= 51; i++)
        if (f[i]) hidden = 0;
    printf("child stat readable: %d\n", got);
    printf("child stat addresses hidden: %d\n", hidden);
    snprintf(p, sizeof p, "%s/status", dir);
    printf("child status readable: %d\n", slurp_into(p, buf_b) > 0);
    snprintf(p, sizeof p, "%s/cmdline", dir);
    printf("child cmdline readable: %d\n", slurp_into(p, buf_b) > 0);
    close(go[1]);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    int user = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "user") == 0) user = 1;
    if (strcmp(argv[1], "other") == 0) return other(user);
    if (user) drop_to_user();
    if (strcmp(argv[1], "own") == 0) {
        CHECK(argc >= 3);
        return own(argc, argv, argv[2]);
    }
    if (strcmp(argv[1], "refused") == 0) return refused();
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 1;
}

/* RLIMIT_AS and RLIMIT_DATA hold on the program's mappings as Linux's may_expand_vm applies
 * them: the limits are set a little above what the process maps now (summed from
 * /proc/self/maps), then mmap, MAP_FIXED over a mapping, mremap growth, brk and
 * private-writable (data) versus shared or read-only mappings are tried against them. Results
 * are collected first and printed at the end (printing maps memory too). Also: raising a hard
 * limit takes CAP_SYS_RESOURCE (checked after dropping it). */
#define _GNU_SOURCE
#include "common.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MiB (1UL << 20)

/* Total and data (private writable, not the stack) bytes mapped now. */
static void usage(unsigned long *total, unsigned long *data) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f);
    char line[512];
    *total = *data = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3) continue;
        /* vsyscall is no VMA of the process (it is not counted by the kernel either). */
        if (strstr(line, "[vsyscall]")) continue;
        *total += e - s;
        if (perms[1] == 'w' && perms[3] == 'p' && !strstr(line, "[stack]")) *data += e - s;
    }
    fclose(f);
}

static const char *res(void *p) { return p == MAP_FAILED ? errname(errno) : "ok"; }

int main(void) {
    static char out[4096];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    unsigned long total, data;
    usage(&total, &data);
    struct rlimit as = {total + 64 * MiB, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_AS, &as) == 0);
    const char *r[16];
    int n = 0;
    void *a = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(a);                                                      /* 32 of 64: ok */
    void *b = mmap(NULL, 48 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(b);                                                      /* 80 > 64: ENOMEM */
    void *c = mmap(a, 32 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    r[n++] = res(c);                                                      /* replaces a: ok */
    void *d = mremap(a, 32 * MiB, 72 * MiB, MREMAP_MAYMOVE);
    r[n++] = res(d);                                                      /* 72 > 64: ENOMEM */
    d = mremap(a, 32 * MiB, 60 * MiB, MREMAP_MAYMOVE);
    r[n++] = res(d);                                                      /* 60: ok */
    if (d != MAP_FAILED) munmap(d, 60 * MiB);
    else munmap(a, 32 * MiB);
    as.rlim_cur = RLIM_INFINITY;
    CHECK(setrlimit(RLIMIT_AS, &as) == 0);

    usage(&total, &data);
    struct rlimit dl = {data + 16 * MiB, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_DATA, &dl) == 0);
    void *e = mmap(NULL, 24 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(e);                                                      /* data 24 > 16 */
    void *f = mmap(NULL, 24 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(f);                                                      /* shared: ok */
    void *g = mmap(NULL, 24 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(g);                                                      /* read-only: ok */
    void *h = mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[n++] = res(h);                                                      /* data 8: ok */
    void *brk0 = sbrk(0);
    void *s1 = sbrk(16 * MiB);                                            /* 8 + 16 > 16 */
    r[n++] = s1 == (void *)-1 ? errname(errno) : "ok";
    void *s2 = sbrk(4 * MiB);                                             /* 12: ok */
    r[n++] = s2 == (void *)-1 ? errname(errno) : "ok";
    int brk_kept = sbrk(0) == (char *)brk0 + (s2 == (void *)-1 ? 0 : 4 * MiB);
    dl.rlim_cur = RLIM_INFINITY;
    CHECK(setrlimit(RLIMIT_DATA, &dl) == 0);

    /* A hard limit lowered cannot be raised again without CAP_SYS_RESOURCE. */
    struct rlimit hard = {1UL << 40, 1UL << 40};
    CHECK(setrlimit(RLIMIT_AS, &hard) == 0);
    struct __user_cap_header_struct ch = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct cd[2];
    CHECK(syscall(SYS_capget, &ch, cd) == 0);
    cd[0].effective &= ~(1u << CAP_SYS_RESOURCE);
    CHECK(syscall(SYS_capset, &ch, cd) == 0);
    struct rlimit up = {1UL << 40, RLIM_INFINITY};
    errno = 0;
    int raised = setrlimit(RLIMIT_AS, &up);
    const char *raise_res = raised == 0 ? "ok" : errname(errno);

    const char *what[] = {"AS mmap 32", "AS mmap 48 more", "AS MAP_FIXED over", "AS mremap to 72",
                          "AS mremap to 60", "DATA private rw 24", "DATA shared rw 24",
                          "DATA private ro 24", "DATA private rw 8", "DATA brk +16",
                          "DATA brk +4"};
    for (int i = 0; i < n; i++) printf("%s: %s\n", what[i], r[i]);
    printf("brk where it should be: %d\n", brk_kept);
    printf("raise hard limit without CAP_SYS_RESOURCE: %s\n", raise_res);
    printf("done\n");
    return 0;
}

/* Memory management: anonymous mmap/munmap/mprotect, mremap, MAP_FIXED inside an own mapping,
 * file-backed MAP_PRIVATE and MAP_SHARED (msync), madvise, executable pages. Leaves shared.bin
 * and private.bin in the working directory for the harness to compare. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 31 + seed) >> 3);
}

static int check(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)((i * 31 + seed) >> 3)) return 0;
    return 1;
}

static int is_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static unsigned char *map_anon(size_t len, int prot) {
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

static void make_file(const char *path, size_t len, unsigned seed) {
    unsigned char *buf = malloc(len);
    CHECK(buf != NULL);
    fill(buf, len, seed);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, buf, len) == (ssize_t)len);
    CHECK(close(fd) == 0);
    free(buf);
}

int main(void) {
    printf("page size: %ld\n", sysconf(_SC_PAGESIZE));

    /* Anonymous memory is zeroed; munmap a hole in the middle; the rest stays. */
    unsigned char *a = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
    printf("fresh anonymous memory is zero: %d\n", is_zero(a, 16 * PAGE));
    fill(a, 16 * PAGE, 1);
    result("munmap middle page", munmap(a + 8 * PAGE, PAGE));
    printf("lower half intact: %d\n", check(a, 8 * PAGE, 1));
    int ok = 1;
    for (size_t i = 9 * PAGE; i < 16 * PAGE; i++) ok &= a[i] == (unsigned char)((i * 31 + 1) >> 3);
    printf("upper half intact: %d\n", ok);
    result("munmap already unmapped", munmap(a + 8 * PAGE, PAGE));
    result("munmap rest", munmap(a, 16 * PAGE));

    /* mprotect: read back after read-only, write after read-write, preserve across PROT_NONE. */
    unsigned char *b = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
    fill(b, 4 * PAGE, 7);
    result("mprotect RO", mprotect(b, 4 * PAGE, PROT_READ));
    printf("read after RO: %d\n", check(b, 4 * PAGE, 7));
    result("mprotect NONE", mprotect(b + PAGE, PAGE, PROT_NONE));
    result("mprotect RW", mprotect(b, 4 * PAGE, PROT_READ | PROT_WRITE));
    printf("preserved across NONE: %d\n", check(b, 4 * PAGE, 7));
    memset(b + 2 * PAGE, 0xab, PAGE);
    printf("write after RW: %d %d\n", b[2 * PAGE] == 0xab, b[3 * PAGE - 1] == 0xab);
    result("mprotect unaligned", mprotect(b + 1, PAGE, PROT_READ));
    result("mprotect bad prot", mprotect(b, PAGE, 0x1000));

    /* madvise(MADV_DONTNEED) on private anonymous memory gives zero pages back. */
    result("madvise DONTNEED", madvise(b, PAGE, MADV_DONTNEED));
    ok = 1;
    for (size_t i = PAGE; i < 2 * PAGE; i++) ok &= b[i] == (unsigned char)((i * 31 + 7) >> 3);
    printf("zero after DONTNEED: %d, next page kept: %d\n", is_zero(b, PAGE), ok);
    result("munmap b", munmap(b, 4 * PAGE));

    /* mremap grow (may move) and shrink, contents preserved. */
    unsigned char *c = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
    fill(c, 4 * PAGE, 3);
    unsigned char *c2 = mremap(c, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    CHECK(c2 != MAP_FAILED);
    printf("mremap grow: preserved %d, new part zero %d\n", check(c2, 4 * PAGE, 3),
           is_zero(c2 + 4 * PAGE, 60 * PAGE));
    memset(c2 + 63 * PAGE, 0x5a, PAGE);
    unsigned char *c3 = mremap(c2, 64 * PAGE, 2 * PAGE, 0);
    result("mremap shrink", c3 == MAP_FAILED ? -1 : 0);
    printf("mremap shrink in place: same address %d, preserved %d\n", c3 == c2,
           c3 != MAP_FAILED && check(c3, 2 * PAGE, 3));
    /* Grow in place into space this program freed itself. */
    unsigned char *d = map_anon(32 * PAGE, PROT_READ | PROT_WRITE);
    fill(d, 2 * PAGE, 9);
    CHECK(munmap(d + 2 * PAGE, 30 * PAGE) == 0);
    unsigned char *d2 = mremap(d, 2 * PAGE, 32 * PAGE, 0);
    printf("mremap grow in place: ok %d, same %d, preserved %d\n", d2 != MAP_FAILED, d2 == d,
           d2 != MAP_FAILED && check(d2, 2 * PAGE, 9));
    result("mremap bad flags", (long)mremap(d, PAGE, 2 * PAGE, MREMAP_FIXED) == -1 ? -1 : 0);
    result("munmap c3", munmap(c3, 2 * PAGE));
    result("munmap d2", munmap(d2, 32 * PAGE));

    /* MAP_FIXED inside an own mapping replaces just those pages. */
    unsigned char *e = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
    memset(e, 'A', 8 * PAGE);
    void *f = mmap(e + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED at requested address: %d\n", f == (void *)(e + 2 * PAGE));
    printf("replaced pages zero: %d, neighbours kept: %d %d\n", is_zero(e + 2 * PAGE, 2 * PAGE),
           e[2 * PAGE - 1] == 'A', e[4 * PAGE] == 'A');
    result("MAP_FIXED unaligned",
           mmap(e + 1, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
                   MAP_FAILED
               ? -1
               : 0);
    result("mmap length 0",
           mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    result("mmap bad fd", mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED ? -1 : 0);
    result("munmap unaligned", munmap(e + 1, PAGE));

    /* File-backed MAP_PRIVATE: writes stay private. */
    make_file("private.bin", 3 * PAGE, 11);
    int fd = open("private.bin", O_RDWR);
    CHECK(fd >= 0);
    unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    printf("private map matches file: %d\n", check(p, 3 * PAGE, 11));
    memset(p, 'P', 100);
    unsigned char buf[100];
    CHECK(pread(fd, buf, 100, 0) == 100);
    printf("private write not in file: %d\n", buf[0] != 'P' && check(buf, 100, 11));
    /* An offset mapping sees the later pages. */
    unsigned char *po = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
    CHECK(po != MAP_FAILED);
    printf("offset map: %d\n", po[0] == (unsigned char)((PAGE * 31 + 11) >> 3));
    /* MAP_FIXED file mapping inside an own anonymous mapping. */
    void *ff = mmap(e + 6 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    printf("MAP_FIXED file: at address %d, content %d\n", ff == (void *)(e + 6 * PAGE),
           check(e + 6 * PAGE, PAGE, 11));
    CHECK(munmap(p, 3 * PAGE) == 0);
    CHECK(munmap(po, PAGE) == 0);
    CHECK(munmap(e, 8 * PAGE) == 0);
    CHECK(close(fd) == 0);

    /* File-backed MAP_SHARED: writes reach the file (msync), also through a second fd. */
    make_file("shared.bin", 2 * PAGE, 5);
    fd = open("shared.bin", O_RDWR);
    CHECK(fd >= 0);
    unsigned char *s = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED);
    CHECK(close(fd) == 0);
    memcpy(s + 10, "written through MAP_SHARED", 26);
    s[2 * PAGE - 1] = '!';
    result("msync", msync(s, 2 * PAGE, MS_SYNC));
    int fd2 = open("shared.bin", O_RDONLY);
    CHECK(fd2 >= 0);
    char sb[32] = {0};
    CHECK(pread(fd2, sb, 26, 10) == 26);
    printf("file after msync: %s\n", sb);
    /* A write(2) to the file shows in the mapping. */
    int fd3 = open("shared.bin", O_WRONLY);
    CHECK(fd3 >= 0);
    CHECK(pwrite(fd3, "via write", 9, 100) == 9);
    printf("mapping sees write(2): %d\n", memcmp(s + 100, "via write", 9) == 0);
    CHECK(close(fd3) == 0);
    CHECK(close(fd2) == 0);
    result("munmap shared", munmap(s, 2 * PAGE));

    /* Executable memory: write code, flip to read+exec, call it. */
    unsigned char *x = map_anon(PAGE, PROT_READ | PROT_WRITE);
    static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov $42,%eax; ret */
    memcpy(x, code, sizeof code);
    result("mprotect RX", mprotect(x, PAGE, PROT_READ | PROT_EXEC));
    int (*fn)(void);
    memcpy(&fn, &x, sizeof fn);
    printf("called generated code: %d\n", fn());
    CHECK(munmap(x, PAGE) == 0);

    /* A large sparse mapping; touch a few pages. */
    size_t big = 256UL << 20;
    unsigned char *g = map_anon(big, PROT_READ | PROT_WRITE);
    for (size_t off = 0; off < big; off += 16UL << 20) g[off] = (unsigned char)(off >> 20);
    ok = 1;
    for (size_t off = 0; off < big; off += 16UL << 20) ok &= g[off] == (unsigned char)(off >> 20);
    printf("sparse 256 MiB mapping: %d, untouched zero %d\n", ok, g[big - 1] == 0);
    result("munmap big", munmap(g, big));

    printf("done\n");
    return 0;
}

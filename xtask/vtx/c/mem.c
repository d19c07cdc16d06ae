/* mem: heap, brk, mmap/munmap/mprotect/mremap and MAP_FIXED replacement, each followed by reads
 * that would see stale data through a stale TLB entry; prints checksums. Part of the VT-x rig's
 * differential suite (cargo xtask vtx). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t sum(const unsigned char *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i += 512) s = s * 31 + p[i];
    return s;
}

#define CHECK(c)                                              \
    do {                                                      \
        if (!(c)) {                                           \
            printf("FAIL line %d: %s\n", __LINE__, #c);       \
            return 1;                                         \
        }                                                     \
    } while (0)

int main(void) {
    const size_t page = 4096, n = 8 << 20;
    /* malloc'd blocks of growing sizes (brk and mmap thresholds). */
    uint64_t total = 0;
    for (size_t sz = 16; sz <= (4 << 20); sz *= 4) {
        unsigned char *b = malloc(sz);
        CHECK(b);
        memset(b, (int)(sz & 0xff) | 1, sz);
        total += sum(b, sz);
        free(b);
    }
    printf("malloc: %llu\n", (unsigned long long)total);

    /* brk grows and shrinks. */
    char *brk0 = sbrk(0);
    CHECK(sbrk(1 << 20) == brk0);
    memset(brk0, 7, 1 << 20);
    CHECK(sbrk(-(1 << 19)) != (void *)-1);
    printf("brk: %d\n", brk0[(1 << 19) - 1]);

    /* Anonymous mapping, every page touched. */
    unsigned char *m = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    for (size_t i = 0; i < n; i += page) m[i] = (unsigned char)(i / page);
    printf("mmap: %llu\n", (unsigned long long)sum(m, n));

    /* Replace the first half in place with new contents (MAP_FIXED): reads must see the new. */
    unsigned char *r = mmap(m, n / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(r == m);
    CHECK(m[page] == 0 && m[n / 2 + page] == (unsigned char)(n / 2 / page + 1));
    for (size_t i = 0; i < n / 2; i += page) m[i] = 0x5a;
    printf("map_fixed: %llu\n", (unsigned long long)sum(m, n));

    /* madvise(DONTNEED) zeroes private anonymous memory. */
    CHECK(madvise(m, n / 2, MADV_DONTNEED) == 0);
    CHECK(m[0] == 0 && m[n / 2 - page] == 0);

    /* Read-only, then read-write again. */
    CHECK(mprotect(m, n, PROT_READ) == 0);
    printf("mprotect_r: %llu\n", (unsigned long long)sum(m, n));
    CHECK(mprotect(m, n, PROT_READ | PROT_WRITE) == 0);
    m[0] = 9;

    /* Unmap the second half, map something else there, grow with mremap. */
    CHECK(munmap(m + n / 2, n / 2) == 0);
    unsigned char *g = mremap(m, n / 2, n, MREMAP_MAYMOVE);
    CHECK(g != MAP_FAILED);
    CHECK(g[0] == 9 && g[n / 2] == 0 && g[n - 1] == 0);
    for (size_t i = 0; i < n; i += page) g[i] += 1;
    printf("mremap: %llu\n", (unsigned long long)sum(g, n));
    CHECK(munmap(g, n) == 0);

    /* Many small map/unmap cycles at the same address: each must see fresh zeros. */
    unsigned char *a = mmap(0, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    for (int i = 0; i < 200; i++) {
        CHECK(a[100] == 0);
        a[100] = (unsigned char)i | 1;
        CHECK(munmap(a, page) == 0);
        unsigned char *b = mmap(a, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        CHECK(b == a);
    }
    printf("cycles: ok\n");
    return 0;
}

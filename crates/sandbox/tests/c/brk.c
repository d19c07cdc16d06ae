/* The program break: sbrk to 1 GiB in 64 MiB steps, touching every 1 MiB and the last byte of
 * each step, then shrinking back; then malloc/calloc/realloc/free of many sizes.
 *
 * The brk part runs before anything calls malloc (stdio included: printf allocates its buffer),
 * because glibc's malloc grows the same break. Results are kept in arrays and printed after. */
#define _GNU_SOURCE
#include "common.h"

#include <sys/syscall.h>
#include <unistd.h>

#define MIB (1UL << 20)
#define STEP (64 * MIB)
#define TOTAL (1024 * MIB)
#define NSTEPS (TOTAL / STEP)

static int grow_ok[NSTEPS], kept_ok[NSTEPS], shrink_ok[NSTEPS];

static unsigned char mark(size_t off) { return (unsigned char)(off / MIB * 7 + 1); }

int main(void) {
    char *start = sbrk(0);
    int start_ok = start != (char *)-1;
    /* Raw brk(0) reports the same break. */
    int raw_same = (char *)syscall(SYS_brk, 0) == start;

    for (size_t i = 0; i < NSTEPS; i++) {
        char *old = sbrk(STEP);
        grow_ok[i] = old == start + i * STEP;
        if (!grow_ok[i]) break;
        for (size_t off = i * STEP; off < (i + 1) * STEP; off += MIB) start[off] = mark(off);
        start[(i + 1) * STEP - 1] = 0x77;
        /* Everything touched so far is still there. */
        int ok = 1;
        for (size_t off = 0; off < (i + 1) * STEP; off += MIB) ok &= start[off] == (char)mark(off);
        kept_ok[i] = ok;
    }
    int top_ok = (char *)sbrk(0) == start + TOTAL;
    /* A brk below the initial break is refused: the kernel returns the current break. */
    int below_refused = (char *)syscall(SYS_brk, start - 16 * MIB) == start + TOTAL;
    for (size_t i = NSTEPS; i-- > 0;) {
        char *old = sbrk(-(intptr_t)STEP);
        shrink_ok[i] = old == start + (i + 1) * STEP && (char *)sbrk(0) == start + i * STEP;
    }
    int back_ok = (char *)sbrk(0) == start;
    /* Growing again gives zeroed memory, not the old contents. */
    char *again = sbrk(MIB);
    int zero_again = again == start && start[0] == 0 && start[MIB - 1] == 0;
    sbrk(-(intptr_t)MIB);

    printf("initial break ok: %d, raw brk(0) agrees: %d\n", start_ok, raw_same);
    for (size_t i = 0; i < NSTEPS; i++)
        printf("grow to %4lu MiB: %d, contents kept: %d\n", (unsigned long)((i + 1) * STEP / MIB),
               grow_ok[i], kept_ok[i]);
    printf("top at 1 GiB: %d, brk below start refused: %d\n", top_ok, below_refused);
    for (size_t i = NSTEPS; i-- > 0;)
        printf("shrink to %4lu MiB: %d\n", (unsigned long)(i * STEP / MIB), shrink_ok[i]);
    printf("back at start: %d, regrown memory zero: %d\n", back_ok, zero_again);

    /* malloc of many sizes: small bins, large bins, mmap-served, with a deterministic free
     * order; every block filled and checked. */
    enum { N = 400 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    uint64_t sum = FNV_INIT;
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        size_t s;
        if (i < 100) s = (size_t)i + 1;
        else if (i < 200) s = (size_t)(i - 99) * 97;
        else if (i < 300) s = (size_t)1 << ((i - 200) % 24);
        else s = ((size_t)1 << ((i - 300) % 26)) + (size_t)(i % 3) - 1;
        if (s == 0) s = 1;
        sizes[i] = s;
        blocks[i] = malloc(s);
        CHECK(blocks[i] != NULL);
        CHECK(((uintptr_t)blocks[i] & 15) == 0);
        for (size_t j = 0; j < s; j += s > 4096 ? 4093 : 1) blocks[i][j] = (unsigned char)(i + j);
        blocks[i][s - 1] = (unsigned char)i;
        total += s;
        /* Free a deterministic subset early to exercise reuse. */
        if (i % 7 == 3) {
            free(blocks[i / 2]);
            blocks[i / 2] = NULL;
        }
    }
    int intact = 1;
    for (int i = 0; i < N; i++) {
        if (!blocks[i]) continue;
        size_t s = sizes[i];
        for (size_t j = 0; j + 1 < s; j += s > 4096 ? 4093 : 1)
            intact &= blocks[i][j] == (unsigned char)(i + j);
        intact &= blocks[i][s - 1] == (unsigned char)i;
        sum = fnv1a(sum, &blocks[i][s - 1], 1);
    }
    for (int i = 0; i < N; i++) {
        int k = (i * 37) % N; /* 37 is coprime with N: a permutation */
        free(blocks[k]);
        blocks[k] = NULL;
    }
    printf("malloc: %d blocks, %lu bytes, intact %d, checksum %016llx\n", N,
           (unsigned long)total, intact, (unsigned long long)sum);

    unsigned char *z = calloc(1000, 1000);
    CHECK(z != NULL);
    int zero = 1;
    for (size_t i = 0; i < 1000000; i++) zero &= z[i] == 0;
    free(z);
    printf("calloc zeroed: %d\n", zero);

    unsigned char *r = NULL;
    size_t rs = 0;
    int rok = 1;
    for (int i = 0; i < 29; i++) {
        size_t ns = (size_t)1 << i;
        r = realloc(r, ns);
        CHECK(r != NULL);
        for (size_t j = 0; j < rs; j += 65521) rok &= r[j] == (unsigned char)(j * 3);
        for (size_t j = rs; j < ns; j++)
            if (j % 65521 == 0) r[j] = (unsigned char)(j * 3);
        rs = ns;
    }
    r = realloc(r, 10);
    rok &= r != NULL && r[0] == 0;
    free(r);
    printf("realloc growth to 256 MiB and back: %d\n", rok);
    printf("done\n");
    return 0;
}

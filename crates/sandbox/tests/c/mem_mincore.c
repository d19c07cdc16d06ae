/* mincore of partly or wholly unmapped memory: ENOMEM as in Linux, while the mapped parts
 * (PROT_NONE mappings included) are reported; EINVAL for an unaligned start, EFAULT for a
 * vector the kernel cannot write, and nothing for an empty range. */
#define _GNU_SOURCE
#include "common.h"

#include <sys/mman.h>
#include <unistd.h>

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = p[2 * pg] = 1;
    unsigned char vec[8];
    memset(vec, 0xee, sizeof vec);
    res("mincore all mapped", mincore(p, 3 * pg, vec));
    printf("resident first %d third %d\n", vec[0] & 1, vec[2] & 1);
    CHECK(munmap(p + pg, pg) == 0);
    res("mincore with a hole", mincore(p, 3 * pg, vec));
    res("mincore before the hole", mincore(p, pg, vec));
    res("mincore the hole", mincore(p + pg, pg, vec));
    res("mincore after the hole", mincore(p + 2 * pg, pg, vec));
    CHECK(mprotect(p + 3 * pg, pg, PROT_NONE) == 0);
    res("mincore PROT_NONE page", mincore(p + 3 * pg, pg, vec));
    res("mincore unaligned", mincore(p + 1, pg, vec));
    res("mincore empty range in the hole", mincore(p + pg, 0, vec));
    char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    res("mincore read-only vector", mincore(p, pg, (unsigned char *)ro));
    CHECK(munmap(p, 4 * pg) == 0);
    res("mincore after munmap", mincore(p, pg, vec));
    res("mincore huge length", mincore(p, (size_t)1 << 62, vec));
    printf("done\n");
    return 0;
}

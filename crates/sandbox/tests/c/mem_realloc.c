/* A buffer grown with realloc in ~200 KiB steps to 16 MiB (or the MiB given), its contents checked after every
 * step (CPython's BytesIO receiving a big multiprocessing message does this). glibc grows an
 * mmap'ed chunk with mremap(MREMAP_MAYMOVE): in place while the pages after it are free, moved
 * otherwise, so the buffer ends up made of several host mappings moved together. This found
 * two defects: guest stores lost after a move (a page-table page reused while the host's shadow
 * of it still described another range) and EFAULT where Linux moves the mapping. */
#include "common.h"

static unsigned char expect(size_t i) { return (unsigned char)(i * 131 + i / 4093); }

int main(int argc, char **argv) {
    /* Up to MiB megabytes (argument; 16 by default). */
    size_t max = (argc > 1 ? (size_t)atoi(argv[1]) : 16) << 20;
    unsigned char *b = NULL;
    size_t len = 0;
    int grown = 0;
    for (int round = 0; round < 2; round++) {
        free(b);
        b = NULL;
        len = 0;
        while (len < max) {
            size_t step = 200 * 1024 + (len % 7) * 4096;
            unsigned char *nb = realloc(b, len + step);
            CHECK(nb != NULL);
            b = nb;
            for (size_t i = 0; i < step; i++) b[len + i] = expect(len + i);
            len += step;
            grown++;
            for (size_t i = 0; i < len; i++)
                if (b[i] != expect(i)) {
                    fprintf(stderr, "round %d, %zu bytes: byte %zu is %u, not %u\n", round, len, i,
                            b[i], expect(i));
                    return 1;
                }
        }
    }
    printf("grown %d times to %zu bytes, every byte kept\n", grown, len);
    free(b);
    puts("done");
    return 0;
}

/* Reads stdin to EOF with varying read sizes; prints the length and a checksum. */
#define _GNU_SOURCE
#include "common.h"

#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    static unsigned char buf[65536];
    static const size_t sizes[] = {1, 7, 4096, 65536, 100, 3};
    struct stat st;
    CHECK(fstat(0, &st) == 0);
    printf("stdin is a fifo: %d\n", S_ISFIFO(st.st_mode));
    uint64_t h = FNV_INIT;
    unsigned long total = 0;
    for (unsigned i = 0;; i++) {
        ssize_t n = read(0, buf, sizes[i % 6]);
        CHECK(n >= 0);
        if (n == 0) break;
        h = fnv1a(h, buf, (size_t)n);
        total += (unsigned long)n;
    }
    printf("read again at EOF: %ld\n", (long)read(0, buf, sizeof buf));
    printf("stdin: %lu bytes, checksum %016llx\n", total, (unsigned long long)h);
    printf("done\n");
    return 0;
}

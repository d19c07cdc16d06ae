/* First touch of fresh memory: maps 256 MiB of anonymous memory and writes one byte in every
 * 4 KiB page (the cost is the page faults: on shadow-paging hosts each first touch is a guest
 * fault that KVM fills). */
#include <stdio.h>
#include <sys/mman.h>

int main(void) {
    size_t n = 256UL << 20;
    unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += 4096) p[i] = (unsigned char)i + 1;
    for (size_t i = 0; i < n; i += 4096) sum += p[i];
    return sum == 0;
}

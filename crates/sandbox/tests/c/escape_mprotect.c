/* escape_mprotect
 *
 * mprotect(PROT_READ|PROT_WRITE|PROT_EXEC) over memory the program does not own: ranges well
 * above and below its own mappings (where the runtime may keep its trampoline, guest page tables
 * or IDT), the kernel half, non-canonical addresses, and the runtime's mappings from
 * /proc/self/maps (see escape.h). Every attempt must fail (ENOMEM/EINVAL/EACCES). A range whose
 * first page is the program's own is skipped: mapped (mincore/msync say so) and, where
 * /proc/self/maps can be read, inside a mapping that is the program's own (escape.h) or a kernel
 * special one. (In the sandbox, /proc/self/maps shows the runtime's reservations around the
 * program's memory; those are not the program's, and mprotect on them must fail.)
 * Lines: "mprotect <label> 0x<addr>+0x<len>: <result>", result "failed E...", "skip (mapped)"
 * or "SUCCEEDED". PROT_RWX cannot hurt natively: mprotect on a range starting in a hole changes
 * nothing. Natively the runtime part says "no foreign mapping". */
#define _GNU_SOURCE
#include "escape.h"

#include <sys/mman.h>

/* Whether the page at addr is mapped in the program's own view. */
static int mapped(uintptr_t addr) {
    unsigned char vec;
    void *p = (void *)addr;
    if (mincore(p, PAGE_SIZE_4K, &vec) == 0) return 1;
    if (errno == ENOMEM) return 0;
    if (msync(p, PAGE_SIZE_4K, MS_ASYNC) == 0) return 1;
    return errno != ENOMEM && errno != EINVAL;
}

static struct ctx c;
static int have_maps;

/* Whether addr lies in a mapping of /proc/self/maps that is the program's own or special. */
static int own_mapping(uintptr_t addr) {
    if (!have_maps) return 1;
    for (int i = 0; i < c.nmaps; i++) {
        const struct mapping *m = &c.maps[i];
        if (addr >= m->start && addr < m->end)
            return is_own(&c, m) || strncmp(m->path, "[v", 2) == 0;
    }
    return 0;
}

static int attempts, successes;

static void try_range(const char *label, uintptr_t addr, uintptr_t len) {
    printf("mprotect %s 0x%lx+0x%lx: ", label, (unsigned long)addr, (unsigned long)len);
    if (addr < (1UL << 47) && mapped(addr) && own_mapping(addr)) {
        printf("skip (mapped)\n");
        fflush(stdout);
        return;
    }
    fflush(stdout);
    attempts++;
    int r = mprotect((void *)addr, len, PROT_READ | PROT_WRITE | PROT_EXEC);
    if (r == 0) {
        successes++;
        printf("SUCCEEDED\n");
    } else {
        printf("failed %s\n", errname(errno));
    }
    fflush(stdout);
}

int main(void) {
    int local = 0;
    uintptr_t stack = ((uintptr_t)&local) & ~(PAGE_SIZE_4K - 1);
    have_maps = escape_init(&c, &local) > 0;
    if (!have_maps) printf("cannot read /proc/self/maps: %s\n", errname(errno));
    /* Fixed places: the last user page, the top 2 MiB/1 GiB of the lower half, the first
     * non-canonical page, the kernel half (direct map, kernel text, fixmap, vsyscall), the null
     * page region. */
    try_range("top page", 0x7ffffffff000UL, PAGE_SIZE_4K);
    try_range("top 2MiB", 0x7fffffe00000UL, 2UL << 20);
    try_range("top 1GiB", 0x7fffc0000000UL, 1UL << 30);
    try_range("upper 256MiB of 0x7ff0", 0x7ff000000000UL, 256UL << 20);
    try_range("non-canonical", 0x800000000000UL, PAGE_SIZE_4K);
    try_range("kernel half start", 0xffff800000000000UL, PAGE_SIZE_4K);
    try_range("kernel direct map", 0xffff888000000000UL, 2UL << 20);
    try_range("kernel text", 0xffffffff80000000UL, 2UL << 20);
    try_range("fixmap", 0xffffffffff000000UL, PAGE_SIZE_4K);
    try_range("vsyscall", 0xffffffffff600000UL, PAGE_SIZE_4K);
    try_range("last page", 0xfffffffffffff000UL, PAGE_SIZE_4K);
    try_range("null page", 0, PAGE_SIZE_4K);
    try_range("low 64KiB", 0x1000, 0xf000);
    try_range("0x100000", 0x100000, 0x100000);
    /* Relative to the program's stack: well above it (1 GiB, 4 GiB) and the whole rest of the
     * lower half above that. */
    const uintptr_t top = 0x7ffffffff000UL;
    if (stack + (1UL << 30) < top) try_range("stack+1GiB", stack + (1UL << 30), PAGE_SIZE_4K);
    if (stack + (4UL << 30) < top)
        try_range("stack+4GiB..top", stack + (4UL << 30), top - stack - (4UL << 30));
    if (stack + (256UL << 20) < top)
        try_range("stack+256MiB", stack + (256UL << 20), PAGE_SIZE_4K);
    try_range("stack-64GiB", stack - (64UL << 30), PAGE_SIZE_4K);

    /* The runtime's own mappings. */
    if (have_maps) {
        static const char *const kinds[] = {"exe", "heap", "stack", "first"};
        for (int k = 0; k < 4; k++) {
            int i = pick(&c, kinds[k], 0);
            if (i < 0) {
                printf("runtime %s: no foreign mapping\n", kinds[k]);
                continue;
            }
            char label[64];
            snprintf(label, sizeof label, "runtime %s", kinds[k]);
            uintptr_t page = inside(&c, i) & ~(PAGE_SIZE_4K - 1);
            try_range(label, page, PAGE_SIZE_4K);
            snprintf(label, sizeof label, "runtime %s whole", kinds[k]);
            try_range(label, c.maps[i].start, c.maps[i].end - c.maps[i].start);
        }
        /* Where the runtime shows (some named mapping is foreign), its anonymous memory too:
         * guest page tables, the trampoline, reservations around the program's memory. Every
         * anonymous mapping that holds none of the program's known addresses. */
        if (pick(&c, "any", 0) >= 0) {
            int anon = 0;
            for (int i = 0; i < c.nmaps && anon < 64; i++) {
                const struct mapping *m = &c.maps[i];
                if (m->path[0] || is_own(&c, m)) continue;
                char label[64];
                snprintf(label, sizeof label, "runtime anon %s", m->perms);
                try_range(label, m->start, PAGE_SIZE_4K);
                anon++;
            }
        }
    }
    printf("attempts %d, successes %d\n", attempts, successes);
    printf("alive\n");
    return local;
}

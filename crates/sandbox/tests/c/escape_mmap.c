/* escape_mmap runtime|own
 *
 * Tries to map over, move onto, unmap and discard memory at addresses of the runtime (foreign
 * mappings from /proc/self/maps, see escape.h), or with "own" at the program's own pages (the
 * control: there it all works). In the sandbox, mmap(MAP_FIXED) and mremap(MREMAP_FIXED) onto the
 * runtime (its named mappings, and its anonymous read-write memory) must fail and the runtime
 * must survive everything (the last line is "alive"). */
#define _GNU_SOURCE
#include "escape.h"

#include <sys/mman.h>

static void result(const char *what, const char *kind, long ok) {
    if (ok)
        printf("%s %s: ok\n", what, kind);
    else
        printf("%s %s: failed %s\n", what, kind, errname(errno));
    fflush(stdout);
}

static void attack(const char *kind, uintptr_t addr) {
    void *page = (void *)(addr & ~(PAGE_SIZE_4K - 1));
    void *r = mmap(page, PAGE_SIZE_4K, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    result("mmap MAP_FIXED", kind, r != MAP_FAILED);
    int fd = open("file.bin", O_RDONLY);
    CHECK(fd >= 0);
    r = mmap(page, PAGE_SIZE_4K, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    result("mmap file MAP_FIXED", kind, r != MAP_FAILED);
    CHECK(close(fd) == 0);
    void *src = mmap(NULL, PAGE_SIZE_4K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(src != MAP_FAILED);
    memset(src, 0xcc, PAGE_SIZE_4K);
    r = mremap(src, PAGE_SIZE_4K, PAGE_SIZE_4K, MREMAP_MAYMOVE | MREMAP_FIXED, page);
    result("mremap MREMAP_FIXED", kind, r != MAP_FAILED);
    if (r == MAP_FAILED) munmap(src, PAGE_SIZE_4K);
    /* Unmapping a range the program has not mapped is a no-op success on Linux; either way
     * the runtime must not lose the page. Reported, not judged. */
    int u = munmap(page, PAGE_SIZE_4K);
    printf("munmap %s: %s\n", kind, u == 0 ? "0" : errname(errno));
    fflush(stdout);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    int runtime = strcmp(argv[1], "runtime") == 0;
    CHECK(runtime || strcmp(argv[1], "own") == 0);
    int fd = open("file.bin", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    static char filler[4096];
    memset(filler, 'F', sizeof filler);
    CHECK(write(fd, filler, sizeof filler) == (ssize_t)sizeof filler);
    CHECK(close(fd) == 0);
    int local = 0;
    if (!runtime) {
        void *own = mmap(NULL, 4 * PAGE_SIZE_4K, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(own != MAP_FAILED);
        attack("own", (uintptr_t)own + PAGE_SIZE_4K);
    } else {
        static struct ctx c;
        CHECK(escape_init(&c, &local) > 0);
        static const char *const kinds[] = {"exe", "heap", "stack", "first"};
        int tried = 0;
        for (int k = 0; k < 4; k++) {
            int i = pick(&c, kinds[k], 0);
            if (i < 0) {
                printf("no %s mapping\n", kinds[k]);
                continue;
            }
            printf("target %s: 0x%lx %s %s\n", kinds[k], (unsigned long)inside(&c, i),
                   c.maps[i].perms, c.maps[i].path);
            fflush(stdout);
            attack(kinds[k], inside(&c, i));
            tried++;
        }
        if (!tried) pick_or_exit(&c, "any", 0);
        /* The runtime's anonymous read-write memory (guest page tables, its own heaps): every
         * such mapping that holds none of the program's known addresses. (PROT_NONE ones are
         * left out: they may be reservations the program may legitimately map over.) */
        int anon = 0;
        for (int i = 0; i < c.nmaps && anon < 16; i++) {
            const struct mapping *m = &c.maps[i];
            if (m->path[0] || is_own(&c, m) || strncmp(m->perms, "rw", 2) != 0) continue;
            printf("target anon: 0x%lx %s\n", (unsigned long)m->start, m->perms);
            fflush(stdout);
            attack("anon", m->start);
            anon++;
        }
    }
    /* A system call and stdio after the attempts: the runtime still works. */
    printf("alive\n");
    return local;
}

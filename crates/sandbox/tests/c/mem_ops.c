/* A differential property test of the memory manager: a random sequence of mmap (anonymous,
 * private and shared file), munmap, mremap (grow and shrink in place, MREMAP_MAYMOVE,
 * MREMAP_FIXED, MREMAP_DONTUNMAP, a second mapping of shared pages), mprotect, madvise
 * (MADV_DONTNEED and the advice that only sets flags), brk, and stores by the program and by
 * the kernel (pread into the mapping). The program keeps a model of every page's contents and
 * rights and checks them after every step, through its own loads (the guest's view) and through
 * pwrite from the mapping (the host kernel's view). stdout gets one line per step with the
 * outcome (errno names, never addresses), so native and sandboxed runs must print the same.
 *
 * Usage: mem_ops SEED STEPS. No malloc and no stdio buffers: brk is one of the operations. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PG 4096UL
#define ARENA_PAGES 6144 /* 24 MiB */
#define MAXOBJ 32
#define MAXNP 768 /* 3 MiB: objects of 512 pages and more reach the 2 MiB-page paths */
#define FILE_PAGES 1536

enum kind { ANON, FPRIV, FSHARED, HEAP };
static const char *kind_name[] = {"anon", "fpriv", "fshared", "heap"};

struct page {
    uint64_t gen;  /* content generation; 0 = zero page (anonymous) */
    uint8_t prot;  /* PROT_* */
    uint8_t own;   /* file mappings: a private copy (gen) instead of the file's page */
};

struct obj {
    int used;
    uint64_t addr;
    size_t np;
    enum kind kind;
    size_t foff; /* file mappings: file page of page 0 */
    struct page *pg;
};

static struct obj objs[MAXOBJ];
static struct page pool[MAXOBJ][MAXNP];
static uint64_t file_gen[FILE_PAGES + MAXNP];
static uint64_t arena;
static int file_fd, probe_fd;
static uint64_t rng, gen_next = 100;
static uint64_t brk0;
static unsigned char buf[PG], buf2[PG];
static char out[256];

static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void say(const char *s) {
    size_t n = strlen(s);
    if (write(1, s, n) != (ssize_t)n) exit(3);
}

static void fail(int step, const char *what, struct obj *o, size_t i) {
    snprintf(out, sizeof out, "step %d: %s: %s object page %zu/%zu\n", step, what,
             kind_name[o->kind], i, o->np);
    if (write(2, out, strlen(out)) < 0) exit(4);
    exit(1);
}

static uint64_t word(uint64_t gen, size_t j) {
    if (gen == 0) return 0;
    return gen * 0x9E3779B97F4A7C15ULL ^ (j + 1) * 0xC2B2AE3D27D4EB4FULL;
}

static void fill(unsigned char *p, uint64_t gen) {
    uint64_t *w = (uint64_t *)p;
    for (size_t j = 0; j < PG / 8; j++) w[j] = word(gen, j);
}

static int same(const unsigned char *p, uint64_t gen) {
    const uint64_t *w = (const uint64_t *)p;
    for (size_t j = 0; j < PG / 8; j++)
        if (w[j] != word(gen, j)) return 0;
    return 1;
}

/* What page i of o holds. */
static uint64_t expect(struct obj *o, size_t i) {
    struct page *p = &o->pg[i];
    if ((o->kind == FPRIV && !p->own) || o->kind == FSHARED) return file_gen[o->foff + i];
    return p->gen;
}

static void check_page(int step, struct obj *o, size_t i, int host) {
    if (!(o->pg[i].prot & PROT_READ)) return;
    unsigned char *p = (unsigned char *)(o->addr + i * PG);
    if (!same(p, expect(o, i))) fail(step, "guest view differs", o, i);
    if (host) {
        if (pwrite(probe_fd, p, PG, 0) != (ssize_t)PG) fail(step, "pwrite from it failed", o, i);
        if (pread(probe_fd, buf2, PG, 0) != (ssize_t)PG) fail(step, "pread failed", o, i);
        if (!same(buf2, expect(o, i))) fail(step, "host view differs", o, i);
    }
}

/* Every page (full) or a sample, through the program's loads; a sample of those through the
 * kernel too (each costs two system calls, which is what makes a sandboxed run slow). */
static void check_obj(int step, struct obj *o, int full) {
    for (size_t i = 0; i < o->np; i++)
        if (full || i == 0 || i + 1 == o->np || below(16) == 0)
            check_page(step, o, i, i == 0 || below(full ? 4 : 16) == 0);
}

/* ---- the arena: which object owns each page ---- */

static int in_arena(uint64_t a) { return a >= arena && a < arena + ARENA_PAGES * PG; }

static int page_free(uint64_t a) {
    if (!in_arena(a)) return 0;
    for (int k = 0; k < MAXOBJ; k++)
        if (objs[k].used && objs[k].kind != HEAP && a >= objs[k].addr &&
            a < objs[k].addr + objs[k].np * PG)
            return 0;
    /* Pages never mapped by the test are still the arena's PROT_NONE mapping: not free
     * unless a previous munmap freed them, which `holes` records. */
    return 1;
}

/* Arena pages that were unmapped (holes): only those are free for MAP_FIXED and for growing
 * in place; the rest of the arena is its own PROT_NONE mapping. */
static uint8_t hole[ARENA_PAGES];

static int range_free(uint64_t a, size_t np) {
    for (size_t i = 0; i < np; i++) {
        uint64_t p = a + i * PG;
        if (!in_arena(p) || !hole[(p - arena) / PG] || !page_free(p)) return 0;
    }
    return 1;
}

static void mark(uint64_t a, size_t np, int is_hole) {
    for (size_t i = 0; i < np; i++) {
        uint64_t p = a + i * PG;
        if (in_arena(p)) hole[(p - arena) / PG] = (uint8_t)is_hole;
    }
}

/* A random run of np free arena pages, or 0. */
static uint64_t find_free(size_t np) {
    for (int tries = 0; tries < 40; tries++) {
        uint64_t a = arena + below(ARENA_PAGES - np) * PG;
        if (range_free(a, np)) return a;
    }
    return 0;
}

static struct obj *new_obj(void) {
    for (int k = 0; k < MAXOBJ; k++)
        if (!objs[k].used) {
            memset(&objs[k], 0, sizeof objs[k]);
            objs[k].used = 1;
            objs[k].pg = pool[k];
            return &objs[k];
        }
    return NULL;
}

/* A random object: of kind `want` (>= 0), any but the heap (-1), or any (-2). */
static struct obj *pick(int want) {
    for (int tries = 0; tries < 50; tries++) {
        struct obj *o = &objs[below(MAXOBJ)];
        if (o->used && (want == -2 || (want == -1 ? o->kind != HEAP : (int)o->kind == want)))
            return o;
    }
    return NULL;
}

static int nobj(void) {
    int n = 0;
    for (int k = 0; k < MAXOBJ; k++) n += objs[k].used;
    return n;
}

/* Splits o at page `at` (0 < at < np): [at, np) becomes an object of its own, returned. */
static struct obj *split(struct obj *o, size_t at) {
    struct obj *t = new_obj();
    if (!t) return NULL;
    t->addr = o->addr + at * PG;
    t->np = o->np - at;
    t->kind = o->kind;
    t->foff = o->foff + at;
    memcpy(t->pg, o->pg + at, t->np * sizeof(struct page));
    o->np = at;
    return t;
}

static size_t rand_np(void) {
    switch (below(8)) {
    case 0: return 512 + below(MAXNP - 512 + 1);
    case 1: return 64 + below(192);
    default: return 1 + below(24);
    }
}

static int uniform_prot(struct obj *o, size_t from, size_t n) {
    for (size_t i = from; i < from + n; i++)
        if (o->pg[i].prot != o->pg[from].prot) return 0;
    return 1;
}

/* ---- operations ---- */

static const char *op_mmap(int fixed_in_arena, enum kind kind) {
    struct obj *o = new_obj();
    if (!o) return "full";
    size_t np = rand_np();
    size_t foff = 0;
    if (kind != ANON) {
        if (np > FILE_PAGES / 2) np = FILE_PAGES / 2;
        foff = below(FILE_PAGES - np);
    }
    uint64_t at = 0;
    if (fixed_in_arena) {
        at = find_free(np);
        if (!at) {
            o->used = 0;
            return "nospace";
        }
    }
    int flags = kind == FSHARED ? MAP_SHARED : MAP_PRIVATE;
    if (kind == ANON) flags |= MAP_ANONYMOUS;
    if (at) flags |= MAP_FIXED;
    void *p = mmap((void *)at, np * PG, PROT_READ | PROT_WRITE, flags, kind == ANON ? -1 : file_fd,
                   (off_t)(foff * PG));
    if (p == MAP_FAILED) {
        o->used = 0;
        return errname(errno);
    }
    o->addr = (uint64_t)p;
    o->np = np;
    o->kind = kind;
    o->foff = foff;
    for (size_t i = 0; i < np; i++) o->pg[i] = (struct page){0, PROT_READ | PROT_WRITE, 0};
    mark(o->addr, np, 0);
    return "ok";
}

static const char *op_munmap(void) {
    struct obj *o = pick(-1);
    if (!o) return "none";
    size_t from = below(o->np), n = 1 + below(o->np - from);
    if (below(2) == 0 || nobj() > MAXOBJ - 4) from = 0, n = o->np;
    if (munmap((void *)(o->addr + from * PG), n * PG) < 0) return errname(errno);
    mark(o->addr + from * PG, n, 1);
    if (from + n < o->np && !split(o, from + n)) {
        /* No room in the model for the tail: unmap it too. */
        if (munmap((void *)(o->addr + (from + n) * PG), (o->np - from - n) * PG) < 0)
            return "tail munmap failed";
        mark(o->addr + (from + n) * PG, o->np - from - n, 1);
    }
    o->np = from;
    if (o->np == 0) o->used = 0;
    return "ok";
}

/* Applies a successful mremap of all of o to the model: its pages are now at `to`, newn of
 * them; `keep_source`: MREMAP_DONTUNMAP (o stays, emptied; the pages are a new object). */
static void moved(struct obj *o, uint64_t to, size_t newn, int keep_source) {
    static struct page tmp[MAXNP];
    size_t oldn = o->np, keep = oldn < newn ? oldn : newn;
    memcpy(tmp, o->pg, keep * sizeof(struct page));
    for (size_t i = keep; i < newn; i++) tmp[i] = (struct page){0, tmp[keep - 1].prot, 0};
    struct obj *dst = o;
    if (keep_source) {
        for (size_t i = 0; i < oldn; i++) o->pg[i].gen = 0, o->pg[i].own = 0;
        dst = new_obj();
        if (!dst) exit(5); /* op_mremap makes sure there is room */
        dst->kind = o->kind;
        dst->foff = o->foff;
    } else if (to != o->addr) {
        mark(o->addr, oldn, 1);
    } else if (newn < oldn) {
        mark(o->addr + newn * PG, oldn - newn, 1);
    }
    dst->addr = to;
    memcpy(dst->pg, tmp, newn * sizeof(struct page));
    dst->np = newn;
    mark(dst->addr, dst->np, 0);
}

static char verdict[64];

/* "what happened (kind)" for op_mremap. */
static const char *with_kind(const char *r, enum kind k) {
    snprintf(verdict, sizeof verdict, "%s (%s)", r, kind_name[k]);
    return verdict;
}

static const char *op_mremap(int mode) {
    struct obj *o = pick(-1);
    if (!o || nobj() >= MAXOBJ - 1) return "none";
    /* Whole objects, or the tail of one (a mapping's end), made an object of its own first. */
    if (below(2) && o->np > 1) o = split(o, 1 + below(o->np - 1));
    size_t from = 0, oldn = o->np;
    size_t newn;
    int flags = 0;
    uint64_t to = 0;
    switch (mode) {
    case 0: /* grow in place */
        newn = oldn + 1 + below(64);
        break;
    case 1: /* shrink */
        if (oldn < 2) return "small";
        newn = 1 + below(oldn - 1);
        break;
    case 2: /* grow, may move */
        newn = oldn + 1 + below(oldn < 256 ? 256 : 64);
        flags = MREMAP_MAYMOVE;
        break;
    case 3: /* move to a chosen place in the arena, any size */
        newn = 1 + below(MAXNP);
        if (newn > oldn + 300) newn = oldn + 300;
        to = find_free(newn);
        if (!to) return "nospace";
        flags = MREMAP_MAYMOVE | MREMAP_FIXED;
        break;
    default: /* MREMAP_DONTUNMAP, anonymous private memory only */
        if (o->kind != ANON) return "skip";
        newn = oldn;
        flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
        if (below(2)) {
            to = find_free(newn);
            if (!to) return "nospace";
            flags |= MREMAP_FIXED;
        }
        break;
    }
    if (from + newn > MAXNP) return "big";
    if (o->kind != ANON && o->kind != HEAP && o->foff + from + newn > FILE_PAGES) return "eof";
    /* Growing in place depends on the pages after the mapping: only the arena's are known
     * (outside it, where the kernel put a mapping, the neighbours are not the test's). */
    uint64_t end = o->addr + (from + oldn) * PG;
    if (newn > oldn && !(flags & MREMAP_FIXED) &&
        !(in_arena(o->addr) && in_arena(end + (newn - oldn) * PG - 1)) &&
        !(flags & MREMAP_MAYMOVE))
        return "outside";
    uint64_t was = o->addr;
    enum kind kind = o->kind;
    void *r = mremap((void *)(o->addr + from * PG), oldn * PG, newn * PG, flags, (void *)to);
    if (r == MAP_FAILED) return with_kind(errname(errno), kind);
    moved(o, (uint64_t)r, newn, !!(flags & MREMAP_DONTUNMAP));
    /* Whether a MREMAP_MAYMOVE growth moved is the kernel's choice (and the sandbox's), but
     * in the arena it is decided by the holes after the mapping, which the test knows. */
    if ((flags & (MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) == MREMAP_MAYMOVE &&
        in_arena(was))
        return with_kind((uint64_t)r == was ? "ok, in place" : "ok, moved", kind);
    return with_kind("ok", kind);
}

static const char *op_dup_shared(void) {
    struct obj *o = pick(FSHARED);
    if (!o || nobj() >= MAXOBJ) return "none";
    size_t from = below(o->np), n = 1 + below(o->np - from);
    if (!uniform_prot(o, from, n)) return "mixed";
    void *r = mremap((void *)(o->addr + from * PG), 0, n * PG, MREMAP_MAYMOVE);
    if (r == MAP_FAILED) return errname(errno);
    struct obj *d = new_obj();
    d->kind = FSHARED;
    d->addr = (uint64_t)r;
    d->np = n;
    d->foff = o->foff + from;
    for (size_t i = 0; i < n; i++) d->pg[i] = (struct page){0, o->pg[from].prot, 0};
    mark(d->addr, n, 0);
    return "ok";
}

static const char *op_mprotect(void) {
    struct obj *o = pick(-1);
    if (!o) return "none";
    size_t from = below(o->np), n = 1 + below(o->np - from);
    static const int prots[] = {PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE, PROT_READ | PROT_WRITE};
    int prot = prots[below(4)];
    if (below(3) == 0) from = 0, n = o->np, prot = PROT_READ | PROT_WRITE;
    if (mprotect((void *)(o->addr + from * PG), n * PG, prot) < 0) return errname(errno);
    for (size_t i = from; i < from + n; i++) o->pg[i].prot = (uint8_t)prot;
    return "ok";
}

static const char *op_madvise(void) {
    struct obj *o = pick(-1);
    if (!o) return "none";
    if (below(2)) {
        size_t from = below(o->np), n = 1 + below(o->np - from);
        if (madvise((void *)(o->addr + from * PG), n * PG, MADV_DONTNEED) < 0) return errname(errno);
        for (size_t i = from; i < from + n; i++)
            if (o->kind != FSHARED) o->pg[i].gen = 0, o->pg[i].own = 0;
        return "dontneed ok";
    }
    /* Advice that only sets flags: on whole objects (a part would split the kernel's VMA,
     * which later operations on the whole object would then meet). */
    static const int adv[] = {MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_RANDOM, MADV_NORMAL};
    int a = adv[below(4)];
    if (madvise((void *)o->addr, o->np * PG, a) < 0) return errname(errno);
    return "flags ok";
}

static const char *op_store(int by_kernel) {
    struct obj *o = pick(-2);
    if (!o) return "none";
    size_t from = below(o->np), n = 1 + below(o->np - from < 32 ? o->np - from : 32);
    for (size_t i = from; i < from + n; i++)
        if (!(o->pg[i].prot & PROT_WRITE)) return "readonly";
    for (size_t i = from; i < from + n; i++) {
        uint64_t g = ++gen_next;
        unsigned char *p = (unsigned char *)(o->addr + i * PG);
        if (by_kernel) {
            fill(buf, g);
            if (pwrite(probe_fd, buf, PG, 0) != (ssize_t)PG) return "pwrite failed";
            if (pread(probe_fd, p, PG, 0) != (ssize_t)PG) return errname(errno);
        } else {
            fill(p, g);
        }
        if (o->kind == FSHARED) {
            file_gen[o->foff + i] = g;
        } else {
            o->pg[i].gen = g;
            o->pg[i].own = 1;
        }
    }
    return "ok";
}

static const char *op_brk(void) {
    struct obj *h = NULL;
    for (int k = 0; k < MAXOBJ; k++)
        if (objs[k].used && objs[k].kind == HEAP) h = &objs[k];
    if (!h && nobj() >= MAXOBJ) return "full";
    long cur = syscall(SYS_brk, 0);
    size_t np = (size_t)(cur - (long)brk0) / PG;
    size_t want = below(3) ? np + 1 + below(300) : below(np + 1);
    if (want > MAXNP) want = below(MAXNP);
    long r = syscall(SYS_brk, brk0 + want * PG);
    if ((uint64_t)r != brk0 + want * PG) return "refused";
    if (!h) {
        h = new_obj();
        if (!h) return "full";
        h->kind = HEAP;
        h->addr = brk0;
    }
    for (size_t i = h->np; i < want; i++) h->pg[i] = (struct page){0, PROT_READ | PROT_WRITE, 0};
    h->np = want;
    if (want == 0) h->used = 0;
    return "ok";
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    rng = strtoull(argv[1], NULL, 10) * 2654435761ULL + 1;
    int steps = atoi(argv[2]);
    file_fd = open("mem_ops.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
    probe_fd = open("mem_ops.probe", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(file_fd >= 0 && probe_fd >= 0);
    for (size_t p = 0; p < FILE_PAGES + MAXNP; p++) {
        file_gen[p] = p < FILE_PAGES ? 1000 + p : 0;
        fill(buf, file_gen[p]);
        if (p < FILE_PAGES) CHECK(pwrite(file_fd, buf, PG, (off_t)(p * PG)) == (ssize_t)PG);
    }
    /* The arena lies low (64 GiB), far below where the kernel (top-down from the mmap base)
     * places mappings the test lets it place: its holes are never chosen for those, so which
     * arena pages are free follows from the model alone, natively and sandboxed. */
    void *hint = (void *)(64ULL << 30);
    void *a = mmap(hint, ARENA_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    CHECK(a == hint);
    arena = (uint64_t)a;
    /* Half of the arena starts as holes. */
    for (size_t i = 0; i < ARENA_PAGES; i += 256) {
        if (below(2)) continue;
        CHECK(munmap((void *)(arena + i * PG), 256 * PG) == 0);
        mark(arena + i * PG, 256, 1);
    }
    brk0 = (uint64_t)syscall(SYS_brk, 0);
    brk0 = (brk0 + PG - 1) & ~(PG - 1);
    if ((uint64_t)syscall(SYS_brk, brk0) != brk0) brk0 = (uint64_t)syscall(SYS_brk, 0);

    for (int step = 0; step < steps; step++) {
        const char *what, *r;
        int op = (int)below(19);
        if (nobj() >= MAXOBJ - 2) op = 5; /* keep room in the model */
        switch (op) {
        case 0: case 1: what = "mmap anon fixed"; r = op_mmap(1, ANON); break;
        case 18: what = "munmap"; r = op_munmap(); break;
        case 2: what = "mmap anon"; r = op_mmap(0, ANON); break;
        case 3: what = "mmap file private"; r = op_mmap(1, FPRIV); break;
        case 4: what = "mmap file shared"; r = op_mmap(below(2), FSHARED); break;
        case 5: what = "munmap"; r = op_munmap(); break;
        case 6: what = "mremap grow in place"; r = op_mremap(0); break;
        case 7: what = "mremap shrink"; r = op_mremap(1); break;
        case 8: case 9: what = "mremap maymove"; r = op_mremap(2); break;
        case 10: what = "mremap fixed"; r = op_mremap(3); break;
        case 11: what = "mremap dontunmap"; r = op_mremap(4); break;
        case 12: what = "mremap shared again"; r = below(2) ? op_dup_shared() : "skip"; break;
        case 13: what = "mprotect"; r = op_mprotect(); break;
        case 14: what = "madvise"; r = op_madvise(); break;
        case 15: what = "store"; r = op_store(0); break;
        case 16: what = "kernel store"; r = op_store(1); break;
        default: what = "brk"; r = op_brk(); break;
        }
        snprintf(out, sizeof out, "%d %s: %s\n", step, what, r);
        say(out);
        int full = step % 128 == 127 || step + 1 == steps;
        for (int k = 0; k < MAXOBJ; k++)
            if (objs[k].used) check_obj(step, &objs[k], full);
    }
    say("done\n");
    return 0;
}

/* Shared by the escape_*.c programs: finding the runtime's memory from inside the sandbox.
 *
 * The sandbox is one process, so the real memory map of the process the harness started (see
 * read_maps) lists the runtime's own mappings (its executable, [heap], [stack]) next to the
 * program's (guest virtual addresses equal the process's own). A mapping counts as the program's own ("own") when it contains an
 * address the program knows is its own (code, data, bss, stack, break, TLS, malloc'd blocks,
 * auxv pointers) or is backed by the program's own file. The rest is the runtime's ("foreign").
 * Natively every candidate is own, so the programs report "no foreign mapping" and exit 2. */
#ifndef SBX_ESCAPE_H
#define SBX_ESCAPE_H

#include "common.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/auxv.h>
#include <unistd.h>

#define PAGE_SIZE_4K 4096UL
#define MAX_MAPS 512
#define MAX_OWN 32

struct mapping {
    uintptr_t start, end;
    char perms[8];
    char path[512];
};

struct ctx {
    struct mapping maps[MAX_MAPS];
    int nmaps;
    uintptr_t own[MAX_OWN];
    int nown;
    char own_exe[PATH_MAX];  /* realpath of our program file (from AT_EXECFN) */
    char self_exe[PATH_MAX]; /* readlink /proc/self/exe: the runtime's binary in the sandbox */
};

/* Data the program owns, in .data, .bss and .rodata. */
static int own_data_word = 1;
static char own_bss_page[2 * 4096];
static const char own_rodata[] = "own read-only data";

static inline void add_own(struct ctx *c, uintptr_t a) {
    if (a && c->nown < MAX_OWN) c->own[c->nown++] = a;
}

/* Reads the process's memory map; returns the number of mappings or -1 (errno set). The
 * harness serves the real /proc/PID/maps of the process it started (the sandbox itself, in the
 * sandbox) through the FIFO SBX_HOST_MAPS names: the sandbox's /proc/self/maps shows only the
 * program's own mappings. Without it, /proc/self/maps. */
static inline int read_maps(struct ctx *c) {
    const char *host = getenv("SBX_HOST_MAPS");
    FILE *f = fopen(host && *host ? host : "/proc/self/maps", "r");
    if (!f) return -1;
    char line[1024];
    c->nmaps = 0;
    while (c->nmaps < MAX_MAPS && fgets(line, sizeof line, f)) {
        struct mapping *m = &c->maps[c->nmaps];
        unsigned long s, e;
        int off = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &s, &e, m->perms, &off) < 3) continue;
        m->start = s;
        m->end = e;
        m->path[0] = 0;
        if (off > 0) {
            snprintf(m->path, sizeof m->path, "%s", line + off);
            m->path[strcspn(m->path, "\n")] = 0;
        }
        c->nmaps++;
    }
    fclose(f);
    return c->nmaps;
}

/* Collects own addresses and reads the maps. stack_local: the address of a local variable. */
static inline int escape_init(struct ctx *c, const void *stack_local) {
    memset(c, 0, sizeof *c);
    own_bss_page[0] = (char)own_data_word;
    void *small = malloc(64);
    void *large = malloc(1 << 20); /* mmap-served by malloc */
    add_own(c, (uintptr_t)stack_local);
    add_own(c, (uintptr_t)&read_maps);
    add_own(c, (uintptr_t)&own_data_word);
    add_own(c, (uintptr_t)own_bss_page);
    add_own(c, (uintptr_t)own_rodata);
    add_own(c, (uintptr_t)small);
    add_own(c, (uintptr_t)large);
    add_own(c, (uintptr_t)&errno); /* TLS */
    uintptr_t brk_now = (uintptr_t)sbrk(0);
    if (brk_now != (uintptr_t)-1) add_own(c, brk_now - 1);
    add_own(c, getauxval(AT_PHDR));
    add_own(c, getauxval(AT_ENTRY));
    add_own(c, getauxval(AT_RANDOM));
    add_own(c, getauxval(AT_EXECFN));
    add_own(c, getauxval(AT_SYSINFO_EHDR));
    const char *fn = (const char *)getauxval(AT_EXECFN);
    if (!fn || !realpath(fn, c->own_exe)) c->own_exe[0] = 0;
    ssize_t n = readlink("/proc/self/exe", c->self_exe, sizeof c->self_exe - 1);
    c->self_exe[n > 0 ? n : 0] = 0;
    return read_maps(c);
}

static inline int is_own(const struct ctx *c, const struct mapping *m) {
    for (int i = 0; i < c->nown; i++)
        if (c->own[i] >= m->start && c->own[i] < m->end) return 1;
    if (c->own_exe[0] && strcmp(m->path, c->own_exe) == 0) return 1;
    return 0;
}

/* Only named mappings are chosen: [heap], [stack] and regular files. Anonymous memory, kernel
 * special mappings ([vdso], [vvar], [vsyscall]), devices, memfds and deleted files might be the
 * program's own memory as the runtime backs it, so they are never picked. */
static inline int nameable(const struct mapping *m) {
    if (strcmp(m->path, "[heap]") == 0 || strcmp(m->path, "[stack]") == 0) return 1;
    if (m->path[0] != '/') return 0;
    if (strncmp(m->path, "/dev/", 5) == 0 || strncmp(m->path, "/memfd:", 7) == 0) return 0;
    if (strstr(m->path, "(deleted)")) return 0;
    return 1;
}

static inline int candidate(const struct ctx *c, const struct mapping *m, int need_write) {
    if (is_own(c, m) || !nameable(m) || m->perms[0] != 'r') return 0;
    if (need_write && m->perms[1] != 'w') return 0;
    return 1;
}

/* Picks a foreign mapping of the given kind: "exe" (the runtime's executable, when
 * /proc/self/exe is not our own file), "heap", "stack", "first" (the lowest foreign one, e.g.
 * the runtime's text), "anon" (its anonymous read-write memory, see below) or "any" (exe, heap,
 * stack, first, in that order). Returns its index, or -1. */
static inline int pick(const struct ctx *c, const char *kind, int need_write) {
    if (strcmp(kind, "any") == 0) {
        static const char *const order[] = {"exe", "heap", "stack", "first"};
        for (int i = 0; i < 4; i++) {
            int k = pick(c, order[i], need_write);
            if (k >= 0) return k;
        }
        return -1;
    }
    if (strcmp(kind, "anon") == 0) {
        /* Anonymous read-write memory of the runtime (e.g. guest page tables): only where the
         * runtime shows through a named mapping, since anonymous memory the program does not
         * know it owns cannot be told apart otherwise. */
        if (pick(c, "any", 0) < 0) return -1;
        for (int i = 0; i < c->nmaps; i++) {
            const struct mapping *m = &c->maps[i];
            if (!m->path[0] && !is_own(c, m) && strncmp(m->perms, "rw", 2) == 0) return i;
        }
        return -1;
    }
    for (int i = 0; i < c->nmaps; i++) {
        const struct mapping *m = &c->maps[i];
        if (!candidate(c, m, need_write)) continue;
        if (strcmp(kind, "exe") == 0) {
            if (c->self_exe[0] && strcmp(c->self_exe, c->own_exe) != 0 &&
                strcmp(m->path, c->self_exe) == 0)
                return i;
        } else if (strcmp(kind, "heap") == 0) {
            if (strcmp(m->path, "[heap]") == 0) return i;
        } else if (strcmp(kind, "stack") == 0) {
            if (strcmp(m->path, "[stack]") == 0) return i;
        } else if (strcmp(kind, "first") == 0) {
            return i;
        }
    }
    return -1;
}

/* An address inside mapping i: 64 bytes into its last page (a stack's lowest pages may be
 * unused, its highest ones are in use). */
static inline uintptr_t inside(const struct ctx *c, int i) {
    return c->maps[i].end - PAGE_SIZE_4K + 64;
}

/* For "no foreign mapping" diagnostics: the maps with the own/foreign verdict, on stderr. */
static inline void dump_maps(const struct ctx *c) {
    fprintf(stderr, "own exe %s, /proc/self/exe %s\n", c->own_exe, c->self_exe);
    for (int i = 0; i < c->nmaps; i++)
        fprintf(stderr, "  %lx-%lx %s %s%s\n", (unsigned long)c->maps[i].start,
                (unsigned long)c->maps[i].end, c->maps[i].perms, c->maps[i].path,
                is_own(c, &c->maps[i]) ? " (own)" : "");
}

/* Picks or exits 2 with "no foreign mapping" (the native outcome). */
static inline int pick_or_exit(const struct ctx *c, const char *kind, int need_write) {
    int i = pick(c, kind, need_write);
    if (i < 0) {
        printf("no foreign mapping (%s%s)\n", kind, need_write ? ", writable" : "");
        fflush(stdout);
        dump_maps(c);
        exit(2);
    }
    return i;
}

#endif

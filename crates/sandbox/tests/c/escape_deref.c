/* escape_deref read|write exe|heap|stack|first|anon|any|own
 *
 * Dereferences an address of the runtime (a foreign mapping from /proc/self/maps, see escape.h)
 * or, with "own", one of the program's own pages (the control: that must work). In the sandbox
 * a foreign access must kill the program with SIGSEGV. Prints "trying <op> 0x<addr>" first. */
#define _GNU_SOURCE
#include "escape.h"

int main(int argc, char **argv) {
    CHECK(argc == 3);
    const char *op = argv[1], *kind = argv[2];
    int write_op = strcmp(op, "write") == 0;
    CHECK(write_op || strcmp(op, "read") == 0);
    uintptr_t addr;
    int local = 0;
    if (strcmp(kind, "own") == 0) {
        addr = (uintptr_t)&own_bss_page[100];
        printf("trying %s 0x%lx (own bss)\n", op, (unsigned long)addr);
    } else {
        static struct ctx c;
        CHECK(escape_init(&c, &local) > 0);
        int i = pick_or_exit(&c, kind, 0);
        addr = inside(&c, i);
        printf("trying %s 0x%lx (%s %s)\n", op, (unsigned long)addr, c.maps[i].perms,
               c.maps[i].path);
    }
    fflush(stdout);
    volatile unsigned char *p = (volatile unsigned char *)addr;
    if (write_op) {
        *p = 0x5a;
        printf("write ok\n");
    } else {
        unsigned char v = *p;
        printf("read ok (%s)\n", v == 0x5a ? "5a" : "value");
    }
    return local;
}

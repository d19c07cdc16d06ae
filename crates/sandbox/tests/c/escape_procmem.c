/* escape_procmem runtime|own
 *
 * Opens /proc/self/mem (and /proc/thread-self/mem, /proc/<getpid()>/mem) read-write, falling
 * back to read-only, and preads/pwrites an address: with "runtime" one in the runtime's memory
 * (a foreign mapping, see escape.h), with "own" the program's own bss (the control). In the
 * sandbox, for "runtime" either every open fails or every pread/pwrite fails: no line may say
 * "ok". pwrite writes back the bytes pread returned (or zeros), so a broken sandbox fails the
 * test instead of crashing later. Lines: "<path>: open <O_RDWR|O_RDONLY|failed E...>",
 * "<path>: pread ok|failed E...", "<path>: pwrite ok|failed E...". */
#define _GNU_SOURCE
#include "escape.h"

static void try_path(const char *label, const char *path, uintptr_t addr) {
    int fd = open(path, O_RDWR);
    const char *how = "O_RDWR";
    if (fd < 0) {
        fd = open(path, O_RDONLY);
        how = "O_RDONLY";
    }
    if (fd < 0) {
        printf("%s: open failed %s\n", label, errname(errno));
        fflush(stdout);
        return;
    }
    printf("%s: open %s\n", label, how);
    fflush(stdout);
    unsigned char buf[16] = {0};
    ssize_t r = pread(fd, buf, sizeof buf, (off_t)addr);
    if (r == (ssize_t)sizeof buf)
        printf("%s: pread ok\n", label);
    else
        printf("%s: pread failed %s\n", label, r < 0 ? errname(errno) : "short");
    fflush(stdout);
    r = pwrite(fd, buf, sizeof buf, (off_t)addr);
    if (r == (ssize_t)sizeof buf)
        printf("%s: pwrite ok\n", label);
    else
        printf("%s: pwrite failed %s\n", label, r < 0 ? errname(errno) : "short");
    fflush(stdout);
    close(fd);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    int runtime = strcmp(argv[1], "runtime") == 0;
    CHECK(runtime || strcmp(argv[1], "own") == 0);
    uintptr_t addr;
    int local = 0;
    if (runtime) {
        static struct ctx c;
        CHECK(escape_init(&c, &local) > 0);
        int i = pick(&c, "heap", 1);
        if (i < 0) i = pick_or_exit(&c, "any", 0);
        addr = inside(&c, i);
        printf("target %s %s\n", c.maps[i].perms, c.maps[i].path);
    } else {
        memcpy(own_bss_page, "own bytes here..", 16);
        addr = (uintptr_t)own_bss_page;
        printf("target own bss\n");
    }
    char pid_path[64];
    snprintf(pid_path, sizeof pid_path, "/proc/%ld/mem", (long)getpid());
    try_path("/proc/self/mem", "/proc/self/mem", addr);
    try_path("/proc/thread-self/mem", "/proc/thread-self/mem", addr);
    try_path("/proc/<pid>/mem", pid_path, addr);
    if (!runtime) printf("own bytes intact: %d\n", memcmp(own_bss_page, "own bytes here..", 16) == 0);
    printf("alive\n");
    return local;
}

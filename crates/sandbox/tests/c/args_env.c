/* Large argument and environment vectors: prints argc, a checksum and total length of
 * argv[1..], and the same for the environment variables whose name starts with SBXT_ (the
 * ones the test set), sorted, so the rest of the environment does not matter. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

extern char **environ;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    const char *base = strrchr(argv[0], '/');
    printf("argv[0] basename: %s\n", base ? base + 1 : argv[0]);
    printf("argc: %d\n", argc);
    printf("argv[argc] is NULL: %d\n", argv[argc] == NULL);
    uint64_t h = FNV_INIT;
    size_t total = 0, longest = 0, empty = 0;
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]);
        h = fnv1a(h, argv[i], n + 1); /* the NUL separates arguments in the checksum */
        total += n;
        if (n > longest) longest = n;
        if (n == 0) empty++;
    }
    printf("argv: total %lu bytes, longest %lu, empty %lu, checksum %016llx\n",
           (unsigned long)total, (unsigned long)longest, (unsigned long)empty,
           (unsigned long long)h);

    size_t count = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "SBXT_", 5) == 0) count++;
    char **vars = malloc((count + 1) * sizeof *vars);
    CHECK(vars != NULL);
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "SBXT_", 5) == 0) vars[k++] = *e;
    qsort(vars, count, sizeof *vars, cmp_str);
    h = FNV_INIT;
    total = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(vars[i]);
        h = fnv1a(h, vars[i], n + 1);
        total += n;
    }
    printf("env SBXT_*: %lu vars, total %lu bytes, checksum %016llx\n", (unsigned long)count,
           (unsigned long)total, (unsigned long long)h);
    const char *probe = getenv("SBXT_PROBE");
    printf("getenv(SBXT_PROBE): %s\n", probe ? probe : "(unset)");
    printf("getenv(SBXT_UNSET_NAME): %s\n", getenv("SBXT_UNSET_NAME") ? "set" : "(unset)");
    printf("done\n");
    return 0;
}

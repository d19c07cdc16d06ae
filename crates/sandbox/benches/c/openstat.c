/* N opens (openat + close) or N stats (newfstatat) of PATH: the per-call cost of a path call,
 * which a policy with filesystem rules resolves and decides on the kernel's path.
 * Usage: openstat N open|stat PATH */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    int open_mode = argc > 2 && strcmp(argv[2], "open") == 0;
    const char *path = argc > 3 ? argv[3] : "/etc/hostname";
    struct stat st;
    for (long i = 0; i < n; i++) {
        if (open_mode) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) return 1;
            close(fd);
        } else if (stat(path, &st) != 0) {
            return 1;
        }
    }
    return 0;
}

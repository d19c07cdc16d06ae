/* files DIR: creates, writes, seeks, reads, lists, renames and removes files under DIR; prints
 * what it sees. Part of the VT-x rig's differential suite (cargo xtask vtx). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(c)                                              \
    do {                                                      \
        if (!(c)) {                                           \
            printf("FAIL line %d: %s\n", __LINE__, #c);       \
            return 1;                                         \
        }                                                     \
    } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2);
    char path[512], path2[512], buf[8192];
    snprintf(path, sizeof path, "%s/a.txt", argv[1]);
    snprintf(path2, sizeof path2, "%s/b.txt", argv[1]);
    CHECK(mkdir(argv[1], 0755) == 0);
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(fd >= 0);
    printf("fd: %d\n", fd);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof buf, "line %d of the file\n", i);
        CHECK(write(fd, buf, n) == n);
    }
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    printf("size: %lld\n", (long long)st.st_size);
    CHECK(lseek(fd, 50 * 19, SEEK_SET) == 50 * 19);
    ssize_t n = read(fd, buf, 40);
    CHECK(n == 40);
    printf("read at 950: %.40s\n", buf);
    CHECK(pread(fd, buf, 12, 0) == 12);
    printf("pread at 0: %.12s\n", buf);
    CHECK(close(fd) == 0);
    CHECK(rename(path, path2) == 0);
    CHECK(access(path, F_OK) != 0 && access(path2, R_OK) == 0);
    DIR *d = opendir(argv[1]);
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') printf("entry: %s\n", e->d_name);
    closedir(d);
    FILE *f = fopen(path2, "r");
    CHECK(f);
    int lines = 0;
    while (fgets(buf, sizeof buf, f)) lines++;
    fclose(f);
    printf("lines: %d\n", lines);
    CHECK(unlink(path2) == 0 && rmdir(argv[1]) == 0);
    printf("cleaned up\n");
    return 0;
}

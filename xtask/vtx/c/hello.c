/* hello [STATUS [ARGS...]]: prints its arguments and one environment variable, exits with STATUS.
 * Part of the differential suite of the VT-x rig (cargo xtask vtx): native vs `sandbox run`. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("hello, world: argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *g = getenv("VTX_GREETING");
    printf("VTX_GREETING=%s\n", g ? g : "(unset)");
    return argc > 1 ? atoi(argv[1]) : 0;
}

/* The static hello world of the end-to-end start-up benchmark. */
#include <stdio.h>
int main(void) {
    puts("hello, world");
    return 0;
}

/* bxshutdown: powers Bochs off without ACPI by writing "Shutdown" to I/O port 0x8900 (Bochs'
 * "unmapped" device). The VT-x rig's /init uses it when `poweroff -f` did not end Bochs. */
#include <stdio.h>
#include <sys/io.h>

int main(void) {
    const char *s = "Shutdown";
    if (iopl(3)) {
        perror("iopl");
        return 1;
    }
    for (; *s; s++) outb(*s, 0x8900);
    return 0;
}

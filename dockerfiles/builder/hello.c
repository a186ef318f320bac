/* Smoke test of a sysroot: a static C program that must link and run, with the kernel's headers
 * (whose asm/ part is architecture-specific) usable as system calls' users include them. */
#include <linux/futex.h>
#include <stdio.h>

int main(void) {
    (void)FUTEX_WAIT;
    puts("sysroot ok");
    return 0;
}

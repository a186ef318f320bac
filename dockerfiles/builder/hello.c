/* Smoke test of a sysroot: a static C program that must link and run. */
#include <stdio.h>

int main(void) {
    puts("sysroot ok");
    return 0;
}

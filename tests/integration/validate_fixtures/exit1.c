/* Exits 1 with a message on stderr. */
#include <stdio.h>
int main(void) {
    fputs("exit1: failing on purpose\n", stderr);
    return 1;
}

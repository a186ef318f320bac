/* The good fixture: prints its arguments' count, exits 0. */
#include <stdio.h>
int main(int argc, char **argv) {
    (void)argv;
    printf("hello from %d args\n", argc - 1);
    return 0;
}

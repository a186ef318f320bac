/* Assumes 4K pages, as a binary built for them does: aborts with its own message elsewhere. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    long page = sysconf(_SC_PAGESIZE);
    if (page != 4096) {
        fprintf(stderr, "pagesize4k: page size is not 4096 (%ld)\n", page);
        abort();
    }
    printf("hello from %d args\n", argc - 1);
    return 0;
}

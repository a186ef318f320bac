/* Works with any page size: maps, touches and unmaps a few pages of whatever size it is given. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    memset(p, 1, 4 * page);
    if (munmap(p + page, page) != 0) { perror("munmap"); return 1; }
    printf("hello from %d args (page size %ld)\n", argc - 1, page);
    return 0;
}

/* A loop GCC vectorises (AVX2 at x86-64-v3, AVX-512 at v4) plus a popcount (POPCNT at v2):
   the level's instructions run on the way to the output, so a CPU below the level faults. */
#include <stdio.h>
#define N 4096
static float a[N], b[N];
int main(int argc, char **argv) {
    (void)argv;
    float s = 0;
    for (int i = 0; i < N; i++) { a[i] = (float)(i * argc); b[i] = (float)i; }
    for (int i = 0; i < N; i++) s += a[i] * b[i];
    printf("hello from %d args %d %.0f\n", argc - 1, __builtin_popcount((unsigned)argc * 12345u), s);
    return 0;
}

/* spin - keep the CPU busy for argv[1] seconds (default 1), then exit 0.
 * A guest that never halts: tests and benchmarks of CPU accounting use it. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    unsigned secs = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
    struct timespec a, b;
    unsigned long rounds = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (volatile int i = 0; i < 100000; i++)
            ;
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((unsigned long)(b.tv_sec - a.tv_sec) < secs);
    printf("spin: %lu rounds in %u s\n", rounds, secs);
    return 0;
}

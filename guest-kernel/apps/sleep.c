/* sleep - halt for argv[1] seconds (default 1) on the timer, then exit 0.
 * Prints the measured monotonic time so a test can check the clock too.
 * With argv[2] = N > 0 it prints "sleep: tick K" every N seconds meanwhile
 * (console output of a running guest, for tests that follow it live). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    unsigned secs = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
    unsigned every = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (every) {
        for (unsigned k = 1, left = secs; left; k++) {
            unsigned nap = left < every ? left : every;
            sleep(nap);
            left -= nap;
            printf("sleep: tick %u\n", k);
        }
    } else {
        sleep(secs);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (long)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("sleep: slept %u s (%ld ms by the monotonic clock)\n", secs, ms);
    return 0;
}

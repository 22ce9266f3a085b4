/*
 * time.c - time.h and sleeps on top of the kernel's clock (sys.h).
 */
#include <time.h>

#include <errno.h>
#include <unistd.h>

#include "sys.h"

int clock_gettime(clockid_t id, struct timespec *ts)
{
    uint64_t ns;
    if (id == CLOCK_MONOTONIC)
        ns = sys_monotonic_ns();
    else if (id == CLOCK_REALTIME)
        ns = sys_realtime_ns();
    else {
        errno = EINVAL;
        return -1;
    }
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
    return 0;
}

time_t time(time_t *t)
{
    time_t now = (time_t)(sys_realtime_ns() / 1000000000u);
    if (t)
        *t = now;
    return now;
}

clock_t clock(void)
{
    return (clock_t)(sys_monotonic_ns() / 1000u);
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1000000000l) {
        errno = EINVAL;
        return -1;
    }
    sys_sleep_ns((uint64_t)req->tv_sec * 1000000000u + (uint64_t)req->tv_nsec);
    if (rem)
        rem->tv_sec = 0, rem->tv_nsec = 0;
    return 0;
}

unsigned sleep(unsigned seconds)
{
    sys_sleep_ns((uint64_t)seconds * 1000000000u);
    return 0;
}

int usleep(useconds_t usec)
{
    sys_sleep_ns((uint64_t)usec * 1000u);
    return 0;
}

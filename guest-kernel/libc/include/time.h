/*
 * time.h - shoal guest libc subset. CLOCK_MONOTONIC counts from PVH entry
 * (TSC); CLOCK_REALTIME is the CMOS RTC read on first use, then the TSC.
 */
#ifndef SHOAL_LIBC_TIME_H
#define SHOAL_LIBC_TIME_H

#include <stddef.h>

typedef long time_t;
typedef int clockid_t;
typedef long clock_t;

struct timespec {
    time_t tv_sec; /* seconds */
    long tv_nsec;  /* 0 .. 999999999 */
};

#define CLOCK_REALTIME  0
#define CLOCK_MONOTONIC 1
#define CLOCKS_PER_SEC  1000000l

int clock_gettime(clockid_t id, struct timespec *ts); /* -1/EINVAL on bad id */
time_t time(time_t *t);
clock_t clock(void); /* microseconds of guest time since boot */
/* Sleep at least req (rounded up to the timer); rem is set to zero. */
int nanosleep(const struct timespec *req, struct timespec *rem);

#endif

/* log.c - shoald's log lines. One fprintf per line so threads do not mix. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int verbose;

void log_set_verbose(int on)
{
    verbose = on;
}

static void vlog(const char *level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char msg[1024], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s %s: %s\n", stamp, level, msg);
}

void log_msg(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void log_debug_(const char *fmt, ...)
{
    va_list ap;
    if (!verbose)
        return;
    va_start(ap, fmt);
    vlog("debug", fmt, ap);
    va_end(ap);
}

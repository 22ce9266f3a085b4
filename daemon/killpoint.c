/* killpoint.c - TEST ONLY kill points (killpoint.h). */
#include "killpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KP_STEP_MAX 64

static char kp_step[KP_STEP_MAX];  /* "" when no kill point is set */
static long kp_n;                  /* the passage that kills */
static long kp_seen;               /* passages so far (atomic) */
static char kp_dstep[KP_STEP_MAX]; /* SHOAL_TEST_DELAY_AT's step, or "" */
static char kp_fstep[KP_STEP_MAX]; /* SHOAL_TEST_FAIL_AT's step, or "" */
static long kp_dms;                /* its delay */
static pthread_once_t kp_once = PTHREAD_ONCE_INIT;

/* SHOAL_TEST_DELAY_AT=STEP:MS into kp_dstep, kp_dms. */
static void kp_read_delay(void)
{
    const char *v = getenv("SHOAL_TEST_DELAY_AT");
    const char *colon;
    char *end;
    long ms;

    if (!v || !*v)
        return;
    colon = strrchr(v, ':');
    ms = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof kp_dstep || *end || ms < 1 ||
        ms > 60000) {
        fprintf(stderr, "killpoint: SHOAL_TEST_DELAY_AT='%s' is not STEP:MS (1..60000); ignored\n",
                v);
        return;
    }
    memcpy(kp_dstep, v, (size_t)(colon - v));
    kp_dstep[colon - v] = 0;
    kp_dms = ms;
    fprintf(stderr, "killpoint: TEST ONLY: %ld ms delay at every passage of '%s'\n", kp_dms,
            kp_dstep);
}

static void kp_read(void)
{
    const char *v = getenv("SHOAL_TEST_KILL_AT");
    const char *colon;
    char *end;
    long n;

    const char *fv = getenv("SHOAL_TEST_FAIL_AT");

    kp_read_delay();
    if (fv && *fv && strlen(fv) < sizeof kp_fstep) {
        snprintf(kp_fstep, sizeof kp_fstep, "%s", fv);
        fprintf(stderr, "killpoint: TEST ONLY: '%s' fails at every passage\n", kp_fstep);
    }
    if (!v || !*v)
        return;
    colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof kp_step) {
        fprintf(stderr, "killpoint: SHOAL_TEST_KILL_AT='%s' is not STEP:N; ignored\n", v);
        return;
    }
    n = strtol(colon + 1, &end, 10);
    if (*end || n < 1) {
        fprintf(stderr, "killpoint: SHOAL_TEST_KILL_AT='%s' has no count >= 1; ignored\n", v);
        return;
    }
    memcpy(kp_step, v, (size_t)(colon - v));
    kp_step[colon - v] = 0;
    kp_n = n;
    fprintf(stderr, "killpoint: TEST ONLY: SIGKILL at passage %ld of '%s'\n", kp_n, kp_step);
}

void kp_init(void)
{
    pthread_once(&kp_once, kp_read);
}

void kp_hit(const char *step)
{
    char line[128];
    int len;

    kp_init();
    if (kp_dstep[0] && !strcmp(step, kp_dstep)) {
        struct timespec ts = { kp_dms / 1000, (kp_dms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (!kp_step[0] || strcmp(step, kp_step) != 0)
        return;
    if (__atomic_add_fetch(&kp_seen, 1, __ATOMIC_SEQ_CST) != kp_n)
        return;
    len = snprintf(line, sizeof line, "killpoint: %s:%ld reached, SIGKILL\n", kp_step, kp_n);
    if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0)
        len = 0;
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

int kp_fail(const char *step)
{
    kp_init();
    return kp_fstep[0] && !strcmp(step, kp_fstep);
}

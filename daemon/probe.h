/* probe.h - readiness and health probes of guests, run from shoald.
 *
 * Two parts:
 *
 * 1. Probe specs (pure, any thread): the text an operator writes (`--ready
 *    SPEC`, `"ready": SPEC`, `"health": {"probe": SPEC}`) parsed into a
 *    probe_spec. This is the one parser of that text; the core calls it at
 *    create (a bad spec is a 400 naming the field, nothing is made) and
 *    again at every start from the stored row.
 *
 *      status          the guest's status channel says ready (shoal's own
 *                      guests, docs/guest-protocol.md); readiness only
 *      none            ready as soon as its domain runs; readiness only
 *      tcp:PORT        a TCP connect to the guest's address:PORT is accepted
 *      http:PORT[/PATH] GET PATH (default "/") on the guest's address:PORT
 *                      answers a 2xx status line
 *      console:REGEX   a console line (COM1) matches REGEX, POSIX extended;
 *                      readiness only
 *
 *    Health probes take tcp: and http: only (a console line or a status
 *    record says nothing about a guest being healthy now).
 *
 * 2. The probe engine: one thread (probe_open) with its own lock that runs
 *    every watched instance's checks with non-blocking sockets and one
 *    epoll set, so that no check ever holds a fleet lock or a job worker.
 *    Targets are guest addresses only (the core passes the instance's own
 *    address on shoald's bridge).
 *
 *    Readiness: a check is started every PROBE_READY_FAST_MS (10 ms) for
 *    the first PROBE_READY_FAST_FOR_MS after the watch began, then every
 *    PROBE_READY_SLOW_MS, then every PROBE_READY_IDLE_MS after
 *    PROBE_READY_SLOW_FOR_MS; one attempt in flight per instance, an
 *    attempt that gets no answer in PROBE_READY_ATTEMPT_MS is abandoned. A
 *    port opened while checks run fast is noticed within about one period
 *    (measured: test_probe, docs/shoald.md "Probes"). Once ready, the
 *    engine calls back PROBE_NOTE_READY and, with a health probe, starts
 *    health checks; PROBE_NOTE_SLOW once when a guest is not ready after
 *    PROBE_READY_WARN_MS (it keeps being probed).
 *
 *    Health: one check every interval_ms after ready, each given
 *    timeout_ms. State `starting` until the first result; `healthy` after
 *    a passing check; `unhealthy` once `retries` checks in a row failed
 *    (PROBE_NOTE_UNHEALTHY, once per crossing); a passing check after that
 *    makes it healthy again (PROBE_NOTE_HEALTHY).
 *
 *    Callbacks run on the probe thread with the engine's lock released;
 *    they must not block (the core queues a job) and may call any probe_*
 *    function but probe_close.
 *
 * Locks: probe_engine.mu guards the watch table; it is a leaf (nothing else
 * is taken under it) and is never held across a connect, read or callback.
 *
 * Errors: -1 with a message in err (quoting the bad value).
 */
#ifndef SHOAL_PROBE_H
#define SHOAL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_SPEC_MAX          300 /* longest spec text, NUL excluded */
#define PROBE_PATH_MAX          256 /* http path, '/' included */
#define PROBE_REGEX_MAX         256 /* console pattern */
#define PROBE_ID_MAX            32  /* instance id */
#define PROBE_RESULT_MAX        160 /* last check's result, for people */
#define PROBE_READY_FAST_MS     10
#define PROBE_READY_FAST_FOR_MS 5000
#define PROBE_READY_SLOW_MS     100
#define PROBE_READY_SLOW_FOR_MS 30000
#define PROBE_READY_IDLE_MS     1000
#define PROBE_READY_ATTEMPT_MS  250
#define PROBE_READY_WARN_MS     60000
#define PROBE_CONSOLE_READ_MAX  (64 * 1024) /* console bytes read per check */
#define PROBE_LINE_MAX          4096        /* longer console lines are cut */
#define PROBE_HTTP_HEAD_MAX     1024        /* bytes read for the status line */

/* Health defaults and bounds (seconds; retries: failures in a row). */
#define PROBE_INTERVAL_S_DEFAULT 10
#define PROBE_TIMEOUT_S_DEFAULT  2
#define PROBE_RETRIES_DEFAULT    3
#define PROBE_INTERVAL_S_MAX     3600
#define PROBE_TIMEOUT_S_MAX      3600
#define PROBE_RETRIES_MAX        100

typedef enum {
    PROBE_NONE = 0, /* "none": ready when the domain runs */
    PROBE_STATUS,   /* "status": the status channel */
    PROBE_TCP,      /* "tcp:PORT" */
    PROBE_HTTP,     /* "http:PORT/PATH" */
    PROBE_CONSOLE,  /* "console:REGEX" */
} probe_kind;

typedef struct {
    probe_kind kind;
    uint16_t port;               /* tcp, http: 1..65535 */
    char path[PROBE_PATH_MAX];   /* http: "/" or "/..." (printable ASCII, no space) */
    char regex[PROBE_REGEX_MAX]; /* console: POSIX ERE (checked by regcomp) */
} probe_spec;

/* "none", "status", "tcp", "http", "console". */
const char *probe_kind_name(probe_kind k);

/* Parse text into *out. health: 1 for a health probe (tcp and http only).
 * -1 with a message naming the spec. */
int probe_spec_parse(const char *text, int health, probe_spec *out, char *err, size_t errlen);
/* The spec as text (what probe_spec_parse reads back), into buf[len]. */
void probe_spec_format(const probe_spec *s, char *buf, size_t len);

/* ---- the engine ---------------------------------------------------------- */

typedef struct probe_engine probe_engine;

typedef enum {
    PROBE_H_NONE = 0, /* no health probe */
    PROBE_H_STARTING, /* health probe set, no result yet */
    PROBE_H_HEALTHY,
    PROBE_H_UNHEALTHY,
} probe_health_state;

/* "none", "starting", "healthy", "unhealthy". */
const char *probe_health_name(probe_health_state s);

/* What one watch is asked to do. Strings are copied. */
typedef struct {
    const char *id;           /* instance id (< PROBE_ID_MAX) */
    uint64_t gen;             /* the caller's run generation, given back in notes */
    uint32_t addr;            /* guest IPv4, host order; 0: none (tcp/http not allowed) */
    const char *console_path; /* console file (console probes) */
    probe_spec ready;         /* PROBE_NONE or PROBE_STATUS: the engine does
                                 not decide readiness (see ready_now) */
    int ready_now;            /* 1: ready already (health checks start now) */
    probe_spec health;        /* PROBE_NONE: no health checks */
    uint32_t interval_ms, timeout_ms, retries;
    uint32_t warn_ms; /* PROBE_NOTE_SLOW after this long not ready;
                                 0: PROBE_READY_WARN_MS */
} probe_watch_spec;

typedef enum {
    PROBE_NOTE_READY = 0, /* the readiness probe passed */
    PROBE_NOTE_HEALTHY,   /* a health check passed after none or failures */
    PROBE_NOTE_UNHEALTHY, /* `retries` health checks in a row failed */
    PROBE_NOTE_SLOW,      /* not ready after PROBE_READY_WARN_MS */
} probe_note_kind;

typedef struct {
    probe_note_kind kind;
    char id[PROBE_ID_MAX];
    uint64_t gen;
    int64_t at_ms;     /* CLOCK_MONOTONIC ms the result came in */
    uint32_t failures; /* consecutive failed checks */
    char result[PROBE_RESULT_MAX];
} probe_note;

typedef void (*probe_notify_fn)(void *user, const probe_note *n);

/* One watch's health as now (probe_health_get). */
typedef struct {
    probe_health_state state;
    uint32_t failures;    /* consecutive failed checks */
    int64_t last_wall_ms; /* unix ms of the last finished check, 0: none */
    int last_ok;          /* that check passed */
    char last_result[PROBE_RESULT_MAX];
    int ready;               /* the watch's readiness was reached */
    uint64_t checks, failed; /* health checks done and failed, this watch */
    uint64_t ver;            /* changes (never back) whenever the above does, a
                                new watch included; never 0 */
} probe_health;

/* Start the probe thread. notify gets every note. */
int probe_open(probe_notify_fn notify, void *user, probe_engine **out, char *err, size_t errlen);
/* Stop the thread, close every socket. NULL ok. */
void probe_close(probe_engine *e);
/* Watch (or watch again, replacing what there was for the id). -1 with a
 * message for a spec the watch cannot run (tcp without an address). */
int probe_watch(probe_engine *e, const probe_watch_spec *w, char *err, size_t errlen);
/* Forget the id (its run ended). No note for it comes after this returns
 * unless a callback for it is running right now on the probe thread. */
void probe_unwatch(probe_engine *e, const char *id);
/* The status channel said ready for generation gen: health checks begin. */
void probe_set_ready(probe_engine *e, const char *id, uint64_t gen);
/* 0 with the id's health, -1 when it is not watched. */
int probe_health_get(probe_engine *e, const char *id, probe_health *out);
/* out[i]: the .ver of ids[i]'s health, 0 when it is not watched; one lock
 * for all (a cached rendering of the health is current while it is equal). */
void probe_health_versions(probe_engine *e, const char *const *ids, size_t n, uint64_t *out);
/* The engine's figures now (for /metrics). */
typedef struct {
    size_t watches;
    size_t by_health[PROBE_H_UNHEALTHY + 1]; /* watches by health state */
    uint64_t checks, failures;               /* checks finished since open, failed */
} probe_stats;
void probe_stats_get(probe_engine *e, probe_stats *out);

#endif

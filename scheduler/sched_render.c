/* sched_render.c - decisions in words, and names for enums. */
#include "sched_internal.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct {
    char *buf;
    size_t len, n;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_buf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->n < o->len ? o->len - o->n : 0;
    int k = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->n += (size_t)k;
}

const char *sched_resource_name(sched_resource r)
{
    switch (r) {
    case SCHED_RES_MEM: return "memory";
    case SCHED_RES_VCPU: return "vcpu";
    case SCHED_RES_SLOT: return "slot";
    default: return "unknown";
    }
}

const char *sched_why_name(sched_why w)
{
    switch (w) {
    case SCHED_WHY_FITS: return "fits";
    case SCHED_WHY_CORDONED: return "cordoned";
    case SCHED_WHY_MEM: return "memory";
    case SCHED_WHY_VCPU: return "vcpu";
    case SCHED_WHY_SLOT: return "slot";
    case SCHED_WHY_HOST_AFFINITY: return "host_affinity";
    case SCHED_WHY_HOST_ANTI_AFFINITY: return "host_anti_affinity";
    case SCHED_WHY_AFFINITY: return "affinity";
    case SCHED_WHY_ANTI_AFFINITY: return "anti_affinity";
    case SCHED_WHY_PEER_RULE: return "peer_anti_affinity";
    case SCHED_WHY_PEER_AFFINITY: return "peer_affinity";
    case SCHED_WHY_EXCLUDED: return "excluded";
    case SCHED_WHY_DEPARTURE: return "departure";
    case SCHED_WHY_PREFERENCE: return "preference";
    }
    return "unknown";
}

const char *sched_status_name(sched_status s)
{
    switch (s) {
    case SCHED_OK: return "ok";
    case SCHED_EINVAL: return "invalid";
    case SCHED_ENOMEM: return "out_of_memory";
    case SCHED_ENOSPACE: return "no_space";
    case SCHED_ECONSTRAINT: return "constraint";
    }
    return "unknown";
}

size_t sched_decision_render(const sched_decision *d, char *buf, size_t len)
{
    out_buf o = { buf, len, 0 };
    if (len > 0)
        buf[0] = '\0';
    if (d == NULL)
        return 0;
    put(&o, "%s: %s\n", sched_status_name(d->status), d->message);
    for (size_t i = 0; i < d->n_assignments; i++) {
        const sched_assignment *a = &d->assignments[i];
        put(&o, "  request %zu replica %u -> host '%s'\n", a->request, a->replica + 1, a->host_id);
    }
    for (size_t s = 0; s < d->n_steps; s++) {
        const sched_step *st = &d->steps[s];
        put(&o, "why: '%s' replica %u\n", st->request_name, st->replica + 1);
        for (int pass = 0; pass < 3; pass++) {
            for (size_t h = 0; h < st->n_hosts; h++) {
                const sched_host_verdict *v = &st->hosts[h];
                if ((int)v->verdict != pass)
                    continue;
                put(&o, "  %-8s host '%s': %s\n",
                    v->verdict == SCHED_CHOSEN     ? "chosen"
                    : v->verdict == SCHED_FEASIBLE ? "fits"
                                                   : "rejected",
                    v->host_id, v->reason);
            }
        }
    }
    return o.n;
}

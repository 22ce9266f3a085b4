/* snapshot.h - the scheduler's view of the fleet (private to the core).
 *
 * A snapshot copies, at one moment, every host (down ones count as
 * cordoned) and every instance row, and builds the scheduler's arrays from
 * them: the instances that hold resources, with their labels and rules
 * (residents' rules bind newcomers). Strings point into the snapshot. */
#ifndef SHOAL_SNAPSHOT_H
#define SHOAL_SNAPSHOT_H

#include "fleet_int.h"
#include "scheduler.h"

typedef struct {
    sched_host hosts[FLEET_MAX_HOSTS];
    char names[FLEET_MAX_HOSTS][STATE_NAME_MAX];
    sched_label *hlabels[FLEET_MAX_HOSTS];
    void *hlabels_doc[FLEET_MAX_HOSTS];
    size_t nhosts;
    sched_instance *insts;
    size_t ninsts;
    state_instance *rows; /* all rows, nrows */
    size_t nrows;
    size_t *row_of;          /* insts[i] is rows[row_of[i]] */
    void **idocs;            /* per instance: labels document */
    sched_label **ilabels;   /* per instance */
    fleet_placement *iplace; /* per instance: its rules */
    sched_rule **irules;     /* per instance */
} fleet_snapshot;

/* 0, or -1 with a message in err. */
int fleet_snapshot_take(fleet *f, fleet_snapshot *s, char *err, size_t errlen);
void fleet_snapshot_free(fleet_snapshot *s);
/* Index of the host called name, or s->nhosts. */
size_t fleet_snapshot_host(const fleet_snapshot *s, const char *name);
/* A scheduler state over the snapshot (sched_state_free it). */
int fleet_snapshot_sched(const fleet_snapshot *s, sched_state **out, fleet_err *e);

/* Rules in the scheduler's terms (n entries into out). */
void fleet_rules_to_sched(const fleet_rule *in, size_t n, sched_rule *out);
/* {"policy":..,"rules":[..]} as stored in an instance row (heap). */
char *fleet_placement_format(bool spread, const fleet_rule *r, size_t n);

#endif

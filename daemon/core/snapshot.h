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
    /* Per host, nhosts entries each (heap, sized when taken). */
    sched_host *hosts;
    char (*names)[STATE_NAME_MAX];
    sched_label **hlabels;
    void **hlabels_doc;
    size_t nhosts;
    fleet_name_idx host_idx; /* names -> index (fleet_snapshot_host) */
    sched_instance *insts;
    size_t ninsts;
    state_instance *rows; /* all rows, nrows */
    size_t nrows;
    size_t *row_of;                   /* insts[i] is rows[row_of[i]] */
    void **idocs;                     /* per instance: labels document */
    sched_label **ilabels;            /* per instance */
    fleet_placement *iplace;          /* per instance: its rules */
    sched_rule **irules;              /* per instance */
    fleet_use *use;                   /* per row: what was measured (capacity.c) */
    bool measured;                    /* --capacity measured: charges are measured */
    uint64_t *room_mib;               /* each host's memory less its reserve */
    uint32_t *cpus;                   /* each host's CPUs */
    struct node_foreign *others;      /* each host's domains that are not shoal's */
    struct fleet_pool_resident *pool; /* warm pool guests among insts (their ids), npool */
    size_t npool;
} fleet_snapshot;

/* 0, or -1 with a message in err. */
int fleet_snapshot_take(fleet *f, fleet_snapshot *s, char *err, size_t errlen);
/* The same, with the warm pools' guests (pool.h) among the residents, each
 * charged like a new guest of its image: what creates and pool fills
 * place against. */
int fleet_snapshot_take_pool(fleet *f, fleet_snapshot *s, char *err, size_t errlen);
void fleet_snapshot_free(fleet_snapshot *s);
/* Index of the host called name, or s->nhosts. */
size_t fleet_snapshot_host(const fleet_snapshot *s, const char *name);
/* What each new guest of image `digest` asking mem_mib and vcpus is charged
 * in the snapshot's units (capacity.c): *mem MiB, *cpu vCPUs or 1/1000 CPU. */
void fleet_charge_new(const fleet_snapshot *s, const char *digest, uint64_t mem_mib, uint32_t vcpus,
                      uint64_t *mem, uint32_t *cpu);
/* FLEET_OK when a guest of mem_mib and vcpus could run on some up,
 * uncordoned host even if it touched all its memory and kept every vCPU
 * busy; else FLEET_E_CAPACITY naming the resource. (Measured charges start
 * small; a guest larger than every host never fits.) */
int fleet_snapshot_fits(const fleet_snapshot *s, uint64_t mem_mib, uint32_t vcpus, fleet_err *e);
/* Append to a capacity refusal's message what domains shoal does not own
 * hold on the hosts that have them (the largest three), so a 507 on a
 * host that runs other things says why it is full. */
void fleet_snapshot_note_others(const fleet_snapshot *s, fleet_err *e);
/* A scheduler state over the snapshot (sched_state_free it). */
int fleet_snapshot_sched(const fleet_snapshot *s, sched_state **out, fleet_err *e);

/* Rules in the scheduler's terms (n entries into out). */
void fleet_rules_to_sched(const fleet_rule *in, size_t n, sched_rule *out);
/* {"policy":..,"rules":[..]} as stored in an instance row (heap), with
 * "pin": the host a create named (NULL: none; failover keeps a pinned
 * instance on its host, failover.c). */
char *fleet_placement_format(bool spread, const fleet_rule *r, size_t n, const char *pin);

#endif

/* sched_internal.h - the scheduler's private data model, shared by its .c
 * files only. Nothing here is part of the contract in scheduler.h. */
#ifndef SHOAL_SCHED_INTERNAL_H
#define SHOAL_SCHED_INTERNAL_H

#include "scheduler.h"

#define SCHED_UTIL_ONE      ((int64_t)1 << 20) /* utilisation 100% */
#define SCHED_UTIL_CLAMP    ((int64_t)1 << 21) /* utilisation ceiling (200%) */
#define SCHED_SOFT_UNIT     ((int64_t)1 << 24) /* score of one unit of soft weight */
#define SCHED_NO_SLOT_LIMIT ((uint64_t)1 << 40)
#define SCHED_NEED_NOWHERE  ((size_t)-2)

/* Strings and small arrays copied from the caller live in an arena. */
typedef struct sched_arena_block {
    struct sched_arena_block *next;
    size_t used, size;
    char data[];
} sched_arena_block;

typedef struct {
    sched_arena_block *head;
} sched_arena;

void *sched_arena_alloc(sched_arena *a, size_t n);
char *sched_arena_strdup(sched_arena *a, const char *s);
void sched_arena_free(sched_arena *a);

typedef struct {
    const char *id;
    uint64_t cap[SCHED_RES__COUNT];  /* usable amounts */
    uint64_t used[SCHED_RES__COUNT]; /* memory includes VMM overhead */
    uint64_t overhead;               /* VMM memory per guest */
    const sched_label *labels;
    size_t n_labels;
    bool cordoned;
    uint32_t blocked; /* >0: temporarily not a target */
    uint32_t *res;    /* resident instance indexes */
    uint32_t n_res, res_cap;
    uint32_t n_ruled; /* residents with a hard instance rule */
} sched_host_rt;

typedef struct {
    const char *id;
    uint64_t mem;
    uint32_t vcpus;
    const sched_label *labels;
    size_t n_labels;
    const sched_rule *rules;
    size_t n_rules;
    size_t host;  /* SCHED_NONE once removed */
    uint32_t pos; /* position in host->res */
    bool pinned;
    bool ruled; /* has a hard AFFINITY or ANTI_AFFINITY rule */
} sched_inst_rt;

/* The host index: two treaps (randomised balanced search trees) holding
 * every host, one ordered for BINPACK (utilisation descending, then host
 * index), one for SPREAD (ascending, then host index). Each node carries the
 * largest free amount of each resource in its subtree, so "the first host in
 * policy order that has room" is a descent that skips whole subtrees of
 * hosts too full for the guest. Blocked and cordoned hosts have free -1. */
#define SCHED_NIL UINT32_MAX

typedef struct {
    uint32_t root;
    uint32_t *l, *r;                /* children per host, SCHED_NIL */
    int64_t *key;                   /* ordering key per host */
    int64_t *agg[SCHED_RES__COUNT]; /* subtree max of free */
} sched_treap;

typedef struct {
    size_t n;
    uint32_t *prio;                   /* heap priority per host */
    int64_t *avail[SCHED_RES__COUNT]; /* free per host (memory: for a
                                         guest, VMM overhead deducted) */
    sched_treap t[2];                 /* [SCHED_BINPACK], [SCHED_SPREAD] */
} sched_index;

struct sched_state {
    sched_host_rt *hosts;
    size_t n_hosts;
    sched_inst_rt *insts;
    size_t n_insts, insts_cap;
    sched_arena arena;
    bool owns_arena; /* false in planner clones */
    sched_index idx;
    double mean_cap[SCHED_RES__COUNT];
    bool cpu_milli; /* SCHED_RES_VCPU counts thousandths of a CPU */
    uint32_t *aff;  /* instances with a hard AFFINITY rule */
    size_t n_aff, aff_cap;
};

/* What is being placed: a replica of a request or an instance that moves. */
typedef struct {
    const char *name; /* for messages */
    size_t request;
    uint32_t replica;
    uint32_t count;
    uint64_t mem;
    uint32_t vcpus;
    const sched_label *labels;
    size_t n_labels;
    const sched_rule *rules;
    size_t n_rules;
    size_t self;      /* instance index when it moves, else NONE */
    uint32_t vacuous; /* bit i: hard AFFINITY rule i holds anywhere */
    size_t need_host; /* new guests: the host a lone self-affine
                               instance waits on (SCHED_NONE: any;
                               SCHED_NEED_NOWHERE: two such, on two hosts) */
    size_t need_by;   /* that instance */
    bool has_soft;
    int64_t min_soft; /* moves: soft weight it meets today; -1 none */
    double size;      /* largest share of a mean host */
} sched_unit;

/* Outcome of evaluating one host for one unit. */
typedef struct {
    bool ok;
    sched_why why;
    size_t rule;   /* for rule reasons: the unit's rule index, or the
                           resident instance (PEER_RULE); else NONE */
    int64_t soft;  /* soft weight met */
    int64_t score; /* -1 when rejected */
} sched_eval;

/* state */
sched_status sched_fail(sched_error *err, sched_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool sched_id_ok(const char *s);
/* snprintf that truncates silently (messages may be cut, never overrun). */
void sched_msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
sched_label *sched_copy_labels(sched_arena *a, const sched_label *l, size_t n);
sched_rule *sched_copy_rules(sched_arena *a, const sched_rule *r, size_t n);
sched_status sched_check_labels(const sched_label *l, size_t n, const char *what, sched_error *err);
sched_status sched_check_rules(const sched_rule *r, size_t n, const char *what, sched_error *err);
int64_t sched_host_util(const sched_host_rt *h);
int64_t sched_host_free(const sched_host_rt *h, sched_resource r);
sched_status sched_index_init(sched_state *st);
void sched_index_free(sched_index *ix);
void sched_index_update(sched_state *st, size_t host);
size_t sched_index_best(const sched_state *st, const sched_unit *u, sched_policy pol);
sched_status sched_inst_attach(sched_state *st, size_t inst, size_t host);
void sched_inst_detach(sched_state *st, size_t inst);
sched_status sched_inst_push(sched_state *st, const sched_inst_rt *proto, size_t host,
                             size_t *index);
void sched_inst_pop(sched_state *st);
sched_state *sched_state_clone(const sched_state *st);
bool sched_label_match(const sched_label *labels, size_t n, const char *key, const char *value);

/* evaluation */
void sched_unit_prepare(const sched_state *st, sched_unit *u);
sched_eval sched_eval_host(const sched_state *st, const sched_unit *u, size_t host,
                           sched_policy pol);
int64_t sched_soft_weight(const sched_state *st, const sched_unit *u, size_t host);
bool sched_departure_ok(const sched_state *st, size_t inst);
size_t sched_find_host(sched_state *st, const sched_unit *u, sched_policy pol, bool use_index);
void sched_verdict_text(const sched_state *st, const sched_unit *u, size_t host,
                        const sched_eval *e, char *buf, size_t len);
/* Fill the failure fields of a decision-like result for a unit that found
 * no host; returns ENOSPACE or ECONSTRAINT. */
sched_status sched_explain_failure(const sched_state *st, const sched_unit *u, sched_resource *res,
                                   uint64_t *short_by, size_t *largest_host, uint64_t *largest_free,
                                   char *msg, size_t len);
void sched_rule_text(const sched_rule *r, char *buf, size_t len);

#endif

/* scheduler.h - where instances run: placement, spread, affinity, and plans
 * that consolidate a sprawled fleet or drain one host.
 *
 * A pure library: no I/O, no global state, no threads. The caller (shoald)
 * describes the fleet as arrays of plain structs (hosts, the instances on
 * them), builds a sched_state from that snapshot, and asks questions:
 *
 *     sched_state *st;
 *     sched_state_new(&fleet, &st, &err);         // copies everything it needs
 *     sched_place(st, &req, 1, &opts, &dec);       // where do N replicas go?
 *     sched_plan_consolidate(st, NULL, &plan);     // which moves free hosts?
 *     sched_decision_clear(&dec);
 *     sched_plan_clear(&plan);
 *     sched_state_free(st);
 *
 * Resources. Every host has three: memory (MiB), vCPUs and guest slots.
 *   usable memory = (mem_mib - reserved_mem_mib) * mem_overcommit, rounded down
 *   usable vCPUs  = (vcpus - reserved_vcpus) * cpu_overcommit, rounded down
 *   usable slots  = slots (0 means no limit); slots are never overcommitted
 * A guest of M MiB and C vCPUs placed on host h takes M + h.vmm_overhead_mib
 * memory, C vCPUs and one slot. A host fits a guest when every resource's use
 * stays at or below its usable amount. Cordoned hosts take nothing new.
 *
 * Rules (sched_rule), attached to requests and to existing instances:
 *   HOST_AFFINITY       the host must (hard) / should (soft) carry the label
 *   HOST_ANTI_AFFINITY  the host must not / should not carry the label
 *   AFFINITY            share a host with another instance carrying the label.
 *                       A hard one is also met when no other instance in the
 *                       fleet carries the label and the instance itself does
 *                       (so the first replica of a self-affine group starts).
 *   ANTI_AFFINITY       never / preferably not share a host with another
 *                       instance carrying the label ("no two replicas of
 *                       app=web on one host": labels app=web, rule
 *                       ANTI_AFFINITY app=web).
 * Hard rules of instances already placed bind newcomers too: a host whose
 * resident forbids app=web rejects a new app=web guest, and when an instance
 * with a hard AFFINITY to app=db is the only app=db so far (met through the
 * self rule above), the next app=db guest must join its host. Soft rules
 * only rank hosts; they bind nobody. A label selector matches when the key
 * is equal and the value is equal (or the rule's value is NULL: any value).
 *
 * Policies. BINPACK (default): among the hosts that fit, the one whose most
 * used resource (as a share of its usable amount) is highest, so tiny guests
 * fill a host before the next one is opened. SPREAD: the lowest. Satisfied
 * soft rules come first: a host meeting more soft weight always wins over a
 * better packed one. Ties go to the lowest host index. Decisions are
 * deterministic: the same state and request give the same answer.
 *
 * Memory ownership. The library copies every string and array it is given in
 * sched_state_new() and sched_state_add(); the caller may free its fleet right
 * after. Results (sched_decision, sched_plan) are filled into structs the
 * caller owns; their arrays are allocated by the library and released by
 * sched_decision_clear() / sched_plan_clear(). Id strings in results
 * (host_id, instance_id) point into the sched_state and stay valid until
 * sched_state_free(). All free/clear functions accept NULL.
 *
 * Errors. Functions return a sched_status. SCHED_EINVAL: bad input, the
 * message names the field and value. SCHED_ENOMEM: allocation failed, nothing
 * changed. SCHED_ENOSPACE: hosts pass the rules but none has room; the
 * decision/plan names the resource and how much more is needed.
 * SCHED_ECONSTRAINT: rules (or cordons) rule out every host, whatever its
 * room; the message counts which rule removed how many hosts. On any error
 * the state is left unchanged.
 *
 * Cost. A replica whose rules are all hard is placed through an index over
 * the hosts (two balanced trees ordered for binpack and spread, each node
 * knowing the most free capacity below it): O(log hosts) typical, about
 * 2 us on 10,000 hosts. Soft rules make it evaluate every host: O(hosts),
 * about 100 us on 10,000 hosts; so does each explained replica. Instance
 * rules cost O(guests on the host) for each host looked at. sched_place()
 * with commit=false still writes the state while it runs (and restores it).
 * Thread safety: none inside; a state may be used by one thread at a time
 * (sched_plan_* only read it, so concurrent plans on one state are fine as
 * long as nothing writes it meanwhile).
 */
#ifndef SHOAL_SCHEDULER_H
#define SHOAL_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_ID_MAX     128                 /* longest id or label key/value accepted */
#define SCHED_MSG_MAX    512                 /* size of message buffers in results */
#define SCHED_REASON_MAX 160                 /* size of one host verdict's reason */
#define SCHED_BATCH_MAX  100000              /* most replicas in one sched_place() call */
#define SCHED_RULES_MAX  32                  /* most rules on one request or instance */
#define SCHED_MEM_MAX    ((uint64_t)1 << 40) /* largest MiB figure accepted */
#define SCHED_NONE       ((size_t)-1)        /* "no index" in size_t fields */

typedef enum {
    SCHED_OK = 0,
    SCHED_EINVAL = -1,      /* bad input; message names the field */
    SCHED_ENOMEM = -2,      /* out of memory; nothing changed */
    SCHED_ENOSPACE = -3,    /* not enough room; see short_* fields */
    SCHED_ECONSTRAINT = -4, /* room exists, but rules/cordons exclude it */
} sched_status;

typedef enum {
    SCHED_RES_MEM = 0, /* MiB */
    SCHED_RES_VCPU,    /* vCPUs */
    SCHED_RES_SLOT,    /* guests */
    SCHED_RES__COUNT
} sched_resource;

typedef enum {
    SCHED_BINPACK = 0, /* fill the fullest host that fits (default) */
    SCHED_SPREAD,      /* the emptiest host that fits */
} sched_policy;

/* One key=value label. */
typedef struct {
    const char *key;   /* non-empty */
    const char *value; /* may be "" ; NULL is taken as "" */
} sched_label;

/* One machine that runs guests. */
typedef struct {
    const char *id;            /* unique, non-empty, shown in messages */
    uint64_t mem_mib;          /* physical memory */
    uint32_t vcpus;            /* host CPUs (threads) */
    uint32_t slots;            /* most guests at once; 0 = no limit */
    uint64_t reserved_mem_mib; /* kept for the host itself */
    uint32_t reserved_vcpus;   /* kept for the host itself */
    uint64_t vmm_overhead_mib; /* memory each guest costs beyond its own
                                    (QEMU private memory, ~12 MiB) */
    double mem_overcommit;     /* usable/physical memory ratio; 0 = 1.0 */
    double cpu_overcommit;     /* vCPUs per host CPU; 0 = 1.0 */
    const sched_label *labels; /* n_labels entries (e.g. zone=a) */
    size_t n_labels;
    bool cordoned; /* takes no new guests; may be drained */
} sched_host;

typedef enum {
    SCHED_RULE_HOST_AFFINITY = 0,  /* host carries the label */
    SCHED_RULE_HOST_ANTI_AFFINITY, /* host does not carry the label */
    SCHED_RULE_AFFINITY,           /* another instance on the host carries it */
    SCHED_RULE_ANTI_AFFINITY,      /* no other instance there carries it */
} sched_rule_kind;

/* One placement rule. A zero-initialised rule is hard. */
typedef struct {
    sched_rule_kind kind;
    const char *key;   /* label key to match, non-empty */
    const char *value; /* label value to match; NULL = any value */
    bool soft;         /* false: must hold; true: preference only */
    uint32_t weight;   /* soft only: 1..1000 (0 is taken as 1) */
} sched_rule;

/* An instance already placed on a host. */
typedef struct {
    const char *id;   /* unique, non-empty */
    uint64_t mem_mib; /* guest memory, without VMM overhead */
    uint32_t vcpus;
    const sched_label *labels; /* e.g. app=web */
    size_t n_labels;
    const sched_rule *rules; /* its own rules; hard ones are kept by
                                    every plan and bind newcomers */
    size_t n_rules;
    size_t host; /* index into sched_fleet.hosts */
    bool pinned; /* plans never move it */
} sched_instance;

/* The snapshot a state is built from. Arrays are read, never kept. */
typedef struct {
    const sched_host *hosts;
    size_t n_hosts;
    const sched_instance *instances;
    size_t n_instances;
    bool cpu_milli; /* vCPU figures (hosts' vcpus, instances' and requests'
                           vcpus) are thousandths of a CPU of measured use,
                           not vCPU counts: messages say "CPU" ("0.250 CPU") */
} sched_fleet;

/* A request for `count` identical new instances. */
typedef struct {
    const char *name;          /* for messages ("web"); NULL = "request N" */
    uint64_t mem_mib;          /* per replica, without VMM overhead */
    uint32_t vcpus;            /* per replica */
    const sched_label *labels; /* labels each replica will carry */
    size_t n_labels;
    const sched_rule *rules; /* rules each replica obeys */
    size_t n_rules;
    uint32_t count;         /* replicas; 0 is taken as 1 */
    const char *const *ids; /* optional, `count` ids recorded when the
                                    decision is committed; NULL = "name-N" */
} sched_request;

typedef struct {
    sched_policy policy; /* BINPACK (0) or SPREAD */
    bool explain;        /* record a verdict for every host (slower) */
    bool commit;         /* on success, record the new instances in the
                              state so the next decision sees them */
    bool no_index;       /* evaluate every host instead of using the index
                              (tests and benchmarks; same answers) */
} sched_place_opts;

/* Where one replica goes. */
typedef struct {
    size_t request;      /* index into the requests array */
    uint32_t replica;    /* 0 .. count-1 */
    size_t host;         /* index into the state's hosts (= fleet order) */
    const char *host_id; /* owned by the state */
    size_t instance;     /* index of the new instance in the state when
                              committed, else SCHED_NONE */
} sched_assignment;

typedef enum {
    SCHED_CHOSEN = 0, /* the host the replica went to */
    SCHED_FEASIBLE,   /* would fit; lost on score */
    SCHED_REJECTED,   /* cannot take the replica; see why */
} sched_verdict;

typedef enum {
    SCHED_WHY_FITS = 0,           /* not rejected */
    SCHED_WHY_CORDONED,           /* host is cordoned */
    SCHED_WHY_MEM,                /* not enough memory */
    SCHED_WHY_VCPU,               /* not enough vCPUs */
    SCHED_WHY_SLOT,               /* no guest slot left */
    SCHED_WHY_HOST_AFFINITY,      /* host lacks a required label */
    SCHED_WHY_HOST_ANTI_AFFINITY, /* host carries a forbidden label */
    SCHED_WHY_AFFINITY,           /* no required companion instance on it */
    SCHED_WHY_ANTI_AFFINITY,      /* a forbidden instance is on it */
    SCHED_WHY_PEER_RULE,          /* a resident's hard rule forbids newcomer */
    SCHED_WHY_PEER_AFFINITY,      /* an instance elsewhere has a hard affinity
                                    to the newcomer's label and no companion
                                    yet: the newcomer must join it */
    SCHED_WHY_EXCLUDED,           /* plans: the host being emptied, or one
                                    not taking moves */
    SCHED_WHY_DEPARTURE,          /* plans: leaving would break a hard
                                    affinity of an instance staying behind */
    SCHED_WHY_PREFERENCE,         /* plans: the instance would meet less soft
                                    weight there than where it is */
} sched_why;

/* The verdict on one host for one replica. */
typedef struct {
    size_t host;         /* index into the state's hosts */
    const char *host_id; /* owned by the state */
    sched_verdict verdict;
    sched_why why;                 /* SCHED_WHY_FITS unless REJECTED */
    int64_t score;                 /* higher wins; -1 when REJECTED */
    char reason[SCHED_REASON_MAX]; /* "needs 268 MiB memory (256 + 12
                                        VMM), 200 MiB free" */
} sched_host_verdict;

/* The explanation of one placement step (one replica). */
typedef struct {
    size_t request;
    uint32_t replica;
    char request_name[SCHED_ID_MAX + 24]; /* the request's name */
    sched_host_verdict *hosts;            /* one per host, in host order */
    size_t n_hosts;
} sched_step;

typedef struct {
    sched_status status;
    sched_assignment *assignments; /* on success: every replica, in request
                                       order then replica order */
    size_t n_assignments;
    /* When status is ENOSPACE or ECONSTRAINT (else SCHED_NONE / 0): */
    size_t failed_request; /* first replica that found no host */
    uint32_t failed_replica;
    uint32_t unplaced;             /* replicas of the batch without a host */
    sched_resource short_resource; /* ENOSPACE: the resource that ran out */
    uint64_t short_by;             /* ENOSPACE: how much more of it the
                                       failed replica needs on the best host */
    size_t largest_host;           /* ENOSPACE: host with the most free
                                       short_resource (among allowed hosts) */
    uint64_t largest_free;         /* its free amount (for memory: what a
                                       guest can use, VMM overhead deducted) */
    char message[SCHED_MSG_MAX];   /* one line: what was decided or why not,
                                       e.g. "need 512 MiB more memory: largest
                                       free block is 200 MiB on host 'h2'" */
    sched_step *steps;             /* explain only: the first replica of each
                                       request and the first failed replica */
    size_t n_steps;
} sched_decision;

/* One cold move: stop on `from`, start on `to`. */
typedef struct {
    size_t instance;         /* index into the state's instances */
    const char *instance_id; /* owned by the state */
    size_t from, to;         /* host indexes */
    const char *from_id, *to_id;
} sched_move;

typedef struct {
    size_t max_moves; /* 0 = no limit */
} sched_plan_opts;

typedef struct {
    sched_status status; /* OK, or (drain) ENOSPACE / ECONSTRAINT */
    sched_move *moves;   /* execute in order; every prefix keeps all
                                 capacities and hard rules */
    size_t n_moves;
    size_t *freed; /* hosts empty after the plan, not before */
    size_t n_freed;
    size_t hosts_used_before; /* hosts with at least one instance */
    size_t hosts_used_after;
    size_t stuck_instance; /* drain failure: an instance with nowhere to
                                 go (else SCHED_NONE) */
    char message[SCHED_MSG_MAX];
} sched_plan;

typedef struct {
    sched_status code;
    char message[SCHED_MSG_MAX];
} sched_error;

typedef struct sched_state sched_state;

/* Build a state from a snapshot. Validates everything (EINVAL naming the bad
 * field: empty id, duplicate host id, instance host index out of range, bad
 * overcommit ratio, ...). Existing placements are accepted as they are, even
 * over capacity or against rules (reality wins); plans never make them worse.
 * err may be NULL. On success *out is owned by the caller. */
sched_status sched_state_new(const sched_fleet *fleet, sched_state **out, sched_error *err);
void sched_state_free(sched_state *st);

/* Record one more instance (e.g. started outside sched_place). Its index is
 * stored in *index (may be NULL). EINVAL on bad input. */
sched_status sched_state_add(sched_state *st, const sched_instance *inst, size_t *index,
                             sched_error *err);
/* Forget an instance (it stopped). Indexes of other instances do not move.
 * EINVAL if the index is out of range or already removed. */
sched_status sched_state_remove(sched_state *st, size_t instance);
/* Apply a move (e.g. after executing one step of a plan). Checks nothing. */
sched_status sched_state_move(sched_state *st, size_t instance, size_t to);

size_t sched_state_hosts(const sched_state *st);
size_t sched_state_instances(const sched_state *st); /* incl. removed slots */
/* Index of a host/instance id, SCHED_NONE if unknown. O(n). */
size_t sched_state_find_host(const sched_state *st, const char *id);
size_t sched_state_find_instance(const sched_state *st, const char *id);
/* Host of an instance; SCHED_NONE if removed or out of range. */
size_t sched_state_instance_host(const sched_state *st, size_t instance);
/* Usable and used amount of a resource on a host (used includes VMM
 * overhead for memory). Returns false if host is out of range. */
bool sched_state_usage(const sched_state *st, size_t host, sched_resource r, uint64_t *usable,
                       uint64_t *used);

/* Place a batch: every replica of every request, or none. Replicas are
 * placed largest first (by their largest share of a mean host); the tiny
 * ones (under 1/16 of a mean host in every resource) come last, alternating
 * the most vCPU-heavy and the most memory-heavy, so hosts fill evenly in
 * both. opts may be
 * NULL (binpack, no explanation, no commit). *out is always initialised
 * (also on EINVAL: message says why) and must be released with
 * sched_decision_clear(). The state changes only when opts->commit is set and
 * the status is SCHED_OK. */
sched_status sched_place(sched_state *st, const sched_request *reqs, size_t n_reqs,
                         const sched_place_opts *opts, sched_decision *out);
void sched_decision_clear(sched_decision *d);

/* Render a decision ("why this host, why not the others") as text into buf
 * (always NUL-terminated when len > 0). Returns the length the full text
 * needs, like snprintf; truncated when that is >= len. Without explain, only
 * the summary and the assignments are rendered. Text numbers replicas from 1
 * ("replica 1/3"); struct fields count from 0. */
size_t sched_decision_render(const sched_decision *d, char *buf, size_t len);

/* A plan that empties as many hosts as it can, with as few moves as it can,
 * without ever breaking capacity or a hard rule (checked after every single
 * move). Moves only go to hosts already in use and not cordoned; cordoned
 * hosts are emptied first, then the emptiest; pinned instances never move;
 * a moved instance never meets less soft weight than where it was. Never
 * fails for lack of room: a fleet that cannot be consolidated gives an empty
 * plan. The state is not changed. opts may be NULL. Cost: about 0.5 s for
 * 2,000 hosts holding 112,000 guests. */
sched_status sched_plan_consolidate(const sched_state *st, const sched_plan_opts *opts,
                                    sched_plan *out);
/* A plan that moves every instance off one host (targets: any host not
 * cordoned, fullest first). ENOSPACE / ECONSTRAINT with stuck_instance and a
 * message when some instance has nowhere to go (the moves are then the ones
 * that could be made; execute none of them). EINVAL for a pinned instance on
 * the host or a bad index. */
sched_status sched_plan_drain(const sched_state *st, size_t host, const sched_plan_opts *opts,
                              sched_plan *out);
void sched_plan_clear(sched_plan *p);

/* Names for messages and JSON: "memory", "vcpu", "slot"; "cordoned", ... */
const char *sched_resource_name(sched_resource r);
const char *sched_why_name(sched_why w);
const char *sched_status_name(sched_status s);

#endif /* SHOAL_SCHEDULER_H */

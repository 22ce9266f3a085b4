/* sched_check.h - an independent checker for scheduler results, used by the
 * scheduler tests and benchmark. It re-derives capacities and rule semantics
 * from the contract in scheduler.h without calling the library, so a bug in
 * the library cannot hide itself. */
#ifndef SHOAL_SCHED_CHECK_H
#define SHOAL_SCHED_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "scheduler.h"

/* Usable amount of a resource on a host (slots: UINT64_MAX when no limit). */
uint64_t check_usable(const sched_host *h, sched_resource r);

/* True when every host is within capacity and every hard rule of every
 * instance holds. Instances with host == SCHED_NONE are ignored. On false,
 * why says which host/instance/rule. */
bool check_fleet(const sched_host *hosts, size_t n_hosts, const sched_instance *insts,
                 size_t n_insts, char *why, size_t len);

/* Replay a plan move by move on a copy of the instances, checking the whole
 * fleet after every move (and that moves start where the instance is, never
 * go to a cordoned host and never touch a pinned instance). When
 * targets_in_use is set, moves may only go to hosts that are in use at that
 * point. On success, hosts_after (may be NULL) receives hosts in use at the
 * end. */
bool check_plan(const sched_host *hosts, size_t n_hosts, const sched_instance *insts,
                size_t n_insts, const sched_plan *plan, bool targets_in_use, size_t *hosts_after,
                char *why, size_t len);

/* Fewest bins for items (mem, vcpus) on identical hosts like h, by branch
 * and bound. Returns 0 if it gives up after `node_limit` nodes. */
size_t check_optimum(const sched_host *h, const uint64_t *mem, const uint32_t *vcpus, size_t n,
                     unsigned long node_limit);

/* Lower bound on hosts like h for the items: max over resources of
 * ceil(sum of demand / usable). */
size_t check_lower_bound(const sched_host *h, const uint64_t *mem, const uint32_t *vcpus, size_t n);

#endif

/*
 * net_sim.h - host harness for the guest network stack: the net_port.h
 * functions (malloc, a simulated millisecond clock, a seeded RNG) and an
 * in-memory Ethernet wire between two stacks with seeded loss, duplication,
 * reordering and delay. Everything is deterministic for a given seed, and
 * time is virtual: an RTO of 1 s costs no wall time.
 */
#ifndef SHOAL_NET_SIM_H
#define SHOAL_NET_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "net_socket.h"

#define SIM_IP_A 0x0a000001u /* 10.0.0.1/24 */
#define SIM_IP_B 0x0a000002u /* 10.0.0.2/24 */

struct sim_frame {
    struct sim_frame *next;
    uint64_t due;
    int to; /* 0 or 1: receiving side */
    size_t len;
    uint8_t data[];
};

struct sim {
    struct net_if nif[2];
    struct net_stack *st[2];                 /* st[1] NULL: side 1 is a capture buffer */
    struct sim_frame *q;                     /* in flight, sorted by due time */
    struct sim_frame *cap;                   /* frames sent to a capture side, in order */
    uint32_t loss_ppm, dup_ppm, reorder_ppm; /* per million frames */
    uint32_t delay_ms, jitter_ms;            /* reordered frames: + 1..jitter */
    uint64_t rng;
    uint64_t sent, lost, duplicated, reordered, delivered;
};

/* Simulated clock shared by every stack of the process. */
extern uint64_t sim_now;
/* Seed for net_port_random (ISNs, ports). */
void sim_seed(uint64_t seed);
uint32_t sim_rand(uint64_t *state);

/* Two stacks A (10.0.0.1) and B (10.0.0.2) on one wire. cfg may be NULL.
 * When b_is_capture, side B has no stack: what A sends is kept in cap. */
void sim_init(struct sim *w, uint64_t seed, const struct net_config *cfg_a,
              const struct net_config *cfg_b, int b_is_capture);
void sim_free(struct sim *w);
/* Advance one millisecond: deliver due frames, run both stacks' timers. */
void sim_step(struct sim *w);
void sim_run(struct sim *w, unsigned ms);
/* Pop the oldest captured frame (caller frees), NULL if none. */
struct sim_frame *sim_cap_pop(struct sim *w);
/* The sim that net_port_idle steps (blocking socket calls). */
void sim_set_idle(struct sim *w);

#endif

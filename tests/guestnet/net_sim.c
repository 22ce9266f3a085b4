/* net_sim.c - see net_sim.h. */
#include "net_sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t sim_now = 1000;
static uint64_t port_rng = 0x9e3779b97f4a7c15ull;
static struct sim *idle_sim;

uint32_t sim_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 16);
}

void sim_seed(uint64_t seed)
{
    port_rng = seed * 0x9e3779b97f4a7c15ull | 1;
}

/* ---- net_port.h ---- */
void *net_port_alloc(size_t n)
{
    return malloc(n ? n : 1);
}
void net_port_free(void *p)
{
    free(p);
}
uint64_t net_port_now_ms(void)
{
    return sim_now;
}
uint32_t net_port_random(void)
{
    return sim_rand(&port_rng);
}
void net_port_idle(uint64_t deadline_ms)
{
    (void)deadline_ms;
    if (idle_sim)
        sim_step(idle_sim);
    else
        sim_now++;
}
void net_port_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void net_port_log(const char *fmt, ...)
{
    if (!getenv("NET_SIM_LOG"))
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void sim_set_idle(struct sim *w)
{
    idle_sim = w;
}

/* ---- the wire ---- */

static void enqueue(struct sim *w, int to, const void *frame, size_t len, uint64_t due)
{
    struct sim_frame *f = malloc(sizeof *f + len);
    if (!f)
        abort();
    f->next = NULL;
    f->due = due;
    f->to = to;
    f->len = len;
    memcpy(f->data, frame, len);
    if (to == 1 && !w->st[1]) { /* capture side */
        struct sim_frame **p = &w->cap;
        while (*p)
            p = &(*p)->next;
        *p = f;
        return;
    }
    struct sim_frame **p = &w->q;
    while (*p && (*p)->due <= due)
        p = &(*p)->next;
    f->next = *p;
    *p = f;
}

static int sim_transmit(struct net_if *nif, const void *frame, size_t len)
{
    struct sim *w = nif->driver;
    int to = nif == &w->nif[0] ? 1 : 0;
    w->sent++;
    if (getenv("NET_SIM_TRACE")) {
        const uint8_t *f = frame;
        if (len >= 54 && f[12] == 8 && f[13] == 0 && f[23] == 6) {
            const uint8_t *t = f + 14 + (f[14] & 15) * 4;
            fprintf(stderr, "%llu %c->: %u>%u seq %u ack %u fl %02x win %u len %zu\n",
                    (unsigned long long)sim_now, to ? 'A' : 'B', t[0] << 8 | t[1], t[2] << 8 | t[3],
                    (unsigned)t[4] << 24 | (unsigned)t[5] << 16 | (unsigned)t[6] << 8 | t[7],
                    (unsigned)t[8] << 24 | (unsigned)t[9] << 16 | (unsigned)t[10] << 8 | t[11],
                    t[13], t[14] << 8 | t[15],
                    len - 14 - (size_t)(f[14] & 15) * 4 - (size_t)(t[12] >> 4) * 4);
        }
    }
    if (w->loss_ppm && sim_rand(&w->rng) % 1000000 < w->loss_ppm) {
        w->lost++;
        return 0;
    }
    uint64_t due = sim_now + w->delay_ms;
    if (w->reorder_ppm && sim_rand(&w->rng) % 1000000 < w->reorder_ppm) {
        w->reordered++;
        due += 1 + sim_rand(&w->rng) % (w->jitter_ms ? w->jitter_ms : 1);
    }
    enqueue(w, to, frame, len, due);
    if (w->dup_ppm && sim_rand(&w->rng) % 1000000 < w->dup_ppm) {
        w->duplicated++;
        enqueue(w, to, frame, len, due + 1);
    }
    return 0;
}

void sim_init(struct sim *w, uint64_t seed, const struct net_config *cfg_a,
              const struct net_config *cfg_b, int b_is_capture)
{
    memset(w, 0, sizeof *w);
    sim_seed(seed);
    w->rng = seed * 2654435761u + 12345;
    w->delay_ms = 1;
    w->jitter_ms = 3;
    for (int i = 0; i < 2; i++) {
        struct net_if *nif = &w->nif[i];
        static const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x00 };
        memcpy(nif->mac, mac, 6);
        nif->mac[5] = (uint8_t)(i + 1);
        nif->ip = i ? SIM_IP_B : SIM_IP_A;
        nif->prefix = 24;
        nif->gw = 0x0a0000feu;
        nif->transmit = sim_transmit;
        nif->driver = w;
    }
    idle_sim = w; /* blocking calls step this wire */
    w->st[0] = net_create(&w->nif[0], cfg_a);
    if (!b_is_capture)
        w->st[1] = net_create(&w->nif[1], cfg_b);
}

void sim_free(struct sim *w)
{
    net_destroy(w->st[0]);
    net_destroy(w->st[1]);
    for (struct sim_frame **l = &w->q; l; l = l == &w->q ? &w->cap : NULL) {
        while (*l) {
            struct sim_frame *f = *l;
            *l = f->next;
            free(f);
        }
    }
    if (idle_sim == w)
        idle_sim = NULL;
}

void sim_step(struct sim *w)
{
    sim_now++;
    while (w->q && w->q->due <= sim_now) {
        struct sim_frame *f = w->q;
        w->q = f->next;
        w->delivered++;
        if (getenv("NET_SIM_TRACE"))
            fprintf(stderr, "%llu deliver to %d len %zu\n", (unsigned long long)sim_now, f->to,
                    f->len);
        net_input(&w->nif[f->to], f->data, f->len);
        free(f);
    }
    for (int i = 0; i < 2; i++)
        if (w->st[i])
            net_poll(w->st[i], sim_now);
}

void sim_run(struct sim *w, unsigned ms)
{
    while (ms--)
        sim_step(w);
}

struct sim_frame *sim_cap_pop(struct sim *w)
{
    struct sim_frame *f = w->cap;
    if (f)
        w->cap = f->next;
    return f;
}

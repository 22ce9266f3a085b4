/*
 * net_tcp.c - TCP (RFC 9293 / 793 state machine) with MSS option, sliding
 * windows with receiver and sender silly-window avoidance, zero-window
 * probing, RFC 6298 RTO estimation with Karn's rule and exponential
 * backoff, RFC 5681 slow start / congestion avoidance / fast retransmit,
 * RFC 3042 limited transmit,
 * NewReno fast recovery (RFC 6582), delayed ACKs, a shortened TIME_WAIT,
 * RFC 5961 RST/SYN/ACK checks, and out-of-order segments kept in the
 * receive ring (no SACK, no window scaling, no timestamps, no urgent data).
 *
 * Buffers are rings: the send ring holds every byte from snd_una on (the
 * FIN, once queued, is the sequence number right after the last byte);
 * the receive ring holds unread in-order bytes followed by free space in
 * which out-of-order bytes are written at their sequence offset. The
 * advertised window is that free space, so memory per connection is the
 * two rings plus struct nsock.
 */
#include "net_internal.h"

static const char *const state_names[NET_TCP_NSTATES] = {
    "CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
    "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING",  "LAST_ACK", "TIME_WAIT",
};

const char *net_tcp_state_name(int st)
{
    return st >= 0 && st < NET_TCP_NSTATES ? state_names[st] : "?";
}

/* Parsed header of a received segment (filled by tcp_input only). */
struct seg {
    uint32_t src, dst, seq, ack;
    uint16_t sport, dport, wnd, mss; /* mss: option value, 0 if absent */
    uint8_t flags;
    const uint8_t *data;
    uint32_t dlen;
};

static uint32_t iw(uint32_t mss) /* RFC 5681 initial window */
{
    uint32_t w = 4 * mss;
    uint32_t lim = NET_MAX(2 * mss, 4380u);
    return w < lim ? w : lim;
}

static uint32_t rcv_free(const struct tcp_cb *t)
{
    return t->rbuf ? t->rbuf_size - t->rbuf_len : 0;
}

/* Window to advertise: free space, but never moving the right edge by
 * less than min(half the buffer, one MSS) (RFC 1122 receiver SWS), and
 * never shrinking it. */
static uint32_t rcv_wnd_adv(const struct tcp_cb *t)
{
    uint32_t freeb = rcv_free(t);
    uint32_t edge = t->rcv_nxt + freeb;
    uint32_t old = SEQ_GT(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
    uint32_t step = NET_MIN(t->rbuf_size / 2, (uint32_t)t->mss);
    if (SEQ_GT(edge, t->rcv_adv) && edge - t->rcv_adv < step && freeb < t->rbuf_size)
        freeb = old;
    if (freeb < old)
        freeb = old;
    return NET_MIN(freeb, 65535u);
}

static void rtt_sample(struct net_stack *s, struct tcp_cb *t, uint32_t r)
{
    if (t->srtt8 == 0) {
        t->srtt8 = r * 8 + 1; /* +1: 0 means "no sample yet" */
        t->rttvar4 = r * 2;
    } else {
        int32_t delta = (int32_t)r - (int32_t)(t->srtt8 / 8);
        int32_t ad = delta < 0 ? -delta : delta;
        t->srtt8 = (uint32_t)((int32_t)t->srtt8 + delta);
        t->rttvar4 = (uint32_t)((int32_t)t->rttvar4 - (int32_t)(t->rttvar4 / 4) + ad);
    }
    uint32_t rto = t->srtt8 / 8 + NET_MAX(t->rttvar4, 1u);
    t->rto = NET_MIN(NET_MAX(rto, s->cfg.rto_min_ms), s->cfg.rto_max_ms);
}

/* Build and send one segment: seq, flags, and len bytes of the send ring
 * starting off bytes after snd_una. Every segment carrying ACK updates
 * what we last advertised and cancels a pending delayed ACK. */
static void tcp_send(struct net_stack *s, struct nsock *sk, uint32_t seq, uint8_t flags,
                     uint32_t off, uint32_t len)
{
    struct tcp_cb *t = &sk->tcp;
    uint8_t *h = ip_payload(s);
    uint32_t hl = TCP_HLEN + ((flags & TH_SYN) ? 4 : 0);
    uint32_t wnd = rcv_wnd_adv(t);
    if (flags & TH_SYN)
        wnd = NET_MIN(t->rbuf_size, 65535u);
    wr16(h, sk->lport);
    wr16(h + 2, sk->rport);
    wr32(h + 4, seq);
    wr32(h + 8, (flags & TH_ACK) ? t->rcv_nxt : 0);
    h[12] = (uint8_t)(hl / 4 << 4);
    h[13] = flags;
    wr16(h + 14, (uint16_t)wnd);
    wr16(h + 16, 0);
    wr16(h + 18, 0);
    if (flags & TH_SYN) {
        h[20] = 2;
        h[21] = 4;
        wr16(h + 22, (uint16_t)(s->nif->mtu - IP_HLEN - TCP_HLEN));
    }
    if (len) {
        uint32_t pos = (t->sbuf_head + off) % t->sbuf_size;
        uint32_t first = NET_MIN(len, t->sbuf_size - pos);
        memcpy(h + hl, t->sbuf + pos, first);
        memcpy(h + hl + first, t->sbuf, len - first);
    }
    uint16_t tot = (uint16_t)(hl + len);
    uint32_t src = sk->lip ? sk->lip : s->nif->ip;
    wr16(h + 16, net_csum_fold(net_csum_add(net_pseudo_sum(src, sk->rip, PROTO_TCP, tot), h, tot)));
    if (flags & TH_ACK) {
        t->rcv_adv = t->rcv_nxt + wnd;
        t->t_delack = 0;
        t->segs_unacked = 0;
        t->ack_now = 0;
    }
    if (flags & TH_RST)
        s->st.tcp_rst_tx++;
    s->st.tcp_tx++;
    ip_output(s, src, sk->rip, PROTO_TCP, tot);
}

/* RST for a segment that has no connection (RFC 793 "Reset Generation"). */
static void tcp_reset_reply(struct net_stack *s, const struct seg *g)
{
    if (g->flags & TH_RST)
        return;
    uint8_t *h = ip_payload(s);
    uint32_t seglen = g->dlen + !!(g->flags & TH_SYN) + !!(g->flags & TH_FIN);
    memset(h, 0, TCP_HLEN);
    wr16(h, g->dport);
    wr16(h + 2, g->sport);
    if (g->flags & TH_ACK) {
        wr32(h + 4, g->ack);
        h[13] = TH_RST;
    } else {
        wr32(h + 8, g->seq + seglen);
        h[13] = TH_RST | TH_ACK;
    }
    h[12] = 5 << 4;
    wr16(h + 16, net_csum_fold(net_csum_add(net_pseudo_sum(g->dst, g->src, PROTO_TCP, TCP_HLEN), h,
                                            TCP_HLEN)));
    s->st.tcp_rst_tx++;
    s->st.tcp_tx++;
    ip_output(s, g->dst, g->src, PROTO_TCP, TCP_HLEN);
}

static void challenge_ack(struct net_stack *s, struct nsock *sk)
{
    s->st.tcp_challenge_ack++;
    tcp_send(s, sk, sk->tcp.snd_nxt, TH_ACK, 0, 0);
}

int tcp_alloc_bufs(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    uint32_t sn = sk->want_sndbuf ? sk->want_sndbuf : s->cfg.tcp_sndbuf;
    uint32_t rn = sk->want_rcvbuf ? sk->want_rcvbuf : s->cfg.tcp_rcvbuf;
    if (rn > 65535)
        rn = 65535;
    if (!t->sbuf)
        t->sbuf = net_port_alloc(sn);
    if (!t->rbuf)
        t->rbuf = net_port_alloc(rn);
    if (!t->sbuf || !t->rbuf) {
        s->st.alloc_fail++;
        return -ENOBUFS;
    }
    t->sbuf_size = sn;
    t->rbuf_size = rn;
    return 0;
}

static void tcp_free_bufs(struct tcp_cb *t)
{
    net_port_free(t->sbuf);
    net_port_free(t->rbuf);
    t->sbuf = t->rbuf = NULL;
    t->sbuf_len = t->rbuf_len = 0;
}

static void tcp_init_cb(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    t->iss = net_port_random() + (uint32_t)(s->now * 250); /* RFC 6528-ish clock + random */
    t->snd_una = t->iss;
    t->snd_nxt = t->iss + 1;
    t->snd_max = t->iss + 1;
    t->recover = t->iss + 1;
    t->rto = s->cfg.rto_init_ms;
    t->mss = 536;
    t->ssthresh = 1u << 30;
    t->rtt_active = 1;
    t->rtt_seq = t->iss;
    t->rtt_start = s->now;
    t->t_rexmit = s->now + t->rto;
}

/* Leave the connection: timers off, out of any accept queue. The socket
 * itself is freed by sock_reap once no descriptor refers to it. */
static void tcp_set_closed(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    t->state = NET_TCP_CLOSED;
    t->t_rexmit = t->t_persist = t->t_delack = t->t_2msl = 0;
    struct nsock *p = sk->parent;
    if (p) {
        for (struct nsock **q = &p->aq_head; *q; q = &(*q)->aq_next) {
            if (*q == sk) {
                *q = sk->aq_next;
                break;
            }
        }
        p->aq_tail = NULL;
        for (struct nsock *c = p->aq_head; c; c = c->aq_next)
            p->aq_tail = c;
        p->nchild--;
        sk->parent = NULL;
        sk->flags |= NS_ORPHAN;
    }
    if (sk->flags & NS_ORPHAN)
        tcp_free_bufs(t);
}

void tcp_abort(struct net_stack *s, struct nsock *sk, int err, int send_rst)
{
    struct tcp_cb *t = &sk->tcp;
    if (send_rst && t->state >= NET_TCP_SYN_RCVD && t->state != NET_TCP_TIME_WAIT)
        tcp_send(s, sk, t->snd_nxt, TH_RST | TH_ACK, 0, 0);
    if (err)
        sk->err = err;
    if (err == ECONNRESET)
        s->st.tcp_conn_reset++;
    tcp_set_closed(s, sk);
}

static void enter_time_wait(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    t->state = NET_TCP_TIME_WAIT;
    t->t_rexmit = t->t_persist = 0;
    t->t_2msl = s->now + s->cfg.time_wait_ms;
    if (sk->flags & NS_ORPHAN)
        tcp_free_bufs(t);
}

/* Resend the first unacknowledged segment (fast retransmit / partial ACK). */
static void retransmit_first(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    uint32_t len = NET_MIN(t->sbuf_len, (uint32_t)t->mss);
    uint8_t flags = TH_ACK;
    if (t->fin_sent && len == t->sbuf_len)
        flags |= TH_FIN;
    if (!len && !(flags & TH_FIN))
        return;
    s->st.tcp_retransmit_segs++;
    t->rtt_active = 0; /* Karn */
    tcp_send(s, sk, t->snd_una, flags, 0, len);
}

void tcp_output(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    int sent = 0;
    switch (t->state) {
    case NET_TCP_ESTABLISHED:
    case NET_TCP_CLOSE_WAIT:
    case NET_TCP_FIN_WAIT_1:
    case NET_TCP_CLOSING:
    case NET_TCP_LAST_ACK: break;
    case NET_TCP_FIN_WAIT_2:
    case NET_TCP_TIME_WAIT:
        if (t->ack_now)
            tcp_send(s, sk, t->snd_nxt, TH_ACK, 0, 0);
        return;
    default: return;
    }
    for (;;) {
        uint32_t off = t->snd_nxt - t->snd_una;
        uint32_t avail = off < t->sbuf_len ? t->sbuf_len - off : 0;
        uint32_t wnd = NET_MIN(t->snd_wnd, t->cwnd);
        uint32_t usable = wnd > off ? wnd - off : 0;
        uint32_t len = NET_MIN(NET_MIN(avail, (uint32_t)t->mss), usable);
        int fin = t->fin_pending && off <= t->sbuf_len && off + len == t->sbuf_len;
        if (!len && !fin)
            break;
        if (len < t->mss && len < avail && off > 0)
            break; /* sender SWS: wait for a bigger window */
        if (len < t->mss && len == avail && off > 0 && !fin && !(sk->flags & NS_NODELAY))
            break; /* Nagle */
        uint8_t flags = TH_ACK;
        if (len && len == avail)
            flags |= TH_PSH;
        if (fin)
            flags |= TH_FIN;
        if (SEQ_LT(t->snd_nxt, t->snd_max))
            s->st.tcp_retransmit_segs++;
        else if (len && !t->rtt_active) {
            t->rtt_active = 1;
            t->rtt_seq = t->snd_nxt;
            t->rtt_start = s->now;
        }
        tcp_send(s, sk, t->snd_nxt, flags, off, len);
        t->snd_nxt += len + (uint32_t)fin;
        if (fin)
            t->fin_sent = 1;
        if (SEQ_GT(t->snd_nxt, t->snd_max))
            t->snd_max = t->snd_nxt;
        sent = 1;
        if (!t->t_rexmit)
            t->t_rexmit = s->now + t->rto;
        if (fin)
            break;
    }
    if (!sent && t->ack_now)
        tcp_send(s, sk, t->snd_nxt, TH_ACK, 0, 0);
    uint32_t off = t->snd_nxt - t->snd_una;
    if (t->snd_wnd == 0 && off < t->sbuf_len && !t->t_rexmit && !t->t_persist) {
        t->persist_backoff = 0;
        t->t_persist = s->now + t->rto;
    }
}

int tcp_connect(struct net_stack *s, struct nsock *sk)
{
    int rc = tcp_alloc_bufs(s, sk);
    if (rc)
        return rc;
    tcp_init_cb(s, sk);
    sk->tcp.mss = (uint16_t)(s->nif->mtu - IP_HLEN - TCP_HLEN);
    sk->tcp.state = NET_TCP_SYN_SENT;
    s->st.tcp_active_open++;
    tcp_send(s, sk, sk->tcp.iss, TH_SYN, 0, 0);
    return 0;
}

static void set_peer_mss(struct net_stack *s, struct tcp_cb *t, uint16_t opt)
{
    uint32_t ours = s->nif->mtu - IP_HLEN - TCP_HLEN;
    uint32_t m = opt ? opt : 536;
    if (m < 64)
        m = 64; /* absurd peer values */
    t->mss = (uint16_t)NET_MIN(m, ours);
}

static void established(struct net_stack *s, struct nsock *sk, const struct seg *g)
{
    struct tcp_cb *t = &sk->tcp;
    t->state = NET_TCP_ESTABLISHED;
    t->snd_una = g->ack;
    t->snd_wnd = g->wnd;
    t->snd_wl1 = g->seq;
    t->snd_wl2 = g->ack;
    t->cwnd = iw(t->mss);
    t->rexmits = 0;
    t->t_rexmit = 0;
    t->recover = g->ack;
    if (t->rtt_active && SEQ_GT(g->ack, t->rtt_seq))
        rtt_sample(s, t, (uint32_t)(s->now - t->rtt_start));
    t->rtt_active = 0;
    s->st.tcp_established++;
}

static void listen_input(struct net_stack *s, struct nsock *ls, const struct seg *g)
{
    if (g->flags & TH_RST) {
        s->st.tcp_drop_other++;
        return;
    }
    if (g->flags & TH_ACK) {
        tcp_reset_reply(s, g);
        return;
    }
    if (!(g->flags & TH_SYN)) {
        s->st.tcp_drop_other++;
        return;
    }
    if (ls->nchild >= ls->backlog) {
        s->st.tcp_drop_backlog++;
        return;
    }
    struct nsock *c = sock_new(s, SOCK_STREAM);
    if (!c)
        return;
    c->flags |= NS_BOUND | (ls->flags & NS_NODELAY);
    c->want_sndbuf = ls->want_sndbuf;
    c->want_rcvbuf = ls->want_rcvbuf;
    c->lip = g->dst;
    c->lport = g->dport;
    c->rip = g->src;
    c->rport = g->sport;
    if (tcp_alloc_bufs(s, c)) {
        sock_free(s, c);
        return;
    }
    c->parent = ls;
    ls->nchild++;
    struct tcp_cb *t = &c->tcp;
    tcp_init_cb(s, c);
    t->irs = g->seq;
    t->rcv_nxt = g->seq + 1;
    t->rcv_adv = t->rcv_nxt;
    t->snd_wnd = g->wnd;
    set_peer_mss(s, t, g->mss);
    t->state = NET_TCP_SYN_RCVD;
    s->st.tcp_passive_open++;
    tcp_send(s, c, t->iss, TH_SYN | TH_ACK, 0, 0);
}

static void syn_sent_input(struct net_stack *s, struct nsock *sk, const struct seg *g)
{
    struct tcp_cb *t = &sk->tcp;
    if ((g->flags & TH_ACK) && (SEQ_LEQ(g->ack, t->iss) || SEQ_GT(g->ack, t->snd_max))) {
        tcp_reset_reply(s, g);
        return;
    }
    if (g->flags & TH_RST) {
        if (g->flags & TH_ACK) {
            s->st.tcp_rst_rx++;
            tcp_abort(s, sk, ECONNREFUSED, 0);
        }
        return;
    }
    if (!(g->flags & TH_SYN)) {
        s->st.tcp_drop_other++;
        return;
    }
    t->irs = g->seq;
    t->rcv_nxt = g->seq + 1;
    t->rcv_adv = t->rcv_nxt;
    set_peer_mss(s, t, g->mss);
    if (g->flags & TH_ACK) {
        established(s, sk, g);
        t->ack_now = 1;
        tcp_output(s, sk);
    } else { /* simultaneous open */
        t->state = NET_TCP_SYN_RCVD;
        t->snd_wnd = g->wnd;
        tcp_send(s, sk, t->iss, TH_SYN | TH_ACK, 0, 0);
    }
}

/* A new cumulative ACK (snd_una < ack <= snd_max). Returns 1 when it
 * covers our FIN. */
static int ack_new(struct net_stack *s, struct nsock *sk, uint32_t ack)
{
    struct tcp_cb *t = &sk->tcp;
    uint32_t acked = ack - t->snd_una;
    uint32_t data = acked;
    int fin_acked = 0;
    if (data > t->sbuf_len) {
        data = t->sbuf_len;
        fin_acked = t->fin_sent;
    }
    if (t->sbuf_size)
        t->sbuf_head = (t->sbuf_head + data) % t->sbuf_size;
    t->sbuf_len -= data;
    t->snd_una = ack;
    if (SEQ_LT(t->snd_nxt, ack))
        t->snd_nxt = ack;
    if (t->rtt_active && SEQ_GT(ack, t->rtt_seq)) {
        rtt_sample(s, t, (uint32_t)(s->now - t->rtt_start));
        t->rtt_active = 0;
    }
    t->rexmits = 0;
    t->persist_backoff = 0;
    if (t->in_recovery) {
        if (SEQ_GEQ(ack, t->recover)) { /* full ACK: leave recovery */
            t->in_recovery = 0;
            t->cwnd = t->ssthresh;
        } else { /* partial ACK: next hole */
            retransmit_first(s, sk);
            t->cwnd = t->cwnd > acked ? t->cwnd - acked : 0;
            t->cwnd += t->mss;
        }
    } else if (t->cwnd < t->ssthresh) {
        t->cwnd += NET_MIN(acked, (uint32_t)t->mss); /* slow start */
    } else {
        t->cwnd += NET_MAX(1u, (uint32_t)t->mss * t->mss / t->cwnd); /* avoidance */
    }
    if (t->cwnd > (1u << 24))
        t->cwnd = 1u << 24;
    t->dupacks = 0;
    t->t_rexmit = t->snd_una == t->snd_max ? 0 : s->now + t->rto;
    return fin_acked;
}

static void dup_ack(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    s->st.tcp_dupack_rx++;
    t->dupacks++;
    if (t->in_recovery) {
        t->cwnd += t->mss; /* inflate: a segment left the net */
        return;
    }
    if (t->dupacks < 3) { /* RFC 3042 limited transmit */
        uint32_t saved = t->cwnd;
        t->cwnd += (uint32_t)t->dupacks * t->mss;
        tcp_output(s, sk);
        t->cwnd = saved;
        return;
    }
    if (t->dupacks != 3 || SEQ_LT(t->snd_una, t->recover))
        return;
    uint32_t flight = t->snd_max - t->snd_una;
    t->ssthresh = NET_MAX(flight / 2, 2u * t->mss);
    t->recover = t->snd_max;
    t->in_recovery = 1;
    s->st.tcp_fast_retransmit++;
    retransmit_first(s, sk);
    t->cwnd = t->ssthresh + 3u * t->mss;
    t->t_rexmit = s->now + t->rto;
}

/* Payload of an acceptable segment into the receive ring. */
static void recv_data(struct net_stack *s, struct nsock *sk, uint32_t seq, const uint8_t *data,
                      uint32_t dlen)
{
    struct tcp_cb *t = &sk->tcp;
    if (SEQ_LT(seq, t->rcv_nxt)) {
        uint32_t d = t->rcv_nxt - seq;
        if (d >= dlen) {
            t->ack_now = 1;
            return;
        }
        data += d;
        dlen -= d;
        seq = t->rcv_nxt;
    }
    uint32_t freeb = rcv_free(t);
    uint32_t off = seq - t->rcv_nxt;
    if (off >= freeb) {
        s->st.tcp_drop_outwin++;
        t->ack_now = 1;
        return;
    }
    if (dlen > freeb - off)
        dlen = freeb - off;
    uint32_t pos = (t->rbuf_head + t->rbuf_len + off) % t->rbuf_size;
    uint32_t first = NET_MIN(dlen, t->rbuf_size - pos);
    memcpy(t->rbuf + pos, data, first);
    memcpy(t->rbuf, data + first, dlen - first);
    if (off == 0) {
        int had_ooo = t->nooo > 0;
        t->rcv_nxt += dlen;
        t->rbuf_len += dlen;
        for (int i = 0; i < t->nooo;) { /* pull in ranges now reached */
            if (SEQ_LEQ(t->ooo[i].start, t->rcv_nxt)) {
                if (SEQ_GT(t->ooo[i].end, t->rcv_nxt)) {
                    t->rbuf_len += t->ooo[i].end - t->rcv_nxt;
                    t->rcv_nxt = t->ooo[i].end;
                }
                t->ooo[i] = t->ooo[--t->nooo];
                i = 0;
                continue;
            }
            i++;
        }
        if (had_ooo)
            t->ack_now = 1;
        else if (++t->segs_unacked >= 2)
            t->ack_now = 1;
        else if (!t->t_delack)
            t->t_delack = s->now + s->cfg.delack_ms;
    } else {
        uint32_t a = seq, b = seq + dlen;
        s->st.tcp_ooo_rx++;
        for (int i = 0; i < t->nooo;) {
            if (SEQ_LEQ(t->ooo[i].start, b) && SEQ_GEQ(t->ooo[i].end, a)) {
                if (SEQ_LT(t->ooo[i].start, a))
                    a = t->ooo[i].start;
                if (SEQ_GT(t->ooo[i].end, b))
                    b = t->ooo[i].end;
                t->ooo[i] = t->ooo[--t->nooo];
                continue;
            }
            i++;
        }
        if (t->nooo < TCP_OOO_MAX) {
            t->ooo[t->nooo].start = a;
            t->ooo[t->nooo].end = b;
            t->nooo++;
        }
        t->ack_now = 1; /* duplicate ACK tells the sender */
    }
}

static void sync_input(struct net_stack *s, struct nsock *sk, const struct seg *g)
{
    struct tcp_cb *t = &sk->tcp;
    uint8_t fl = g->flags;

    if (t->state == NET_TCP_SYN_RCVD && (fl & TH_SYN) && !(fl & TH_ACK) && g->seq == t->irs) {
        tcp_send(s, sk, t->iss, TH_SYN | TH_ACK, 0, 0); /* our SYN-ACK was lost */
        return;
    }
    /* 1. sequence number acceptable? (RFC 793 p.69) */
    uint32_t seglen = g->dlen + !!(fl & TH_SYN) + !!(fl & TH_FIN);
    uint32_t rwnd = rcv_free(t);
    int ok;
    if (seglen == 0)
        ok = rwnd == 0 ? g->seq == t->rcv_nxt
                       : SEQ_GEQ(g->seq, t->rcv_nxt) && SEQ_LT(g->seq, t->rcv_nxt + rwnd);
    else
        ok = rwnd != 0 && ((SEQ_GEQ(g->seq, t->rcv_nxt) && SEQ_LT(g->seq, t->rcv_nxt + rwnd)) ||
                           (SEQ_GEQ(g->seq + seglen - 1, t->rcv_nxt) &&
                            SEQ_LT(g->seq + seglen - 1, t->rcv_nxt + rwnd)));
    if (!ok) {
        if (t->state == NET_TCP_TIME_WAIT && (fl & TH_FIN))
            t->t_2msl = s->now + s->cfg.time_wait_ms; /* peer lost our last ACK */
        if (!(fl & TH_RST))
            tcp_send(s, sk, t->snd_nxt, TH_ACK, 0, 0);
        s->st.tcp_drop_outwin++;
        return;
    }
    /* 2. RST: only an exact match resets (RFC 5961 3.2) */
    if (fl & TH_RST) {
        if (g->seq == t->rcv_nxt) {
            s->st.tcp_rst_rx++;
            int err = t->state == NET_TCP_SYN_RCVD     ? ECONNREFUSED
                      : t->state == NET_TCP_CLOSE_WAIT ? EPIPE
                                                       : ECONNRESET;
            tcp_abort(s, sk, t->state >= NET_TCP_CLOSING ? 0 : err, 0);
        } else {
            challenge_ack(s, sk);
        }
        return;
    }
    /* 3. SYN in a synchronized state: challenge ACK (RFC 5961 4.2) */
    if (fl & TH_SYN) {
        challenge_ack(s, sk);
        return;
    }
    if (!(fl & TH_ACK)) {
        s->st.tcp_drop_other++;
        return;
    }
    /* 4. ACK */
    if (t->state == NET_TCP_SYN_RCVD) {
        if (SEQ_LEQ(g->ack, t->snd_una) || SEQ_GT(g->ack, t->snd_max)) {
            struct seg r = *g;
            tcp_reset_reply(s, &r);
            return;
        }
        established(s, sk, g);
        if (sk->parent) {
            struct nsock *p = sk->parent;
            sk->aq_next = NULL;
            if (p->aq_tail)
                p->aq_tail->aq_next = sk;
            else
                p->aq_head = sk;
            p->aq_tail = sk;
        }
    }
    if (SEQ_GT(g->ack, t->snd_max)) { /* acks what we never sent */
        challenge_ack(s, sk);
        return;
    }
    int fin_acked = 0;
    if (SEQ_GT(g->ack, t->snd_una)) {
        fin_acked = ack_new(s, sk, g->ack);
    } else if (g->ack == t->snd_una && g->dlen == 0 && !(fl & TH_FIN) && g->wnd == t->snd_wnd &&
               g->wnd != 0 && t->snd_max != t->snd_una) {
        dup_ack(s, sk);
    }
    if (SEQ_LT(t->snd_wl1, g->seq) || (t->snd_wl1 == g->seq && SEQ_LEQ(t->snd_wl2, g->ack))) {
        if (t->snd_wnd == 0 && g->wnd)
            t->t_persist = 0;
        t->snd_wnd = g->wnd;
        t->snd_wl1 = g->seq;
        t->snd_wl2 = g->ack;
    }
    if (fin_acked || (t->fin_sent && t->snd_una == t->snd_max && t->sbuf_len == 0)) {
        switch (t->state) {
        case NET_TCP_FIN_WAIT_1:
            t->state = NET_TCP_FIN_WAIT_2;
            if (sk->flags & NS_ORPHAN)
                t->t_2msl = s->now + s->cfg.fin_wait2_ms;
            break;
        case NET_TCP_CLOSING: enter_time_wait(s, sk); break;
        case NET_TCP_LAST_ACK: tcp_set_closed(s, sk); return;
        default: break;
        }
    }
    /* 5. data */
    if (g->dlen) {
        if (t->state == NET_TCP_ESTABLISHED || t->state == NET_TCP_FIN_WAIT_1 ||
            t->state == NET_TCP_FIN_WAIT_2) {
            if (sk->flags & NS_ORPHAN) { /* nobody will read it */
                tcp_abort(s, sk, 0, 1);
                return;
            }
            recv_data(s, sk, g->seq, g->data, g->dlen);
        }
    }
    /* 6. FIN, only in order; one beyond a hole is remembered until the
     *    hole is filled. */
    int fin_now = 0;
    if ((fl & TH_FIN) && !t->rx_fin) {
        if (g->seq + g->dlen == t->rcv_nxt)
            fin_now = 1;
        else if (SEQ_GT(g->seq + g->dlen, t->rcv_nxt) &&
                 g->seq + g->dlen - t->rcv_nxt <= rcv_free(t)) {
            t->ooo_fin = 1;
            t->ooo_fin_seq = g->seq + g->dlen;
        }
    }
    if (!fin_now && t->ooo_fin && t->ooo_fin_seq == t->rcv_nxt && !t->rx_fin)
        fin_now = 1;
    if (fin_now) {
        t->ooo_fin = 0;
        switch (t->state) {
        case NET_TCP_ESTABLISHED: t->state = NET_TCP_CLOSE_WAIT; break;
        case NET_TCP_FIN_WAIT_1:
            if (t->fin_sent && t->snd_una == t->snd_max)
                enter_time_wait(s, sk);
            else
                t->state = NET_TCP_CLOSING;
            break;
        case NET_TCP_FIN_WAIT_2: enter_time_wait(s, sk); break;
        default: goto out;
        }
        t->rcv_nxt++;
        t->rx_fin = 1;
        t->ack_now = 1;
    }
out:
    tcp_output(s, sk);
}

static struct nsock *tcp_lookup(struct net_stack *s, const struct seg *g)
{
    struct nsock *listener = NULL;
    for (struct nsock *sk = s->socks; sk; sk = sk->next) {
        if (sk->type != SOCK_STREAM || sk->lport != g->dport)
            continue;
        if (sk->tcp.state == NET_TCP_LISTEN) {
            if (!sk->lip || sk->lip == g->dst)
                listener = sk;
            continue;
        }
        if (sk->tcp.state != NET_TCP_CLOSED && sk->rip == g->src && sk->rport == g->sport &&
            sk->lip == g->dst)
            return sk;
    }
    return listener;
}

/* The TCP parser: header length, checksum, flag sanity, options. */
void tcp_input(struct net_stack *s, uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
{
    s->st.tcp_rx++;
    if (len < TCP_HLEN) {
        s->st.tcp_drop_short++;
        return;
    }
    size_t doff = (size_t)(p[12] >> 4) * 4;
    if (doff < TCP_HLEN || doff > len || len > 65535) {
        s->st.tcp_drop_short++;
        return;
    }
    if (net_csum_fold(net_csum_add(net_pseudo_sum(src, dst, PROTO_TCP, (uint16_t)len), p, len)) !=
        0) {
        s->st.tcp_drop_csum++;
        return;
    }
    struct seg g;
    memset(&g, 0, sizeof g);
    g.flags = p[13] & 0x3f;
    if (((g.flags & TH_SYN) && (g.flags & (TH_FIN | TH_RST))) ||
        !(g.flags & (TH_SYN | TH_ACK | TH_RST))) {
        s->st.tcp_drop_flags++;
        return;
    }
    g.src = src;
    g.dst = dst;
    g.sport = rd16(p);
    g.dport = rd16(p + 2);
    g.seq = rd32(p + 4);
    g.ack = rd32(p + 8);
    g.wnd = rd16(p + 14);
    g.data = p + doff;
    g.dlen = (uint32_t)(len - doff);
    if (g.sport == 0 || g.dport == 0) {
        s->st.tcp_drop_other++;
        return;
    }
    if (g.flags & TH_SYN) { /* options: only MSS matters */
        size_t i = TCP_HLEN;
        while (i < doff) {
            uint8_t kind = p[i];
            if (kind == 0)
                break;
            if (kind == 1) {
                i++;
                continue;
            }
            if (i + 1 >= doff || p[i + 1] < 2 || i + p[i + 1] > doff)
                break; /* malformed: ignore the rest */
            if (kind == 2 && p[i + 1] == 4)
                g.mss = rd16(p + i + 2);
            i += p[i + 1];
        }
    }
    struct nsock *sk = tcp_lookup(s, &g);
    if (!sk) {
        s->st.tcp_drop_noport++;
        tcp_reset_reply(s, &g);
        return;
    }
    switch (sk->tcp.state) {
    case NET_TCP_LISTEN: listen_input(s, sk, &g); break;
    case NET_TCP_SYN_SENT: syn_sent_input(s, sk, &g); break;
    default: sync_input(s, sk, &g); break;
    }
}

/* ---- timers ---- */

static void rexmit_timeout(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    t->t_rexmit = 0;
    s->st.tcp_rto_fired++;
    t->rtt_active = 0; /* Karn: no sample across a retransmit */
    if (t->state == NET_TCP_SYN_SENT || t->state == NET_TCP_SYN_RCVD) {
        if (++t->rexmits > s->cfg.syn_retries) {
            s->st.tcp_conn_timeout++;
            tcp_abort(s, sk, ETIMEDOUT, 0);
            return;
        }
        t->rto = NET_MIN(t->rto * 2, s->cfg.rto_max_ms);
        s->st.tcp_retransmit_segs++;
        tcp_send(s, sk, t->iss, t->state == NET_TCP_SYN_SENT ? TH_SYN : TH_SYN | TH_ACK, 0, 0);
        t->t_rexmit = s->now + t->rto;
        return;
    }
    if (t->snd_una == t->snd_max)
        return;
    if (t->snd_wnd == 0) { /* peer's window is shut: probe instead */
        t->t_persist = s->now + t->rto;
        return;
    }
    if (++t->rexmits > s->cfg.data_retries) {
        s->st.tcp_conn_timeout++;
        tcp_abort(s, sk, ETIMEDOUT, 1);
        return;
    }
    uint32_t flight = t->snd_max - t->snd_una;
    t->ssthresh = NET_MAX(flight / 2, 2u * t->mss);
    t->cwnd = t->mss;
    t->in_recovery = 0;
    t->dupacks = 0;
    t->recover = t->snd_max;
    t->rto = NET_MIN(t->rto * 2, s->cfg.rto_max_ms);
    t->snd_nxt = t->snd_una; /* go back */
    tcp_output(s, sk);
}

static void persist_timeout(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    t->t_persist = 0;
    if (t->snd_wnd != 0 || t->sbuf_len == 0 || t->state < NET_TCP_ESTABLISHED)
        return;
    s->st.tcp_persist_probe++;
    tcp_send(s, sk, t->snd_una, TH_ACK, 0, 1); /* one byte past the closed window */
    if (SEQ_LT(t->snd_nxt, t->snd_una + 1))
        t->snd_nxt = t->snd_una + 1;
    if (SEQ_GT(t->snd_nxt, t->snd_max))
        t->snd_max = t->snd_nxt;
    if (t->persist_backoff < 10)
        t->persist_backoff++;
    uint64_t iv = (uint64_t)t->rto << t->persist_backoff;
    t->t_persist = s->now + NET_MIN(iv, (uint64_t)s->cfg.rto_max_ms);
}

void tcp_timers(struct net_stack *s)
{
    uint64_t now = s->now;
    for (struct nsock *sk = s->socks; sk; sk = sk->next) {
        if (sk->type != SOCK_STREAM)
            continue;
        struct tcp_cb *t = &sk->tcp;
        if (t->t_delack && now >= t->t_delack) {
            s->st.tcp_delack_tx++;
            tcp_send(s, sk, t->snd_nxt, TH_ACK, 0, 0);
        }
        if (t->t_2msl && now >= t->t_2msl) {
            t->t_2msl = 0;
            if (t->state == NET_TCP_TIME_WAIT || t->state == NET_TCP_FIN_WAIT_2)
                tcp_set_closed(s, sk);
        }
        if (t->t_rexmit && now >= t->t_rexmit)
            rexmit_timeout(s, sk);
        if (t->t_persist && now >= t->t_persist)
            persist_timeout(s, sk);
    }
}

uint64_t tcp_next_deadline(const struct net_stack *s)
{
    uint64_t d = UINT64_MAX;
    for (const struct nsock *sk = s->socks; sk; sk = sk->next) {
        const struct tcp_cb *t = &sk->tcp;
        if (sk->type != SOCK_STREAM)
            continue;
        if (t->t_delack && t->t_delack < d)
            d = t->t_delack;
        if (t->t_2msl && t->t_2msl < d)
            d = t->t_2msl;
        if (t->t_rexmit && t->t_rexmit < d)
            d = t->t_rexmit;
        if (t->t_persist && t->t_persist < d)
            d = t->t_persist;
    }
    return d;
}

/* ---- calls from the socket layer ---- */

void tcp_usr_close(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    sk->flags |= NS_ORPHAN;
    sk->fd = -1;
    switch (t->state) {
    case NET_TCP_LISTEN:
        for (struct nsock *c = s->socks; c; c = c->next)
            if (c->parent == sk)
                tcp_abort(s, c, 0, 1);
        tcp_set_closed(s, sk);
        break;
    case NET_TCP_SYN_SENT:
    case NET_TCP_SYN_RCVD: tcp_abort(s, sk, 0, t->state == NET_TCP_SYN_RCVD); break;
    case NET_TCP_ESTABLISHED:
    case NET_TCP_CLOSE_WAIT:
        if (t->rbuf_len > 0) { /* unread data: reset (RFC 2525 2.17) */
            tcp_abort(s, sk, 0, 1);
            break;
        }
        t->fin_pending = 1;
        t->state = t->state == NET_TCP_ESTABLISHED ? NET_TCP_FIN_WAIT_1 : NET_TCP_LAST_ACK;
        tcp_output(s, sk);
        break;
    case NET_TCP_FIN_WAIT_2: t->t_2msl = s->now + s->cfg.fin_wait2_ms; break;
    case NET_TCP_TIME_WAIT: tcp_free_bufs(t); break;
    case NET_TCP_CLOSED: tcp_free_bufs(t); break;
    default: break;
    }
}

void tcp_usr_shutdown_wr(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    if (t->state == NET_TCP_ESTABLISHED)
        t->state = NET_TCP_FIN_WAIT_1;
    else if (t->state == NET_TCP_CLOSE_WAIT)
        t->state = NET_TCP_LAST_ACK;
    else
        return;
    t->fin_pending = 1;
    tcp_output(s, sk);
}

void tcp_usr_read(struct net_stack *s, struct nsock *sk)
{
    struct tcp_cb *t = &sk->tcp;
    if (t->state != NET_TCP_ESTABLISHED && t->state != NET_TCP_FIN_WAIT_1 &&
        t->state != NET_TCP_FIN_WAIT_2)
        return;
    uint32_t edge = t->rcv_nxt + rcv_free(t);
    uint32_t step = NET_MIN(t->rbuf_size / 2, 2u * t->mss);
    if (SEQ_GT(edge, t->rcv_adv) && edge - t->rcv_adv >= step)
        tcp_send(s, sk, t->snd_nxt, TH_ACK, 0, 0); /* window update */
}

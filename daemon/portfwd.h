/* portfwd.h - published ports: host TCP or UDP port -> instance address:port.
 *
 * A user-space proxy, like docker-proxy: shoald listens on the host port
 * and relays to the guest. It works for every client on the host (loopback
 * included), needs no firewall rules, and the guest sees the bridge address
 * as its peer.
 *
 * One thread runs every forward with epoll. Adding and removing forwards is
 * safe from any thread.
 *
 * TCP: for each accepted connection the proxy connects to the guest and
 * copies bytes both ways. Connections are non-blocking with a fixed buffer
 * of PFWD_BUF bytes per direction (backpressure: a full buffer stops
 * reading from the other side). Cost: two descriptors and ~200 bytes per
 * open connection, plus PFWD_BUF per direction only while bytes wait in it
 * (allocated on the first read, freed when drained).
 *
 * UDP: one socket bound to the host port receives every client's datagrams.
 * Each client address (IP and port) gets a "flow": its own socket connected
 * to the guest address:port, so the guest sees one peer per client and its
 * replies can be told apart. A reply from the guest on a flow is sent back to
 * that flow's client from the host port (from the host address the client
 * wrote to, also when listening on 0.0.0.0). Datagrams are relayed one by
 * one and whole (up to PFWD_UDP_MAX_DGRAM bytes of payload), never merged or
 * split; like the network, the proxy drops a datagram when the socket it
 * must go out of has no buffer space, and ICMP errors from the guest are not
 * passed on.
 *   Bounds: a flow ends after PFWD_UDP_IDLE_MS without a datagram in either
 * direction (checked at least every second); a forward holds at most
 * PFWD_UDP_MAX_FLOWS flows, and a datagram from a new client when it is full
 * ends the least recently active flow first (its late replies are dropped).
 * So a flood of source addresses costs at most PFWD_UDP_MAX_FLOWS
 * descriptors per UDP forward, never the daemon's descriptor table.
 *   Cost: one descriptor and about 100 bytes per flow; per datagram one
 * receive, one hash lookup and one send, copying through a single 64 KiB
 * buffer owned by the thread.
 *
 * Errors: -1 with a message naming the port in err.
 */
#ifndef SHOAL_PORTFWD_H
#define SHOAL_PORTFWD_H

#include <stddef.h>
#include <stdint.h>

#define PFWD_BUF 65536 /* TCP: bytes buffered per direction per connection */

/* TCP limits (issue 16: ~28,000 connections to one published port used up
 * shoald's 20,000 descriptors, new guests failed to start, and ~19,000
 * sockets stayed in CLOSE-WAIT and SYN-SENT after the clients left).
 *   - at most PFWD_PORT_MAX_CONNS connections per forward and max_conns in
 *     all (default a third of RLIMIT_NOFILE, halved: two descriptors each);
 *   - a connection is also refused when its descriptor would sit in the
 *     top quarter of RLIMIT_NOFILE (at least PFWD_FD_RESERVE_MIN
 *     descriptors), so the API, libvirt and QEMU starts always find some;
 *   - refused means accepted and reset at once (SO_LINGER 0), also when
 *     the process is out of descriptors (a spare one is given up for it),
 *     so clients learn at once and the listen queue never clogs;
 *   - the guest has PFWD_CONNECT_MS to accept, else both are closed;
 *   - when one side ends its stream (EOF), the other side's write half is
 *     shut down after what was buffered for it is written; when both have
 *     ended, or either socket reports an error or hangs up, both are
 *     closed; and once one side has ended, the connection is closed after
 *     PFWD_LINGER_MS without a byte moving either way.
 * Timeouts are checked every 100 ms at most. */
#define PFWD_PORT_MAX_CONNS 1024
#define PFWD_CONNECT_MS     5000
#define PFWD_LINGER_MS      10000
#define PFWD_FD_RESERVE_MIN 256

/* Scale to zero (issue 15, docs/shoald.md "Scale to zero"). An owner given
 * an idle time (pfwd_set_idle) is put to sleep by the proxy once none of
 * its forwards has had an open TCP connection for that long: from then on
 * its connections are accepted and HELD (no guest socket; what the client
 * sends is read into the connection's buffer, up to PFWD_BUF) and the
 * owner is "asleep"; the proxy tells the caller (PFWD_NOTE_IDLE), which
 * stops the guest, or calls pfwd_resume when it will not. The first held
 * connection (or UDP datagram: dropped) of an asleep owner makes it
 * "waking" and is told once (PFWD_NOTE_WAKE); the caller starts the guest
 * and calls pfwd_resume once it is ready. Then every held connection tries
 * the guest: a try that is refused or unanswered for PFWD_WAKE_TRY_MS is
 * made again PFWD_WAKE_RETRY_MS later, until the guest accepts (the bytes
 * read meanwhile go first) or the connection has waited wake_ms
 * (PFWD_WAKE_MS, pfwd_set_wake_ms) since it was accepted. Then it is
 * closed cleanly: what the client sent is read first, so the close is a
 * FIN, never a reset; and the caller is told (PFWD_NOTE_WAKE_TIMEOUT). A
 * held connection of an owner removed meanwhile (pfwd_remove: its wake
 * failed) is closed the same way. No connection is refused or reset
 * because its owner sleeps. Timers are checked every SLEEP_TICK_MS (50 ms)
 * while an owner has an idle time, every PFWD_WAKE_RETRY_MS while
 * connections are held. Cost: ~130 bytes per owner; a held connection is
 * an ordinary one without its guest socket. */
#define PFWD_WAKE_MS       30000 /* a held connection waits at most this long */
#define PFWD_WAKE_TRY_MS   200   /* one try to reach a waking guest */
#define PFWD_WAKE_RETRY_MS 5     /* pause before the next try */

#define PFWD_UDP_IDLE_MS   60000 /* UDP: a flow idle this long is closed */
#define PFWD_UDP_MAX_FLOWS 256   /* UDP: flows (descriptors) per forward */
#define PFWD_UDP_MAX_DGRAM 65507 /* UDP: largest payload relayed (IPv4 limit) */

typedef enum { PFWD_TCP = 0, PFWD_UDP = 1 } pfwd_proto;

typedef struct pfwd pfwd;

/* "tcp" or "udp". */
const char *pfwd_proto_name(pfwd_proto proto);

/* Start the proxy thread. bind_addr is the host address listeners bind to
 * (dotted quad, e.g. "0.0.0.0"). */
int pfwd_start(const char *bind_addr, pfwd **out, char *err, size_t errlen);
/* Close every listener, connection and flow and stop the thread. NULL ok. */
void pfwd_stop(pfwd *p);

/* UDP limits for forwards added after this call (defaults PFWD_UDP_IDLE_MS,
 * PFWD_UDP_MAX_FLOWS); values below 1 keep the current one. For tests and
 * configuration. */
void pfwd_set_udp_limits(pfwd *p, int idle_ms, int max_flows);

/* Can host_port be bound for proto right now? 0 yes, -1 with the reason.
 * TCP and UDP ports are separate: tcp 8080 and udp 8080 are two ports. */
int pfwd_probe(pfwd *p, pfwd_proto proto, int host_port, char *err, size_t errlen);

/* Listen on host_port (proto) and forward to guest_ip:guest_port (host
 * order). owner groups forwards (the instance id). */
int pfwd_add(pfwd *p, const char *owner, pfwd_proto proto, int host_port, uint32_t guest_ip,
             int guest_port, char *err, size_t errlen);
/* Remove every forward of owner and close their connections and flows; the
 * ports can be bound again when this returns. */
void pfwd_remove(pfwd *p, const char *owner);
/* Switch every forward of owner (but those that scale to zero) to
 * guest_ip and hand it to new_owner, atomically for new connections: each
 * connection accepted after this goes to guest_ip, those open go on with
 * the old address until they end. The listeners stay open. Returns how
 * many forwards changed (0: owner has none). Live moves (core/move.c). */
int pfwd_retarget(pfwd *p, const char *owner, const char *new_owner, uint32_t guest_ip);
/* Number of listeners, TCP and UDP (for tests and metrics). */
size_t pfwd_count(pfwd *p);
/* Number of open UDP flows over all forwards (for tests and metrics). */
size_t pfwd_flow_count(pfwd *p);

/* TCP limits (see above); values below 1 keep the current one. Apply to
 * the next accepted connection (and the next timeout check). */
void pfwd_set_tcp_limits(pfwd *p, int max_conns, int port_max_conns, int connect_ms, int linger_ms);

struct pfwd_tcp_stats {
    size_t conns;   /* open TCP connections, all forwards */
    size_t refused; /* connections refused at a limit since start */
    int max_conns;  /* current limits */
    int port_max_conns;
    int fd_ceiling; /* descriptors at or above this are never used */
};
void pfwd_tcp_stats(pfwd *p, struct pfwd_tcp_stats *st);

/* ---- scale to zero (see above) ---- */

typedef enum {
    PFWD_NOTE_IDLE = 0,     /* idle time passed: the owner is asleep, connections held */
    PFWD_NOTE_WAKE,         /* a connection came for an asleep owner: start it */
    PFWD_NOTE_WAKE_TIMEOUT, /* held connections waited wake_ms and were closed */
} pfwd_note_kind;
/* Called on the proxy thread with no proxy lock held; detail says why
 * ("connection to port 8080/tcp"). Must not block: queue work. */
typedef void (*pfwd_note_fn)(void *user, const char *owner, pfwd_note_kind kind,
                             const char *detail);
void pfwd_set_notify(pfwd *p, pfwd_note_fn fn, void *user);
/* How long a held connection waits (default PFWD_WAKE_MS); < 1 keeps it. */
void pfwd_set_wake_ms(pfwd *p, int wake_ms);
/* Give owner's forwards (added before) an idle time in ms (0: never
 * sleeps); the owner starts awake and its quiet time starts now. -1 when
 * owner has no forwards. */
int pfwd_set_idle(pfwd *p, const char *owner, int idle_ms);
/* Asleep now (a shoald restarted with the instance idle): connections are
 * held. -1 when owner has no idle time. */
int pfwd_sleep(pfwd *p, const char *owner);
/* Awake: connections pass through, held ones try the guest now, the quiet
 * time starts again. -1 when owner has no idle time (a no-op). */
int pfwd_resume(pfwd *p, const char *owner);
/* Live forwards of owner (0 for a NULL p). */
int pfwd_owned(pfwd *p, const char *owner);
/* Is owner asleep or waking, and how many connections does it hold (as of
 * the thread's last tick)? -1 when it has no idle time. */
int pfwd_sleep_info(pfwd *p, const char *owner, int *asleep, int *held);

#endif

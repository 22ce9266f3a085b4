/* portfwd.h - published ports: host TCP port -> instance address:port.
 *
 * A user-space proxy, like docker-proxy: shoald listens on the host port
 * and, for each connection, connects to the guest and copies bytes both
 * ways. It works for every client on the host (loopback included), needs no
 * firewall rules, and the guest sees the bridge address as its peer.
 *
 * One thread runs every forward with epoll; connections are non-blocking
 * with a fixed buffer per direction (backpressure: a full buffer stops
 * reading from the other side). Adding and removing forwards is safe from
 * any thread.
 *
 * Errors: -1 with a message naming the port in err.
 */
#ifndef SHOAL_PORTFWD_H
#define SHOAL_PORTFWD_H

#include <stddef.h>
#include <stdint.h>

#define PFWD_BUF 65536        /* bytes buffered per direction per connection */

typedef struct pfwd pfwd;

/* Start the proxy thread. bind_addr is the host address listeners bind to
 * (dotted quad, e.g. "0.0.0.0"). */
int pfwd_start(const char *bind_addr, pfwd **out, char *err, size_t errlen);
/* Close every listener and connection and stop the thread. NULL ok. */
void pfwd_stop(pfwd *p);

/* Can host_port be bound right now? 0 yes, -1 with the reason. */
int pfwd_probe(pfwd *p, int host_port, char *err, size_t errlen);

/* Listen on host_port and forward to guest_ip:guest_port (host order).
 * owner groups forwards (the instance id). */
int pfwd_add(pfwd *p, const char *owner, int host_port, uint32_t guest_ip, int guest_port,
             char *err, size_t errlen);
/* Remove every forward of owner and close their connections. */
void pfwd_remove(pfwd *p, const char *owner);
/* Number of listeners (for tests and metrics). */
size_t pfwd_count(pfwd *p);

#endif

/*
 * net_socket.h - BSD-style sockets over one stack, with the stack explicit.
 *
 * These are the POSIX calls with a struct net_stack * in front and the
 * error as the return value: >= 0 on success, -errno on failure (EAGAIN,
 * ECONNREFUSED, ...), never touching errno. include/sys/socket.h maps the
 * POSIX names onto these for the guest (net_posix.c); the host tests call
 * these directly, so two stacks can live in one process.
 *
 * Types and constants are the POSIX ones: on the host they come from the
 * C library headers, in the guest from guest-kernel/net/include/, which use
 * the same (Linux) values. Descriptors start at NET_FD_BASE so that they
 * never collide with stdin/stdout/stderr.
 *
 * Blocking: a socket is blocking unless SOCK_NONBLOCK / O_NONBLOCK /
 * MSG_DONTWAIT says otherwise. A blocking call loops over nif->poll,
 * net_poll and net_port_idle until it can complete (no timeout except
 * poll's). Non-blocking calls return -EAGAIN (connect: -EINPROGRESS).
 */
#ifndef SHOAL_NET_SOCKET_H
#define SHOAL_NET_SOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>

#include "net.h"

#define NET_FD_BASE 3

int nsock_socket(struct net_stack *s, int domain, int type, int protocol);
int nsock_bind(struct net_stack *s, int fd, const struct sockaddr *sa, socklen_t len);
int nsock_listen(struct net_stack *s, int fd, int backlog);
int nsock_accept(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len);
int nsock_connect(struct net_stack *s, int fd, const struct sockaddr *sa, socklen_t len);
ssize_t nsock_send(struct net_stack *s, int fd, const void *buf, size_t n, int flags);
ssize_t nsock_recv(struct net_stack *s, int fd, void *buf, size_t n, int flags);
ssize_t nsock_sendto(struct net_stack *s, int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *sa, socklen_t len);
ssize_t nsock_recvfrom(struct net_stack *s, int fd, void *buf, size_t n, int flags,
                       struct sockaddr *sa, socklen_t *len);
int nsock_shutdown(struct net_stack *s, int fd, int how);
/* Always releases the descriptor. A TCP connection lives on (orphaned)
 * until its FIN exchange and TIME_WAIT finish; unread received data makes
 * close send a RST instead, like Linux. */
int nsock_close(struct net_stack *s, int fd);
/* SOL_SOCKET: SO_REUSEADDR, SO_RCVBUF, SO_SNDBUF (before connect/listen);
 * IPPROTO_TCP: TCP_NODELAY. Others: -ENOPROTOOPT. */
int nsock_setsockopt(struct net_stack *s, int fd, int level, int name, const void *val,
                     socklen_t len);
/* SO_ERROR (read and cleared), SO_TYPE, SO_REUSEADDR, TCP_NODELAY. */
int nsock_getsockopt(struct net_stack *s, int fd, int level, int name, void *val, socklen_t *len);
int nsock_getsockname(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len);
int nsock_getpeername(struct net_stack *s, int fd, struct sockaddr *sa, socklen_t *len);
/* O_NONBLOCK only. */
int nsock_set_nonblock(struct net_stack *s, int fd, int on);
int nsock_get_nonblock(struct net_stack *s, int fd);
/* POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL (fd not a socket). timeout
 * in ms, -1 = forever, 0 = just look. Returns the number of ready fds. */
int nsock_poll(struct net_stack *s, struct pollfd *fds, size_t nfds, int timeout_ms);

/* The POSIX layer (net_posix.c, guest only: it defines socket(), read(),
 * close(), poll() ... which would clash with the host libc). All those
 * calls use the stack set here; before it is set they fail with ENETDOWN.
 * net_fd_write is write() for socket descriptors, for the libc's write()
 * to forward descriptors >= NET_FD_BASE to. */
void net_set_default(struct net_stack *s);
struct net_stack *net_get_default(void);
ssize_t net_fd_write(int fd, const void *buf, size_t n);

/* TCP states, numbered as in RFC 793's diagram. */
enum net_tcp_state {
    NET_TCP_CLOSED,
    NET_TCP_LISTEN,
    NET_TCP_SYN_SENT,
    NET_TCP_SYN_RCVD,
    NET_TCP_ESTABLISHED,
    NET_TCP_FIN_WAIT_1,
    NET_TCP_FIN_WAIT_2,
    NET_TCP_CLOSE_WAIT,
    NET_TCP_CLOSING,
    NET_TCP_LAST_ACK,
    NET_TCP_TIME_WAIT,
    NET_TCP_NSTATES
};
const char *net_tcp_state_name(int state);
/* State of the connection behind fd, or -EBADF / -ENOTSOCK (UDP). */
int nsock_tcp_state(struct net_stack *s, int fd);
/* Number of TCP connections (with or without a descriptor) in state. */
unsigned net_tcp_count(const struct net_stack *s, int state);
/* Sockets of any kind still allocated (open fds + orphans + embryos). */
unsigned net_sock_count(const struct net_stack *s);

#endif

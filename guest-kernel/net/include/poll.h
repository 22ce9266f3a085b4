/* poll.h - shoal guest: poll() over sockets (Linux values). */
#ifndef SHOAL_NET_POLL_H
#define SHOAL_NET_POLL_H

typedef unsigned long nfds_t;

struct pollfd {
    int fd;        /* negative: ignored */
    short events;  /* requested */
    short revents; /* returned */
};

#define POLLIN     0x001
#define POLLPRI    0x002
#define POLLOUT    0x004
#define POLLERR    0x008
#define POLLHUP    0x010
#define POLLNVAL   0x020
#define POLLRDNORM POLLIN
#define POLLWRNORM POLLOUT

/* timeout in ms, -1 forever. Sockets only; other fds report POLLNVAL. */
int poll(struct pollfd *fds, nfds_t nfds, int timeout);

#endif

/*
 * unistd.h - shoal guest: the libc's unistd.h plus read() and close() on
 * sockets (net/net_posix.c). write() stays the libc's (console fds 1, 2);
 * use send() on sockets, or have the libc forward fds >= NET_FD_BASE to
 * net_fd_write() (see docs/guest-net.md).
 */
#ifndef SHOAL_NET_UNISTD_H
#define SHOAL_NET_UNISTD_H

#include_next <unistd.h>

#ifndef STDIN_FILENO
#define STDIN_FILENO 0
#endif

ssize_t read(int fd, void *buf, size_t n);
int     close(int fd);

#endif

/*
 * unistd.h - shoal guest: the libc's unistd.h plus read() and close() on
 * sockets (net/net_posix.c). write() is the libc's, which hands fds >=
 * NET_FD_BASE to net_fd_write() in images linked with the network.
 */
#ifndef SHOAL_NET_UNISTD_H
#define SHOAL_NET_UNISTD_H

#include_next <unistd.h>

#ifndef STDIN_FILENO
#define STDIN_FILENO 0
#endif

ssize_t read(int fd, void *buf, size_t n);
int close(int fd);

#endif

/* fcntl.h - shoal guest: just enough fcntl for non-blocking sockets. */
#ifndef SHOAL_NET_FCNTL_H
#define SHOAL_NET_FCNTL_H

#define O_RDONLY   0
#define O_WRONLY   1
#define O_RDWR     2
#define O_NONBLOCK 04000

#define F_GETFD    1
#define F_SETFD    2
#define F_GETFL    3
#define F_SETFL    4
#define FD_CLOEXEC 1

/* F_GETFL / F_SETFL (O_NONBLOCK) on sockets; F_GETFD/F_SETFD are no-ops. */
int fcntl(int fd, int cmd, ...);

#endif

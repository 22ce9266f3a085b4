/*
 * net_posix.c - the POSIX socket calls of include/sys/socket.h, poll.h,
 * fcntl.h, unistd.h (read, close) and arpa/inet.h for guest apps. Each is a
 * thin wrapper: the nsock_ call on the default stack, -errno turned into
 * -1 + errno. Guest only (on the host these names belong to the libc).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "net_socket.h"

static struct net_stack *net_default;

void net_set_default(struct net_stack *s)
{
    net_default = s;
}
struct net_stack *net_get_default(void)
{
    return net_default;
}

static long ret(long rc)
{
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

#define STACK_OR_FAIL()                                                                            \
    do {                                                                                           \
        if (!net_default) {                                                                        \
            errno = ENETDOWN;                                                                      \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int socket(int domain, int type, int protocol)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_socket(net_default, domain, type, protocol));
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_bind(net_default, fd, addr, len));
}

int listen(int fd, int backlog)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_listen(net_default, fd, backlog));
}

int accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict len, int flags)
{
    STACK_OR_FAIL();
    int rc = nsock_accept(net_default, fd, addr, len);
    if (rc >= 0 && (flags & SOCK_NONBLOCK))
        nsock_set_nonblock(net_default, rc, 1);
    return (int)ret(rc);
}

int accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
    return accept4(fd, addr, len, 0);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_connect(net_default, fd, addr, len));
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    STACK_OR_FAIL();
    return ret(nsock_send(net_default, fd, buf, n, flags));
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    STACK_OR_FAIL();
    return ret(nsock_recv(net_default, fd, buf, n, flags));
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
               socklen_t len)
{
    STACK_OR_FAIL();
    return ret(nsock_sendto(net_default, fd, buf, n, flags, addr, len));
}

ssize_t recvfrom(int fd, void *restrict buf, size_t n, int flags, struct sockaddr *restrict addr,
                 socklen_t *restrict len)
{
    STACK_OR_FAIL();
    return ret(nsock_recvfrom(net_default, fd, buf, n, flags, addr, len));
}

int shutdown(int fd, int how)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_shutdown(net_default, fd, how));
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_setsockopt(net_default, fd, level, name, val, len));
}

int getsockopt(int fd, int level, int name, void *restrict val, socklen_t *restrict len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_getsockopt(net_default, fd, level, name, val, len));
}

int getsockname(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_getsockname(net_default, fd, addr, len));
}

int getpeername(int fd, struct sockaddr *restrict addr, socklen_t *restrict len)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_getpeername(net_default, fd, addr, len));
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    STACK_OR_FAIL();
    return (int)ret(nsock_poll(net_default, fds, (size_t)nfds, timeout));
}

int fcntl(int fd, int cmd, ...)
{
    STACK_OR_FAIL();
    int rc;
    switch (cmd) {
    case F_GETFL:
        rc = nsock_get_nonblock(net_default, fd);
        return (int)ret(rc < 0 ? rc : O_RDWR | (rc ? O_NONBLOCK : 0));
    case F_SETFL: {
        va_list ap;
        va_start(ap, cmd);
        int fl = va_arg(ap, int);
        va_end(ap);
        return (int)ret(nsock_set_nonblock(net_default, fd, (fl & O_NONBLOCK) != 0));
    }
    case F_GETFD:
    case F_SETFD: return (int)ret(nsock_get_nonblock(net_default, fd) < 0 ? -EBADF : 0);
    default: errno = EINVAL; return -1;
    }
}

ssize_t read(int fd, void *buf, size_t n)
{
    STACK_OR_FAIL();
    return ret(nsock_recv(net_default, fd, buf, n, 0));
}

ssize_t net_fd_write(int fd, const void *buf, size_t n)
{
    STACK_OR_FAIL();
    return ret(nsock_send(net_default, fd, buf, n, 0));
}

int close(int fd)
{
    if (fd >= 0 && fd < NET_FD_BASE)
        return 0; /* console descriptors: nothing to do */
    STACK_OR_FAIL();
    return (int)ret(nsock_close(net_default, fd));
}

/* ---- arpa/inet.h ---- */

int inet_aton(const char *cp, struct in_addr *inp)
{
    uint32_t ip;
    if (!cp || net_parse_ipv4(cp, &ip) != 0)
        return 0;
    if (inp)
        inp->s_addr = htonl(ip);
    return 1;
}

in_addr_t inet_addr(const char *cp)
{
    struct in_addr a;
    return inet_aton(cp, &a) ? a.s_addr : INADDR_NONE;
}

int inet_pton(int af, const char *restrict src, void *restrict dst)
{
    if (af != AF_INET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    struct in_addr a;
    if (!inet_aton(src, &a))
        return 0;
    memcpy(dst, &a, sizeof a);
    return 1;
}

const char *inet_ntop(int af, const void *restrict src, char *restrict dst, socklen_t size)
{
    if (af != AF_INET) {
        errno = EAFNOSUPPORT;
        return NULL;
    }
    const uint8_t *b = src;
    char tmp[INET_ADDRSTRLEN];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (i)
            tmp[n++] = '.';
        if (v >= 100)
            tmp[n++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[n++] = (char)('0' + v / 10 % 10);
        tmp[n++] = (char)('0' + v % 10);
    }
    tmp[n++] = '\0';
    if (n > size) {
        errno = ENOSPC;
        return NULL;
    }
    memcpy(dst, tmp, n);
    return dst;
}

char *inet_ntoa(struct in_addr in)
{
    static char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in, buf, sizeof buf);
    return buf;
}

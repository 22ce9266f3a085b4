/* sdnotify.c - the sd_notify datagram protocol (sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un sdn_addr; /* sun_family 0: no manager */
static socklen_t sdn_addrlen;

void sdn_init(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    size_t n = s ? strlen(s) : 0;

    /* A path ("/run/systemd/notify") or an abstract name ("@..."); anything
     * else, or a name too long for sun_path, means no manager. */
    if (n >= 2 && n < sizeof sdn_addr.sun_path && (s[0] == '/' || s[0] == '@')) {
        memset(&sdn_addr, 0, sizeof sdn_addr);
        sdn_addr.sun_family = AF_UNIX;
        memcpy(sdn_addr.sun_path, s, n);
        if (s[0] == '@')
            sdn_addr.sun_path[0] = '\0';
        /* abstract names are not NUL-terminated: the length says where
         * they end */
        sdn_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '/'));
    }
    unsetenv("NOTIFY_SOCKET");
}

int sdn_notify(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int fd, n, rc = -1;

    if (sdn_addr.sun_family != AF_UNIX)
        return 0;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1; /* a STATUS= cut short still says something */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (const struct sockaddr *)&sdn_addr, sdn_addrlen) ==
        n)
        rc = 1;
    close(fd);
    return rc;
}

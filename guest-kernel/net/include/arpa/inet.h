/* arpa/inet.h - shoal guest: IPv4 address text conversions (AF_INET only). */
#ifndef SHOAL_NET_ARPA_INET_H
#define SHOAL_NET_ARPA_INET_H

#include <netinet/in.h>

in_addr_t inet_addr(const char *cp);                /* INADDR_NONE on error */
int inet_aton(const char *cp, struct in_addr *inp); /* 1 ok, 0 bad */
char *inet_ntoa(struct in_addr in);                 /* static buffer */
int inet_pton(int af, const char *restrict src, void *restrict dst);
const char *inet_ntop(int af, const void *restrict src, char *restrict dst, socklen_t size);

#endif

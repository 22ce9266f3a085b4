/* netinet/tcp.h - shoal guest: TCP socket options. */
#ifndef SHOAL_NET_NETINET_TCP_H
#define SHOAL_NET_NETINET_TCP_H

#define TCP_NODELAY 1 /* disable Nagle's algorithm */

#endif

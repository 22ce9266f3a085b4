/* sys/types.h - shoal guest libc subset. */
#ifndef SHOAL_LIBC_SYS_TYPES_H
#define SHOAL_LIBC_SYS_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef long ssize_t;
typedef unsigned int useconds_t;
typedef long off_t;

#endif

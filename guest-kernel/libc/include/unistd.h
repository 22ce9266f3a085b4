/* unistd.h - shoal guest libc subset. Sleeps halt the CPU on the local
 * APIC timer; they are never interrupted early. */
#ifndef SHOAL_LIBC_UNISTD_H
#define SHOAL_LIBC_UNISTD_H

#include <sys/types.h>

#define STDOUT_FILENO 1
#define STDERR_FILENO 2

unsigned sleep(unsigned seconds);                 /* returns 0 */
int usleep(useconds_t usec);                      /* returns 0 */
ssize_t write(int fd, const void *buf, size_t n); /* fd 1 and 2 only */
void _exit(int status) __attribute__((noreturn));

extern char **environ;

#endif

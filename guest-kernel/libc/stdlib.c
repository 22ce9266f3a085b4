/*
 * stdlib.c - allocation, exit, environment and number parsing for apps.
 */
#include <stdlib.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sys.h"

int errno;
char **environ; /* set by kern_main from the command line */

/* --- memory ------------------------------------------------------------ */

void *malloc(size_t n)
{
    void *p = sys_alloc(n);
    if (!p)
        errno = ENOMEM;
    return p;
}

void *calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(nmemb * size);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    size_t have = sys_block_size(p);
    if (n <= have)
        return p;
    void *q = malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, have);
    sys_free(p);
    return q;
}

void free(void *p)
{
    sys_free(p);
}

/* --- exit -------------------------------------------------------------- */

#define ATEXIT_MAX 32
static void (*atexit_fns[ATEXIT_MAX])(void);
static int atexit_n;

int atexit(void (*fn)(void))
{
    if (atexit_n == ATEXIT_MAX)
        return -1;
    atexit_fns[atexit_n++] = fn;
    return 0;
}

void exit(int status)
{
    while (atexit_n > 0)
        atexit_fns[--atexit_n]();
    sys_exit(status);
}

void _Exit(int status)
{
    sys_exit(status);
}
void _exit(int status)
{
    sys_exit(status);
}

void abort(void)
{
    fputs("shoal: abort() called\n", stderr);
    sys_exit(134);
}

void shoal_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "shoal: assertion '%s' failed at %s:%d in %s()\n", expr, file, line, func);
    abort();
}

/* --- environment ------------------------------------------------------- */

char *getenv(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* --- numbers ----------------------------------------------------------- */

int abs(int x)
{
    return x < 0 ? -x : x;
}
long labs(long x)
{
    return x < 0 ? -x : x;
}

/* Shared parser: magnitude in *mag, sign in *neg; returns 0 or ERANGE. */
static int str_parse(const char *s, char **end, int base, unsigned long long *mag, int *neg)
{
    const char *p = s;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    *neg = 0;
    if (*p == '+' || *p == '-')
        *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] | 32) == 'x' &&
        ((p[2] >= '0' && p[2] <= '9') || ((p[2] | 32) >= 'a' && (p[2] | 32) <= 'f'))) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    unsigned long long v = 0;
    int any = 0, range = 0;
    for (;; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if ((*p | 32) >= 'a' && (*p | 32) <= 'z')
            d = (*p | 32) - 'a' + 10;
        else
            break;
        if (d >= base)
            break;
        any = 1;
        if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
            range = 1;
        else
            v = v * (unsigned)base + (unsigned)d;
    }
    if (end)
        *end = (char *)(any ? p : s);
    *mag = range ? ULLONG_MAX : v;
    return range ? ERANGE : 0;
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base)
{
    unsigned long long m;
    int neg;
    if (str_parse(s, end, base, &m, &neg)) {
        errno = ERANGE;
        return ULLONG_MAX;
    }
    return neg ? 0 - m : m;
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
    return (unsigned long)strtoull(s, end, base);
}

long long strtoll(const char *restrict s, char **restrict end, int base)
{
    unsigned long long m;
    int neg;
    int r = str_parse(s, end, base, &m, &neg);
    if (!neg && (r || m > (unsigned long long)LLONG_MAX)) {
        errno = ERANGE;
        return LLONG_MAX;
    }
    if (neg && (r || m > (unsigned long long)LLONG_MAX + 1)) {
        errno = ERANGE;
        return LLONG_MIN;
    }
    return neg ? (long long)(0 - m) : (long long)m;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
    return (long)strtoll(s, end, base);
}

int atoi(const char *s)
{
    return (int)strtol(s, NULL, 10);
}
long atol(const char *s)
{
    return strtol(s, NULL, 10);
}

static unsigned long rand_state = 1;
void srand(unsigned seed)
{
    rand_state = seed;
}
int rand(void)
{
    rand_state = rand_state * 1103515245ul + 12345ul;
    return (int)((rand_state >> 1) & RAND_MAX);
}

/* Insertion sort: apps here sort small arrays; O(n^2) but no recursion. */
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    char *b = base, tmp[64];
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && cmp(b + (j - 1) * size, b + j * size) > 0; j--) {
            char *x = b + (j - 1) * size, *y = b + j * size;
            for (size_t off = 0; off < size; off += sizeof tmp) { /* swap in chunks */
                size_t k = size - off < sizeof tmp ? size - off : sizeof tmp;
                memcpy(tmp, x + off, k);
                memcpy(x + off, y + off, k);
                memcpy(y + off, tmp, k);
            }
        }
    }
}

/* --- unistd bits ------------------------------------------------------- */

/* Sockets (fds >= 3) exist only in images linked with the network
 * (net/net_posix.c); elsewhere the weak reference stays NULL. */
extern ssize_t net_fd_write(int fd, const void *buf, size_t n) __attribute__((weak));

ssize_t write(int fd, const void *buf, size_t n)
{
    if (fd > STDERR_FILENO && net_fd_write)
        return net_fd_write(fd, buf, n);
    if (fd != STDOUT_FILENO && fd != STDERR_FILENO) {
        errno = EBADF;
        return -1;
    }
    fwrite(buf, 1, n, stdout);
    return (ssize_t)n;
}

void perror(const char *s)
{
    if (s && *s)
        fprintf(stderr, "%s: %s\n", s, strerror(errno));
    else
        fprintf(stderr, "%s\n", strerror(errno));
}

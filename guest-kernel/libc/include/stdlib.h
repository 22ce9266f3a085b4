/*
 * stdlib.h - shoal guest libc subset.
 * exit() runs atexit handlers, then the kernel writes the exit record
 * (status & 255) and powers the VM off. abort() prints a message and exits
 * with 134 (128 + SIGABRT, like a shell would report it).
 */
#ifndef SHOAL_LIBC_STDLIB_H
#define SHOAL_LIBC_STDLIB_H

#include <stddef.h>

#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
#define RAND_MAX     0x7fffffff

void *malloc(size_t n);
void *calloc(size_t nmemb, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

void exit(int status) __attribute__((noreturn));
void _Exit(int status) __attribute__((noreturn));
void abort(void) __attribute__((noreturn));
int atexit(void (*fn)(void)); /* up to 32 handlers; -1 when full */

/* Environment from the command line's KEY=VALUE tokens (not shoal.*). */
char *getenv(const char *name);

int abs(int x);
long labs(long x);
int atoi(const char *s);
long atol(const char *s);
long strtol(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
int rand(void);
void srand(unsigned seed);
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif

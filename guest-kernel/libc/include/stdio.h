/*
 * stdio.h - shoal guest libc subset. There is no buffering and no file
 * system: stdout and stderr both write straight to the console (COM1).
 * Formats: %d %i %u %x %X %o %c %s %p %%, flags "-0+ #", width and
 * precision (also "*"), length modifiers hh h l ll z t j. No floating point
 * (the kernel is built without SSE/x87).
 */
#ifndef SHOAL_LIBC_STDIO_H
#define SHOAL_LIBC_STDIO_H

#include <stdarg.h>
#include <stddef.h>

#define EOF (-1)

typedef struct shoal_file FILE; /* opaque; only stdout and stderr exist */
extern FILE *const stdout;
extern FILE *const stderr;

int printf(const char *restrict fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *restrict fmt, va_list ap);
int fprintf(FILE *restrict f, const char *restrict fmt, ...) __attribute__((format(printf, 2, 3)));
int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap);
/* Write at most n bytes including the NUL; return the length the full
 * output would have had (C99 semantics). */
int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap);
int sprintf(char *restrict buf, const char *restrict fmt, ...)
    __attribute__((format(printf, 2, 3)));
int puts(const char *s);
int putchar(int c);
int fputs(const char *restrict s, FILE *restrict f);
int fputc(int c, FILE *f);
int putc(int c, FILE *f);
size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f);
int fflush(FILE *f); /* nothing is buffered: always 0 */
void perror(const char *s);

#endif

/* assert.h - shoal guest libc subset: a failed assert prints and aborts. */
#ifndef SHOAL_LIBC_ASSERT_H
#define SHOAL_LIBC_ASSERT_H

void shoal_assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : shoal_assert_fail(#e, __FILE__, __LINE__, __func__))
#endif

#endif

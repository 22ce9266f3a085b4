/*
 * shoal_skip.h - cmocka cases that cannot run show up in CTest as skipped.
 *
 * cmocka's skip() marks the case skipped, but the program still exits 0 and
 * CTest reports "Passed". A test that may skip instead:
 *   - calls SHOAL_SKIP("why, printf-style", ...) where it would call skip();
 *   - ends main with
 *         return shoal_test_exit(cmocka_run_group_tests(tests, ...));
 *   - is registered with SKIP_RETURN_CODE 77 (shoal_add_test(... CAN_SKIP)).
 * The program then exits 1 if any case failed, else 77 if any case was
 * skipped, else 0. (cmocka's own status is the failure count, which could
 * itself be 77; shoal_test_exit never passes it through.)
 *
 * Include after <cmocka.h>.
 */
#ifndef SHOAL_SKIP_H
#define SHOAL_SKIP_H

#include <stdio.h>

#define SHOAL_SKIP_CODE 77

static inline int *shoal_skipped_count(void)
{
    static int n;
    return &n;
}

#define SHOAL_SKIP(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        (*shoal_skipped_count())++;                                                                \
        skip();                                                                                    \
    } while (0)

static inline int shoal_test_exit(int failed)
{
    if (failed != 0)
        return 1;
    if (*shoal_skipped_count() > 0) {
        fprintf(stderr, "%d case(s) skipped: exit %d (CTest: Skipped)\n", *shoal_skipped_count(),
                SHOAL_SKIP_CODE);
        return SHOAL_SKIP_CODE;
    }
    return 0;
}

#endif

/*
 * libc_test - self-judging test of the guest libc and kernel services,
 * run inside the guest (tests/guest: guest_libc). Prints one line per
 * failed check and a verdict; exits 0 only if every check passed.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <shoal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures, checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                          \
    } while (0)

#define CHECK_FMT(expect, ...)                                                                     \
    do {                                                                                           \
        char b_[128];                                                                              \
        int n_ = snprintf(b_, sizeof b_, __VA_ARGS__);                                             \
        checks++;                                                                                  \
        if (strcmp(b_, expect) != 0 || n_ != (int)strlen(expect)) {                                \
            failures++;                                                                            \
            printf("FAIL %s:%d: got '%s' (%d), want '%s'\n", __FILE__, __LINE__, b_, n_, expect);  \
        }                                                                                          \
    } while (0)

static void test_string(void)
{
    char b[32];
    CHECK(strlen("") == 0 && strlen("abc") == 3);
    CHECK(strnlen("abcdef", 3) == 3);
    CHECK(strcmp("a", "b") < 0 && strcmp("b", "a") > 0 && strcmp("x", "x") == 0);
    CHECK(strcmp("\xff", "a") > 0); /* compares as unsigned char */
    CHECK(strncmp("abcx", "abcy", 3) == 0 && strncmp("ab", "abc", 3) < 0);
    CHECK(strcmp(strcpy(b, "hello"), "hello") == 0);
    CHECK(strcmp(strcat(b, " world"), "hello world") == 0);
    CHECK(strchr(b, 'o') == b + 4 && strrchr(b, 'o') == b + 7 && !strchr(b, 'z'));
    CHECK(strchr(b, '\0') == b + 11);
    CHECK(strstr(b, "wor") == b + 6 && !strstr(b, "xyz") && strstr(b, "") == b);
    CHECK(strspn("aabbc", "ab") == 4 && strcspn("abc,d", ",") == 3);
    memset(b, 'x', sizeof b);
    strncpy(b, "ab", 5);
    CHECK(b[0] == 'a' && b[2] == 0 && b[4] == 0 && b[5] == 'x');
    /* Overlapping moves both ways, and every length 0..20 for copy/fill tails. */
    strcpy(b, "0123456789");
    memmove(b + 2, b, 8);
    CHECK(memcmp(b, "0101234567", 10) == 0);
    strcpy(b, "0123456789");
    memmove(b, b + 2, 8);
    CHECK(memcmp(b, "2345678989", 10) == 0);
    for (size_t n = 0; n <= 20; n++) {
        char src[24], dst[24];
        for (size_t i = 0; i < sizeof src; i++)
            src[i] = (char)('a' + i), dst[i] = '.';
        memcpy(dst + 1, src, n);
        CHECK(dst[0] == '.' && memcmp(dst + 1, src, n) == 0 && dst[n + 1] == '.');
        memset(dst + 1, 0x5a, n);
        CHECK(dst[0] == '.' && dst[n + 1] == '.' && (n == 0 || (dst[1] == 0x5a && dst[n] == 0x5a)));
    }
    CHECK(memchr("abc", 'c', 3) != NULL && memchr("abc", 'c', 2) == NULL);
    char *d = strdup("dup");
    CHECK(d && strcmp(d, "dup") == 0);
    free(d);
    d = strndup("abcdef", 2);
    CHECK(d && strcmp(d, "ab") == 0);
    free(d);
    char tok[] = " a,b,,c ";
    char *save, *t1 = strtok_r(tok, " ,", &save), *t2 = strtok_r(NULL, " ,", &save);
    char *t3 = strtok_r(NULL, " ,", &save), *t4 = strtok_r(NULL, " ,", &save);
    CHECK(t1 && t2 && t3 && !t4 && !strcmp(t1, "a") && !strcmp(t2, "b") && !strcmp(t3, "c"));
    CHECK(isdigit('7') && !isdigit('a') && isspace('\t') && toupper('q') == 'Q');
}

static void test_printf(void)
{
    CHECK_FMT("42|-42|+7| 7", "%d|%i|%+d|% d", 42, -42, 7, 7);
    CHECK_FMT("   42|42   |00042|-0042", "%5d|%-5d|%05d|%05d", 42, 42, 42, -42);
    CHECK_FMT("ff|FF|0xff|0|377|0377", "%x|%X|%#x|%#x|%o|%#o", 255u, 255u, 255u, 0u, 255u, 255u);
    CHECK_FMT("-9223372036854775808|18446744073709551615", "%lld|%llu", (long long)INT64_MIN,
              (unsigned long long)UINT64_MAX);
    CHECK_FMT("-2147483648|4294967295", "%d|%u", INT_MIN, UINT_MAX);
    CHECK_FMT("12|-3|200|255", "%zu|%ld|%hhu|%hu", (size_t)12, -3L, 200, 255);
    CHECK_FMT("0x1234|(null)", "%p|%s", (void *)0x1234, (char *)NULL);
    CHECK_FMT("abc|  abc|abc  |ab", "%s|%5s|%-5s|%.2s", "abc", "abc", "abc", "abc");
    CHECK_FMT("   ab|00042|x", "%*.*s|%.*d|%c", 5, 2, "abcdef", 5, 42, 'x');
    CHECK_FMT("100%", "100%%");
    CHECK_FMT("", "%.0d", 0);
    char small[4];
    int n = snprintf(small, sizeof small, "%s", "abcdef");
    CHECK(n == 6 && strcmp(small, "abc") == 0);
    CHECK(snprintf(NULL, 0, "%d", 12345) == 5);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_stdlib(void)
{
    char *end;
    CHECK(strtol("  -123xyz", &end, 10) == -123 && *end == 'x');
    CHECK(strtol("0x1F", NULL, 0) == 31 && strtol("017", NULL, 0) == 15 &&
          strtol("17", NULL, 0) == 17);
    CHECK(strtoul("ff", NULL, 16) == 255 && strtoll("-9223372036854775808", NULL, 10) == INT64_MIN);
    errno = 0;
    CHECK(strtol("99999999999999999999", NULL, 10) == LONG_MAX && errno == ERANGE);
    CHECK(strtol("abc", &end, 10) == 0 && strcmp(end, "abc") == 0);
    CHECK(atoi("42") == 42 && abs(-5) == 5 && labs(-6L) == 6);
    int v[] = { 5, 3, 9, 1, 7, 3 };
    qsort(v, 6, sizeof v[0], cmp_int);
    CHECK(v[0] == 1 && v[1] == 3 && v[2] == 3 && v[3] == 5 && v[4] == 7 && v[5] == 9);
    CHECK(getenv("LIBC_TEST") && strcmp(getenv("LIBC_TEST"), "yes please") == 0);
    CHECK(getenv("LIBC") == NULL && getenv("MISSING") == NULL);
    CHECK(shoal_param("quiet") == NULL && shoal_param("ip") &&
          strcmp(shoal_param("ip"), "10.0.0.2/24") == 0);
    CHECK(getenv("shoal.ip") == NULL);
}

/* Allocate and free in a pattern that exercises splitting and merging,
 * then check the free list came back to one piece (a large block fits). */
static void test_heap(void)
{
    enum { N = 200 };
    static char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc((size_t)(i * 37 % 500) + 1);
        CHECK(p[i] != NULL && ((uintptr_t)p[i] & 15) == 0);
        memset(p[i], i, (size_t)(i * 37 % 500) + 1);
    }
    for (int i = 0; i < N; i += 2)
        free(p[i]);
    for (int i = 1; i < N; i += 2) {
        CHECK(p[i][0] == (char)i); /* neighbours not clobbered */
        free(p[i]);
    }
    char *big = malloc(16u << 20); /* 16 MiB of a 32 MiB guest */
    CHECK(big != NULL);
    free(big);
    CHECK(malloc((size_t)1 << 40) == NULL && errno == ENOMEM);
    int *z = calloc(1000, sizeof(int));
    int zero = 1;
    for (int i = 0; z && i < 1000; i++)
        zero &= z[i] == 0;
    CHECK(z && zero);
    z = realloc(z, 100000);
    CHECK(z && z[999] == 0);
    free(z);
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL);
    free(NULL);
}

static void test_time(void)
{
    struct timespec a, b, w;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    usleep(20000);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    long us = (long)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
    CHECK(us >= 20000 && us < 1000000);
    CHECK(a.tv_nsec >= 0 && a.tv_nsec < 1000000000);
    CHECK(clock_gettime(CLOCK_REALTIME, &w) == 0 && w.tv_sec > 1700000000); /* after 2023 */
    CHECK(time(NULL) >= w.tv_sec);
    struct timespec req = { 0, 5000000 };
    CHECK(nanosleep(&req, NULL) == 0);
    req.tv_nsec = 1000000000;
    CHECK(nanosleep(&req, NULL) == -1 && errno == EINVAL);
    CHECK(clock_gettime(42, &w) == -1 && errno == EINVAL);
    CHECK(shoal_boot_us() > 0);
}

static int atexit_ran;
static void on_exit_handler(void)
{
    atexit_ran = 1;
    printf("libc_test: atexit handler ran\n");
}

int main(int argc, char **argv)
{
    CHECK(argc == 2 && strcmp(argv[0], "libctest") == 0 && strcmp(argv[1], "arg one") == 0);
    test_string();
    test_printf();
    test_stdlib();
    test_heap();
    test_time();
    CHECK(atexit(on_exit_handler) == 0);
    printf("libc_test: %d checks, %d failed: %s\n", checks, failures, failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

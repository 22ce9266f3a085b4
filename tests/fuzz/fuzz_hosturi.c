/* Fuzz target: the host URI parser and allow list (daemon/hosturi.c), which
 * decide what `POST /v1/hosts` may hand to virConnectOpen in a root
 * process. Input: an allow list up to the first '\n', then the URI. Each
 * URI is judged against that allow list (when huri_allow_check accepts it,
 * as shoald's config reader requires) and against the default one.
 * Checks: an accepted URI parses, carries no '%', '#', ';' or blank, its
 * scheme and every parameter name are named by the allow list, and under
 * the default list it has no parameter at all and the path /system; error
 * messages stay inside the buffer they were given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hosturi.h"

#define ERRLEN 96

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is name[0..n) one of the words of allow (split on ",? &")? */
static int allow_names(const char *allow, const char *name, size_t n)
{
    for (const char *a = allow; *a;) {
        size_t l = strcspn(a, ",? &");
        if (l == n && strncmp(a, name, n) == 0)
            return 1;
        a += l;
        a += strspn(a, ",? &");
    }
    return 0;
}

static void check_accepted(const char *allow, const char *uri)
{
    struct huri u;
    char err[ERRLEN];
    size_t sl;

    if (huri_parse(uri, &u, err, sizeof err) != HURI_OK)
        abort();
    if (strpbrk(uri, "%#; \t\r\n") != NULL)
        abort();
    sl = strlen(u.scheme);
    /* a remote URI without a transport is judged as SCHEME+tls */
    if (!allow_names(allow, u.scheme, sl) && !(u.host[0] && strchr(u.scheme, '+') == NULL))
        abort();
    for (const char *s = u.query; *s;) {
        size_t len = strcspn(s, "&"), nl = strcspn(s, "=&");
        if (nl == 0 || !allow_names(allow, s, nl))
            abort();
        s += len;
        s += *s == '&';
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *nl, *uri;
    const char *allow = "";
    char err[ERRLEN + 8];
    struct huri u;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    nl = strchr(buf, '\n');
    uri = buf;
    if (nl != NULL) {
        *nl = '\0';
        allow = buf;
        uri = nl + 1;
    }

    memset(err, 'Z', sizeof err);
    if (huri_parse(uri, &u, err, ERRLEN) != HURI_OK &&
        (memchr(err, '\0', ERRLEN) == NULL || err[0] == '\0'))
        abort();
    if (memcmp(err + ERRLEN, "ZZZZZZZZ", 8) != 0)
        abort();

    if (huri_check(NULL, uri, err, ERRLEN) == HURI_OK) {
        check_accepted(HURI_DEFAULT_ALLOW, uri);
        if (huri_parse(uri, &u, err, ERRLEN) != HURI_OK || u.query[0] != '\0' ||
            strcmp(u.path, "/system") != 0)
            abort();
    }
    if (huri_allow_check(allow, err, ERRLEN) == 0 && allow[0] != '\0' &&
        huri_check(allow, uri, err, ERRLEN) == HURI_OK)
        check_accepted(allow, uri);
    if (memcmp(err + ERRLEN, "ZZZZZZZZ", 8) != 0)
        abort();
    free(buf);
    return 0;
}

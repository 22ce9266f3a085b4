/* validate.c - character-level rules for every untrusted identifier. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

static bool is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(int c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* first char passes first(), the rest pass rest() or appear in extra;
 * total length 1..max (or 0..max when empty_ok). */
static bool check(const char *s, size_t max, bool empty_ok, bool (*first)(int), bool (*rest)(int),
                  const char *extra)
{
    size_t i;

    if (s == NULL)
        return false;
    if (s[0] == '\0')
        return empty_ok;
    if (first != NULL && !first((unsigned char)s[0]))
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= max)
            return false;
        if (i == 0 && first != NULL)
            continue;
        if (!rest(c) && (c == '\0' || strchr(extra, c) == NULL))
            return false;
    }
    return true;
}

static bool is_tag_first(int c)
{
    return is_alnum(c) || c == '_';
}

static bool is_env_first(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool api_valid_name(const char *s)
{
    return check(s, API_NAME_MAX, false, is_lower_alnum, is_lower_alnum, "_.-");
}

/* Only [0-9a-f]: what an instance id (12 of them) or an id prefix looks
 * like. */
bool api_name_like_id(const char *s)
{
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        if (!is_hex((unsigned char)s[i]))
            return false;
    }
    return i >= API_INSTANCE_PREFIX_MIN && i <= API_INSTANCE_ID_LEN;
}

static int decimal_digits(uint32_t n)
{
    int d = 1;

    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

api_code api_check_instance_name(const char *name, uint32_t count, api_status *st)
{
    size_t suffix = count > 1 ? 1 + (size_t)decimal_digits(count) : 0;

    if (!api_valid_name(name) || strlen(name) + suffix > API_NAME_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "name",
                              "name '%.80s' is invalid (names match "
                              "[a-z0-9][a-z0-9_.-]{0,62}%s)",
                              name != NULL ? name : "", suffix ? ", including the -N suffix" : "");
    if (api_name_like_id(name))
        return api_status_set(st, API_E_INVALID_FIELD, "name",
                              "name '%s' is %d to %d hex digits [0-9a-f]: it "
                              "could be mistaken for an instance id or id "
                              "prefix; use at least one other character "
                              "(g-z, '-', '_' or '.')",
                              name, API_INSTANCE_PREFIX_MIN, API_INSTANCE_ID_LEN);
    return API_OK;
}

bool api_valid_tag(const char *s)
{
    return check(s, API_TAG_MAX, false, is_tag_first, is_alnum, "_.-");
}

bool api_valid_label_key(const char *s)
{
    return check(s, API_LABEL_KEY_MAX, false, is_alnum, is_alnum, "_./-");
}

bool api_valid_label_value(const char *s)
{
    return check(s, API_LABEL_VALUE_MAX, true, NULL, is_alnum, "_.:@+/-");
}

bool api_valid_env_key(const char *s)
{
    return check(s, API_ENV_KEY_MAX, false, is_env_first, is_alnum, "_");
}

bool api_valid_text(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n, k;
        unsigned long cp;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (k = 1; k <= n; k++) {
            unsigned char d = (unsigned char)s[i + k];
            if ((d & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += n + 1;
    }
    return true;
}

bool api_valid_digest(const char *s, bool full)
{
    size_t i;

    if (s == NULL || strncmp(s, "sha256:", 7) != 0)
        return false;
    s += 7;
    for (i = 0; s[i] != '\0'; i++) {
        if (!is_hex((unsigned char)s[i]) || i >= API_DIGEST_HEX)
            return false;
    }
    return full ? i == API_DIGEST_HEX : i >= API_DIGEST_PREFIX_MIN;
}

bool api_valid_image_ref(const char *s)
{
    const char *colon;
    char name[API_NAME_MAX + 1];
    size_t n;

    if (s == NULL)
        return false;
    if (strncmp(s, "sha256:", 7) == 0)
        return api_valid_digest(s, false);
    colon = strchr(s, ':');
    if (colon == NULL)
        return api_valid_name(s);
    n = (size_t)(colon - s);
    if (n == 0 || n > API_NAME_MAX)
        return false;
    memcpy(name, s, n);
    name[n] = '\0';
    return api_valid_name(name) && api_valid_tag(colon + 1);
}

bool api_valid_instance_ref(const char *s)
{
    return api_valid_name(s);
}

bool api_valid_cursor(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        if (i >= API_CURSOR_MAX || s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    }
    return true;
}

api_code api_parse_new_ref(const char *s, const char *field, char name[API_NAME_MAX + 1],
                           char tag[API_TAG_MAX + 1], api_status *st)
{
    const char *colon;
    size_t n;

    if (s == NULL || s[0] == '\0')
        return api_status_set(st, API_E_INVALID_FIELD, field, "%s is required", field);
    colon = strchr(s, ':');
    n = colon != NULL ? (size_t)(colon - s) : strlen(s);
    if (n == 0 || n > API_NAME_MAX)
        goto bad;
    memcpy(name, s, n);
    name[n] = '\0';
    if (!api_valid_name(name))
        goto bad;
    if (strcmp(name, "sha256") == 0)
        return api_status_set(st, API_E_INVALID_FIELD, field,
                              "%s '%.80s': the name 'sha256' is reserved "
                              "for digests",
                              field, s);
    if (colon == NULL) {
        snprintf(tag, API_TAG_MAX + 1, "latest");
        return API_OK;
    }
    if (!api_valid_tag(colon + 1))
        goto bad;
    snprintf(tag, API_TAG_MAX + 1, "%s", colon + 1);
    return API_OK;
bad:
    return api_status_set(st, API_E_INVALID_FIELD, field,
                          "%s '%.80s' is not NAME[:TAG] (name "
                          "[a-z0-9][a-z0-9_.-]{0,62}, tag "
                          "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                          field, s);
}

/* selector.c - label selectors: "k=v,k!=v,k,!k", all terms must hold. */
#include <stdio.h>
#include <string.h>

#include "codec.h"

#define SEL_TEXT_MAX 4096

static api_code bad_term(api_status *st, const char *term, size_t len, const char *why)
{
    return api_status_set(st, API_E_INVALID_FIELD, "selector", "selector term '%.*s' %s",
                          (int)(len > 80 ? 80 : len), term, why);
}

static api_code parse_term(const char *t, size_t len, api_sel_term *term, api_status *st)
{
    const char *op;
    size_t klen, vlen;
    const char *val = NULL;

    memset(term, 0, sizeof *term);
    if (len == 0)
        return bad_term(st, t, len, "is empty");
    if (t[0] == '!') {
        term->op = API_SEL_LACKS;
        t++;
        len--;
        klen = len;
    } else if ((op = memchr(t, '=', len)) != NULL) {
        klen = (size_t)(op - t);
        if (klen > 0 && t[klen - 1] == '!') {
            term->op = API_SEL_NE;
            klen--;
        } else {
            term->op = API_SEL_EQ;
        }
        val = op + 1;
        vlen = len - (size_t)(val - t);
        if (vlen > API_LABEL_VALUE_MAX)
            return bad_term(st, t, len, "has a value over 63 bytes");
        memcpy(term->value, val, vlen);
        term->value[vlen] = '\0';
        if (!api_valid_label_value(term->value))
            return bad_term(st, t, len,
                            "has an invalid value (allowed: "
                            "[A-Za-z0-9_.:@+/-]{0,63})");
    } else {
        term->op = API_SEL_HAS;
        klen = len;
    }
    if (klen == 0 || klen > API_LABEL_KEY_MAX)
        return bad_term(st, t, len, "has an invalid key");
    memcpy(term->key, t, klen);
    term->key[klen] = '\0';
    if (!api_valid_label_key(term->key))
        return bad_term(st, t, len,
                        "has an invalid key (allowed: "
                        "[A-Za-z0-9][A-Za-z0-9_./-]{0,62})");
    return API_OK;
}

api_code api_selector_parse(const char *text, api_selector *sel, api_status *st)
{
    const char *p, *end;
    size_t len;
    api_code rc;

    memset(sel, 0, sizeof *sel);
    if (text == NULL || text[0] == '\0')
        return API_OK;
    len = strnlen(text, SEL_TEXT_MAX + 1);
    if (len > SEL_TEXT_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "selector",
                              "selector is longer than %d bytes", SEL_TEXT_MAX);
    p = text;
    for (;;) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (sel->n == API_SELECTOR_TERMS_MAX)
            return api_status_set(st, API_E_INVALID_FIELD, "selector",
                                  "selector has more than %d terms", API_SELECTOR_TERMS_MAX);
        rc = parse_term(p, (size_t)(end - p), &sel->terms[sel->n], st);
        if (rc != API_OK)
            return rc;
        sel->n++;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    return API_OK;
}

static const char *lookup(const api_kv *labels, size_t n, const char *key)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (labels[i].key != NULL && strcmp(labels[i].key, key) == 0)
            return labels[i].value != NULL ? labels[i].value : "";
    }
    return NULL;
}

bool api_selector_match(const api_selector *sel, const api_kv *labels, size_t n_labels)
{
    size_t i;

    if (sel == NULL)
        return true;
    for (i = 0; i < sel->n && i < API_SELECTOR_TERMS_MAX; i++) {
        const api_sel_term *t = &sel->terms[i];
        const char *v = lookup(labels, n_labels, t->key);

        switch (t->op) {
        case API_SEL_EQ:
            if (v == NULL || strcmp(v, t->value) != 0)
                return false;
            break;
        case API_SEL_NE:
            if (v != NULL && strcmp(v, t->value) == 0)
                return false;
            break;
        case API_SEL_HAS:
            if (v == NULL)
                return false;
            break;
        case API_SEL_LACKS:
            if (v != NULL)
                return false;
            break;
        default: return false;
        }
    }
    return true;
}

/* Fuzz target: the label selector parser and matcher (api/selector.c), used
 * by every ?selector= query and bulk request body. Input: the selector
 * text up to the first '\n', then "key=value" label lines. Checks beyond
 * "no crash, no leak": a parsed selector holds only valid keys and values,
 * rendering it back and parsing again gives the same terms, and the
 * matcher agrees with a plain re-statement of the documented semantics
 * (every term must hold: k=v, k!=v, k, !k). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define LABELS_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool term_holds(const api_sel_term *t, const api_kv *labels, size_t n)
{
    const char *v = NULL;

    for (size_t i = 0; i < n && v == NULL; i++)
        if (strcmp(labels[i].key, t->key) == 0)
            v = labels[i].value;
    switch (t->op) {
    case API_SEL_EQ: return v != NULL && strcmp(v, t->value) == 0;
    case API_SEL_NE: return v == NULL || strcmp(v, t->value) != 0;
    case API_SEL_HAS: return v != NULL;
    case API_SEL_LACKS: return v == NULL;
    default: return false;
    }
}

/* The selector as text again ("k=v,k!=v,k,!k"); -1 if it does not fit. */
static int render(const api_selector *sel, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sel->n; i++) {
        const api_sel_term *t = &sel->terms[i];
        const char *sep = i ? "," : "";
        int n;

        switch (t->op) {
        case API_SEL_EQ:
            n = snprintf(out + used, cap - used, "%s%s=%s", sep, t->key, t->value);
            break;
        case API_SEL_NE:
            n = snprintf(out + used, cap - used, "%s%s!=%s", sep, t->key, t->value);
            break;
        case API_SEL_HAS: n = snprintf(out + used, cap - used, "%s%s", sep, t->key); break;
        default: n = snprintf(out + used, cap - used, "%s!%s", sep, t->key); break;
        }
        if (n < 0 || (size_t)n >= cap - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *nl, *p, *save = NULL, *line;
    api_kv labels[LABELS_MAX];
    size_t n_labels = 0;
    api_selector sel, again;
    api_status st = { 0 };
    char rendered[16 * (2 * API_LABEL_KEY_MAX + 8)];
    bool all = true;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    nl = strchr(text, '\n');
    if (nl != NULL) {
        *nl = '\0';
        for (p = nl + 1; (line = strtok_r(p, "\n", &save)) != NULL && n_labels < LABELS_MAX;
             p = NULL) {
            char *eq = strchr(line, '=');
            if (eq != NULL)
                *eq = '\0';
            labels[n_labels].key = line;
            labels[n_labels].value = eq != NULL ? eq + 1 : "";
            n_labels++;
        }
    }

    if (api_selector_parse(text, &sel, &st) != API_OK) {
        if (st.code == API_OK || st.message[0] == '\0')
            abort(); /* a refusal always says why */
        free(text);
        return 0;
    }
    if (sel.n > API_SELECTOR_TERMS_MAX)
        abort();
    for (size_t i = 0; i < sel.n; i++) {
        const api_sel_term *t = &sel.terms[i];
        if (!api_valid_label_key(t->key) || !api_valid_label_value(t->value))
            abort();
        if ((t->op == API_SEL_HAS || t->op == API_SEL_LACKS) && t->value[0] != '\0')
            abort();
        all = all && term_holds(t, labels, n_labels);
    }
    if (api_selector_match(&sel, labels, n_labels) != all)
        abort();
    if (render(&sel, rendered, sizeof rendered) == 0) {
        if (api_selector_parse(rendered, &again, &st) != API_OK || again.n != sel.n)
            abort();
        for (size_t i = 0; i < sel.n; i++)
            if (again.terms[i].op != sel.terms[i].op ||
                strcmp(again.terms[i].key, sel.terms[i].key) != 0 ||
                strcmp(again.terms[i].value, sel.terms[i].value) != 0)
                abort();
    }
    free(text);
    return 0;
}

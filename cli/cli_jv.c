/* cli_jv.c: one-pass arena JSON parser and printer (see cli_jv.h). */
#include "cli_jv.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (256 * 1024)

struct cli_jv_chunk {
    struct cli_jv_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

typedef struct parser {
    const char *start, *p, *end;
    cli_jv_doc *doc;
    cli_jv_member *stack; /* scratch: children of open containers */
    size_t sp, scap;
    int depth;
    char *err;
    size_t errlen;
} parser;

void *cli_jv_alloc(cli_jv_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct cli_jv_chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *r = c->data + c->used;
    c->used += n;
    return r;
}

void cli_jv_free(cli_jv_doc *doc)
{
    if (!doc)
        return;
    struct cli_jv_chunk *c = doc->chunks;
    while (c) {
        struct cli_jv_chunk *n = c->next;
        free(c);
        c = n;
    }
    doc->chunks = NULL;
}

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "offset %zu: ", (size_t)(ps->p - ps->start));
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int push(parser *ps, const char *key, const cli_jv *v)
{
    if (ps->sp == ps->scap) {
        size_t cap = ps->scap ? ps->scap * 2 : 256;
        cli_jv_member *s = realloc(ps->stack, cap * sizeof *s);
        if (!s)
            return fail(ps, "out of memory");
        ps->stack = s;
        ps->scap = cap;
    }
    ps->stack[ps->sp].key = key;
    ps->stack[ps->sp].val = *v;
    ps->sp++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The four hex digits at q: 0..0xFFFF, or -1 (error set) when bad. The
 * value is the return, not an out-parameter, so no path leaves it unset. */
static long read_u16(parser *ps, const char *q)
{
    if (ps->end - q < 4) {
        fail(ps, "truncated \\u escape");
        return -1;
    }
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) {
            fail(ps, "bad \\u escape");
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* ps->p at the opening quote. Sets *out (NUL-terminated) and *len. */
static int parse_string(parser *ps, const char **out, uint32_t *len)
{
    const char *q = ps->p + 1;
    bool escapes = false;
    /* First pass: find the closing quote, check control characters. */
    const char *s = q;
    while (s < ps->end && *s != '"') {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) {
            ps->p = s;
            return fail(ps, "control character in string");
        }
        if (c == '\\') {
            escapes = true;
            s++;
            if (s >= ps->end)
                break;
        }
        s++;
    }
    if (s >= ps->end) {
        ps->p = s;
        return fail(ps, "unterminated string");
    }
    size_t raw = (size_t)(s - q);
    if (raw > UINT32_MAX - 1)
        return fail(ps, "string too long");
    char *dst = cli_jv_alloc(ps->doc, raw + 1);
    if (!dst)
        return fail(ps, "out of memory");
    if (!escapes) {
        memcpy(dst, q, raw);
        dst[raw] = '\0';
        *out = dst;
        *len = (uint32_t)raw;
        ps->p = s + 1;
        return 0;
    }
    char *d = dst;
    while (q < s) {
        if (*q != '\\') {
            *d++ = *q++;
            continue;
        }
        q++;
        ps->p = q;
        switch (*q) {
        case '"':
            *d++ = '"';
            q++;
            break;
        case '\\':
            *d++ = '\\';
            q++;
            break;
        case '/':
            *d++ = '/';
            q++;
            break;
        case 'b':
            *d++ = '\b';
            q++;
            break;
        case 'f':
            *d++ = '\f';
            q++;
            break;
        case 'n':
            *d++ = '\n';
            q++;
            break;
        case 'r':
            *d++ = '\r';
            q++;
            break;
        case 't':
            *d++ = '\t';
            q++;
            break;
        case 'u': {
            long hi = read_u16(ps, q + 1);
            if (hi < 0)
                return -1;
            unsigned cp = (unsigned)hi;
            q += 5;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(ps, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = -1;
                if (s - q >= 6 && q[0] == '\\' && q[1] == 'u')
                    lo = read_u16(ps, q + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(ps, "high surrogate without low surrogate");
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            }
            /* UTF-8 is never longer than the 6- or 12-byte escape. */
            if (cp < 0x80) {
                *d++ = (char)cp;
            } else if (cp < 0x800) {
                *d++ = (char)(0xC0 | (cp >> 6));
                *d++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *d++ = (char)(0xE0 | (cp >> 12));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *d++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *d++ = (char)(0xF0 | (cp >> 18));
                *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *d++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return fail(ps, "bad escape '\\%c'", *q);
        }
    }
    *d = '\0';
    *out = dst;
    *len = (uint32_t)(d - dst);
    ps->p = s + 1;
    return 0;
}

static bool is_digit(const parser *ps, const char *q)
{
    return q < ps->end && *q >= '0' && *q <= '9';
}

static int parse_number(parser *ps, cli_jv *v)
{
    const char *q = ps->p;
    if (q < ps->end && *q == '-')
        q++;
    if (!is_digit(ps, q))
        return fail(ps, "bad number");
    if (*q == '0')
        q++;
    else
        while (is_digit(ps, q))
            q++;
    if (q < ps->end && *q == '.') {
        q++;
        if (!is_digit(ps, q))
            return fail(ps, "bad number");
        while (is_digit(ps, q))
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(ps, q))
            return fail(ps, "bad number");
        while (is_digit(ps, q))
            q++;
    }
    size_t n = (size_t)(q - ps->p);
    if (n > 512)
        return fail(ps, "number too long");
    char *text = cli_jv_alloc(ps->doc, n + 1);
    if (!text)
        return fail(ps, "out of memory");
    memcpy(text, ps->p, n);
    text[n] = '\0';
    v->type = CLI_JV_NUM;
    v->u.str = text;
    v->len = (uint32_t)n;
    v->num = strtod(text, NULL);
    ps->p = q;
    return 0;
}

static int parse_value(parser *ps, cli_jv *v);

/* ps->p at '[' or '{'. */
static int parse_container(parser *ps, cli_jv *v, bool obj)
{
    char close = obj ? '}' : ']';
    size_t base = ps->sp;
    if (++ps->depth > CLI_JV_MAX_DEPTH)
        return fail(ps, "nesting deeper than %d", CLI_JV_MAX_DEPTH);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            const char *key = NULL;
            uint32_t klen;
            cli_jv child;
            skip_ws(ps);
            if (obj) {
                if (ps->p >= ps->end || *ps->p != '"')
                    return fail(ps, "expected a member name");
                if (parse_string(ps, &key, &klen) < 0)
                    return -1;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':')
                    return fail(ps, "expected ':'");
                ps->p++;
            }
            if (parse_value(ps, &child) < 0 || push(ps, key, &child) < 0)
                return -1;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                break;
            }
            return fail(ps, "expected ',' or '%c'", close);
        }
    }
    size_t n = ps->sp - base;
    if (n > UINT32_MAX)
        return fail(ps, "too many elements");
    v->len = (uint32_t)n;
    if (obj) {
        v->type = CLI_JV_OBJ;
        v->u.members = n ? cli_jv_alloc(ps->doc, n * sizeof(cli_jv_member)) : NULL;
        if (n && !v->u.members)
            return fail(ps, "out of memory");
        if (n)
            memcpy(v->u.members, ps->stack + base, n * sizeof(cli_jv_member));
    } else {
        v->type = CLI_JV_ARR;
        v->u.elems = n ? cli_jv_alloc(ps->doc, n * sizeof(cli_jv)) : NULL;
        if (n && !v->u.elems)
            return fail(ps, "out of memory");
        for (size_t i = 0; i < n; i++)
            v->u.elems[i] = ps->stack[base + i].val;
    }
    ps->sp = base;
    ps->depth--;
    return 0;
}

static int literal(parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    return 0;
}

static int parse_value(parser *ps, cli_jv *v)
{
    memset(v, 0, sizeof *v);
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, true);
    case '[': return parse_container(ps, v, false);
    case '"': v->type = CLI_JV_STR; return parse_string(ps, &v->u.str, &v->len);
    case 't': v->type = CLI_JV_TRUE; return literal(ps, "true", 4);
    case 'f': v->type = CLI_JV_FALSE; return literal(ps, "false", 5);
    case 'n': v->type = CLI_JV_NULL; return literal(ps, "null", 4);
    default: return parse_number(ps, v);
    }
}

int cli_jv_parse(cli_jv_doc *doc, const char *buf, size_t len, cli_jv *out, char *err,
                 size_t errlen)
{
    parser ps = {
        .start = buf, .p = buf, .end = buf + len, .doc = doc, .err = err, .errlen = errlen
    };
    int rc = parse_value(&ps, out);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = fail(&ps, "trailing characters after the value");
    }
    free(ps.stack);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

const cli_jv *cli_jv_get(const cli_jv *obj, const char *key)
{
    if (!obj || obj->type != CLI_JV_OBJ)
        return NULL;
    for (uint32_t i = 0; i < obj->len; i++)
        if (strcmp(obj->u.members[i].key, key) == 0)
            return &obj->u.members[i].val;
    return NULL;
}

const char *cli_jv_str(const cli_jv *obj, const char *key)
{
    const cli_jv *v = cli_jv_get(obj, key);
    return v && v->type == CLI_JV_STR ? v->u.str : NULL;
}

double cli_jv_num(const cli_jv *obj, const char *key, double dflt)
{
    const cli_jv *v = cli_jv_get(obj, key);
    return v && v->type == CLI_JV_NUM ? v->num : dflt;
}

size_t cli_jv_size(const cli_jv *arr)
{
    return arr && arr->type == CLI_JV_ARR ? arr->len : 0;
}

const cli_jv *cli_jv_at(const cli_jv *arr, size_t i)
{
    return i < cli_jv_size(arr) ? &arr->u.elems[i] : NULL;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp((*(const cli_jv_member *const *)a)->key, (*(const cli_jv_member *const *)b)->key);
}

void cli_jv_labels(const cli_jv *obj, char *out, size_t len)
{
    if (!len)
        return;
    out[0] = '\0';
    if (!obj || obj->type != CLI_JV_OBJ || obj->len == 0)
        return;
    const cli_jv_member **m = malloc(obj->len * sizeof *m);
    if (!m)
        return;
    for (uint32_t i = 0; i < obj->len; i++)
        m[i] = &obj->u.members[i];
    if (obj->len > 1)
        qsort(m, obj->len, sizeof *m, cmp_member);
    size_t used = 0;
    for (uint32_t i = 0; i < obj->len && used < len; i++) {
        const char *v = m[i]->val.type == CLI_JV_STR ? m[i]->val.u.str : "";
        int w = snprintf(out + used, len - used, "%s%s=%s", i ? "," : "", m[i]->key, v);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    free(m);
}

static void print_str(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

static void print_value(FILE *out, const cli_jv *v, int depth)
{
    switch (v->type) {
    case CLI_JV_NULL: fputs("null", out); break;
    case CLI_JV_TRUE: fputs("true", out); break;
    case CLI_JV_FALSE: fputs("false", out); break;
    case CLI_JV_NUM: fputs(v->u.str, out); break;
    case CLI_JV_STR: print_str(out, v->u.str, v->len); break;
    case CLI_JV_ARR:
    case CLI_JV_OBJ: {
        bool obj = v->type == CLI_JV_OBJ;
        if (v->len == 0) {
            fputs(obj ? "{}" : "[]", out);
            break;
        }
        fputc(obj ? '{' : '[', out);
        for (uint32_t i = 0; i < v->len; i++) {
            fprintf(out, "%s\n%*s", i ? "," : "", 2 * (depth + 1), "");
            if (obj) {
                print_str(out, v->u.members[i].key, strlen(v->u.members[i].key));
                fputs(": ", out);
                print_value(out, &v->u.members[i].val, depth + 1);
            } else {
                print_value(out, &v->u.elems[i], depth + 1);
            }
        }
        fprintf(out, "\n%*s%c", 2 * depth, "", obj ? '}' : ']');
        break;
    }
    }
}

int cli_jv_print(FILE *out, const cli_jv *v)
{
    print_value(out, v, 0);
    fputc('\n', out);
    return ferror(out) ? -1 : 0;
}

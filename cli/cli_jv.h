/* cli_jv.h: a fast, read-only JSON document for large list responses.
 *
 * Why not jansson here: `shoal ps` over 1,000 instances receives ~0.5 MiB of
 * JSON, and building jansson's tree (a malloc and a hash table per object)
 * costs several times what the request itself does. This parser makes one
 * pass over the bytes and puts every value, key and decoded string into one
 * arena that is freed at once. Objects keep their members in order and are
 * searched linearly (API objects have a few dozen keys at most).
 *
 * Input is untrusted: the parser checks every byte against the JSON grammar
 * (RFC 8259), bounds nesting at CLI_JV_MAX_DEPTH, decodes \u escapes
 * (surrogate pairs included; a lone surrogate is an error) and refuses
 * trailing garbage. Strings are NUL-terminated copies; a string containing
 * \u0000 is cut there for the C accessors but keeps its full length.
 * Numbers keep their original text, so re-printing them is lossless.
 */
#ifndef SHOAL_CLI_JV_H
#define SHOAL_CLI_JV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_JV_MAX_DEPTH 64

typedef enum {
    CLI_JV_NULL = 0,
    CLI_JV_FALSE,
    CLI_JV_TRUE,
    CLI_JV_NUM,
    CLI_JV_STR,
    CLI_JV_ARR,
    CLI_JV_OBJ,
} cli_jv_type;

typedef struct cli_jv_member cli_jv_member;

typedef struct cli_jv {
    cli_jv_type type;
    uint32_t len; /* STR: bytes; NUM: text bytes; ARR/OBJ: count */
    union {
        const char *str;        /* STR: decoded; NUM: original text (both NUL-terminated) */
        struct cli_jv *elems;   /* ARR */
        cli_jv_member *members; /* OBJ */
    } u;
    double num; /* NUM: value */
} cli_jv;

struct cli_jv_member {
    const char *key; /* decoded, NUL-terminated */
    cli_jv val;
};

/* The arena that owns every value parsed into it. Zero-initialise; several
 * parses may share one document (e.g. the pages of a list). */
typedef struct cli_jv_doc {
    struct cli_jv_chunk *chunks;
} cli_jv_doc;

/* Parse buf[0..len) into doc's arena and store the value in *out. On error
 * returns -1 and writes "offset N: reason" to err (partial allocations stay
 * in the arena until cli_jv_free). */
int cli_jv_parse(cli_jv_doc *doc, const char *buf, size_t len, cli_jv *out, char *err,
                 size_t errlen);
/* n bytes (16-aligned) from doc's arena, or NULL. */
void *cli_jv_alloc(cli_jv_doc *doc, size_t n);
/* Release everything parsed into doc (a zeroed doc is fine). */
void cli_jv_free(cli_jv_doc *doc);

/* Member of an object, or NULL (also when obj is NULL or not an object). */
const cli_jv *cli_jv_get(const cli_jv *obj, const char *key);
/* String member or NULL. */
const char *cli_jv_str(const cli_jv *obj, const char *key);
/* Number member or dflt. */
double cli_jv_num(const cli_jv *obj, const char *key, double dflt);
/* Array length (0 for non-arrays) and element (NULL when out of range). */
size_t cli_jv_size(const cli_jv *arr);
const cli_jv *cli_jv_at(const cli_jv *arr, size_t i);
/* "k1=v1,k2=v2" of a string-valued object, keys sorted; "" for none. */
void cli_jv_labels(const cli_jv *obj, char *out, size_t len);
/* Write v as JSON indented by 2 spaces per level (jansson's JSON_INDENT(2)
 * layout), then a newline. Returns 0, or -1 on a write error. */
int cli_jv_print(FILE *out, const cli_jv *v);

#endif

/*
 * codec.h - api-internal: validation of untrusted request input, request
 * decoders (JSON body / query string -> C structs) and response encoders
 * (C structs -> JSON). Not used outside api/ and tests/api/.
 *
 * Every decoder returns API_OK or fills st with API_E_BAD_REQUEST (not JSON,
 * not an object, bad query syntax) or API_E_INVALID_FIELD (field named in
 * st->field). Decoded structs own their storage: release with the matching
 * *_clear() (safe on a zeroed or already-cleared struct, and after a failed
 * decode).
 */
#ifndef SHOAL_API_CODEC_H
#define SHOAL_API_CODEC_H

#include "api.h"

/* ---- validators (NUL-terminated input; true when valid) ----------------- */

bool api_valid_name(const char *s);        /* [a-z0-9][a-z0-9_.-]{0,62} */
bool api_valid_tag(const char *s);         /* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
bool api_valid_label_key(const char *s);   /* [A-Za-z0-9][A-Za-z0-9_./-]{0,62} */
bool api_valid_label_value(const char *s); /* [A-Za-z0-9_.:@+/-]{0,63} */
bool api_valid_env_key(const char *s);     /* [A-Za-z_][A-Za-z0-9_]{0,126} */
/* len bytes of UTF-8 without control characters (tab included) */
bool api_valid_text(const char *s, size_t len);
/* sha256:<6..64 lowercase hex> when full is false; exactly 64 when true */
bool api_valid_digest(const char *s, bool full);
/* Reference to an existing image: NAME, NAME:TAG, sha256:HEX (>= 6). */
bool api_valid_image_ref(const char *s);
/* Instance reference in a path: id, id prefix or name (name rule). */
bool api_valid_instance_ref(const char *s);
bool api_valid_cursor(const char *s); /* printable ASCII, 1..API_CURSOR_MAX */

/* Split NAME[:TAG] (a ref to create: upload or tag). Tag defaults to
 * "latest". API_E_INVALID_FIELD naming field on error. */
api_code api_parse_new_ref(const char *s, const char *field, char name[API_NAME_MAX + 1],
                           char tag[API_TAG_MAX + 1], api_status *st);

/* ---- JSON body decoders ------------------------------------------------- */

api_code api_decode_instance_spec(const char *body, size_t len, api_instance_spec *out,
                                  api_status *st);
void api_instance_spec_clear(api_instance_spec *spec);

api_code api_decode_host_spec(const char *body, size_t len, api_host_spec *out, api_status *st);
void api_host_spec_clear(api_host_spec *spec);

/* {"ref": "NAME[:TAG]"} -> ref normalised to "NAME:TAG". */
/* PATCH /v1/images/{ref}: {"firmware", "cmdline", "exit"}, each a string or
 * null (keep), at least one given. Strings point into p->priv_; release
 * with api_image_patch_free. */
api_code api_decode_image_patch(const char *body, size_t len, api_image_patch *p, api_status *st);
void api_image_patch_free(api_image_patch *p);
api_code api_decode_tag_request(const char *body, size_t len, char ref[API_REF_MAX + 1],
                                api_status *st);
/* Empty body or {} or {"timeout_s": 0..3600}; *timeout_s = -1 when absent. */
api_code api_decode_stop_request(const char *body, size_t len, int *timeout_s, api_status *st);
/* Bulk body: {"selector": "k=v"} or {"ids": [..]}, plus "timeout_s"
 * (allowed when allow_timeout) and "force" (when allow_force). Release
 * with api_bulk_req_clear. */
api_code api_decode_bulk_request(const char *body, size_t len, bool allow_timeout, bool allow_force,
                                 api_bulk_req *out, api_status *st);
void api_bulk_req_clear(api_bulk_req *req);
/* {"cordoned": bool} (required). */
api_code api_decode_cordon_request(const char *body, size_t len, bool *cordoned, api_status *st);
/* Empty body or {} (start, restart, drain, consolidate). */
/* POST /v1/tokens: {"name", "scope", "selector"?, "quotas"?: {"instances",
 * "memory_mib", "vcpus"}}; fixed-size result, nothing to clear. */
api_code api_decode_token_spec(const char *body, size_t len, api_token_spec *out, api_status *st);
api_code api_decode_empty_body(const char *body, size_t len, api_status *st);

/* ---- query strings ------------------------------------------------------ */

/* Query parameters a route accepts (bit mask). */
enum {
    API_Q_SELECTOR = 1u << 0,
    API_Q_NAME = 1u << 1,
    API_Q_STATE = 1u << 2,
    API_Q_HOST = 1u << 3,
    API_Q_LIMIT = 1u << 4,
    API_Q_AFTER = 1u << 5,
    API_Q_FORCE = 1u << 6,
    API_Q_DRY_RUN = 1u << 7,
    API_Q_TAIL = 1u << 8,
    API_Q_FOLLOW = 1u << 9,
    API_Q_SINCE = 1u << 10,
    API_Q_REF = 1u << 11,
    API_Q_LABEL = 1u << 12, /* repeatable label=K=V */
    API_Q_DIGEST = 1u << 13,
    API_Q_INITRD = 1u << 14 /* POST /v1/images: the initrd digest */
};

/* Decoded query. String pointers point into the params passed to
 * api_decode_query (caller keeps them alive); labels are copied here. */
typedef struct api_query {
    api_selector selector; /* n == 0 when absent */
    const char *name;      /* NULL when absent */
    bool has_state;
    api_instance_state state;
    const char *host;
    uint32_t limit; /* default API_LIST_LIMIT_DEFAULT */
    const char *after;
    bool force, dry_run, follow;
    uint64_t tail; /* UINT64_MAX when absent */
    bool has_since;
    uint64_t since;
    bool has_ref;
    char ref_name[API_NAME_MAX + 1];
    char ref_tag[API_TAG_MAX + 1];
    api_kv labels[API_LABELS_MAX];
    size_t n_labels;
    const char *digest;
    const char *initrd;
    char label_store_[API_LABELS_MAX][API_LABEL_KEY_MAX + API_LABEL_VALUE_MAX + 2];
} api_query;

/* params: n decoded key/value pairs in request order (value may be NULL for
 * a bare "?key"). Unknown or repeated (except label) keys: invalid_field. */
api_code api_decode_query(const api_kv *params, size_t n, unsigned allowed, api_query *q,
                          api_status *st);
/* Parse an unsigned decimal (no sign, no spaces) <= max. 0 or -1. */
int api_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* ---- encoders ----------------------------------------------------------- */

typedef enum api_sink_kind {
    API_SINK_IMAGE = 0,
    API_SINK_INSTANCE,
    API_SINK_HOST,
    API_SINK_PLAN,
    API_SINK_TEXT,
    API_SINK_BULK,
    API_SINK_TOKEN
} api_sink_kind;

typedef enum api_sink_shape {
    API_SHAPE_ONE = 0, /* exactly one object */
    API_SHAPE_LIST,    /* {"items": [...], "next": ...} */
    API_SHAPE_ITEMS,   /* {"items": [...]} (create) */
    API_SHAPE_BULK     /* {"items": [...], "succeeded": N, "failed": M} */
} api_sink_shape;

/* NULL on out of memory. */
api_sink *api_sink_new(api_sink_kind kind, api_sink_shape shape);
void api_sink_free(api_sink *s);
/* Number of objects emitted so far. */
size_t api_sink_count(const api_sink *s);
/* Final body (malloc'd, caller frees, *len set). NULL if the sink failed or
 * a ONE sink got no object. */
char *api_sink_finish(api_sink *s, size_t *len);

/* Privilege separation (chan.h). The root process's sink: each object, once
 * encoded, goes to fn (ok: a bulk item with ok true) instead of a body; fn
 * returns 0 or -1 (the sink fails). TEXT still collects (api_sink_finish). */
typedef int (*api_sink_capture_fn)(void *cls, const char *json, size_t len, bool ok);
api_sink *api_sink_new_capture(api_sink_kind kind, api_sink_shape shape, api_sink_capture_fn fn,
                               void *cls);
/* The front's side: append one object the root encoded, with the checks of
 * api_sink_image() and the like (kind, one object for ONE sinks). */
int api_sink_raw(api_sink *s, api_sink_kind kind, const char *json, size_t len, bool ok);
/* The cursor api_sink_next set, or NULL. */
const char *api_sink_cursor(const api_sink *s);
/* The root process's worker threads: the principal api_request_principal()
 * returns on this thread (NULL to clear). */
void api_request_principal_set(const api_principal *who);

/* {"error": {...}} for st; malloc'd. Never NULL unless out of memory. */
char *api_encode_error(const api_status *st, size_t *len);
/* One SSE record "id: N\nevent: T\ndata: {...}\n\n"; malloc'd or NULL. */
char *api_encode_event(const api_event *ev, size_t *len);
/* RFC 3339 UTC; buf >= 32 bytes. */
void api_format_time(int64_t t, char buf[32]);
/* Unix seconds of "YYYY-MM-DDTHH:MM:SSZ" (what api_format_time writes),
 * or -1 for anything else. */
int64_t api_parse_time(const char *s);

#endif /* SHOAL_API_CODEC_H */

/*
 * api.h - shoal REST API v1 server: the contract between the HTTP layer and
 * the daemon.
 *
 * The api module owns everything that touches HTTP: listening, TLS, bearer
 * auth, limits, routing, decoding request JSON into the C structs below (the
 * ONE place untrusted request input is parsed), encoding the backend's
 * results as the JSON shown in docs/api.md, Server-Sent Events and console
 * streaming, /healthz and the HTTP part of /metrics.
 *
 * The daemon implements `api_backend` (one function per operation) and starts
 * the server with api_server_start().
 *
 * Threading model
 * ---------------
 * libmicrohttpd runs with MHD_USE_THREAD_PER_CONNECTION (plus an internal
 * listening thread). Reasons:
 *   - backend calls may block (creating an instance waits on libvirt for about
 *     0.5 s, a drain can take longer); with a fixed thread pool a slow call
 *     would stall every other connection multiplexed on that pool thread;
 *   - event streams (SSE) and `console?follow=true` are long-lived; each holds
 *     its own thread and blocks in the backend with a bounded timeout, never
 *     delaying other clients;
 *   - keep-alive clients (the CLI, wrk) pay thread creation once per
 *     connection, so /healthz throughput stays close to bare libmicrohttpd
 *     (measured: see api/README.md).
 * The thread count is bounded by api_config.max_connections.
 *
 * Consequences for the backend:
 *   - every api_backend function may be called concurrently from many
 *     connection threads: it must be thread-safe;
 *   - any function may block, but api_server_stop() waits for in-flight
 *     requests, so blocking should be bounded (seconds, not minutes);
 *   - a handle returned by a *_begin/_open function (upload, console stream,
 *     event subscription) is only ever used by the one thread serving that
 *     connection, and is always released exactly once through its
 *     commit/abort/close function;
 *   - stream pull functions (console_read, events_next) are given a timeout
 *     (<= 1000 ms) and must return within it, so the api notices client
 *     disconnects and server shutdown.
 *
 * Ownership
 * ---------
 *   - Request structs passed to the backend (api_instance_spec, api_host_spec,
 *     api_upload_req, api_instance_filter, ...) and every string they point to
 *     are owned by the api and valid only for the duration of the call. Copy
 *     what you keep. An array whose count is 0 may be NULL (in both
 *     directions: the backend may also pass NULL with a count of 0).
 *   - Results go back through an api_sink: the backend calls api_sink_image(),
 *     api_sink_instance(), ... once per object. The struct passed and
 *     everything it points to need only stay valid until that sink call
 *     returns (the api encodes it immediately). Single-object operations must
 *     emit exactly one object; list operations emit zero or more and may set
 *     a cursor with api_sink_next().
 *
 * Errors
 * ------
 * Every backend function returns an api_code. API_OK means success; any other
 * code is sent to the client as {"error":{"code","message","field"}} with the
 * HTTP status of docs/api.md. Fill the message with api_status_set(), which
 * returns the code, so error paths read:
 *     return api_status_set(st, API_E_NOT_FOUND, "image",
 *                           "image '%s' not found", ref);
 * A backend function pointer left NULL answers 500 internal "not implemented".
 */
#ifndef SHOAL_API_H
#define SHOAL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Limits (also listed in docs/api.md, "Limits")                            */
/* ------------------------------------------------------------------------ */

#define API_NAME_MAX           63   /* instance/host/image name: [a-z0-9][a-z0-9_.-]{0,62} */
#define API_TAG_MAX            128  /* image tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
#define API_REF_MAX            200  /* NAME:TAG or sha256:HEX (71) */
#define API_ID_MAX             64   /* instance id or id prefix or name in a path */
#define API_LABEL_KEY_MAX      63   /* label key: [A-Za-z0-9][A-Za-z0-9_./-]{0,62} */
#define API_LABEL_VALUE_MAX    63   /* label value: [A-Za-z0-9_.:@+/-]{0,63} */
#define API_LABELS_MAX         32   /* labels per object */
#define API_ENV_KEY_MAX        127  /* env key: [A-Za-z_][A-Za-z0-9_]{0,126} */
#define API_ENV_VALUE_MAX      1024 /* env value: UTF-8, no NUL/control chars */
#define API_ENV_MAX            64   /* env pairs per instance */
#define API_ARG_MAX            1024 /* bytes per argument: UTF-8, no NUL/control chars */
#define API_ARGS_MAX           64   /* arguments per instance */
#define API_PORTS_MAX          16   /* port forwards per instance */
#define API_URI_MAX            1024 /* host URI: printable ASCII */
#define API_SELECTOR_TERMS_MAX 16   /* terms per label selector */
#define API_COUNT_MAX          1000 /* instances per create request */
#define API_MEMORY_MIB_MIN     16
#define API_MEMORY_MIB_MAX     65536
#define API_VCPUS_MAX          64
#define API_LIST_LIMIT_DEFAULT 100
#define API_LIST_LIMIT_MAX     1000
#define API_CURSOR_MAX         128  /* opaque list cursor: printable ASCII */
#define API_STOP_TIMEOUT_MAX   3600 /* timeout_s upper bound */
#define API_BULK_IDS_MAX       1000 /* "ids" per bulk request */
#define API_DIGEST_HEX         64   /* sha256 hex digits */
#define API_DIGEST_PREFIX_MIN  6    /* shortest digest prefix accepted */

/* Probes: "ready" and "health.probe" are probe specs of 1..API_PROBE_MAX
 * bytes; the health numbers run from 1 to these. */
#define API_PROBE_MAX           300
#define API_HEALTH_INTERVAL_MAX 3600
#define API_HEALTH_TIMEOUT_MAX  3600
#define API_HEALTH_RETRIES_MAX  100
#define API_CMDLINE_MAX         1024 /* "cmdline" override: template bytes */
#define API_IDLE_S_MIN          1    /* "scale_to_zero": {"idle_s"} bounds, seconds */
#define API_IDLE_S_MAX          86400

/* Defaults used when api_config leaves a field 0. */
#define API_DEFAULT_ADDR             "127.0.0.1"
#define API_DEFAULT_PORT             7878
#define API_DEFAULT_MAX_JSON_BODY    (1u << 20)     /* 1 MiB */
#define API_DEFAULT_MAX_UPLOAD       (256ull << 20) /* 256 MiB */
#define API_DEFAULT_MAX_HEADER       (32u << 10)    /* MHD memory per connection */
#define API_DEFAULT_MAX_CONNECTIONS  256
#define API_DEFAULT_CONN_TIMEOUT_S   30
#define API_DEFAULT_MAX_CONNS_PER_IP 64
#define API_DEFAULT_KEEPALIVE_S      15

/* ------------------------------------------------------------------------ */
/* Status                                                                   */
/* ------------------------------------------------------------------------ */

/* Error codes of docs/api.md, in contract order. Each maps to one HTTP status
 * (api_code_http) and one wire string (api_code_str). */
typedef enum api_code {
    API_OK = 0,                   /* success (HTTP status chosen per route) */
    API_E_BAD_REQUEST,            /* 400 bad_request: malformed JSON or query string */
    API_E_INVALID_FIELD,          /* 400 invalid_field: unknown/missing/wrong type/out of range */
    API_E_INVALID_IMAGE,          /* 422 invalid_image: uploaded image failed validation */
    API_E_UNAUTHORIZED,           /* 401 unauthorized: missing or wrong bearer token */
    API_E_NOT_FOUND,              /* 404 not_found: no such route or object */
    API_E_METHOD_NOT_ALLOWED,     /* 405 method_not_allowed */
    API_E_CONFLICT,               /* 409 conflict: name taken, in use, wrong state */
    API_E_TOO_LARGE,              /* 413 too_large: body over the limit */
    API_E_UNSUPPORTED_MEDIA_TYPE, /* 415 unsupported_media_type */
    API_E_INSUFFICIENT_CAPACITY, /* 507 insufficient_capacity: message names resource and shortfall */
    API_E_UNAVAILABLE,           /* 503 unavailable: host unreachable, shutting down */
    API_E_INTERNAL,              /* 500 internal: a bug; message says what failed */
    API_E_FORBIDDEN,      /* 403 forbidden: the token's scope or selector does not allow it */
    API_E_QUOTA_EXCEEDED, /* 403 quota_exceeded: message names the quota and the figures */
    API_E_RATE_LIMITED,   /* 429 rate_limited: the token's request rate; message names it,
                             Retry-After says when */
    API_CODE_COUNT_
} api_code;

#define API_MSG_MAX   256
#define API_FIELD_MAX 64

/* Outcome of one operation. Zero-initialise; api_status_set() fills it. */
typedef struct api_status {
    api_code code;             /* API_OK or the error */
    char message[API_MSG_MAX]; /* human message quoting the bad value; truncated if longer */
    char field[API_FIELD_MAX]; /* offending input field ("image", "ports[0].host"), "" if none */
    unsigned retry_after_s;    /* > 0: answered with "Retry-After: N" (429, 503); reset by
	                                  api_status_set */
} api_status;

/* Error from api_server_start() and other non-request calls. */
typedef struct api_err {
    char msg[API_MSG_MAX]; /* what failed, with the cause (errno text, TLS error) */
} api_err;

/* Set st (may be NULL) to code/field/printf-message; returns code.
 * field may be NULL. */
api_code api_status_set(api_status *st, api_code code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Wire string ("not_found") and HTTP status (404) of a code. API_OK gives
 * "ok"/200. Out-of-range codes give "internal"/500. */
const char *api_code_str(api_code code);
int api_code_http(api_code code);

/* Instance names (api/validate.c). An instance is looked up by id (12
 * lowercase hex digits), then by unique id prefix (4 or more of them), then
 * by name, so a name that could be an id or an id prefix would be hidden by
 * one: such names are refused when an instance is created. Shorter or
 * longer all-hex names ("db", "c1") can never be taken for an id.
 * api_name_like_id: s is API_INSTANCE_PREFIX_MIN..API_INSTANCE_ID_LEN
 * characters, all [0-9a-f].
 * api_check_instance_name: the name of POST /v1/instances (the NAME of
 * NAME-1..NAME-N when count > 1): the name rule, room for the -N suffix, not
 * like an id. API_OK, or API_E_INVALID_FIELD on field "name" with a message
 * quoting the name and saying why. */
#define API_INSTANCE_ID_LEN     12
#define API_INSTANCE_PREFIX_MIN 4
bool api_name_like_id(const char *s);
api_code api_check_instance_name(const char *name, uint32_t count, api_status *st);

/* ------------------------------------------------------------------------ */
/* Common value types                                                       */
/* ------------------------------------------------------------------------ */

/* One key/value pair (labels, env). Pointers follow the ownership rules above. */
typedef struct api_kv {
    const char *key;
    const char *value;
} api_kv;

/* Times are Unix seconds (UTC); API_TIME_NONE encodes as JSON null. The api
 * formats them as RFC 3339 ("2026-11-26T23:01:29Z"). */
#define API_TIME_NONE ((int64_t)0)

typedef enum api_restart {
    API_RESTART_NEVER = 0,  /* "never" (default) */
    API_RESTART_ON_FAILURE, /* "on-failure" */
    API_RESTART_ALWAYS      /* "always" */
} api_restart;

typedef enum api_instance_state {
    API_STATE_PENDING = 0, /* "pending": accepted, not yet started */
    API_STATE_STARTING,    /* "starting": domain created, guest not ready */
    API_STATE_RUNNING,     /* "running": guest reported ready */
    API_STATE_STOPPING,    /* "stopping" */
    API_STATE_STOPPED,     /* "stopped": by the operator */
    API_STATE_EXITED,      /* "exited": app returned, exit_code set */
    API_STATE_CRASHED,     /* "crashed": last_error says which fault */
    API_STATE_BACKOFF,     /* "backoff": waiting to be restarted */
    API_STATE_FAILED,      /* "failed": could not be started */
    API_STATE_LOST,        /* "lost": its domain vanished */
    API_STATE_IDLE,        /* "idle": scaled to zero; a connection wakes it */
    API_STATE_COUNT_
} api_instance_state;

typedef enum api_proto {
    API_PROTO_TCP = 0, /* "tcp" (default) */
    API_PROTO_UDP      /* "udp" */
} api_proto;

typedef enum api_domain_type {
    API_DOMAIN_AUTO = 0, /* "auto": kvm if a canary guest proves it works */
    API_DOMAIN_KVM,      /* "kvm" */
    API_DOMAIN_QEMU      /* "qemu" (TCG) */
} api_domain_type;

typedef enum api_action {
    API_ACTION_STOP = 0, /* POST /v1/instances/{id}/stop */
    API_ACTION_START,    /* POST /v1/instances/{id}/start */
    API_ACTION_RESTART,  /* POST /v1/instances/{id}/restart */
    API_ACTION_DELETE    /* bulk only: POST /v1/instances/delete */
} api_action;

/* Wire strings of the enums above; NULL for out-of-range values. */
const char *api_restart_str(api_restart r);
const char *api_state_str(api_instance_state s);
const char *api_proto_str(api_proto p);
const char *api_domain_type_str(api_domain_type d);
/* Parse a wire string; 0 on success, -1 if unknown. */
int api_state_parse(const char *s, api_instance_state *out);

/* One port forward. */
typedef struct api_port {
    uint16_t host;      /* host port, 1..65535 */
    uint16_t guest;     /* guest port, 1..65535 */
    api_proto protocol; /* default tcp */
} api_port;

/* Placement rules of an instance (see scheduler/scheduler.h for semantics). */
typedef enum api_rule_kind {
    API_RULE_HOST_AFFINITY = 0,  /* "host-affinity": the host carries the label */
    API_RULE_HOST_ANTI_AFFINITY, /* "host-anti-affinity": it does not */
    API_RULE_AFFINITY,           /* "affinity": share a host with an instance carrying it */
    API_RULE_ANTI_AFFINITY       /* "anti-affinity": never share one with such an instance */
} api_rule_kind;

#define API_RULES_MAX 16

typedef struct api_rule {
    api_rule_kind kind;
    const char *key;   /* label key (label key syntax) */
    const char *value; /* label value, or NULL for any value */
    bool soft;         /* preference only (default false: must hold) */
    uint32_t weight;   /* soft only, 1..1000 (default 1) */
} api_rule;

/* "host-affinity", ...; NULL for out-of-range values. */
const char *api_rule_kind_str(api_rule_kind k);

/* ------------------------------------------------------------------------ */
/* Label selectors                                                          */
/* ------------------------------------------------------------------------ */

typedef enum api_sel_op {
    API_SEL_EQ = 0, /* k=v   label k exists and equals v */
    API_SEL_NE,     /* k!=v  label k is absent or differs from v */
    API_SEL_HAS,    /* k     label k exists */
    API_SEL_LACKS   /* !k    label k does not exist */
} api_sel_op;

typedef struct api_sel_term {
    api_sel_op op;
    char key[API_LABEL_KEY_MAX + 1];     /* validated label key */
    char value[API_LABEL_VALUE_MAX + 1]; /* for EQ/NE; "" otherwise (an empty value is allowed) */
} api_sel_term;

/* Parsed selector; self-contained (no pointers), copy freely. n == 0 matches
 * everything. */
typedef struct api_selector {
    size_t n; /* number of terms */
    api_sel_term terms[API_SELECTOR_TERMS_MAX];
} api_selector;

/* Parse "k=v,k!=v,k,!k" into sel. Returns API_OK, or API_E_INVALID_FIELD
 * (field "selector") with a message quoting the bad term. */
api_code api_selector_parse(const char *text, api_selector *sel, api_status *st);

/* True when every term holds for the labels (n_labels pairs; labels may be
 * NULL when n_labels is 0). Thread-safe, no allocation. */
bool api_selector_match(const api_selector *sel, const api_kv *labels, size_t n_labels);

/* ------------------------------------------------------------------------ */
/* Requests (decoded and validated by the api; owned by the api)            */
/* ------------------------------------------------------------------------ */

/* POST /v1/instances. Every field is already validated against the limits
 * and defaults of docs/api.md. */
typedef struct api_instance_spec {
    const char *image;   /* required: NAME, NAME:TAG, sha256:HEX or hex prefix (backend resolves) */
    const char *name;    /* NULL = generated; with count > 1 instances are NAME-1..NAME-N
	                                  (the api checks NAME-N still fits the name rule) */
    uint32_t count;      /* 1..1000, default 1 */
    uint32_t memory_mib; /* 16..65536, default 32 */
    uint32_t vcpus;      /* 1..64, default 1 */
    const char *const *args; /* n_args strings */
    size_t n_args;
    const api_kv *env; /* n_env pairs, keys unique */
    size_t n_env;
    const api_kv *labels; /* n_labels pairs, keys unique */
    size_t n_labels;
    api_restart restart;   /* default never */
    const char *host;      /* NULL = scheduler chooses */
    bool network;          /* default true */
    const api_port *ports; /* n_ports; only with count 1 (api enforces) */
    size_t n_ports;
    bool spread;           /* "placement": {"policy": "spread"}; default binpack */
    const api_rule *rules; /* "placement": {"rules": [...]}, n_rules <= API_RULES_MAX */
    size_t n_rules;
    /* Probes (docs/shoald.md "Probes"). The api checks types, lengths and
     * ranges; the spec text itself is checked by the daemon (400 naming
     * "ready" or "health.probe"). */
    const char *ready;        /* "ready": probe spec, NULL = the default */
    const char *health_probe; /* "health": {"probe": ...}, NULL = no health checks */
    uint32_t health_interval_s, health_timeout_s, health_retries; /* 0 = default */
    /* "cmdline": a per-run override of the image's command line, a
     * template (1..API_CMDLINE_MAX bytes, no control characters; its
     * placeholders are checked by the daemon: 400 naming "cmdline"), NULL =
     * the image's profile */
    const char *cmdline;
    /* "initrd": a run's own initrd, "sha256:<64 lowercase hex>" of one
     * uploaded with POST /v1/initrds (the api checks the syntax; 404 when
     * it is not stored, 422 for a disk image), NULL = the image's */
    const char *initrd;
    /* "scale_to_zero": {"idle_s": API_IDLE_S_MIN..API_IDLE_S_MAX}: sleep
     * after that many seconds without a connection on the published ports
     * (the api requires a published tcp port); 0 = off */
    uint32_t idle_s;
    void *priv_; /* api-internal storage; do not touch */
} api_instance_spec;

/* POST /v1/hosts. */
typedef struct api_host_spec {
    const char *name;     /* required, name rule */
    const char *uri;      /* required, libvirt URI, printable ASCII */
    const api_kv *labels; /* n_labels pairs */
    size_t n_labels;
    api_domain_type domain_type; /* default auto */
    void *priv_;                 /* api-internal storage; do not touch */
} api_host_spec;

/* POST /v1/images?ref=...: parsed query of an upload. */
typedef struct api_upload_req {
    char name[API_NAME_MAX + 1]; /* image name */
    char tag[API_TAG_MAX + 1];   /* tag, "latest" when omitted */
    const api_kv *labels;        /* from repeated label=K=V, keys unique */
    size_t n_labels;
    const char *digest;      /* "sha256:<64 lowercase hex>" the upload must match, or NULL */
    const char *initrd;      /* POST /v1/images?initrd=: the stored initrd ("sha256:<hex>")
                                the image gets, or NULL */
    bool initrd_upload;      /* POST /v1/initrds: the body is an initrd, not an image
                                (name and tag empty); the committed object is
                                {digest, size, kind "initrd"} */
    uint64_t content_length; /* declared body size; 0 when unknown (chunked) */
} api_upload_req;

/* Pagination of every list route. */
typedef struct api_page {
    uint32_t limit;    /* 1..1000, default 100 */
    const char *after; /* cursor from a previous page's "next", or NULL */
} api_page;

/* GET /v1/images filters. */
typedef struct api_image_filter {
    const char *name;             /* only images with a ref of this name, or NULL */
    const api_selector *selector; /* never NULL; n == 0 matches all */
} api_image_filter;

/* GET /v1/instances filters. */
typedef struct api_instance_filter {
    const api_selector *selector; /* never NULL; n == 0 matches all */
    bool has_state;               /* filter on state */
    api_instance_state state;
    const char *host; /* only this host, or NULL */
} api_instance_filter;

/* Bulk requests: POST /v1/instances/{stop,start,restart,delete} and
 * DELETE /v1/instances?selector=. Exactly one of selector (n >= 1: an
 * empty selector never means "every instance") or ids (1..API_BULK_IDS_MAX
 * instance refs: id, id prefix or name) is set; the api refuses anything
 * else with 400. */
typedef struct api_bulk_req {
    const api_selector *selector; /* NULL when ids are given */
    const char *const *ids;       /* n_ids refs of 1..API_ID_MAX bytes (a ref
	                                  of no valid syntax simply names nothing) */
    size_t n_ids;
    int timeout_s; /* stop/restart: -1 = backend default */
    bool force;    /* delete: running instances too */
    void *priv_;   /* api-internal storage; do not touch */
} api_bulk_req;

/* ------------------------------------------------------------------------ */
/* Results (filled by the backend, passed to an api_sink)                   */
/* ------------------------------------------------------------------------ */

typedef struct api_image {
    const char *digest;      /* "sha256:<hex>" */
    uint64_t size;           /* bytes */
    const char *boot;        /* boot protocol, e.g. "pvh" */
    const char *const *refs; /* n_refs "name:tag" strings */
    size_t n_refs;
    const api_kv *labels;
    size_t n_labels;
    int64_t created;    /* Unix seconds */
    uint32_t instances; /* instances using it */
    /* What the image is (docs/imagestore.md); NULL strings encode as null. */
    const char *format;          /* "elf", "bin", "raw" or "qcow2" */
    const char *kind;            /* "shoal", "unikraft", "solo5", "pvh", "multiboot", "disk" */
    const char *const *evidence; /* n_evidence short strings the kind was judged from */
    size_t n_evidence;
    const char *firmware; /* boot profile: "qboot" or "seabios" */
    const char *cmdline;  /* boot profile: preset "shoal", "unikraft", "solo5" or "raw",
                             or the command line template itself */
    const char *exit;     /* boot profile: "status", "debug-exit" or "poweroff" */
    const char *ready;    /* boot profile: readiness probe, NULL (null) = the kind's default */
    const char *health;   /* boot profile: health probe, NULL (null) = none, with */
    uint32_t health_interval_s, health_timeout_s, health_retries; /* its numbers */
    uint32_t warm_pool;   /* guests kept booted for it (docs/shoald.md "Warm pools"), 0 = none */
    const char *initrd;   /* the image's initrd "sha256:<hex>", or NULL (encoded null) */
    uint64_t initrd_size; /* its bytes */
} api_image;

/* PATCH /v1/images/{ref}: profile fields to change, NULL to keep. Only
 * their JSON types are checked here; the values are checked in one place,
 * by the image store (an invalid one is 400 invalid_field naming it). */
typedef struct api_image_patch {
    const char *firmware; /* "qboot" | "seabios" */
    const char *cmdline;  /* a preset name or a template */
    const char *exit;     /* "status" | "debug-exit" | "poweroff" */
    /* Probes (docs/shoald.md "Probes"): the spec text is checked by the
     * daemon (400 naming "ready" or "health.*"). */
    const char *ready;        /* "ready": a probe spec; "" for null (back to
                                 the kind's default) */
    const char *health_probe; /* "health": {"probe": ...}; "" for null (no
                                 health probe); NULL with numbers: they change
                                 the stored probe's */
    uint32_t health_interval_s, health_timeout_s, health_retries; /* 0 = keep/default */
    bool warm_pool_set;                                           /* "warm_pool" given: */
    uint32_t warm_pool; /* the pool size; its bound and the image's kind are the store's */
    void *priv_;        /* api-internal storage; do not touch */
} api_image_patch;

typedef struct api_network {
    bool enabled;
    const char *address; /* "10.88.0.5/16" or NULL (null) */
    const char *gateway; /* or NULL */
    const char *mac;     /* or NULL */
    const api_port *ports;
    size_t n_ports;
} api_network;

/* One entry of an instance's "runs". */
typedef struct api_run {
    int64_t started;    /* Unix seconds, API_TIME_NONE = null */
    int64_t ended;      /* API_TIME_NONE = null (still running) */
    bool has_exit_code; /* false = null */
    int exit_code;
    const char *outcome; /* e.g. "exited", "crashed", "stopped", "failed"; NULL = null */
    const char *reason;  /* free text or NULL */
} api_run;

/* An instance's health (its "health" object). */
typedef struct api_health {
    const char *probe;       /* health probe spec, NULL (null) when none */
    uint32_t interval_s;     /* with a probe: seconds between checks, */
    uint32_t timeout_s;      /* seconds one may take, */
    uint32_t retries;        /* failures in a row that make it unhealthy */
    const char *status;      /* "none", "starting", "healthy", "unhealthy" */
    uint32_t failures;       /* checks failed in a row */
    int64_t last_check;      /* Unix s of the last check (readiness or health), API_TIME_NONE */
    const char *last_result; /* "http:80/: HTTP 200", NULL = null */
} api_health;

typedef struct api_instance {
    const char *id; /* 12 hex digits */
    const char *name;
    const char *image; /* ref as requested, "hello:latest" */
    const char *image_digest;
    const char *host; /* NULL = null (not placed yet) */
    api_instance_state state;
    uint32_t memory_mib;
    uint32_t vcpus;
    const char *const *args;
    size_t n_args;
    const api_kv *env;
    size_t n_env;
    const api_kv *labels;
    size_t n_labels;
    api_restart restart;
    uint32_t restarts;
    api_network network;
    int64_t created;    /* API_TIME_NONE = null */
    int64_t started;    /* API_TIME_NONE = null */
    double boot_ms;     /* < 0 = null */
    double ready_ms;    /* < 0 = null */
    bool has_exit_code; /* false = null */
    int exit_code;
    const char *last_error; /* NULL = null */
    bool spread;            /* placement policy spread (else binpack) */
    const api_rule *rules;  /* placement rules */
    size_t n_rules;
    const char *ready;        /* readiness probe spec, NULL = null */
    const char *cmdline;      /* per-run command line override, NULL = null */
    const char *initrd;       /* the run's own initrd "sha256:<hex>", NULL = null (the image's) */
    uint32_t idle_s;          /* "scale_to_zero": {"idle_s"}, 0 = null (off) */
    const api_health *health; /* NULL = null */
    bool has_runs;            /* include "runs" (GET /v1/instances/{id} only) */
    const api_run *runs;      /* last <= 10 runs, oldest first */
    size_t n_runs;
} api_instance;

typedef struct api_resources {
    uint64_t memory_mib;
    uint32_t vcpus;
    uint32_t slots;
} api_resources;

typedef struct api_host {
    const char *name;
    const char *uri;
    const char *state; /* "up", "down", "unreachable", ... */
    bool cordoned;
    const char *domain_type;        /* effective: "kvm" or "qemu" ("auto" until probed) */
    int kvm;                        /* KVM runs guests here: 1 yes, 0 no, -1 unknown (null) */
    const char *domain_type_reason; /* why that domain type (canary verdict), or NULL */
    const api_kv *labels;
    size_t n_labels;
    api_resources capacity;
    api_resources used;
    uint32_t instances;
    /* The capacity model's view (docs/shoald.md "Capacity"). */
    const char *capacity_model;    /* "measured" or "nominal" */
    uint64_t reserved_memory_mib;  /* kept for the host itself */
    uint64_t available_memory_mib; /* host's available memory; 0 = unknown (null) */
    uint64_t charged_cpu_milli;    /* CPU charged to its guests, 1/1000 CPU */
    uint64_t busy_cpu_milli;       /* CPU its guests used lately, 1/1000 CPU */
    int64_t sampled_ms_ago;        /* its guests last measured, ms ago; -1 = null */
    bool usage_stale;              /* those figures are too old to be current */
    /* What the host runs that is not shoal's (docs/shoald.md "Hosts that
     * run other things"), and what placement can still give. */
    uint32_t others_domains, others_vcpus;
    uint64_t others_memory_mib, others_cpu_milli;
    uint64_t free_memory_mib;
    /* Host failure (docs/shoald.md "Host failure and fencing"). */
    const char *last_error; /* why it is down; NULL = null */
    int64_t down_since;     /* Unix seconds it was first seen down; 0 = null (up) */
    /* Its guests' subnet "a.b.c.d/p" (docs/node.md "Remote hosts"); NULL =
     * null (no network, or a remote host's /24 not chosen yet). */
    const char *guest_subnet;
} api_host;

typedef struct api_move {
    const char *instance; /* instance id */
    const char *from;     /* host name */
    const char *to;       /* host name */
    /* Executed plans only: its outcome, as a bulk item's. */
    bool ok;
    api_code code;       /* when !ok: the error, as for a single request */
    const char *message; /* when !ok */
} api_move;

typedef struct api_plan {
    const api_move *moves;
    size_t n_moves;
    const char *const *hosts_freed;
    size_t n_hosts_freed;
    uint32_t hosts_before;
    uint32_t hosts_after;
    bool executed; /* false for dry runs; true: every move has its outcome
                      (ok, error) and "succeeded", "failed" count them */
} api_plan;

/* One instance's outcome in a bulk response. */
typedef struct api_bulk_item {
    const char *id;   /* full id; NULL (null) when the key did not resolve */
    const char *name; /* NULL (null) likewise */
    const char *key;  /* the ref as given in "ids"; NULL = omitted (selector) */
    bool ok;
    api_code code;       /* when !ok: the error, as for a single request */
    const char *message; /* when !ok */
} api_bulk_item;

#define API_EVENT_TYPE_MAX     32
#define API_EVENT_STR_MAX      256
#define API_EVENT_FAILURES_MAX 20 /* batch.progress: failed instances named */

/* One event (GET /v1/events). Fixed arrays: the backend copies into the
 * api-provided struct, no lifetime questions. Empty strings are omitted from
 * the data object; "id", "time" and "type" are always present. */
typedef struct api_event {
    uint64_t id;                     /* > 0, increasing */
    int64_t time;                    /* Unix seconds */
    char type[API_EVENT_TYPE_MAX];   /* "instance.state", "image.pushed", ... */
    char instance[API_ID_MAX + 1];   /* instance id */
    char name[API_NAME_MAX + 1];     /* instance or host name */
    char state[API_EVENT_TYPE_MAX];  /* instance or host state */
    char host[API_NAME_MAX + 1];     /* host name */
    char image[API_REF_MAX + 1];     /* image ref */
    char digest[API_REF_MAX + 1];    /* image digest */
    char message[API_EVENT_STR_MAX]; /* free text (last_error, reason) */
    char action[API_EVENT_TYPE_MAX]; /* bulk.progress: "stop", "delete", ...; audit: the method */
    char by[API_NAME_MAX + 1];       /* audit: the token's name */
    char path[API_EVENT_STR_MAX];    /* audit: the request path */
    int http_status;                 /* audit: the status answered; 0 = omitted */
    bool has_progress;               /* bulk.progress, batch.progress: done/total/failed set */
    uint32_t done, total, failed;
    /* instance.sleep / instance.wake (scale to zero): why it slept or what
     * woke it, wake request -> ready in ms (has_latency), why a wake failed */
    char reason[API_EVENT_STR_MAX];
    bool has_latency;
    int64_t latency_ms;
    char error[API_EVENT_STR_MAX];
    /* batch.progress (has_batch): the instances of one create request,
     * named by the id of the first; the failed ones (at most
     * API_EVENT_FAILURES_MAX of them) with where their run ended and why. */
    bool has_batch;
    char batch[API_ID_MAX + 1];
    uint32_t started, ready;
    bool final;
    size_t n_failures;
    struct {
        char instance[API_ID_MAX + 1];
        char name[API_NAME_MAX + 1];
        char state[API_EVENT_TYPE_MAX];
        char message[API_EVENT_STR_MAX];
    } failures[API_EVENT_FAILURES_MAX];
} api_event;

/* ------------------------------------------------------------------------ */
/* Tokens and scopes (docs/api.md "Authentication")                         */
/* ------------------------------------------------------------------------ */

/* What a token may do. Ordered: each scope allows what the one before does.
 *   READ_ONLY  every GET except /v1/tokens
 *   OPERATOR   instances and images (create, act, delete, upload, tag)
 *   ADMIN      everything: hosts, drain, consolidate, /v1/tokens
 * api_route_scope() (route.h) gives the scope each route needs. */
typedef enum api_scope { API_SCOPE_READ_ONLY = 0, API_SCOPE_OPERATOR, API_SCOPE_ADMIN } api_scope;

#define API_TOKEN_ID_LEN      12  /* hex digits of a token id */
#define API_TOKEN_SECRET_MAX  128 /* bytes of a presented bearer secret */
#define API_SELECTOR_TEXT_MAX 512

/* "read-only", "operator", "admin"; parse: 0 or -1. */
const char *api_scope_name(api_scope s);
int api_scope_parse(const char *s, api_scope *out);

/* Who a request is from: the token it authenticated with. Quotas are 0
 * when unlimited. selector is the token's label selector ("" = every
 * instance): instances outside it do not exist for this token. */
typedef struct api_principal {
    char id[API_TOKEN_ID_LEN + 1];
    char name[API_NAME_MAX + 1];
    api_scope scope;
    char selector[API_SELECTOR_TEXT_MAX + 1];
    uint32_t max_instances, max_memory_mib, max_vcpus;
    /* Requests per second and burst the api lets through for this token
     * (the server's per-token bucket, api/ratelimit.h); 0 = unlimited. */
    uint32_t rate, burst;
    /* Unix s the token expires, 0 = never. A backend refusing an expired
     * token (API_E_UNAUTHORIZED) fills name and expires so the answer can
     * say so ("token 'ci' expired at ..."); id and scope stay empty. */
    int64_t expires;
} api_principal;

/* The principal of the request the calling thread serves, during a
 * backend call (connection threads only); NULL elsewhere and on open
 * routes (/healthz). */
const api_principal *api_request_principal(void);

/* POST /v1/tokens body. */
typedef struct api_token_spec {
    char name[API_NAME_MAX + 1];                       /* required, api_valid_name */
    api_scope scope;                                   /* required */
    char selector[API_SELECTOR_TEXT_MAX + 1];          /* "" = none; syntax checked */
    uint32_t max_instances, max_memory_mib, max_vcpus; /* 0 = no quota */
    int64_t expires_at;  /* Unix s ("expires_at", RFC 3339), 0 = not given */
    uint32_t expires_in; /* seconds from the create ("expires_in"), 0 = not given; at most
                            one of the two */
    uint32_t rate;       /* requests per second ("rate"), 0 = unlimited */
    uint32_t burst;      /* "burst" (only with rate), 0 = as many as rate */
} api_token_spec;

/* A token as listed. secret is only set in the answer to its create. */
typedef struct api_token {
    const char *id;
    const char *name;
    api_scope scope;
    const char *selector; /* "" = none */
    uint32_t max_instances, max_memory_mib, max_vcpus;
    int64_t created;      /* Unix seconds */
    int64_t expires;      /* Unix seconds, API_TIME_NONE = never (null) */
    bool expired;         /* expires is past: the token is refused */
    uint32_t rate, burst; /* requests per second and burst, 0 = unlimited (null) */
    const char *secret;   /* NULL except at create */
    /* usage against the quotas (instances created by this token that exist) */
    uint32_t used_instances, used_memory_mib, used_vcpus;
} api_token;

/* ------------------------------------------------------------------------ */
/* Sink: how results reach the encoder                                      */
/* ------------------------------------------------------------------------ */

/* Opaque; created by the api per request, valid during the backend call. */
typedef struct api_sink api_sink;

/* Append one object. Return 0, or -1 when the sink refuses (out of memory,
 * wrong object type for this route, more than one object for a single-object
 * route); after -1 the backend should stop and return API_E_INTERNAL. */
int api_sink_image(api_sink *s, const api_image *img);
int api_sink_instance(api_sink *s, const api_instance *inst);
/* A backend that keeps instances rendered (GET /v1/instances from memory):
 * the JSON object api_sink_instance would append, malloc'd (*len bytes),
 * NULL when out of memory; and the append of such an object, as it was
 * encoded. */
char *api_encode_instance(const api_instance *inst, size_t *len);
int api_sink_instance_json(api_sink *s, const char *json, size_t len);
int api_sink_host(api_sink *s, const api_host *host);
int api_sink_plan(api_sink *s, const api_plan *plan);
/* Bulk routes: one item per instance; the api counts "succeeded" and
 * "failed" from the items. */
int api_sink_bulk_item(api_sink *s, const api_bulk_item *item);
/* /v1/tokens routes. */
int api_sink_token(api_sink *s, const api_token *tok);
/* Set the list's "next" cursor (printable ASCII, <= API_CURSOR_MAX bytes).
 * Not calling it, or passing NULL, gives "next": null. */
int api_sink_next(api_sink *s, const char *cursor);
/* /metrics only: append Prometheus text. */
int api_sink_printf(api_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------ */
/* Backend                                                                  */
/* ------------------------------------------------------------------------ */

/* Return values of the stream pull functions. */
#define API_STREAM_END   ((ssize_t)-1) /* no more data ever (instance stopped, shutting down) */
#define API_STREAM_ERROR ((ssize_t)-2) /* failure; the api closes the connection */

/*
 * One function per operation. ctx is the be_ctx given to api_server_start().
 * All called from connection threads (see the threading model above). Any
 * pointer may be NULL: the route then answers 500 "not implemented".
 */
typedef struct api_backend {
    /* --- images ---------------------------------------------------- */

    /* POST /v1/images: start an upload. On API_OK *upload is set; the api
	 * then calls image_upload_write zero or more times and finally exactly
	 * one of image_upload_commit or image_upload_abort. The api never
	 * buffers the body: each write gets the bytes libmicrohttpd just read
	 * (typically a few KiB to tens of KiB). The api enforces max_upload. */
    api_code (*image_upload_begin)(void *ctx, const api_upload_req *req, void **upload,
                                   api_status *st);
    /* Append len > 0 bytes. An error here aborts: the api then calls
	 * image_upload_abort. */
    api_code (*image_upload_write)(void *ctx, void *upload, const void *data, size_t len,
                                   api_status *st);
    /* Whole body received: validate (422 invalid_image on failure, also on
	 * digest mismatch), make visible, emit the image. Releases the upload
	 * whatever it returns. */
    api_code (*image_upload_commit)(void *ctx, void *upload, api_sink *out, api_status *st);
    /* Client went away, limit exceeded or write failed: discard. Releases
	 * the upload. */
    void (*image_upload_abort)(void *ctx, void *upload);

    /* GET /v1/images: emit matching images, set next cursor. */
    api_code (*image_list)(void *ctx, const api_image_filter *f, const api_page *page,
                           api_sink *out, api_status *st);
    /* GET /v1/images/{ref}: emit exactly one image. ref is syntax-checked
	 * (NAME, NAME:TAG, sha256:HEX, >= 6 hex digits). */
    api_code (*image_get)(void *ctx, const char *ref, api_sink *out, api_status *st);
    /* POST /v1/images/{ref}/tags: add or move new_ref (NAME:TAG, tag
	 * defaulted) to the image ref names; emit it. */
    api_code (*image_tag)(void *ctx, const char *ref, const char *new_ref, api_sink *out,
                          api_status *st);
    /* PATCH /v1/images/{ref}: change the image's stored boot profile
	 * (every name of it; instances see it at their next start); emit the
	 * image. Nothing changes unless every field is valid. */
    api_code (*image_patch)(void *ctx, const char *ref, const api_image_patch *p, api_sink *out,
                            api_status *st);
    /* DELETE /v1/images/{ref}: 409 while in use unless force. */
    api_code (*image_delete)(void *ctx, const char *ref, bool force, api_status *st);

    /* --- instances ------------------------------------------------- */

    /* POST /v1/instances: place the whole batch or nothing (507); emit
	 * every created instance. Must not wait for the guests to boot. */
    api_code (*instance_create)(void *ctx, const api_instance_spec *spec, api_sink *out,
                                api_status *st);
    api_code (*instance_list)(void *ctx, const api_instance_filter *f, const api_page *page,
                              api_sink *out, api_status *st);
    /* GET /v1/instances/{id}: id, unique id prefix or name; emit one
	 * instance with has_runs = true. */
    api_code (*instance_get)(void *ctx, const char *id, api_sink *out, api_status *st);
    /* stop/start/restart; timeout_s is the graceful-stop timeout for
	 * STOP/RESTART, -1 when the client gave none (backend default).
	 * Emit the instance. */
    api_code (*instance_action)(void *ctx, const char *id, api_action action, int timeout_s,
                                api_sink *out, api_status *st);
    /* DELETE /v1/instances/{id}: a running instance needs force (else 409). */
    api_code (*instance_delete)(void *ctx, const char *id, bool force, api_status *st);
    /* Bulk stop/start/restart/delete (API_ACTION_DELETE): resolve the
	 * selection once, act on every instance in parallel, emit one
	 * api_sink_bulk_item per instance (and per key that resolved to
	 * nothing). Per-instance failures are items, not an error: return
	 * API_OK whenever the request itself was valid. May take as long as
	 * the slowest instance's operation (a stop: up to timeout_s + ~15 s). */
    api_code (*instance_bulk)(void *ctx, const api_bulk_req *req, api_action action, api_sink *out,
                              api_status *st);

    /* GET /v1/instances/{id}/console. open: tail = last N bytes of the
	 * existing output (UINT64_MAX when not given = all retained output).
	 * read: copy up to len bytes into buf; returns bytes (> 0), 0 when
	 * nothing arrived within timeout_ms (only when following), API_STREAM_END
	 * at the end (not following: all retained output sent; following: the
	 * instance stopped), API_STREAM_ERROR on failure. close: release,
	 * always called once after a successful open. */
    api_code (*console_open)(void *ctx, const char *id, uint64_t tail, bool follow, void **stream,
                             api_status *st);
    ssize_t (*console_read)(void *ctx, void *stream, char *buf, size_t len, int timeout_ms);
    void (*console_close)(void *ctx, void *stream);

    /* --- hosts ----------------------------------------------------- */

    api_code (*host_list)(void *ctx, const api_page *page, api_sink *out, api_status *st);
    api_code (*host_get)(void *ctx, const char *name, api_sink *out, api_status *st);
    /* POST /v1/hosts: emit the new host (201). */
    api_code (*host_add)(void *ctx, const api_host_spec *spec, api_sink *out, api_status *st);
    /* POST /v1/hosts/{name}/cordon: emit the host. */
    api_code (*host_cordon)(void *ctx, const char *name, bool cordoned, api_sink *out,
                            api_status *st);
    /* POST /v1/hosts/{name}/drain: emit the plan (executed = !dry_run). */
    api_code (*host_drain)(void *ctx, const char *name, bool dry_run, api_sink *out,
                           api_status *st);
    /* DELETE /v1/hosts/{name}: 409 while it has instances. */
    api_code (*host_delete)(void *ctx, const char *name, api_status *st);
    /* POST /v1/consolidate: emit the plan. */
    api_code (*consolidate)(void *ctx, bool dry_run, api_sink *out, api_status *st);
    /* POST /v1/moves/stop: stop the drain or consolidation under way (204). */
    api_code (*moves_stop)(void *ctx, api_status *st);

    /* --- events ---------------------------------------------------- */

    /* GET /v1/events. open: has_since = client sent Last-Event-ID or
	 * ?since=; then every retained event with id > since comes first.
	 * next: wait up to timeout_ms; returns 1 and fills *ev, 0 on timeout,
	 * -1 when the stream ends (shutdown). close: release, always called
	 * once after a successful open. */
    api_code (*events_open)(void *ctx, bool has_since, uint64_t since, void **sub, api_status *st);
    int (*events_next)(void *ctx, void *sub, api_event *ev, int timeout_ms);
    void (*events_close)(void *ctx, void *sub);

    /* --- metrics --------------------------------------------------- */

    /* GET /metrics: append the daemon's Prometheus lines with
	 * api_sink_printf (shoal_instances, shoal_hosts, shoal_images,
	 * shoal_instance_ready_seconds). The api appends its own
	 * shoal_http_requests_total and shoal_http_request_duration_seconds. */
    api_code (*metrics_write)(void *ctx, api_sink *out, api_status *st);

    /* --- tokens (may all be NULL: then api_config.tokens are the only,
     * admin, tokens and /v1/tokens answers 500) ---------------------- */

    /* Every request but /healthz: secret is the bearer secret as sent
	 * (1..API_TOKEN_SECRET_MAX bytes). API_OK with *who filled, or
	 * API_E_UNAUTHORIZED (for an expired token with who->name and
	 * who->expires set, see api_principal). Must compare in constant
	 * time. The server then applies who->rate (429 rate_limited). */
    api_code (*authenticate)(void *ctx, const char *secret, api_principal *who);
    /* POST /v1/tokens: emit the new token with its secret (201). */
    api_code (*token_create)(void *ctx, const api_token_spec *spec, api_sink *out, api_status *st);
    /* GET /v1/tokens: emit every token (never a secret). */
    api_code (*token_list)(void *ctx, api_sink *out, api_status *st);
    /* DELETE /v1/tokens/{id}: id or name; effective for the next request. */
    api_code (*token_delete)(void *ctx, const char *id, api_status *st);
    /* After every state-changing request (any method but GET) that
	 * authenticated: who made it, method, path and the status answered. */
    void (*audit)(void *ctx, const api_principal *who, const char *method, const char *path,
                  int http_status);
} api_backend;

/* ------------------------------------------------------------------------ */
/* Server                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct api_config {
    const char *listen_addr;   /* numeric IPv4 or IPv6 literal; NULL = "127.0.0.1";
	                                  "::" listens dual-stack (IPv6 and IPv4) */
    uint16_t port;             /* 0 = ephemeral; read it back with api_server_port() */
    const char *tls_cert_path; /* PEM certificate; NULL with tls_key_path NULL = plain HTTP */
    const char *tls_key_path;  /* PEM private key */
    const char *const *tokens; /* accepted bearer tokens (copied), each the principal
	                                  "admin" with scope admin; n_tokens >= 1 unless the
	                                  backend has authenticate (tried first) */
    size_t n_tokens;
    size_t max_json_body;      /* bytes; 0 = API_DEFAULT_MAX_JSON_BODY */
    uint64_t max_upload;       /* bytes; 0 = API_DEFAULT_MAX_UPLOAD */
    size_t max_header;         /* MHD per-connection memory (request line +
	                                  headers must fit); 0 = API_DEFAULT_MAX_HEADER */
    unsigned max_connections;  /* 0 = API_DEFAULT_MAX_CONNECTIONS (= max threads) */
    unsigned conn_timeout_s;   /* idle timeout; 0 = API_DEFAULT_CONN_TIMEOUT_S.
	                                  Streaming responses are exempt (they send
	                                  keepalives / detect disconnects). */
    unsigned keepalive_s;      /* SSE keepalive period; 0 = API_DEFAULT_KEEPALIVE_S */
    unsigned max_conns_per_ip; /* connections at once from one client address (beyond it
	                                  MHD accepts and closes); 0 = API_DEFAULT_MAX_CONNS_PER_IP.
	                                  conn_timeout_s is also the header deadline: a request's
	                                  line and headers must be in within it of the connection's
	                                  start or the previous response (slowloris) */
    int listen_fd;             /* > 0: serve this listening socket (opened by shoald's root
	                                  process, docs/security.md "Privilege separation")
	                                  instead of binding listen_addr:port */
    const char *tls_cert_pem;  /* PEM text read beforehand (privilege separation: the front
	                                  cannot open the files); used instead of the paths */
    const char *tls_key_pem;
} api_config;

typedef struct api_server api_server;

/* Start listening. be must outlive the server; it is not copied (the table
 * pointer is kept). Returns 0 and sets *out, or -1 with err filled (bad
 * config, TLS files unreadable, bind failure). */
int api_server_start(const api_config *cfg, const api_backend *be, void *be_ctx, api_server **out,
                     api_err *err);

/* Bound port (useful with port 0). */
uint16_t api_server_port(const api_server *srv);

/* Stop accepting, end streams (they notice within ~1 s), wait for in-flight
 * requests, free. NULL is a no-op. Do not call from a backend callback. */
void api_server_stop(api_server *srv);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_API_H */

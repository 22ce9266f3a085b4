/*
 * chan.h - the privilege-separation channel (docs/security.md "Privilege
 * separation"): how shoald's unprivileged API front process (HTTP, TLS,
 * routing, JSON) and its root process talk over one socketpair.
 *
 * The front runs the api server with chan_client's api_backend: every
 * backend call becomes one request frame; the root process runs chan_server,
 * which parses the frame (chan_call_decode, the one parser of front input
 * in the root process), authenticates the bearer secret the frame carries,
 * checks the token's scope for the call and calls the real backend.
 *
 * Frames (both directions; host byte order, both ends are one binary on
 * one host):
 *     u32 len     payload bytes that follow the 16-byte header
 *     u16 type    chan_type
 *     u16 flags   0
 *     u32 id      call id chosen by the front; replies carry it back
 *     u32 zero    0
 * A payload is a sequence of fields, each a u32 length and that many bytes.
 * Field kinds: u32 (length 4), u64/i64 (8), bool (1, value 0 or 1), string
 * (length 0 = NULL, else the bytes plus one NUL, no NUL before it), bytes
 * (raw). Arrays are a u32 count and then their elements. A request's first
 * field is always the bearer secret; chan.c lists each call's fields
 * (encode and decode side by side). A frame must be consumed exactly: a
 * missing, extra, mistyped or oversized field refuses the whole frame.
 *
 * Replies (root -> front): zero or more CHAN_R_OBJECT frames (one result
 * object each, already encoded as JSON by the root's api sink: the front
 * copies them into its response), then one CHAN_R_DONE frame: code,
 * message, field, list cursor, handle, value, blob (a stream's bytes, an
 * event, a principal, metrics text), retry_after_s.
 *
 * Bounds: a request payload is at most CHAN_REQ_MAX bytes, a reply frame
 * CHAN_REP_MAX; upload and console chunks CHAN_CHUNK_MAX; the root serves
 * at most chan_server_opts.max_inflight calls at once (beyond: 503) on
 * pooled call workers (chan_server.c; 16 kept idle) and
 * holds at most CHAN_HANDLES_MAX open uploads/streams. A frame over a bound
 * or one that does not parse ends the channel (the root closes it; the
 * front exits and is started again).
 */
#ifndef SHOAL_API_CHAN_H
#define SHOAL_API_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define CHAN_HDR_LEN          16
#define CHAN_REQ_MAX          (256u << 10) /* request payload bytes (instance spec <= ~140 KiB) */
#define CHAN_REP_MAX          (4u << 20)   /* reply payload bytes (one object, or metrics text) */
#define CHAN_CHUNK_MAX        (64u << 10)  /* upload bytes per write, console bytes per read */
#define CHAN_HANDLES_MAX      4096         /* uploads/streams open at once in the root */
#define CHAN_INFLIGHT_DEFAULT 1040         /* calls at once: api-max-conns default + 16 */
#define CHAN_SEND_TIMEOUT_S   10 /* a reply the front does not take in 10 s ends the channel */

/* Call types: one per api_backend function (34), then the replies. */
typedef enum chan_type {
    CHAN_T_AUTHENTICATE = 1,
    CHAN_T_UPLOAD_BEGIN,
    CHAN_T_UPLOAD_WRITE,
    CHAN_T_UPLOAD_COMMIT,
    CHAN_T_UPLOAD_ABORT,
    CHAN_T_IMAGE_LIST,
    CHAN_T_IMAGE_GET,
    CHAN_T_IMAGE_TAG,
    CHAN_T_IMAGE_PATCH,
    CHAN_T_IMAGE_DELETE,
    CHAN_T_INSTANCE_CREATE,
    CHAN_T_INSTANCE_LIST,
    CHAN_T_INSTANCE_GET,
    CHAN_T_INSTANCE_ACTION,
    CHAN_T_INSTANCE_DELETE,
    CHAN_T_INSTANCE_BULK,
    CHAN_T_CONSOLE_OPEN,
    CHAN_T_CONSOLE_READ,
    CHAN_T_CONSOLE_CLOSE,
    CHAN_T_HOST_LIST,
    CHAN_T_HOST_GET,
    CHAN_T_HOST_ADD,
    CHAN_T_HOST_CORDON,
    CHAN_T_HOST_DRAIN,
    CHAN_T_HOST_DELETE,
    CHAN_T_CONSOLIDATE,
    CHAN_T_EVENTS_OPEN,
    CHAN_T_EVENTS_NEXT,
    CHAN_T_EVENTS_CLOSE,
    CHAN_T_METRICS,
    CHAN_T_TOKEN_CREATE,
    CHAN_T_TOKEN_LIST,
    CHAN_T_TOKEN_DELETE,
    CHAN_T_AUDIT,
    CHAN_T_MOVES_STOP,
    CHAN_T__COUNT,
    CHAN_R_OBJECT = 0x100, /* u32 ok (bulk items), bytes JSON */
    CHAN_R_DONE            /* see chan_done */
} chan_type;

/* Frame header, decoded. */
typedef struct chan_hdr {
    uint32_t len;
    uint16_t type;
    uint16_t flags;
    uint32_t id;
} chan_hdr;

/* Whole reads and writes on the channel socket (EINTR retried; writes
 * without SIGPIPE). 0, or -1 at EOF or on error. */
int chan_read_full(int fd, void *buf, size_t n);
int chan_send_full(int fd, const void *buf, size_t n);

void chan_hdr_put(unsigned char out[CHAN_HDR_LEN], const chan_hdr *h);
/* 0, or -1 when flags or the reserved word are not 0 or len is over max. */
int chan_hdr_get(const unsigned char in[CHAN_HDR_LEN], uint32_t max, chan_hdr *h);

/* ---- field writer (growable; oom sticks) -------------------------------- */

typedef struct chan_w {
    unsigned char *buf; /* frames: CHAN_HDR_LEN bytes of header room, then the payload */
    size_t len, cap;
    size_t start; /* where the frame being written begins */
    size_t done;  /* bytes of the frames finished so far (buf[0 .. done)) */
    bool oom;
} chan_w;

void chan_w_init(chan_w *w); /* reserves the header */
void chan_w_free(chan_w *w);
/* Several frames in one buffer, sent with one write: begin another frame
 * behind the finished ones (an unfinished one is dropped). */
void chan_w_next(chan_w *w);
/* Drop every frame, keep the memory; a new frame begins. */
void chan_w_reset(chan_w *w);
void chan_w_u32(chan_w *w, uint32_t v);
void chan_w_u64(chan_w *w, uint64_t v);
void chan_w_bool(chan_w *w, bool v);
void chan_w_str(chan_w *w, const char *s); /* NULL allowed */
void chan_w_bytes(chan_w *w, const void *p, size_t n);
/* Fill the header (type, id, len) of the frame being written; the frames
 * are then buf[0 .. len) (== done). -1 on oom or a payload over max. */
int chan_w_finish(chan_w *w, uint16_t type, uint32_t id, uint32_t max);

/* ---- strict field reader ------------------------------------------------ */

typedef struct chan_r {
    const unsigned char *p;
    size_t left;
    bool bad; /* a read failed: every later read fails too */
} chan_r;

void chan_r_init(chan_r *r, const void *payload, size_t len);
uint32_t chan_r_u32(chan_r *r);
uint64_t chan_r_u64(chan_r *r);
bool chan_r_bool(chan_r *r);
/* String of at most max bytes (NUL excluded); NULL for a NULL string. When
 * !nullable a NULL string marks the reader bad. Points into the payload. */
const char *chan_r_str(chan_r *r, size_t max, bool nullable);
/* Raw bytes, at most max; *n set. */
const void *chan_r_bytes(chan_r *r, size_t max, size_t *n);
/* True when nothing was bad and every byte was consumed. */
bool chan_r_done(const chan_r *r);

/* ---- requests ----------------------------------------------------------- */

/* One decoded request (root side). Strings point into the payload, which
 * must outlive it; arrays are allocated here (chan_call_clear). Which
 * members are set depends on type (chan.c lists them per call). */
typedef struct chan_call {
    chan_type type;
    const char *secret; /* every call: the bearer secret, 1..API_TOKEN_SECRET_MAX */
    uint32_t handle;    /* calls on an open upload or stream */
    const char *s1;     /* ref, id or name of the call's object */
    const char *s2;     /* image_tag: new ref; audit: method */
    const char *s3;     /* audit: path */
    bool flag;          /* force, cordoned, dry_run, follow, has_since */
    uint64_t u64;       /* tail, since */
    uint32_t u32;       /* len (console_read), timeout_ms, action, http status */
    int32_t i32;        /* timeout_s of an action */
    const void *data;   /* upload_write bytes */
    size_t data_len;
    api_selector sel;
    api_page page;
    api_upload_req upload;
    api_image_filter ifilter;
    api_instance_filter filter;
    api_image_patch patch;
    api_instance_spec spec;
    api_bulk_req bulk;
    api_host_spec host;
    api_token_spec token;
    /* storage */
    api_kv *kv_a, *kv_b;
    const char **strs;
    api_port *ports;
    api_rule *rules;
} chan_call;

/* Parse and validate the payload of a request of this type (the rules of
 * docs/api.md again: names, refs, labels, env, limits, enums). 0 with c
 * filled; -1 when the payload breaks the framing (a field past its end,
 * trailing bytes, an unknown type: the front is not to be trusted), or
 * CHAN_E_VALUE when it is well framed but a value breaks a rule (the
 * front's decoders let through what root refuses: answered 400, not a
 * reason to end the channel); why set either way, nothing to clear. */
#define CHAN_E_VALUE (-2)
int chan_call_decode(uint16_t type, const void *payload, size_t len, chan_call *c, char *why,
                     size_t whylen);
void chan_call_clear(chan_call *c);

/* The scope a call needs (the route's, api_route_scope); AUTHENTICATE and
 * AUDIT need only a valid token. */
api_scope chan_call_scope(chan_type t);

/* ---- reply -------------------------------------------------------------- */

/* CHAN_R_DONE, decoded (front side). Strings point into the payload. */
typedef struct chan_done {
    api_code code;
    const char *message, *field; /* "" allowed */
    const char *cursor;          /* list cursor or NULL */
    uint32_t handle;             /* begin/open: the new handle */
    int64_t value;               /* console_read: bytes or API_STREAM_*; events_next: 1/0/-1 */
    const void *blob;            /* console bytes, api_event, api_principal, metrics text */
    size_t blob_len;
    unsigned retry_after_s; /* api_status.retry_after_s */
} chan_done;

void chan_done_put(chan_w *w, const api_status *st, const char *cursor, uint32_t handle,
                   int64_t value, const void *blob, size_t blob_len);
int chan_done_get(const void *payload, size_t len, chan_done *d);

/* ---- the two ends ------------------------------------------------------- */

/* Root end: serves one channel until it ends. */
typedef struct chan_server_opts {
    unsigned max_inflight; /* calls at once; 0 = CHAN_INFLIGHT_DEFAULT */
} chan_server_opts;

/* Read and serve calls on fd (which it owns and closes) until EOF or a
 * malformed frame (shutdown(fd) from another thread ends it too). Calls
 * still running then finish on their own; the last one releases every
 * handle left open (uploads aborted, streams closed) and closes fd.
 * Returns 0 at EOF, -1 when the front broke the protocol (why set). */
int chan_server_run(int fd, const api_backend *be, void *be_ctx, const chan_server_opts *o,
                    char *why, size_t whylen);

/* Wait until no call of any channel is running (before the backend's
 * context goes away). */
void chan_server_wait_idle(void);

/* The root's call workers (pooled, shared by every channel; chan_server.c):
 * how many were ever started, are alive, wait idle now (tests). */
void chan_server_workers(unsigned long *started, unsigned *alive, unsigned *idle);

/* Front end: an api_backend whose calls go over fd. */
typedef struct chan_client chan_client;

/* Starts the reply reader thread. on_dead (may be NULL) is called once
 * from it when the channel ends. */
int chan_client_open(int fd, unsigned max_inflight, void (*on_dead)(void *), void *cls,
                     chan_client **out);
/* Ends the reader (shuts fd down), fails calls in flight, frees. */
void chan_client_close(chan_client *c);
/* The backend table; its ctx is the chan_client. */
const api_backend *chan_client_backend(void);

#endif

/* tokens.h - API tokens: kept hashed in shoald's state database, checked in
 * constant time, each with a scope, an optional label selector and optional
 * quotas (docs/api.md "Authentication", docs/security.md).
 *
 * A secret is TOK_SECRET_PREFIX and 64 hex digits (256 bits from
 * gnutls_rnd's key-level generator). The database keeps only SHA-256 of it:
 * a secret that random needs no salt or slow hash, and a stolen database
 * gives no usable bearer. The secret is shown once, by tok_create.
 *
 * The first-start admin token (STATE_DIR/admin.token, which the operator
 * reads) is the token named "admin" with scope admin: tok_open stores its
 * hash, replacing the stored one if the file changed. It cannot be revoked:
 * replace the file and restart shoald instead.
 *
 * Tables (state.c migrations 7 and 9): tokens(id, name, hash, scope,
 * selector, max_instances, max_memory_mib, max_vcpus, created_ms,
 * expires_ms, rate, burst) and
 * token_instances(instance -> instances(id) ON DELETE CASCADE, token): which
 * token created each instance that still exists, for the quotas. This
 * module uses its own connection to the database (WAL, busy timeout 5 s).
 *
 * Threading: every call is thread-safe. The store holds the tokens in
 * memory behind one mutex (a leaf lock: nothing is called with it held but
 * SQLite on this module's own connection); a create or revoke rewrites that
 * copy before it returns, so a revoked token fails its next request.
 *
 * Expiry and rate (issue 16): a token may expire (expires_ms, wall clock;
 * from then on tok_authenticate answers TOK_EEXPIRED) and may carry a
 * request rate with a burst, which the API server enforces per token
 * (api_principal.rate, 429). The admin token never expires and is never
 * limited.
 *
 * Errors: 0, TOK_ENOTFOUND, TOK_ECONFLICT (name taken), TOK_EREFUSED (the
 * admin token cannot be revoked), TOK_EEXPIRED, or -1 (SQLite, memory); the
 * message in err quotes the bad value.
 */
#ifndef SHOAL_TOKENS_H
#define SHOAL_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOK_ENOTFOUND (-2)
#define TOK_ECONFLICT (-3)
#define TOK_EREFUSED  (-4)
#define TOK_EEXPIRED                                                                               \
    (-5) /* tok_authenticate: the secret is a token's, but
                              that token expired */

#define TOK_ID_LEN        12 /* hex digits */
#define TOK_NAME_MAX      64 /* with the NUL */
#define TOK_SELECTOR_MAX  513
#define TOK_HASH_LEN      32 /* SHA-256 */
#define TOK_SECRET_PREFIX "shoal_"
#define TOK_SECRET_LEN    (6 + 64)
#define TOK_ADMIN_NAME    "admin"

/* Scopes, in api.h api_scope's order (backend.c checks). */
typedef enum { TOK_READ_ONLY = 0, TOK_OPERATOR, TOK_ADMIN } tok_scope;

/* One token, without its secret. Quotas are 0 when unlimited; selector ""
 * when none. */
typedef struct {
    char id[TOK_ID_LEN + 1];
    char name[TOK_NAME_MAX];
    tok_scope scope;
    char selector[TOK_SELECTOR_MAX];
    uint32_t max_instances, max_memory_mib, max_vcpus;
    int64_t created_ms; /* unix ms */
    int64_t expires_ms; /* unix ms, 0 = never */
    uint32_t rate;      /* requests per second, 0 = unlimited */
    uint32_t burst;     /* requests at once, 0 = rate */
} tok_info;

/* What a token's instances hold now (those it created that still exist,
 * whatever their state). */
typedef struct {
    uint32_t instances, memory_mib, vcpus;
} tok_usage;

typedef struct tok_store tok_store;

/* Open the tokens of the database at db_path (already migrated by
 * state_open) and make admin_secret the admin token's. */
int tok_open(const char *db_path, const char *admin_secret, tok_store **out, char *err,
             size_t errlen);
void tok_close(tok_store *ts); /* NULL ok */

/* SHA-256 of a secret. 0 or -1. */
int tok_hash(const char *secret, uint8_t out[TOK_HASH_LEN]);
/* n bytes equal? Time depends on n only, never on the contents. */
bool tok_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* Which token is this secret? Hashes it and compares the hash with every
 * token's, all of them, in constant time. 0 with *who, TOK_EEXPIRED with
 * *who (the token matched but its expiry is past), or TOK_ENOTFOUND. */
int tok_authenticate(tok_store *ts, const char *secret, tok_info *who);
/* Hash comparisons done so far (tests: a lookup compares with every token). */
uint64_t tok_compares(tok_store *ts);

/* Create a token from spec's name, scope, selector, quotas, expiry and
 * rate (id and created are assigned; the API refuses a past expiry). secret receives the new secret, *out the token. */
int tok_create(tok_store *ts, const tok_info *spec, char secret[TOK_SECRET_LEN + 1], tok_info *out,
               char *err, size_t errlen);
/* Every token, oldest first; free(*out). */
int tok_list(tok_store *ts, tok_info **out, size_t *n, char *err, size_t errlen);
/* Revoke by id or name. */
int tok_revoke(tok_store *ts, const char *key, tok_info *gone, char *err, size_t errlen);

/* Quotas. The check and the create it allows run under tok_quota_lock so
 * that two creates cannot both pass on the same headroom. */
void tok_quota_lock(tok_store *ts);
void tok_quota_unlock(tok_store *ts);
int tok_usage_get(tok_store *ts, const char *token_id, tok_usage *u);
/* Record that token_id created instance_id. */
int tok_record_creator(tok_store *ts, const char *instance_id, const char *token_id);

/* Would `count` more instances of memory_mib and vcpus each stay within
 * t's quotas given usage u? 0 if so; else -1 with which quota ("instances",
 * "memory_mib", "vcpus") in *quota and the message (limit, in use, asked)
 * in msg. Pure. */
int tok_quota_check(const tok_info *t, const tok_usage *u, uint32_t count, uint32_t memory_mib,
                    uint32_t vcpus, const char **quota, char *msg, size_t msglen);

#endif

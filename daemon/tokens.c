/* tokens.c - API tokens, hashed, in the state database. See tokens.h. */
#include "tokens.h"
#include "errbuf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sqlite3.h>

/* One token in memory: its record and the hash of its secret. */
typedef struct {
    tok_info info;
    uint8_t hash[TOK_HASH_LEN];
} tok_entry;

struct tok_store {
    sqlite3 *db;
    pthread_mutex_t mu; /* leaf: entries, n, compares, db */
    tok_entry *entries;
    size_t n;
    uint64_t compares;
    pthread_mutex_t quota_mu; /* held across a quota check and its create */
};

static const char *const SCOPE_NAMES[] = { "read-only", "operator", "admin" };

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int scope_parse(const char *s, tok_scope *out)
{
    for (int i = 0; i < 3; i++) {
        if (s != NULL && strcmp(s, SCOPE_NAMES[i]) == 0) {
            *out = (tok_scope)i;
            return 0;
        }
    }
    return -1;
}

int tok_hash(const char *secret, uint8_t out[TOK_HASH_LEN])
{
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, strlen(secret), out) == 0 ? 0 : -1;
}

bool tok_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Reload the in-memory copy from the database. Caller holds mu. */
static int reload(tok_store *ts, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    tok_entry *e = NULL, *ne;
    size_t n = 0, cap = 0;
    int rc = -1, step;

    if (sqlite3_prepare_v2(ts->db,
                           "SELECT id,name,hash,scope,selector,max_instances,max_memory_mib,"
                           "max_vcpus,created_ms,expires_ms,rate,burst FROM tokens"
                           " ORDER BY created_ms,id",
                           -1, &st, NULL) != SQLITE_OK) {
        errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
        return -1;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        tok_entry *x;
        const void *h = sqlite3_column_blob(st, 2);

        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ne = realloc(e, cap * sizeof *e);
            if (ne == NULL) {
                errbuf_set(err, errlen, "tokens: out of memory");
                goto out;
            }
            e = ne;
        }
        x = &e[n];
        memset(x, 0, sizeof *x);
        snprintf(x->info.id, sizeof x->info.id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(x->info.name, sizeof x->info.name, "%s", (const char *)sqlite3_column_text(st, 1));
        if (h == NULL || sqlite3_column_bytes(st, 2) != TOK_HASH_LEN)
            continue; /* never matches */
        memcpy(x->hash, h, TOK_HASH_LEN);
        if (scope_parse((const char *)sqlite3_column_text(st, 3), &x->info.scope) != 0)
            continue;
        snprintf(x->info.selector, sizeof x->info.selector, "%s",
                 (const char *)sqlite3_column_text(st, 4));
        x->info.max_instances = (uint32_t)sqlite3_column_int64(st, 5);
        x->info.max_memory_mib = (uint32_t)sqlite3_column_int64(st, 6);
        x->info.max_vcpus = (uint32_t)sqlite3_column_int64(st, 7);
        x->info.created_ms = sqlite3_column_int64(st, 8);
        x->info.expires_ms = sqlite3_column_int64(st, 9);
        x->info.rate = (uint32_t)sqlite3_column_int64(st, 10);
        x->info.burst = (uint32_t)sqlite3_column_int64(st, 11);
        n++;
    }
    if (step != SQLITE_DONE) {
        errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
        goto out;
    }
    free(ts->entries);
    ts->entries = e;
    ts->n = n;
    e = NULL;
    rc = 0;
out:
    free(e);
    sqlite3_finalize(st);
    return rc;
}

static int new_secret(char secret[TOK_SECRET_LEN + 1], uint8_t hash[TOK_HASH_LEN], char *id)
{
    uint8_t raw[32], idraw[TOK_ID_LEN / 2];

    if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof raw) != 0 ||
        gnutls_rnd(GNUTLS_RND_NONCE, idraw, sizeof idraw) != 0)
        return -1;
    memcpy(secret, TOK_SECRET_PREFIX, strlen(TOK_SECRET_PREFIX));
    hex(raw, sizeof raw, secret + strlen(TOK_SECRET_PREFIX));
    hex(idraw, sizeof idraw, id);
    gnutls_memset(raw, 0, sizeof raw);
    return tok_hash(secret, hash);
}

/* Insert one row. Caller holds mu. */
static int insert(tok_store *ts, const tok_info *t, const uint8_t hash[TOK_HASH_LEN], char *err,
                  size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1, step;

    if (sqlite3_prepare_v2(ts->db,
                           "INSERT INTO tokens(id,name,hash,scope,selector,max_instances,"
                           "max_memory_mib,max_vcpus,created_ms,expires_ms,rate,burst)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, TOK_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, SCOPE_NAMES[t->scope], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->selector, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, t->max_instances);
    sqlite3_bind_int64(st, 7, t->max_memory_mib);
    sqlite3_bind_int64(st, 8, t->max_vcpus);
    sqlite3_bind_int64(st, 9, t->created_ms);
    sqlite3_bind_int64(st, 10, t->expires_ms);
    sqlite3_bind_int64(st, 11, t->rate);
    sqlite3_bind_int64(st, 12, t->burst);
    step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT) {
        errbuf_set(err, errlen, "token name '%s' is taken", t->name);
        rc = TOK_ECONFLICT;
        goto out;
    }
    if (step != SQLITE_DONE)
        goto fail;
    rc = 0;
    goto out;
fail:
    errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
out:
    sqlite3_finalize(st);
    return rc;
}

/* Make admin_secret the admin token's. Caller holds mu. */
static int set_admin(tok_store *ts, const char *admin_secret, char *err, size_t errlen)
{
    uint8_t hash[TOK_HASH_LEN];
    char unused[TOK_SECRET_LEN + 1];
    sqlite3_stmt *st = NULL;
    tok_info t;
    int rc = -1;

    if (tok_hash(admin_secret, hash) != 0) {
        errbuf_set(err, errlen, "tokens: cannot hash the admin token");
        return -1;
    }
    if (sqlite3_prepare_v2(ts->db,
                           "UPDATE tokens SET hash=?,scope='admin',selector='',max_instances=0,"
                           "max_memory_mib=0,max_vcpus=0,expires_ms=0,rate=0,burst=0"
                           " WHERE name='" TOK_ADMIN_NAME "'",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_blob(st, 1, hash, TOK_HASH_LEN, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    if (sqlite3_changes(ts->db) == 0) {
        uint8_t ignored[TOK_HASH_LEN];
        memset(&t, 0, sizeof t);
        if (new_secret(unused, ignored, t.id) != 0) {
            errbuf_set(err, errlen, "tokens: no random bytes");
            goto out;
        }
        snprintf(t.name, sizeof t.name, TOK_ADMIN_NAME);
        t.scope = TOK_ADMIN;
        t.created_ms = wall_ms();
        rc = insert(ts, &t, hash, err, errlen);
        goto out;
    }
    rc = 0;
    goto out;
fail:
    errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
out:
    sqlite3_finalize(st);
    return rc;
}

int tok_open(const char *db_path, const char *admin_secret, tok_store **out, char *err,
             size_t errlen)
{
    tok_store *ts = calloc(1, sizeof *ts);

    *out = NULL;
    if (ts == NULL) {
        errbuf_set(err, errlen, "tokens: out of memory");
        return -1;
    }
    pthread_mutex_init(&ts->mu, NULL);
    pthread_mutex_init(&ts->quota_mu, NULL);
    if (sqlite3_open_v2(db_path, &ts->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        errbuf_set(err, errlen, "tokens: cannot open '%s': %s", db_path,
                   ts->db ? sqlite3_errmsg(ts->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(ts->db, 5000);
    sqlite3_exec(ts->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    pthread_mutex_lock(&ts->mu);
    if (set_admin(ts, admin_secret, err, errlen) != 0 || reload(ts, err, errlen) != 0) {
        pthread_mutex_unlock(&ts->mu);
        goto fail;
    }
    pthread_mutex_unlock(&ts->mu);
    *out = ts;
    return 0;
fail:
    tok_close(ts);
    return -1;
}

void tok_close(tok_store *ts)
{
    if (ts == NULL)
        return;
    sqlite3_close(ts->db);
    if (ts->entries != NULL)
        gnutls_memset(ts->entries, 0, ts->n * sizeof *ts->entries);
    free(ts->entries);
    pthread_mutex_destroy(&ts->mu);
    pthread_mutex_destroy(&ts->quota_mu);
    free(ts);
}

int tok_authenticate(tok_store *ts, const char *secret, tok_info *who)
{
    uint8_t hash[TOK_HASH_LEN];
    size_t hit = SIZE_MAX;

    if (tok_hash(secret, hash) != 0)
        return -1;
    pthread_mutex_lock(&ts->mu);
    /* every entry, no early exit: the time says nothing of which matched */
    for (size_t i = 0; i < ts->n; i++) {
        bool eq = tok_ct_equal(hash, ts->entries[i].hash, TOK_HASH_LEN);
        ts->compares++;
        if (eq)
            hit = i;
    }
    if (hit != SIZE_MAX)
        *who = ts->entries[hit].info;
    pthread_mutex_unlock(&ts->mu);
    if (hit == SIZE_MAX)
        return TOK_ENOTFOUND;
    return who->expires_ms != 0 && wall_ms() >= who->expires_ms ? TOK_EEXPIRED : 0;
}

uint64_t tok_compares(tok_store *ts)
{
    uint64_t n;

    pthread_mutex_lock(&ts->mu);
    n = ts->compares;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

int tok_create(tok_store *ts, const tok_info *spec, char secret[TOK_SECRET_LEN + 1], tok_info *out,
               char *err, size_t errlen)
{
    uint8_t hash[TOK_HASH_LEN];
    tok_info t = *spec;
    int rc;

    if ((unsigned)t.scope > TOK_ADMIN) {
        errbuf_set(err, errlen, "scope %d is not a scope", (int)t.scope);
        return -1;
    }
    if (new_secret(secret, hash, t.id) != 0) {
        errbuf_set(err, errlen, "tokens: no random bytes");
        return -1;
    }
    t.created_ms = wall_ms();
    pthread_mutex_lock(&ts->mu);
    rc = insert(ts, &t, hash, err, errlen);
    if (rc == 0)
        rc = reload(ts, err, errlen);
    pthread_mutex_unlock(&ts->mu);
    if (rc == 0 && out != NULL)
        *out = t;
    if (rc != 0)
        gnutls_memset(secret, 0, TOK_SECRET_LEN + 1);
    return rc;
}

int tok_list(tok_store *ts, tok_info **out, size_t *n, char *err, size_t errlen)
{
    pthread_mutex_lock(&ts->mu);
    *n = ts->n;
    *out = calloc(ts->n + 1, sizeof **out);
    if (*out == NULL) {
        pthread_mutex_unlock(&ts->mu);
        errbuf_set(err, errlen, "tokens: out of memory");
        return -1;
    }
    for (size_t i = 0; i < ts->n; i++)
        (*out)[i] = ts->entries[i].info;
    pthread_mutex_unlock(&ts->mu);
    return 0;
}

int tok_revoke(tok_store *ts, const char *key, tok_info *gone, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    size_t i;
    int rc = -1;

    pthread_mutex_lock(&ts->mu);
    for (i = 0; i < ts->n; i++) {
        if (strcmp(ts->entries[i].info.id, key) == 0)
            break;
    }
    if (i == ts->n) {
        for (i = 0; i < ts->n; i++) {
            if (strcmp(ts->entries[i].info.name, key) == 0)
                break;
        }
    }
    if (i == ts->n) {
        errbuf_set(err, errlen, "token '%s' not found", key);
        rc = TOK_ENOTFOUND;
        goto out;
    }
    if (strcmp(ts->entries[i].info.name, TOK_ADMIN_NAME) == 0) {
        errbuf_set(err, errlen,
                   "the admin token cannot be revoked (replace STATE_DIR/admin.token and restart "
                   "shoald to change it)");
        rc = TOK_EREFUSED;
        goto out;
    }
    if (gone != NULL)
        *gone = ts->entries[i].info;
    if (sqlite3_prepare_v2(ts->db, "DELETE FROM tokens WHERE id=?", -1, &st, NULL) != SQLITE_OK) {
        errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
        goto out;
    }
    sqlite3_bind_text(st, 1, ts->entries[i].info.id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) {
        errbuf_set(err, errlen, "tokens: %s", sqlite3_errmsg(ts->db));
        goto out;
    }
    rc = reload(ts, err, errlen);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ts->mu);
    return rc;
}

void tok_quota_lock(tok_store *ts)
{
    pthread_mutex_lock(&ts->quota_mu);
}

void tok_quota_unlock(tok_store *ts)
{
    pthread_mutex_unlock(&ts->quota_mu);
}

int tok_usage_get(tok_store *ts, const char *token_id, tok_usage *u)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    memset(u, 0, sizeof *u);
    pthread_mutex_lock(&ts->mu);
    if (sqlite3_prepare_v2(ts->db,
                           "SELECT COUNT(*),COALESCE(SUM(i.memory_mib),0),COALESCE(SUM(i.vcpus),0)"
                           " FROM token_instances t JOIN instances i ON i.id=t.instance"
                           " WHERE t.token=?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, token_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    u->instances = (uint32_t)sqlite3_column_int64(st, 0);
    u->memory_mib = (uint32_t)sqlite3_column_int64(st, 1);
    u->vcpus = (uint32_t)sqlite3_column_int64(st, 2);
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ts->mu);
    return rc;
}

int tok_record_creator(tok_store *ts, const char *instance_id, const char *token_id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    pthread_mutex_lock(&ts->mu);
    if (sqlite3_prepare_v2(ts->db,
                           "INSERT OR REPLACE INTO token_instances(instance,token) VALUES(?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, token_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ts->mu);
    return rc;
}

int tok_quota_check(const tok_info *t, const tok_usage *u, uint32_t count, uint32_t memory_mib,
                    uint32_t vcpus, const char **quota, char *msg, size_t msglen)
{
    struct {
        const char *name;
        uint32_t max;
        uint64_t used, asked;
    } q[3] = {
        { "instances", t->max_instances, u->instances, count },
        { "memory_mib", t->max_memory_mib, u->memory_mib, (uint64_t)count * memory_mib },
        { "vcpus", t->max_vcpus, u->vcpus, (uint64_t)count * vcpus },
    };

    for (int i = 0; i < 3; i++) {
        if (q[i].max == 0 || q[i].used + q[i].asked <= q[i].max)
            continue;
        *quota = q[i].name;
        snprintf(msg, msglen,
                 "token '%s' is over its %s quota: %" PRIu64 " in use + %" PRIu64
                 " asked > %" PRIu32 " allowed",
                 t->name, q[i].name, q[i].used, q[i].asked, q[i].max);
        return -1;
    }
    return 0;
}

/* pages.c - GET /v1/instances from memory: every instance's rendering (the
 * adapter's JSON object, opaque here) kept in list order with what the
 * filters need, brought up to date before each page from the rows SQLite
 * says were written since (state_inst_changes) and from the probe
 * engine's health versions of the rows the page shows. A page then costs
 * a walk and a copy per row instead of a SQLite read and an encode.
 *
 * Lock: pg_mu (fleet.pg_mu), taken by API threads with no fleet lock held;
 * inside it the state db's lock (reads) and the probe engine's lock; the
 * renderer runs under it. See fleet_int.h LOCKS. */
#include "fleet_int.h"

#include <stdlib.h>
#include <string.h>

#include "probe.h"

struct fleet_pg_row {
    int64_t rowid;
    int64_t created_ms;
    char id[STATE_ID_LEN + 1];
    char host[STATE_NAME_MAX];
    state_inst_state state;
    uint64_t hver; /* the health version the rendering shows */
    char *labels;  /* JSON object text, for selectors */
    char *data;    /* the rendering */
    size_t len;
};

static void row_free(fleet_pg_row *r)
{
    if (!r)
        return;
    free(r->labels);
    free(r->data);
    free(r);
}

static void rows_clear(fleet *f)
{
    for (size_t i = 0; i < f->pg_n; i++)
        row_free(f->pg_rows[i]);
    f->pg_n = 0;
}

void fleet_pages_free(fleet *f)
{
    rows_clear(f);
    free(f->pg_rows);
    f->pg_rows = NULL;
    f->pg_cap = 0;
}

static int order(int64_t ca, const char *ia, int64_t cb, const char *ib)
{
    return ca < cb ? -1 : ca > cb ? 1 : strcmp(ia, ib);
}

/* Where (created, id) is or goes in the list. */
static size_t slot_of(fleet *f, int64_t created, const char *id)
{
    size_t lo = 0, hi = f->pg_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (order(f->pg_rows[mid]->created_ms, f->pg_rows[mid]->id, created, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Render `in` (with its health now) into r; -1 if the renderer failed. */
static int render(fleet *f, fleet_pg_row *r, const state_instance *in, fleet_render_fn fn,
                  void *ctx)
{
    fleet_health h;
    char *data = NULL, *labels = strdup(in->labels_json ? in->labels_json : "{}");
    size_t len = 0;

    fleet_instance_health(f, in, &h);
    if (!labels || fn(ctx, in, &h, &data, &len) != 0) {
        free(labels);
        free(data);
        return -1;
    }
    free(r->labels);
    free(r->data);
    r->labels = labels;
    r->data = data;
    r->len = len;
    r->hver = h.version;
    r->rowid = in->rowid;
    r->created_ms = in->created_ms;
    r->state = in->state;
    fleet_text_copy(r->id, sizeof r->id, in->id);
    fleet_text_copy(r->host, sizeof r->host, in->host);
    return 0;
}

static int insert_at(fleet *f, size_t i, fleet_pg_row *r)
{
    if (f->pg_n == f->pg_cap) {
        size_t cap = f->pg_cap ? f->pg_cap * 2 : 256;
        fleet_pg_row **n = realloc(f->pg_rows, cap * sizeof *n);
        if (!n)
            return -1;
        f->pg_rows = n;
        f->pg_cap = cap;
    }
    memmove(&f->pg_rows[i + 1], &f->pg_rows[i], (f->pg_n - i) * sizeof *f->pg_rows);
    f->pg_rows[i] = r;
    f->pg_n++;
    return 0;
}

static void remove_at(fleet *f, size_t i)
{
    row_free(f->pg_rows[i]);
    memmove(&f->pg_rows[i], &f->pg_rows[i + 1], (f->pg_n - i - 1) * sizeof *f->pg_rows);
    f->pg_n--;
}

/* Every row again, from one read of the table. */
static int reload(fleet *f, fleet_render_fn fn, void *ctx)
{
    state_instance *all = NULL;
    size_t n = 0;
    char err[256];
    int rc = -1;

    rows_clear(f);
    if (state_inst_list(f->db, &all, &n, err, sizeof err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        fleet_pg_row *r = calloc(1, sizeof *r);
        if (!r || render(f, r, &all[i], fn, ctx) != 0 || insert_at(f, f->pg_n, r) != 0) {
            row_free(r);
            goto out;
        }
    }
    rc = 0;
out:
    state_inst_array_free(all, n);
    return rc;
}

/* Row `rowid` as SQLite has it now: updated, added, moved or gone. */
static int refresh_row(fleet *f, int64_t rowid, fleet_render_fn fn, void *ctx)
{
    state_instance in;
    fleet_pg_row *r = NULL;
    size_t i;
    int found = state_inst_get_rowid(f->db, rowid, &in), rc = -1;

    if (found < 0)
        return -1;
    /* where it is: at its (created, id) slot when both are unchanged (a
     * row's usual write), else found by a walk (gone, or replaced) */
    i = found ? slot_of(f, in.created_ms, in.id) : f->pg_n;
    if (i >= f->pg_n || f->pg_rows[i]->rowid != rowid)
        for (i = 0; i < f->pg_n && f->pg_rows[i]->rowid != rowid; i++)
            ;
    if (i < f->pg_n) {
        if (found && f->pg_rows[i]->created_ms == in.created_ms &&
            !strcmp(f->pg_rows[i]->id, in.id)) {
            rc = render(f, f->pg_rows[i], &in, fn, ctx); /* in place */
            goto out;
        }
        remove_at(f, i);
    }
    rc = 0;
    if (!found)
        goto out;
    rc = -1;
    if (!(r = calloc(1, sizeof *r)) || render(f, r, &in, fn, ctx) != 0)
        goto out;
    i = slot_of(f, in.created_ms, in.id);
    if (i < f->pg_n && !strcmp(f->pg_rows[i]->id, in.id))
        remove_at(f, i); /* the same id under another rowid: that one is gone */
    if (insert_at(f, i, r) != 0)
        goto out;
    r = NULL;
    rc = 0;
out:
    row_free(r);
    if (found > 0)
        state_inst_free(&in);
    return rc;
}

/* Bring the list up to date with what SQLite says was written. */
static int sync_rows(fleet *f, fleet_render_fn fn, void *ctx)
{
    int64_t *rowids = NULL;
    size_t n = 0;
    int all = 1, rc = 0;

    if (state_inst_changes(f->db, &rowids, &n, &all) != 0)
        f->pg_loaded = 0;
    if (!f->pg_loaded || all || n > f->pg_n / 2 + 16) {
        rc = reload(f, fn, ctx);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = refresh_row(f, rowids[i], fn, ctx);
    }
    free(rowids);
    /* a failure leaves the journal drained: start from the table next time */
    f->pg_loaded = rc == 0;
    return rc;
}

int fleet_instance_page_rendered(fleet *f, const char *after, int state, const char *host,
                                 fleet_labels_match match, void *mctx, size_t limit,
                                 fleet_render_fn fn, void *rctx, fleet_emit_fn emit, void *ectx,
                                 char last_id[STATE_ID_LEN + 1], int *more, fleet_err *e)
{
    size_t *sel = calloc(limit + 1, sizeof *sel), cnt = 0, start = 0;
    const char **ids = calloc(limit + 1, sizeof *ids);
    uint64_t *vers = calloc(limit + 1, sizeof *vers);
    int rc = FLEET_OK, tries = 0, stale;

    *more = 0;
    if (!sel || !ids || !vers) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&f->pg_mu);
    if (f->pg_render != fn || f->pg_render_ctx != rctx) {
        f->pg_render = fn;
        f->pg_render_ctx = rctx;
        f->pg_loaded = 0;
    }
again:
    cnt = 0;
    *more = 0;
    if (sync_rows(f, fn, rctx) != 0) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "cannot read the instances");
        goto out;
    }
    if (after) {
        for (start = 0; start < f->pg_n && strcmp(f->pg_rows[start]->id, after); start++)
            ;
        if (start == f->pg_n) {
            rc = fleet_err_set(e, FLEET_E_INVALID, "after", "unknown cursor '%s'", after);
            goto out;
        }
        start++;
    }
    /* the filters of state_inst_page (its state is the text's: a row's
     * state always parses, state.c writes no other) */
    for (size_t i = start; i < f->pg_n; i++) {
        const fleet_pg_row *r = f->pg_rows[i];
        if ((state >= 0 && (int)r->state != state) || (host && strcmp(r->host, host)) ||
            (match && !match(r->labels, mctx)))
            continue;
        if (cnt == limit) {
            *more = 1;
            break;
        }
        ids[cnt] = r->id;
        sel[cnt++] = i;
    }
    /* Health changes outside the row (probe results): render those rows
     * again. One whose row changed since the sync (its filters may no
     * longer hold; the journal has it) makes the page again, twice at
     * most: then the page is what the sync saw. */
    probe_health_versions(f->probes, ids, cnt, vers);
    stale = 0;
    for (size_t k = 0; k < cnt; k++) {
        fleet_pg_row *r = f->pg_rows[sel[k]];
        state_instance in;
        int got;
        if (vers[k] == r->hver)
            continue;
        got = state_inst_get_rowid(f->db, r->rowid, &in);
        if (got <= 0 || in.state != r->state || strcmp(in.host, r->host) ||
            strcmp(in.labels_json, r->labels) || render(f, r, &in, fn, rctx) != 0)
            stale = 1;
        if (got > 0)
            state_inst_free(&in);
    }
    if (stale && ++tries < 3)
        goto again;
    for (size_t k = 0; k < cnt; k++) {
        const fleet_pg_row *r = f->pg_rows[sel[k]];
        if (emit(ectx, r->data, r->len) != 0) {
            rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "cannot encode instance");
            goto out;
        }
    }
out:
    /* set last: `after` may be the caller's last_id */
    fleet_text_copy(last_id, STATE_ID_LEN + 1,
                    rc == FLEET_OK && cnt ? f->pg_rows[sel[cnt - 1]]->id : "");
    pthread_mutex_unlock(&f->pg_mu);
done:
    if (rc != FLEET_OK)
        last_id[0] = 0;
    free(sel);
    free(ids);
    free(vers);
    return rc;
}

/* fake_backend.c - in-memory api_backend for tests (see fake_backend.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_backend.h"

#define NOW ((int64_t)1795734089) /* 2026-11-26T23:01:29Z */

void fake_init(fake *f)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    f->next_id = 0x3f9a1c2b7d00ull;
    f->next_event = 1;
    f->console_lines = 3;
    f->console_follow_lines = 5;
    snprintf(f->hosts[0].name, sizeof f->hosts[0].name, "local");
    snprintf(f->hosts[0].uri, sizeof f->hosts[0].uri, "qemu:///embed?root=/var/lib/shoal/libvirt");
    f->hosts[0].used = true;
}

void fake_destroy(fake *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

static uint64_t emit_locked(fake *f, const char *type, const char *instance, const char *state)
{
    api_event *ev;

    if (f->n_events == FAKE_MAX_EVENTS) {
        memmove(f->events, f->events + 1, (FAKE_MAX_EVENTS - 1) * sizeof f->events[0]);
        f->n_events--;
    }
    ev = &f->events[f->n_events++];
    memset(ev, 0, sizeof *ev);
    ev->id = f->next_event++;
    ev->time = NOW;
    snprintf(ev->type, sizeof ev->type, "%s", type);
    if (instance != NULL)
        snprintf(ev->instance, sizeof ev->instance, "%s", instance);
    if (state != NULL)
        snprintf(ev->state, sizeof ev->state, "%s", state);
    snprintf(ev->host, sizeof ev->host, "local");
    pthread_cond_broadcast(&f->cv);
    return ev->id;
}

uint64_t fake_emit(fake *f, const char *type, const char *instance, const char *state)
{
    uint64_t id;

    pthread_mutex_lock(&f->mu);
    id = emit_locked(f, type, instance, state);
    pthread_mutex_unlock(&f->mu);
    return id;
}

void fake_close_streams(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->closing = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---- images ------------------------------------------------------------- */

typedef struct upload {
    api_upload_req req;
    char name[API_NAME_MAX + 1], tag[API_TAG_MAX + 1];
    char lkey[FAKE_MAX_LABELS][API_LABEL_KEY_MAX + 1];
    char lval[FAKE_MAX_LABELS][API_LABEL_VALUE_MAX + 1];
    size_t n_labels;
    char digest[80];
    uint64_t hash, size;
    unsigned char head[4];
} upload;

static api_code up_begin(void *ctx, const api_upload_req *req, void **out, api_status *st)
{
    fake *f = ctx;
    upload *u = calloc(1, sizeof *u);
    size_t i;

    atomic_fetch_add(&f->calls, 1);
    if (u == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "oom");
    memcpy(u->name, req->name, sizeof u->name);
    memcpy(u->tag, req->tag, sizeof u->tag);
    for (i = 0; i < req->n_labels && i < FAKE_MAX_LABELS; i++) {
        snprintf(u->lkey[i], sizeof u->lkey[i], "%s", req->labels[i].key);
        snprintf(u->lval[i], sizeof u->lval[i], "%s", req->labels[i].value);
    }
    u->n_labels = i;
    if (req->digest != NULL)
        snprintf(u->digest, sizeof u->digest, "%s", req->digest);
    u->hash = 1469598103934665603ull;
    atomic_fetch_add(&f->streams_open, 1);
    *out = u;
    return API_OK;
}

static api_code up_write(void *ctx, void *h, const void *data, size_t len, api_status *st)
{
    fake *f = ctx;
    upload *u = h;
    const unsigned char *p = data;
    unsigned long prev;
    size_t i;

    (void)st;
    atomic_fetch_add(&f->upload_writes, 1);
    prev = atomic_load(&f->upload_max_chunk);
    while (len > prev && !atomic_compare_exchange_weak(&f->upload_max_chunk, &prev, len))
        ;
    for (i = 0; i < len; i++) {
        if (u->size + i < 4)
            u->head[u->size + i] = p[i];
        u->hash = (u->hash ^ p[i]) * 1099511628211ull;
    }
    u->size += len;
    return API_OK;
}

static void up_abort(void *ctx, void *h)
{
    fake *f = ctx;

    if (h == NULL)
        return;
    atomic_fetch_add(&f->upload_aborts, 1);
    atomic_fetch_sub(&f->streams_open, 1);
    free(h);
}

static void fill_image(const fake_image *im, api_image *out, const char **refs, api_kv *labels,
                       uint32_t instances)
{
    static const char *const evidence[] = { "note shoal.guest", "note Xen.PHYS32_ENTRY (pvh)" };
    size_t i;

    memset(out, 0, sizeof *out);
    out->digest = im->digest;
    out->size = im->size;
    out->boot = "pvh";
    out->format = "elf";
    out->kind = "shoal";
    out->evidence = evidence;
    out->n_evidence = 2;
    out->firmware = "qboot";
    out->cmdline = "shoal";
    for (i = 0; i < im->n_refs; i++)
        refs[i] = im->refs[i];
    out->refs = refs;
    out->n_refs = im->n_refs;
    for (i = 0; i < im->n_labels; i++) {
        labels[i].key = im->lkey[i];
        labels[i].value = im->lval[i];
    }
    out->labels = labels;
    out->n_labels = im->n_labels;
    out->created = im->created;
    out->instances = instances;
}

static uint32_t image_users(fake *f, const fake_image *im)
{
    uint32_t n = 0;
    size_t i;

    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && strcmp(f->inst[i].digest, im->digest) == 0)
            n++;
    }
    return n;
}

static int emit_image(fake *f, const fake_image *im, api_sink *out)
{
    const char *refs[FAKE_MAX_REFS];
    api_kv labels[FAKE_MAX_LABELS];
    api_image img;

    fill_image(im, &img, refs, labels, image_users(f, im));
    return api_sink_image(out, &img);
}

/* Remove ref from every image; drop images left without refs. */
static void untag_locked(fake *f, const char *ref)
{
    size_t i, j;

    for (i = 0; i < FAKE_MAX_IMAGES; i++) {
        fake_image *im = &f->images[i];
        if (!im->used)
            continue;
        for (j = 0; j < im->n_refs; j++) {
            if (strcmp(im->refs[j], ref) == 0) {
                memmove(im->refs[j], im->refs[j + 1], (im->n_refs - j - 1) * sizeof im->refs[0]);
                im->n_refs--;
                break;
            }
        }
    }
}

static fake_image *find_image(fake *f, const char *ref)
{
    char full[API_REF_MAX + 1];
    size_t i, j;

    if (strncmp(ref, "sha256:", 7) == 0) {
        for (i = 0; i < FAKE_MAX_IMAGES; i++) {
            if (f->images[i].used && strncmp(f->images[i].digest, ref, strlen(ref)) == 0)
                return &f->images[i];
        }
        return NULL;
    }
    if (strchr(ref, ':') == NULL)
        snprintf(full, sizeof full, "%s:latest", ref);
    else
        snprintf(full, sizeof full, "%s", ref);
    for (i = 0; i < FAKE_MAX_IMAGES; i++) {
        if (!f->images[i].used)
            continue;
        for (j = 0; j < f->images[i].n_refs; j++) {
            if (strcmp(f->images[i].refs[j], full) == 0)
                return &f->images[i];
        }
    }
    return NULL;
}

static api_code up_commit(void *ctx, void *h, api_sink *out, api_status *st)
{
    fake *f = ctx;
    upload *u = h;
    char digest[80], ref[API_REF_MAX + 1];
    fake_image *im = NULL;
    size_t i;
    api_code rc;

    snprintf(digest, sizeof digest, "sha256:%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             u->hash, u->hash ^ 1, u->hash ^ 2, u->size);
    if (u->size < 4 || memcmp(u->head,
                              "\x7f"
                              "ELF",
                              4) != 0) {
        rc = api_status_set(st, API_E_INVALID_IMAGE, NULL,
                            "image is not an ELF file (%" PRIu64 " bytes)", u->size);
        goto out;
    }
    if (u->digest[0] != '\0' && strcmp(u->digest, digest) != 0) {
        rc = api_status_set(st, API_E_INVALID_IMAGE, "digest", "upload has digest %s, not %s",
                            digest, u->digest);
        goto out;
    }
    snprintf(ref, sizeof ref, "%s:%s", u->name, u->tag);
    pthread_mutex_lock(&f->mu);
    untag_locked(f, ref);
    im = find_image(f, digest);
    for (i = 0; im == NULL && i < FAKE_MAX_IMAGES; i++) {
        if (!f->images[i].used) {
            im = &f->images[i];
            memset(im, 0, sizeof *im);
            im->used = true;
            snprintf(im->digest, sizeof im->digest, "%s", digest);
            im->size = u->size;
            im->created = NOW;
            memcpy(im->lkey, u->lkey, sizeof im->lkey);
            memcpy(im->lval, u->lval, sizeof im->lval);
            im->n_labels = u->n_labels;
        }
    }
    if (im == NULL) {
        pthread_mutex_unlock(&f->mu);
        rc = api_status_set(st, API_E_INSUFFICIENT_CAPACITY, NULL, "image store full");
        goto out;
    }
    if (im->n_refs < FAKE_MAX_REFS)
        snprintf(im->refs[im->n_refs++], sizeof im->refs[0], "%s", ref);
    emit_locked(f, "image.pushed", NULL, NULL);
    rc = emit_image(f, im, out) == 0 ? API_OK : api_status_set(st, API_E_INTERNAL, NULL, "sink");
    pthread_mutex_unlock(&f->mu);
out:
    atomic_fetch_sub(&f->streams_open, 1);
    free(u);
    return rc;
}

static api_code image_list(void *ctx, const api_image_filter *flt, const api_page *page,
                           api_sink *out, api_status *st)
{
    fake *f = ctx;
    size_t i, j, n = 0;

    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    for (i = 0; i < FAKE_MAX_IMAGES && n < page->limit; i++) {
        fake_image *im = &f->images[i];
        api_kv labels[FAKE_MAX_LABELS];
        bool name_ok = flt->name == NULL;

        if (!im->used)
            continue;
        for (j = 0; j < im->n_refs && !name_ok; j++) {
            size_t l = strlen(flt->name);
            name_ok = strncmp(im->refs[j], flt->name, l) == 0 && im->refs[j][l] == ':';
        }
        for (j = 0; j < im->n_labels; j++) {
            labels[j].key = im->lkey[j];
            labels[j].value = im->lval[j];
        }
        if (!name_ok || !api_selector_match(flt->selector, labels, im->n_labels))
            continue;
        emit_image(f, im, out);
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    (void)st;
    return API_OK;
}

static api_code image_get(void *ctx, const char *ref, api_sink *out, api_status *st)
{
    fake *f = ctx;
    fake_image *im;
    api_code rc = API_OK;

    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    im = find_image(f, ref);
    if (im == NULL)
        rc = api_status_set(st, API_E_NOT_FOUND, "ref", "image '%s' not found", ref);
    else
        emit_image(f, im, out);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code image_tag(void *ctx, const char *ref, const char *new_ref, api_sink *out,
                          api_status *st)
{
    fake *f = ctx;
    fake_image *im;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    im = find_image(f, ref);
    if (im == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "ref", "image '%s' not found", ref);
    } else {
        untag_locked(f, new_ref);
        if (im->n_refs < FAKE_MAX_REFS)
            snprintf(im->refs[im->n_refs++], sizeof im->refs[0], "%s", new_ref);
        emit_image(f, im, out);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code image_delete(void *ctx, const char *ref, bool force, api_status *st)
{
    fake *f = ctx;
    fake_image *im;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    im = find_image(f, ref);
    if (im == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "ref", "image '%s' not found", ref);
    } else if (!force && image_users(f, im) > 0) {
        rc = api_status_set(st, API_E_CONFLICT, "ref", "image '%s' is used by %u instances", ref,
                            image_users(f, im));
    } else {
        im->used = false;
        emit_locked(f, "image.deleted", NULL, NULL);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- instances ---------------------------------------------------------- */

static int emit_instance(fake_instance *in, api_sink *out, bool runs)
{
    static const char *const args[] = { "--port", "80" };
    static const api_kv env[] = { { "MODE", "fast" } };
    api_kv labels[FAKE_MAX_LABELS];
    api_run run[1];
    api_instance o;
    size_t i;

    memset(&o, 0, sizeof o);
    o.id = in->id;
    o.name = in->name;
    o.image = in->image;
    o.image_digest = in->digest;
    o.host = in->host;
    o.state = in->state;
    o.memory_mib = in->memory_mib;
    o.vcpus = in->vcpus;
    o.args = args;
    o.n_args = 2;
    o.env = env;
    o.n_env = 1;
    for (i = 0; i < in->n_labels; i++) {
        labels[i].key = in->lkey[i];
        labels[i].value = in->lval[i];
    }
    o.labels = labels;
    o.n_labels = in->n_labels;
    o.restart = in->restart;
    o.network.enabled = in->network;
    o.network.address = in->network ? "10.88.0.5/16" : NULL;
    o.network.gateway = in->network ? "10.88.0.1" : NULL;
    o.network.mac = in->network ? "5a:5c:00:00:00:05" : NULL;
    o.network.ports = in->ports;
    o.network.n_ports = in->n_ports;
    o.created = NOW;
    o.started = in->state == API_STATE_RUNNING ? NOW : API_TIME_NONE;
    o.boot_ms = in->state == API_STATE_RUNNING ? 0.41 : -1;
    o.ready_ms = in->state == API_STATE_RUNNING ? 520.3 : -1;
    o.has_runs = runs;
    if (runs) {
        memset(run, 0, sizeof run);
        run[0].started = NOW;
        run[0].ended = NOW + 1;
        run[0].has_exit_code = true;
        run[0].exit_code = 0;
        run[0].outcome = "exited";
        run[0].reason = NULL;
        o.runs = run;
        o.n_runs = 1;
    }
    return api_sink_instance(out, &o);
}

static fake_instance *find_inst(fake *f, const char *ref)
{
    fake_instance *hit = NULL;
    size_t i, n = 0;

    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && strcmp(f->inst[i].name, ref) == 0)
            return &f->inst[i];
    }
    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && strncmp(f->inst[i].id, ref, strlen(ref)) == 0) {
            hit = &f->inst[i];
            n++;
        }
    }
    return n == 1 ? hit : NULL;
}

static api_code inst_create(void *ctx, const api_instance_spec *spec, api_sink *out, api_status *st)
{
    fake *f = ctx;
    uint64_t used = 0;
    size_t i, k;
    api_code rc = API_OK;

    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    if (find_image(f, spec->image) == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "image", "image '%s' not found", spec->image);
        goto out;
    }
    if (spec->host != NULL && strcmp(spec->host, "local") != 0) {
        rc = api_status_set(st, API_E_NOT_FOUND, "host", "host '%s' not found", spec->host);
        goto out;
    }
    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used)
            used += f->inst[i].memory_mib;
    }
    if (used + (uint64_t)spec->count * spec->memory_mib > FAKE_CAPACITY_MIB ||
        f->n_inst + spec->count > FAKE_MAX_INSTANCES) {
        rc = api_status_set(st, API_E_INSUFFICIENT_CAPACITY, "count",
                            "not enough memory: %" PRIu64 " MiB more needed",
                            used + (uint64_t)spec->count * spec->memory_mib - FAKE_CAPACITY_MIB);
        goto out;
    }
    for (k = 0; k < spec->count; k++) {
        char name[API_NAME_MAX + 1];
        if (spec->name == NULL)
            snprintf(name, sizeof name, "i%" PRIx64, f->next_id);
        else if (spec->count == 1)
            snprintf(name, sizeof name, "%s", spec->name);
        else
            snprintf(name, sizeof name, "%s-%zu", spec->name, k + 1);
        for (i = 0; i < f->n_inst; i++) {
            if (f->inst[i].used && strcmp(f->inst[i].name, name) == 0) {
                rc = api_status_set(st, API_E_CONFLICT, "name", "name '%s' is taken", name);
                goto out;
            }
        }
    }
    for (k = 0; k < spec->count; k++) {
        fake_instance *in = &f->inst[f->n_inst++];
        memset(in, 0, sizeof *in);
        in->used = true;
        snprintf(in->id, sizeof in->id, "%012" PRIx64, f->next_id);
        if (spec->name == NULL)
            snprintf(in->name, sizeof in->name, "i%012" PRIx64, f->next_id);
        f->next_id++;
        if (spec->name == NULL)
            ;
        else if (spec->count == 1)
            snprintf(in->name, sizeof in->name, "%s", spec->name);
        else
            snprintf(in->name, sizeof in->name, "%s-%zu", spec->name, k + 1);
        snprintf(in->image, sizeof in->image, "%s", spec->image);
        snprintf(in->digest, sizeof in->digest, "%s", find_image(f, spec->image)->digest);
        snprintf(in->host, sizeof in->host, "local");
        in->state = API_STATE_PENDING;
        in->memory_mib = spec->memory_mib;
        in->vcpus = spec->vcpus;
        for (i = 0; i < spec->n_labels && i < FAKE_MAX_LABELS; i++) {
            snprintf(in->lkey[i], sizeof in->lkey[i], "%s", spec->labels[i].key);
            snprintf(in->lval[i], sizeof in->lval[i], "%s", spec->labels[i].value);
        }
        in->n_labels = i;
        if (spec->n_ports > 0)
            memcpy(in->ports, spec->ports, spec->n_ports * sizeof *spec->ports);
        in->n_ports = spec->n_ports;
        in->network = spec->network;
        in->restart = spec->restart;
        emit_locked(f, "instance.created", in->id, "pending");
        if (emit_instance(in, out, false) != 0) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "sink");
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code inst_list(void *ctx, const api_instance_filter *flt, const api_page *page,
                          api_sink *out, api_status *st)
{
    fake *f = ctx;
    size_t i, j, n = 0;
    fake_instance *last = NULL;
    bool more = false;

    (void)st;
    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->n_inst; i++) {
        fake_instance *in = &f->inst[i];
        api_kv labels[FAKE_MAX_LABELS];
        if (!in->used)
            continue;
        if (page->after != NULL && strcmp(in->id, page->after) <= 0)
            continue;
        if (flt->has_state && in->state != flt->state)
            continue;
        if (flt->host != NULL && strcmp(flt->host, in->host) != 0)
            continue;
        for (j = 0; j < in->n_labels; j++) {
            labels[j].key = in->lkey[j];
            labels[j].value = in->lval[j];
        }
        if (!api_selector_match(flt->selector, labels, in->n_labels))
            continue;
        if (n == page->limit) {
            more = true;
            break;
        }
        emit_instance(in, out, false);
        last = in;
        n++;
    }
    if (more && last != NULL)
        api_sink_next(out, last->id);
    pthread_mutex_unlock(&f->mu);
    return API_OK;
}

static api_code inst_get(void *ctx, const char *id, api_sink *out, api_status *st)
{
    fake *f = ctx;
    fake_instance *in;
    api_code rc = API_OK;

    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    in = find_inst(f, id);
    if (in == NULL)
        rc = api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    else
        emit_instance(in, out, true);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code inst_action(void *ctx, const char *id, api_action action, int timeout_s,
                            api_sink *out, api_status *st)
{
    fake *f = ctx;
    fake_instance *in;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    in = find_inst(f, id);
    if (in == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
        goto out;
    }
    in->last_timeout = timeout_s;
    switch (action) {
    case API_ACTION_STOP: in->state = API_STATE_STOPPED; break;
    case API_ACTION_START:
        if (in->state == API_STATE_RUNNING) {
            rc = api_status_set(st, API_E_CONFLICT, NULL, "instance '%s' is already running", id);
            goto out;
        }
        in->state = API_STATE_RUNNING;
        break;
    case API_ACTION_RESTART: in->state = API_STATE_RUNNING; break;
    case API_ACTION_DELETE:
        rc = api_status_set(st, API_E_INTERNAL, NULL, "delete is bulk only");
        goto out;
    }
    emit_locked(f, "instance.state", in->id, api_state_str(in->state));
    emit_instance(in, out, false);
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code inst_delete(void *ctx, const char *id, bool force, api_status *st)
{
    fake *f = ctx;
    fake_instance *in;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    in = find_inst(f, id);
    if (in == NULL)
        rc = api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    else if (in->state == API_STATE_RUNNING && !force)
        rc = api_status_set(st, API_E_CONFLICT, NULL, "instance '%s' is running; use force", id);
    else
        in->used = false;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Bulk: the selection is resolved first, then each instance is acted on
 * as the single routes would; one bulk.progress event at the end. */
static api_code inst_bulk(void *ctx, const api_bulk_req *req, api_action action, api_sink *out,
                          api_status *st)
{
    fake *f = ctx;
    fake_instance *sel[FAKE_MAX_INSTANCES];
    const char *keys[FAKE_MAX_INSTANCES];
    size_t n = 0, i, j, failed = 0;
    api_event *ev;

    (void)st;
    atomic_fetch_add(&f->calls, 1);
    pthread_mutex_lock(&f->mu);
    if (req->selector != NULL) {
        for (i = 0; i < f->n_inst && n < FAKE_MAX_INSTANCES; i++) {
            fake_instance *in = &f->inst[i];
            api_kv labels[FAKE_MAX_LABELS];
            if (!in->used)
                continue;
            for (j = 0; j < in->n_labels; j++) {
                labels[j].key = in->lkey[j];
                labels[j].value = in->lval[j];
            }
            if (!api_selector_match(req->selector, labels, in->n_labels))
                continue;
            keys[n] = NULL;
            sel[n++] = in;
        }
    } else {
        for (i = 0; i < req->n_ids && n < FAKE_MAX_INSTANCES; i++) {
            fake_instance *in = find_inst(f, req->ids[i]);
            bool dup = false;
            for (j = 0; in != NULL && j < n; j++)
                dup = dup || sel[j] == in;
            if (dup)
                continue;
            keys[n] = req->ids[i];
            sel[n++] = in;
        }
    }
    for (i = 0; i < n; i++) {
        fake_instance *in = sel[i];
        api_bulk_item it = { .key = keys[i], .ok = true };
        char msg[API_MSG_MAX] = "";
        if (in == NULL) {
            it.ok = false;
            it.code = API_E_NOT_FOUND;
            snprintf(msg, sizeof msg, "instance '%s' not found", keys[i]);
        } else {
            it.id = in->id;
            it.name = in->name;
            in->last_timeout = req->timeout_s;
            switch (action) {
            case API_ACTION_STOP: in->state = API_STATE_STOPPED; break;
            case API_ACTION_START:
                if (in->state == API_STATE_RUNNING) {
                    it.ok = false;
                    it.code = API_E_CONFLICT;
                    snprintf(msg, sizeof msg,
                             "instance '%s' is "
                             "already running",
                             in->name);
                }
                in->state = API_STATE_RUNNING;
                break;
            case API_ACTION_RESTART: in->state = API_STATE_RUNNING; break;
            case API_ACTION_DELETE:
                if (in->state == API_STATE_RUNNING && !req->force) {
                    it.ok = false;
                    it.code = API_E_CONFLICT;
                    snprintf(msg, sizeof msg,
                             "instance '%s' is "
                             "running; use force",
                             in->name);
                }
                break;
            }
        }
        it.message = msg;
        if (!it.ok)
            failed++;
        api_sink_bulk_item(out, &it);
        /* after encoding: the item points into the instance */
        if (it.ok && in != NULL && action == API_ACTION_DELETE)
            in->used = false;
    }
    emit_locked(f, "bulk.progress", NULL, NULL);
    ev = &f->events[f->n_events - 1];
    ev->host[0] = '\0';
    snprintf(ev->action, sizeof ev->action, "%s",
             action == API_ACTION_STOP      ? "stop"
             : action == API_ACTION_START   ? "start"
             : action == API_ACTION_RESTART ? "restart"
                                            : "delete");
    ev->has_progress = true;
    ev->done = ev->total = (uint32_t)n;
    ev->failed = (uint32_t)failed;
    pthread_mutex_unlock(&f->mu);
    return API_OK;
}

/* ---- console ------------------------------------------------------------ */

typedef struct console {
    char buf[4096];
    size_t len, off;
    int produced;
    bool follow;
} console;

static api_code con_open(void *ctx, const char *id, uint64_t tail, bool follow, void **out,
                         api_status *st)
{
    fake *f = ctx;
    console *c;
    int i;

    pthread_mutex_lock(&f->mu);
    if (find_inst(f, id) == NULL) {
        pthread_mutex_unlock(&f->mu);
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    }
    pthread_mutex_unlock(&f->mu);
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "oom");
    for (i = 1; i <= f->console_lines; i++)
        c->len += (size_t)snprintf(c->buf + c->len, sizeof c->buf - c->len, "line %d\n", i);
    if (tail < c->len)
        c->off = c->len - tail;
    c->follow = follow;
    atomic_fetch_add(&f->streams_open, 1);
    *out = c;
    return API_OK;
}

static ssize_t con_read(void *ctx, void *h, char *buf, size_t len, int timeout_ms)
{
    fake *f = ctx;
    console *c = h;
    struct timespec ts = { 0, 50 * 1000000L };
    size_t n;

    if (c->off == c->len) {
        if (!c->follow || c->produced >= f->console_follow_lines)
            return API_STREAM_END;
        if (timeout_ms < 50)
            return 0;
        nanosleep(&ts, NULL);
        c->produced++;
        c->off = 0;
        c->len = (size_t)snprintf(c->buf, sizeof c->buf, "follow %d\n", c->produced);
    }
    n = c->len - c->off;
    if (n > len)
        n = len;
    memcpy(buf, c->buf + c->off, n);
    c->off += n;
    return (ssize_t)n;
}

static void con_close(void *ctx, void *h)
{
    fake *f = ctx;

    atomic_fetch_sub(&f->streams_open, 1);
    free(h);
}

/* ---- hosts -------------------------------------------------------------- */

static void emit_host(fake *f, fake_host *h, api_sink *out)
{
    api_host o;
    size_t i;
    uint32_t n = 0;
    uint64_t mem = 0;

    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && strcmp(f->inst[i].host, h->name) == 0) {
            n++;
            mem += f->inst[i].memory_mib;
        }
    }
    memset(&o, 0, sizeof o);
    o.name = h->name;
    o.uri = h->uri;
    o.state = "up";
    o.cordoned = h->cordoned;
    o.domain_type = "kvm";
    o.kvm = 1;
    o.capacity.memory_mib = FAKE_CAPACITY_MIB;
    o.capacity.vcpus = 2;
    o.capacity.slots = 1000;
    o.used.memory_mib = mem;
    o.used.vcpus = n;
    o.used.slots = n;
    o.instances = n;
    api_sink_host(out, &o);
}

static fake_host *find_host(fake *f, const char *name)
{
    size_t i;

    for (i = 0; i < FAKE_MAX_HOSTS; i++) {
        if (f->hosts[i].used && strcmp(f->hosts[i].name, name) == 0)
            return &f->hosts[i];
    }
    return NULL;
}

static api_code host_list(void *ctx, const api_page *page, api_sink *out, api_status *st)
{
    fake *f = ctx;
    size_t i, n = 0;

    (void)st;
    pthread_mutex_lock(&f->mu);
    for (i = 0; i < FAKE_MAX_HOSTS && n < page->limit; i++) {
        if (f->hosts[i].used) {
            emit_host(f, &f->hosts[i], out);
            n++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return API_OK;
}

static api_code host_get(void *ctx, const char *name, api_sink *out, api_status *st)
{
    fake *f = ctx;
    fake_host *h;
    api_code rc = API_OK;

    if (strcmp(name, "boom") == 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "host table corrupt (injected)");
    pthread_mutex_lock(&f->mu);
    h = find_host(f, name);
    if (h == NULL)
        rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    else
        emit_host(f, h, out);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code host_add(void *ctx, const api_host_spec *spec, api_sink *out, api_status *st)
{
    fake *f = ctx;
    api_code rc = API_OK;
    size_t i;

    if (strstr(spec->uri, "//down/") != NULL)
        return api_status_set(st, API_E_UNAVAILABLE, "uri", "host '%s' is unreachable", spec->uri);
    pthread_mutex_lock(&f->mu);
    if (find_host(f, spec->name) != NULL) {
        rc = api_status_set(st, API_E_CONFLICT, "name", "host '%s' exists", spec->name);
        goto out;
    }
    for (i = 0; i < FAKE_MAX_HOSTS && f->hosts[i].used; i++)
        ;
    if (i == FAKE_MAX_HOSTS) {
        rc = api_status_set(st, API_E_INSUFFICIENT_CAPACITY, NULL, "too many hosts");
        goto out;
    }
    memset(&f->hosts[i], 0, sizeof f->hosts[i]);
    f->hosts[i].used = true;
    snprintf(f->hosts[i].name, sizeof f->hosts[i].name, "%s", spec->name);
    snprintf(f->hosts[i].uri, sizeof f->hosts[i].uri, "%s", spec->uri);
    emit_locked(f, "host.added", NULL, NULL);
    emit_host(f, &f->hosts[i], out);
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code host_cordon(void *ctx, const char *name, bool cordoned, api_sink *out,
                            api_status *st)
{
    fake *f = ctx;
    fake_host *h;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    h = find_host(f, name);
    if (h == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    } else {
        h->cordoned = cordoned;
        emit_host(f, h, out);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void emit_plan(fake *f, bool dry_run, api_sink *out)
{
    static const char *const freed[] = { "h1" };
    api_move moves[1] = { { .from = "h1", .to = "local", .ok = true } };
    api_plan p;

    memset(&p, 0, sizeof p);
    moves[0].instance = f->n_inst > 0 ? f->inst[0].id : "3f9a1c2b7d4e";
    p.moves = moves;
    p.n_moves = 1;
    p.hosts_freed = freed;
    p.n_hosts_freed = 1;
    p.hosts_before = 3;
    p.hosts_after = 2;
    p.executed = !dry_run;
    api_sink_plan(out, &p);
}

static api_code host_drain(void *ctx, const char *name, bool dry_run, api_sink *out, api_status *st)
{
    fake *f = ctx;
    fake_host *h;
    api_code rc = API_OK;

    pthread_mutex_lock(&f->mu);
    h = find_host(f, name);
    if (h == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    } else {
        if (!dry_run)
            h->cordoned = true;
        emit_plan(f, dry_run, out);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code host_delete(void *ctx, const char *name, api_status *st)
{
    fake *f = ctx;
    fake_host *h;
    api_code rc = API_OK;
    size_t i;

    pthread_mutex_lock(&f->mu);
    h = find_host(f, name);
    if (h == NULL) {
        rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
        goto out;
    }
    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && strcmp(f->inst[i].host, name) == 0) {
            rc = api_status_set(st, API_E_CONFLICT, "name", "host '%s' has instances", name);
            goto out;
        }
    }
    h->used = false;
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static api_code consolidate(void *ctx, bool dry_run, api_sink *out, api_status *st)
{
    fake *f = ctx;

    (void)st;
    pthread_mutex_lock(&f->mu);
    emit_plan(f, dry_run, out);
    pthread_mutex_unlock(&f->mu);
    return API_OK;
}

/* ---- events ------------------------------------------------------------- */

typedef struct sub {
    uint64_t last; /* last id delivered */
} sub;

static api_code ev_open(void *ctx, bool has_since, uint64_t since, void **out, api_status *st)
{
    fake *f = ctx;
    sub *s = calloc(1, sizeof *s);

    if (s == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "oom");
    pthread_mutex_lock(&f->mu);
    s->last = has_since ? since : f->next_event - 1;
    pthread_mutex_unlock(&f->mu);
    atomic_fetch_add(&f->streams_open, 1);
    *out = s;
    return API_OK;
}

static int ev_next(void *ctx, void *h, api_event *ev, int timeout_ms)
{
    fake *f = ctx;
    sub *s = h;
    struct timespec dl;
    size_t i;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->mu);
    for (;;) {
        if (f->closing) {
            rc = -1;
            break;
        }
        for (i = 0; i < f->n_events; i++) {
            if (f->events[i].id > s->last) {
                *ev = f->events[i];
                s->last = ev->id;
                rc = 1;
                break;
            }
        }
        if (rc != 0)
            break;
        if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void ev_close(void *ctx, void *h)
{
    fake *f = ctx;

    atomic_fetch_sub(&f->streams_open, 1);
    free(h);
}

static api_code metrics(void *ctx, api_sink *out, api_status *st)
{
    fake *f = ctx;
    size_t i, running = 0;

    (void)st;
    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->n_inst; i++) {
        if (f->inst[i].used && f->inst[i].state == API_STATE_RUNNING)
            running++;
    }
    pthread_mutex_unlock(&f->mu);
    api_sink_printf(out,
                    "# TYPE shoal_instances gauge\n"
                    "shoal_instances{state=\"running\"} %zu\n"
                    "shoal_hosts 1\nshoal_images 0\n",
                    running);
    return API_OK;
}

const api_backend fake_backend = {
    .image_upload_begin = up_begin,
    .image_upload_write = up_write,
    .image_upload_commit = up_commit,
    .image_upload_abort = up_abort,
    .image_list = image_list,
    .image_get = image_get,
    .image_tag = image_tag,
    .image_delete = image_delete,
    .instance_create = inst_create,
    .instance_list = inst_list,
    .instance_get = inst_get,
    .instance_action = inst_action,
    .instance_delete = inst_delete,
    .instance_bulk = inst_bulk,
    .console_open = con_open,
    .console_read = con_read,
    .console_close = con_close,
    .host_list = host_list,
    .host_get = host_get,
    .host_add = host_add,
    .host_cordon = host_cordon,
    .host_drain = host_drain,
    .host_delete = host_delete,
    .consolidate = consolidate,
    .events_open = ev_open,
    .events_next = ev_next,
    .events_close = ev_close,
    .metrics_write = metrics,
};

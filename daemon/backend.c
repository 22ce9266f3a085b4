/* backend.c - the REST API's backend: api.h requests -> fleet, imagestore,
 * scheduler; records -> api.h result structs. Every function here runs on
 * an API connection thread (see api.h). */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "fleet.h"
#include "guestcmd.h"
#include "img_store.h"
#include "log.h"
#include "netbr.h"
#include "node.h"
#include "portfwd.h"
#include "scheduler.h"

#define HOST_LABEL "shoal/host"   /* label every host carries for --host */

/* ---- helpers ------------------------------------------------------------ */

static api_code img_status(api_status *st, const img_err *e, const char *field)
{
    api_code c;
    switch (e->code) {
    case IMG_E_NOT_FOUND: c = API_E_NOT_FOUND; break;
    case IMG_E_INVALID: c = API_E_INVALID_IMAGE; break;
    case IMG_E_AMBIGUOUS: c = API_E_INVALID_FIELD; break;
    case IMG_E_CONFLICT:
    case IMG_E_IN_USE: c = API_E_CONFLICT; break;
    case IMG_E_TOO_LARGE: c = API_E_TOO_LARGE; break;
    case IMG_E_BUSY: c = API_E_UNAVAILABLE; break;
    default: c = API_E_INTERNAL; break;
    }
    return api_status_set(st, c, field, "%s", e->msg);
}

/* Labels/env JSON object -> api_kv array pointing into the json_t (which
 * must outlive the array). */
static api_kv *kv_from_json(json_t *obj, size_t *n)
{
    api_kv *a;
    const char *k;
    json_t *v;
    size_t i = 0;
    *n = json_is_object(obj) ? json_object_size(obj) : 0;
    a = calloc(*n + 1, sizeof *a);
    if (!a) {
        *n = 0;
        return NULL;
    }
    json_object_foreach(obj, k, v) {
        a[i].key = k;
        a[i].value = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    *n = i;
    return a;
}

static json_t *kv_to_json(const api_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    return o;
}

static char *json_text(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

/* ---- placement rules ---------------------------------------------------- */

static const char *const RULE_KINDS[] = {
    "host-affinity", "host-anti-affinity", "affinity", "anti-affinity",
};

/* {"policy":..,"rules":[..]} as stored in an instance row. */
static char *placement_to_json(bool spread, const api_rule *r, size_t n)
{
    json_t *o = json_object(), *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ro = json_pack("{s:s,s:s,s:b,s:i}", "kind", RULE_KINDS[r[i].kind], "key",
                               r[i].key, "soft", r[i].soft, "weight", (int)r[i].weight);
        if (r[i].value)
            json_object_set_new(ro, "value", json_string(r[i].value));
        json_array_append_new(a, ro);
    }
    json_object_set_new(o, "policy", json_string(spread ? "spread" : "binpack"));
    json_object_set_new(o, "rules", a);
    return json_text(o);
}

static int rule_kind(const char *k)
{
    for (int i = 0; i < 4; i++) {
        if (k && !strcmp(k, RULE_KINDS[i]))
            return i;
    }
    return -1;
}

/* Rules of a stored placement, as scheduler rules pointing into pj. */
static sched_rule *sched_rules_from(json_t *pj, size_t *n)
{
    json_t *a = json_object_get(pj, "rules"), *r;
    sched_rule *out = calloc(json_array_size(a) + 1, sizeof *out);
    size_t i;
    *n = 0;
    if (!out)
        return NULL;
    json_array_foreach(a, i, r) {
        int k = rule_kind(json_string_value(json_object_get(r, "kind")));
        if (k < 0 || !json_string_value(json_object_get(r, "key")))
            continue;
        /* api_rule_kind and sched_rule_kind list the kinds in one order. */
        out[*n].kind = (sched_rule_kind)k;
        out[*n].key = json_string_value(json_object_get(r, "key"));
        out[*n].value = json_string_value(json_object_get(r, "value"));
        out[*n].soft = json_is_true(json_object_get(r, "soft"));
        out[*n].weight = (uint32_t)json_integer_value(json_object_get(r, "weight"));
        (*n)++;
    }
    return out;
}

/* Rules of a stored placement, as API rules pointing into pj. */
static api_rule *api_rules_from(json_t *pj, size_t *n)
{
    size_t ns;
    sched_rule *sr = sched_rules_from(pj, &ns);
    api_rule *out = calloc(ns + 1, sizeof *out);
    *n = 0;
    for (size_t i = 0; sr && out && i < ns; i++) {
        out[i].kind = (api_rule_kind)sr[i].kind;
        out[i].key = sr[i].key;
        out[i].value = sr[i].value;
        out[i].soft = sr[i].soft;
        out[i].weight = sr[i].weight ? sr[i].weight : 1;
        *n = i + 1;
    }
    free(sr);
    return out;
}

static sched_label *sched_labels_from(json_t *lj, size_t *n)
{
    const char *k;
    json_t *v;
    sched_label *out = calloc(json_object_size(lj) + 1, sizeof *out);
    *n = 0;
    if (!out)
        return NULL;
    json_object_foreach(lj, k, v) {
        out[*n].key = k;
        out[*n].value = json_string_value(v);
        (*n)++;
    }
    return out;
}

/* Emit one instance row (with runs when detail). */
static int sink_instance(fleet *f, api_sink *out, const state_instance *in, int detail)
{
    api_instance a;
    json_t *args = json_loads(in->args_json, 0, NULL);
    json_t *env = json_loads(in->env_json, 0, NULL);
    json_t *labels = json_loads(in->labels_json, 0, NULL);
    json_t *placement = json_loads(in->placement_json ? in->placement_json : "{}", 0, NULL);
    api_rule *rules = NULL;
    const char **argv = NULL;
    api_kv *envkv = NULL, *lkv = NULL;
    api_port ports[STATE_MAX_PORTS];
    api_run runs[10];
    state_run sr[10];
    size_t nargs = json_array_size(args), nsr = 0;
    char addr[40], ip[16], gw[16];
    int rc = -1;

    memset(&a, 0, sizeof a);
    argv = calloc(nargs + 1, sizeof *argv);
    if (!argv)
        goto out;
    for (size_t i = 0; i < nargs; i++)
        argv[i] = json_string_value(json_array_get(args, i));
    envkv = kv_from_json(env, &a.n_env);
    lkv = kv_from_json(labels, &a.n_labels);
    a.id = in->id;
    a.name = in->name;
    a.image = in->image_ref;
    a.image_digest = in->image_digest;
    a.host = in->host[0] ? in->host : NULL;
    a.state = (api_instance_state)in->state;
    a.memory_mib = (uint32_t)in->memory_mib;
    a.vcpus = (uint32_t)in->vcpus;
    a.args = argv;
    a.n_args = nargs;
    a.env = envkv;
    a.labels = lkv;
    a.restart = (api_restart)in->restart;
    a.restarts = (uint32_t)in->restarts;
    a.spread = !strcmp(json_string_value(json_object_get(placement, "policy"))
                       ? json_string_value(json_object_get(placement, "policy")) : "", "spread");
    rules = api_rules_from(placement, &a.n_rules);
    a.rules = rules;
    a.network.enabled = in->network != 0;
    if (in->network && in->ipv4) {
        snprintf(addr, sizeof addr, "%s/%d", cfg_ip4_str(in->ipv4, ip), f->cfg.prefix);
        a.network.address = addr;
        a.network.gateway = cfg_ip4_str(f->gateway, gw);
        a.network.mac = in->mac[0] ? in->mac : NULL;
    }
    for (int i = 0; i < in->nports; i++) {
        ports[i].host = (uint16_t)in->ports[i].host;
        ports[i].guest = (uint16_t)in->ports[i].guest;
        ports[i].protocol = API_PROTO_TCP;
    }
    a.network.ports = ports;
    a.network.n_ports = (size_t)in->nports;
    a.created = in->created_ms / 1000;
    a.started = in->started_ms / 1000;
    a.boot_ms = in->boot_us >= 0 ? (double)in->boot_us / 1000.0 : -1;
    a.ready_ms = in->ready_ms > 0 ? in->ready_ms : -1;
    a.has_exit_code = in->exit_code >= 0;
    a.exit_code = in->exit_code;
    a.last_error = in->last_error[0] ? in->last_error : NULL;
    if (detail) {
        state_run_list(f->db, in->id, sr, 10, &nsr);
        /* The API lists runs oldest first. */
        for (size_t i = 0; i < nsr; i++) {
            const state_run *r = &sr[nsr - 1 - i];
            runs[i].started = r->started_ms / 1000;
            runs[i].ended = r->ended_ms / 1000;
            runs[i].has_exit_code = r->exit_code >= 0;
            runs[i].exit_code = r->exit_code;
            runs[i].outcome = r->outcome;
            runs[i].reason = r->reason[0] ? r->reason : NULL;
        }
        a.has_runs = true;
        a.runs = runs;
        a.n_runs = nsr;
    }
    rc = api_sink_instance(out, &a);
out:
    free(argv);
    free(envkv);
    free(lkv);
    free(rules);
    json_decref(placement);
    json_decref(args);
    json_decref(env);
    json_decref(labels);
    return rc;
}

static api_code emit_instance_by_id(fleet *f, const char *id, api_sink *out, int detail,
                                    api_status *st)
{
    state_instance in;
    char err[256];
    int rc = state_inst_find(f->db, id, &in, err, sizeof err);
    if (rc == STATE_ENOTFOUND)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    if (rc == STATE_ECONFLICT)
        return api_status_set(st, API_E_CONFLICT, "id", "%s", err);
    if (rc != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    rc = sink_instance(f, out, &in, detail);
    state_inst_free(&in);
    return rc == 0 ? API_OK : api_status_set(st, API_E_INTERNAL, NULL, "cannot encode instance");
}

/* ---- images ------------------------------------------------------------- */

typedef struct {
    img_upload *up;
    char name[API_NAME_MAX + 1];
    char tag[API_TAG_MAX + 1];
    char digest[80];             /* expected, "" if none */
    img_label *labels;
    char **strings;              /* owned copies behind labels */
    size_t n_labels;
} be_upload;

static void upload_free(be_upload *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < 2 * u->n_labels; i++)
        free(u->strings[i]);
    free(u->strings);
    free(u->labels);
    free(u);
}

static api_code be_image_upload_begin(void *ctx, const api_upload_req *req, void **upload,
                                      api_status *st)
{
    fleet *f = ctx;
    be_upload *u = calloc(1, sizeof *u);
    img_err e;

    if (!u)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    snprintf(u->name, sizeof u->name, "%s", req->name);
    snprintf(u->tag, sizeof u->tag, "%s", req->tag[0] ? req->tag : IMG_DEFAULT_TAG);
    snprintf(u->digest, sizeof u->digest, "%s", req->digest ? req->digest : "");
    u->labels = calloc(req->n_labels + 1, sizeof *u->labels);
    u->strings = calloc(2 * req->n_labels + 1, sizeof *u->strings);
    if (!u->labels || !u->strings) {
        upload_free(u);
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < req->n_labels; i++) {
        u->strings[2 * i] = strdup(req->labels[i].key);
        u->strings[2 * i + 1] = strdup(req->labels[i].value);
        u->labels[i].key = u->strings[2 * i];
        u->labels[i].value = u->strings[2 * i + 1];
        u->n_labels = i + 1;
    }
    if (img_upload_begin(f->img, req->content_length, &u->up, &e) != 0) {
        upload_free(u);
        return img_status(st, &e, NULL);
    }
    *upload = u;
    return API_OK;
}

static api_code be_image_upload_write(void *ctx, void *upload, const void *data, size_t len,
                                      api_status *st)
{
    be_upload *u = upload;
    img_err e;
    (void)ctx;
    if (img_upload_write(u->up, data, len, &e) != 0)
        return img_status(st, &e, NULL);
    return API_OK;
}

static api_code emit_image(fleet *f, const char *ref, api_sink *out, api_status *st);

static api_code be_image_upload_commit(void *ctx, void *upload, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    be_upload *u = upload;
    img_info info;
    img_err e;
    char ref[API_REF_MAX + 1];
    api_code rc;

    memset(&info, 0, sizeof info);
    /* With an expected digest, a mismatch fails the commit before anything
     * becomes visible; name, tag and labels land in one transaction. */
    if (u->digest[0] && img_upload_expect(u->up, u->digest, &e) != 0) {
        img_upload_abort(u->up);
        u->up = NULL;
        rc = img_status(st, &e, "digest");
        goto out;
    }
    if (img_upload_commit(u->up, u->name, u->tag, u->labels, u->n_labels, &info, &e) != 0) {
        u->up = NULL;
        rc = img_status(st, &e, u->digest[0] && e.code == IMG_E_INVALID ? "digest" : NULL);
        goto out;
    }
    u->up = NULL;
    snprintf(ref, sizeof ref, "%s:%s", u->name, u->tag);
    fleet_emit(f, "image.pushed", NULL, NULL, NULL, NULL, ref, info.digest, NULL);
    log_info("image %s pushed (%s, %llu bytes)", ref, info.digest,
             (unsigned long long)info.size);
    rc = emit_image(f, info.digest, out, st);
out:
    img_info_clear(&info);
    upload_free(u);
    return rc;
}

static void be_image_upload_abort(void *ctx, void *upload)
{
    be_upload *u = upload;
    (void)ctx;
    if (u)
        img_upload_abort(u->up);
    upload_free(u);
}

/* All name:tag rows of the store, once per call. */
typedef struct {
    img_info *rows;
    size_t n;
} name_rows;

static int load_names(fleet *f, name_rows *nr, img_err *e)
{
    img_filter flt;
    memset(&flt, 0, sizeof flt);
    flt.include_untagged = 1;
    return img_list(f->img, &flt, &nr->rows, &nr->n, e);
}

/* Encode the image with digest `digest` using the rows for its refs. */
static int sink_image_rows(api_sink *out, const name_rows *nr, const char *digest)
{
    const img_info *first = NULL;
    const char **refs = calloc(nr->n + 1, sizeof *refs);
    char (*bufs)[IMG_NAME_MAX + IMG_TAG_MAX + 2] = calloc(nr->n + 1, sizeof *bufs);
    api_kv *labels = NULL;
    api_image a;
    size_t nrefs = 0;
    int rc = -1;

    if (!refs || !bufs)
        goto out;
    for (size_t i = 0; i < nr->n; i++) {
        const img_info *r = &nr->rows[i];
        if (strcmp(r->digest, digest) != 0)
            continue;
        if (!first)
            first = r;
        if (r->name[0]) {
            snprintf(bufs[nrefs], sizeof bufs[0], "%s:%s", r->name, r->tag);
            refs[nrefs] = bufs[nrefs];
            nrefs++;
        }
    }
    if (!first)
        goto out;
    labels = calloc(first->nlabels + 1, sizeof *labels);
    if (!labels)
        goto out;
    for (size_t i = 0; i < first->nlabels; i++) {
        labels[i].key = first->labels[i].key;
        labels[i].value = first->labels[i].value;
    }
    memset(&a, 0, sizeof a);
    a.digest = first->digest;
    a.size = first->size;
    a.boot = img_boot_name(first->boot);
    a.refs = refs;
    a.n_refs = nrefs;
    a.labels = labels;
    a.n_labels = first->nlabels;
    a.created = first->created;
    a.instances = first->refs;
    rc = api_sink_image(out, &a);
out:
    free(refs);
    free(bufs);
    free(labels);
    return rc;
}

static api_code emit_image(fleet *f, const char *ref, api_sink *out, api_status *st)
{
    char digest[IMG_DIGEST_LEN + 1];
    name_rows nr = { NULL, 0 };
    img_err e;
    api_code rc = API_OK;

    if (img_resolve(f->img, ref, digest, &e) != 0)
        return img_status(st, &e, "ref");
    if (load_names(f, &nr, &e) != 0)
        return img_status(st, &e, NULL);
    if (sink_image_rows(out, &nr, digest) != 0)
        rc = api_status_set(st, API_E_NOT_FOUND, "ref", "image '%s' not found", ref);
    img_list_free(nr.rows, nr.n);
    return rc;
}

static api_code be_image_list(void *ctx, const api_image_filter *flt, const api_page *page,
                              api_sink *out, api_status *st)
{
    fleet *f = ctx;
    name_rows nr = { NULL, 0 };
    img_err e;
    const char **digests = NULL;
    size_t nd = 0, start = 0, emitted = 0;
    api_code rc = API_OK;

    if (load_names(f, &nr, &e) != 0)
        return img_status(st, &e, NULL);
    digests = calloc(nr.n + 1, sizeof *digests);
    if (!digests) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    /* Distinct digests in row order, filtered by name and labels. */
    for (size_t i = 0; i < nr.n; i++) {
        const img_info *r = &nr.rows[i];
        int seen = 0, name_ok = !flt->name, label_ok;
        api_kv kv[IMG_LABELS_MAX];
        for (size_t d = 0; d < nd; d++)
            seen |= !strcmp(digests[d], r->digest);
        if (seen)
            continue;
        for (size_t j = 0; !name_ok && j < nr.n; j++)
            name_ok = !strcmp(nr.rows[j].digest, r->digest) && !strcmp(nr.rows[j].name, flt->name);
        for (size_t j = 0; j < r->nlabels && j < IMG_LABELS_MAX; j++) {
            kv[j].key = r->labels[j].key;
            kv[j].value = r->labels[j].value;
        }
        label_ok = api_selector_match(flt->selector, kv, r->nlabels);
        if (name_ok && label_ok && (r->name[0] || flt->name))
            digests[nd++] = r->digest;
    }
    if (page->after) {
        start = nd + 1;
        for (size_t d = 0; d < nd; d++) {
            if (!strcmp(digests[d], page->after))
                start = d + 1;
        }
        if (start == nd + 1) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "after", "unknown cursor '%s'",
                                page->after);
            goto out;
        }
    }
    for (size_t d = start; d < nd && emitted < page->limit; d++, emitted++) {
        if (sink_image_rows(out, &nr, digests[d]) != 0) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode image");
            goto out;
        }
    }
    if (start + emitted < nd)
        api_sink_next(out, digests[start + emitted - 1]);
out:
    free(digests);
    img_list_free(nr.rows, nr.n);
    return rc;
}

static api_code be_image_get(void *ctx, const char *ref, api_sink *out, api_status *st)
{
    return emit_image(ctx, ref, out, st);
}

static api_code be_image_tag(void *ctx, const char *ref, const char *new_ref, api_sink *out,
                             api_status *st)
{
    fleet *f = ctx;
    img_err e;
    char digest[IMG_DIGEST_LEN + 1];
    if (img_resolve(f->img, ref, digest, &e) != 0)
        return img_status(st, &e, "ref");
    if (img_tag(f->img, digest, new_ref, &e) != 0)
        return img_status(st, &e, "ref");
    fleet_emit(f, "image.tagged", NULL, NULL, NULL, NULL, new_ref, digest, NULL);
    return emit_image(f, digest, out, st);
}

static int is_digest_ref(const char *ref)
{
    size_t n = strlen(ref);
    if (!strncmp(ref, "sha256:", 7))
        return 1;
    return n >= API_DIGEST_PREFIX_MIN && strspn(ref, "0123456789abcdef") == n;
}

static api_code be_image_delete(void *ctx, const char *ref, bool force, api_status *st)
{
    fleet *f = ctx;
    img_err e;
    img_info info;
    char digest[IMG_DIGEST_LEN + 1];
    name_rows nr = { NULL, 0 };
    size_t names = 0;
    api_code rc = API_OK;

    memset(&info, 0, sizeof info);
    if (img_resolve(f->img, ref, digest, &e) != 0)
        return img_status(st, &e, "ref");
    if (img_get(f->img, digest, &info, &e) != 0)
        return img_status(st, &e, "ref");
    if (is_digest_ref(ref)) {
        if (img_delete(f->img, digest, force, &e) != 0)
            rc = img_status(st, &e, "ref");
        goto done;
    }
    /* A name: remove just that tag; the image goes with its last name,
     * which instances in use protect unless forced. */
    if (load_names(f, &nr, &e) != 0) {
        rc = img_status(st, &e, NULL);
        goto done;
    }
    for (size_t i = 0; i < nr.n; i++)
        names += !strcmp(nr.rows[i].digest, digest) && nr.rows[i].name[0];
    if (names <= 1 && info.refs > 0 && !force) {
        rc = api_status_set(st, API_E_CONFLICT, "ref", "image '%s' is used by %u instance%s; "
                            "delete them first or use force", ref, info.refs,
                            info.refs == 1 ? "" : "s");
        goto done;
    }
    if (img_untag(f->img, ref, &e) != 0) {
        rc = img_status(st, &e, "ref");
        goto done;
    }
    img_gc(f->img, NULL, NULL);
done:
    if (rc == API_OK)
        fleet_emit(f, "image.deleted", NULL, NULL, NULL, NULL, ref, digest, NULL);
    img_list_free(nr.rows, nr.n);
    img_info_clear(&info);
    return rc;
}

/* ---- scheduling snapshot ------------------------------------------------ */

/* What the scheduler sees: hosts (down ones cordoned) and the instances that
 * hold resources. Strings point into the rows and host table copies. */
typedef struct {
    sched_host hosts[FLEET_MAX_HOSTS];
    char names[FLEET_MAX_HOSTS][STATE_NAME_MAX];
    sched_label *hlabels[FLEET_MAX_HOSTS];
    json_t *hlabels_json[FLEET_MAX_HOSTS];
    size_t nhosts;
    sched_instance *insts;
    size_t ninsts;
    state_instance *rows;        /* all rows, nrows */
    size_t nrows;
    size_t *row_of;              /* insts[i] is rows[row_of[i]] */
    json_t **ijson;              /* per instance: labels and placement, 2 each */
    sched_label **ilabels;       /* per instance */
    sched_rule **irules;         /* per instance */
} snapshot;

static void snapshot_free(snapshot *s)
{
    for (size_t i = 0; i < s->nhosts; i++) {
        free(s->hlabels[i]);
        json_decref(s->hlabels_json[i]);
    }
    for (size_t i = 0; i < s->ninsts; i++) {
        if (s->ijson) {
            json_decref(s->ijson[2 * i]);
            json_decref(s->ijson[2 * i + 1]);
        }
        if (s->ilabels)
            free(s->ilabels[i]);
        if (s->irules)
            free(s->irules[i]);
    }
    free(s->ijson);
    free(s->ilabels);
    free(s->irules);
    free(s->insts);
    free(s->row_of);
    state_inst_array_free(s->rows, s->nrows);
    memset(s, 0, sizeof *s);
}

static int snapshot_take(fleet *f, snapshot *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (state_inst_list(f->db, &s->rows, &s->nrows, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nhosts; i++) {
        fleet_host *h = &f->hosts[i];
        sched_host *sh = &s->hosts[i];
        const char *k;
        json_t *v;
        size_t n = 0;
        snprintf(s->names[i], sizeof s->names[i], "%s", h->name);
        s->hlabels_json[i] = json_loads(h->labels_json ? h->labels_json : "{}", 0, NULL);
        s->hlabels[i] = calloc(json_object_size(s->hlabels_json[i]) + 1, sizeof(sched_label));
        if (s->hlabels[i]) {
            json_object_foreach(s->hlabels_json[i], k, v) {
                s->hlabels[i][n].key = k;
                s->hlabels[i][n].value = json_string_value(v);
                n++;
            }
            s->hlabels[i][n].key = HOST_LABEL;
            s->hlabels[i][n].value = s->names[i];
            n++;
        }
        memset(sh, 0, sizeof *sh);
        sh->id = s->names[i];
        sh->mem_mib = h->mem_mib;
        sh->vcpus = h->vcpus ? h->vcpus : 1;
        sh->slots = h->slots;
        /* Keep a tenth of the memory (at most 2 GiB) for the host itself. */
        sh->reserved_mem_mib = h->mem_mib / 10 > 2048 ? 2048 : h->mem_mib / 10;
        sh->vmm_overhead_mib = FLEET_VMM_OVERHEAD_MIB;
        sh->mem_overcommit = f->cfg.mem_overcommit;
        /* Idle unikernels halt; vCPUs are overcommitted like threads. */
        sh->cpu_overcommit = f->cfg.cpu_overcommit;
        sh->labels = s->hlabels[i];
        sh->n_labels = n;
        sh->cordoned = h->cordoned || !h->up;
    }
    s->nhosts = f->nhosts;
    pthread_mutex_unlock(&f->mu);
    s->insts = calloc(s->nrows + 1, sizeof *s->insts);
    s->row_of = calloc(s->nrows + 1, sizeof *s->row_of);
    s->ijson = calloc(2 * s->nrows + 2, sizeof *s->ijson);
    s->ilabels = calloc(s->nrows + 1, sizeof *s->ilabels);
    s->irules = calloc(s->nrows + 1, sizeof *s->irules);
    if (!s->insts || !s->row_of || !s->ijson || !s->ilabels || !s->irules) {
        snprintf(err, errlen, "out of memory");
        snapshot_free(s);
        return -1;
    }
    for (size_t r = 0; r < s->nrows; r++) {
        const state_instance *in = &s->rows[r];
        size_t h;
        if (!fleet_state_holds(in->state))
            continue;
        for (h = 0; h < s->nhosts && strcmp(s->names[h], in->host); h++)
            ;
        if (h == s->nhosts)
            continue;
        size_t k = s->ninsts;
        sched_instance *si = &s->insts[k];
        si->id = in->id;
        si->mem_mib = (uint64_t)in->memory_mib;
        si->vcpus = (uint32_t)in->vcpus;
        si->host = h;
        /* Labels and rules of residents bind newcomers (anti-affinity). */
        s->ijson[2 * k] = json_loads(in->labels_json, 0, NULL);
        s->ijson[2 * k + 1] = json_loads(in->placement_json, 0, NULL);
        s->ilabels[k] = sched_labels_from(s->ijson[2 * k], &si->n_labels);
        si->labels = s->ilabels[k];
        s->irules[k] = sched_rules_from(s->ijson[2 * k + 1], &si->n_rules);
        si->rules = s->irules[k];
        s->row_of[s->ninsts++] = r;
    }
    return 0;
}

/* ---- instances ---------------------------------------------------------- */

static void random_id(char out[STATE_ID_LEN + 1])
{
    unsigned char raw[STATE_ID_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* getrandom on Linux does not fail for small sizes once seeded. */
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)(rand() & 0xff);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* Default instance name from the image name: invalid characters become '-'. */
static void default_name(const char *image_ref, const char *id, char *out, size_t len)
{
    char base[40];
    size_t j = 0;
    for (const char *p = image_ref; *p && *p != ':' && j < 24; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
            base[j++] = c;
        else if (c >= 'A' && c <= 'Z')
            base[j++] = (char)(c - 'A' + 'a');
        else
            base[j++] = '-';
    }
    base[j] = 0;
    if (!j || base[0] == '-' || base[0] == '.' || base[0] == '_')
        snprintf(base, sizeof base, "i");
    snprintf(out, len, "%s-%.6s", base, id);
}

static int name_taken(fleet *f, const char *name)
{
    state_instance in;
    char err[256];
    int taken = 0;
    if (state_inst_find(f->db, name, &in, err, sizeof err) == 0) {
        taken = !strcmp(in.name, name) || !strcmp(in.id, name);
        state_inst_free(&in);
    }
    return taken;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static api_code be_instance_create(void *ctx, const api_instance_spec *spec, api_sink *out,
                                   api_status *st)
{
    fleet *f = ctx;
    img_info info;
    img_err e;
    snapshot snap;
    sched_request req;
    sched_rule rules[API_RULES_MAX + 1];
    sched_label *req_labels = NULL;
    sched_decision dec;
    sched_state *sst = NULL;
    sched_error serr;
    sched_place_opts po = { .policy = SCHED_BINPACK };
    state_instance *made = NULL;
    uint32_t *used_ips = NULL;
    size_t nused = 0, nmade = 0;
    char err[512], digest[IMG_DIGEST_LEN + 1], image_ref[256];
    char *args_json = NULL, *env_json = NULL, *labels_json = NULL, *placement_json = NULL;
    uint32_t count = spec->count ? spec->count : 1, next_ip;
    int network = spec->network && f->gateway;
    api_code rc = API_OK;

    memset(&info, 0, sizeof info);
    memset(&snap, 0, sizeof snap);
    memset(&dec, 0, sizeof dec);
    if (img_resolve(f->img, spec->image, digest, &e) != 0)
        return e.code == IMG_E_NOT_FOUND
            ? api_status_set(st, API_E_NOT_FOUND, "image", "image '%s' not found", spec->image)
            : img_status(st, &e, "image");
    if (img_get(f->img, digest, &info, &e) != 0)
        return img_status(st, &e, "image");
    if (strchr(spec->image, ':') || is_digest_ref(spec->image))
        snprintf(image_ref, sizeof image_ref, "%s", spec->image);
    else
        snprintf(image_ref, sizeof image_ref, "%s:%s", spec->image, IMG_DEFAULT_TAG);
    {
        json_t *a = json_array();
        for (size_t i = 0; i < spec->n_args; i++)
            json_array_append_new(a, json_string(spec->args[i]));
        args_json = json_text(a);
        env_json = json_text(kv_to_json(spec->env, spec->n_env));
        labels_json = json_text(kv_to_json(spec->labels, spec->n_labels));
        placement_json = placement_to_json(spec->spread, spec->rules, spec->n_rules);
    }
    {
        /* The guest gets args and env on its command line: refuse what
         * cannot fit now rather than fail at start. Room is kept for the
         * kernel's own keys (address, gateway, MAC). */
        gcmd c;
        char cerr[160];
        gcmd_init(&c);
        gcmd_env(&c, "shoal.ip", "255.255.255.255/32");
        gcmd_env(&c, "shoal.gw", "255.255.255.255");
        gcmd_env(&c, "shoal.mac", "00:00:00:00:00:00");
        for (size_t i = 0; i < spec->n_env; i++)
            gcmd_env(&c, spec->env[i].key, spec->env[i].value);
        for (size_t i = 0; i < spec->n_args; i++)
            gcmd_arg(&c, spec->args[i]);
        if (gcmd_finish(&c, cerr, sizeof cerr) != 0) {
            rc = api_status_set(st, API_E_INVALID_FIELD, spec->n_args ? "args" : "env", "%s",
                                cerr);
            goto out;
        }
    }
    made = calloc(count, sizeof *made);
    if (!made || !args_json || !env_json || !labels_json || !placement_json) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&f->create_mu);
    /* Names and ids. */
    for (uint32_t i = 0; i < count; i++) {
        state_instance *in = &made[i];
        do
            random_id(in->id);
        while (name_taken(f, in->id));
        if (spec->name && count == 1)
            snprintf(in->name, sizeof in->name, "%s", spec->name);
        else if (spec->name)
            snprintf(in->name, sizeof in->name, "%s-%u", spec->name, i + 1);
        else
            default_name(spec->image, in->id, in->name, sizeof in->name);
        if (name_taken(f, in->name)) {
            rc = api_status_set(st, API_E_CONFLICT, "name", "instance name '%s' is already taken",
                                in->name);
            goto unlock;
        }
    }
    for (size_t p = 0; p < spec->n_ports; p++) {
        char perr[256];
        if (state_port_in_use(f->db, spec->ports[p].host) ||
            spec->ports[p].host == f->cfg.listen_port) {
            rc = api_status_set(st, API_E_CONFLICT, "ports", "host port %u is already "
                                "published", spec->ports[p].host);
            goto unlock;
        }
        if (pfwd_probe(f->pfwd, spec->ports[p].host, perr, sizeof perr) != 0) {
            rc = api_status_set(st, API_E_CONFLICT, "ports", "%s", perr);
            goto unlock;
        }
        if (!network) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "ports", "published ports need the "
                                "instance network (network is %s)",
                                spec->network ? "disabled on this daemon" : "false");
            goto unlock;
        }
    }

    /* Placement: the whole batch or nothing. */
    if (snapshot_take(f, &snap, err, sizeof err) != 0) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
        goto unlock;
    }
    if (spec->host) {
        size_t h;
        for (h = 0; h < snap.nhosts && strcmp(snap.names[h], spec->host); h++)
            ;
        if (h == snap.nhosts) {
            rc = api_status_set(st, API_E_NOT_FOUND, "host", "host '%s' not found", spec->host);
            goto unlock;
        }
    }
    {
        sched_fleet sf = { snap.hosts, snap.nhosts, snap.insts, snap.ninsts };
        if (sched_state_new(&sf, &sst, &serr) != SCHED_OK) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "scheduler: %s", serr.message);
            goto unlock;
        }
    }
    memset(&req, 0, sizeof req);
    memset(rules, 0, sizeof rules);
    req.name = spec->name ? spec->name : image_ref;
    req.mem_mib = spec->memory_mib;
    req.vcpus = spec->vcpus;
    req.count = count;
    for (size_t i = 0; i < spec->n_rules; i++) {
        rules[i].kind = (sched_rule_kind)spec->rules[i].kind;
        rules[i].key = spec->rules[i].key;
        rules[i].value = spec->rules[i].value;
        rules[i].soft = spec->rules[i].soft;
        rules[i].weight = spec->rules[i].weight;
    }
    req.n_rules = spec->n_rules;
    if (spec->host) {
        rules[req.n_rules].kind = SCHED_RULE_HOST_AFFINITY;
        rules[req.n_rules].key = HOST_LABEL;
        rules[req.n_rules].value = spec->host;
        req.n_rules++;
    }
    req.rules = rules;
    req_labels = calloc(spec->n_labels + 1, sizeof *req_labels);
    for (size_t i = 0; req_labels && i < spec->n_labels; i++) {
        req_labels[i].key = spec->labels[i].key;
        req_labels[i].value = spec->labels[i].value;
    }
    req.labels = req_labels;
    req.n_labels = req_labels ? spec->n_labels : 0;
    po.policy = spec->spread ? SCHED_SPREAD : SCHED_BINPACK;
    if (sched_place(sst, &req, 1, &po, &dec) != SCHED_OK) {
        rc = api_status_set(st, dec.status == SCHED_EINVAL ? API_E_INVALID_FIELD
                                                           : API_E_INSUFFICIENT_CAPACITY,
                            NULL, "%s", dec.message);
        goto unlock;
    }

    /* Addresses: the lowest free ones above the gateway. */
    if (network) {
        uint32_t bcast = f->cfg.subnet | ~(0xffffffffu << (32 - f->cfg.prefix));
        used_ips = calloc(snap.nrows + 1, sizeof *used_ips);
        if (!used_ips) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
            goto unlock;
        }
        for (size_t r = 0; r < snap.nrows; r++) {
            if (snap.rows[r].ipv4)
                used_ips[nused++] = snap.rows[r].ipv4;
        }
        qsort(used_ips, nused, sizeof *used_ips, cmp_u32);
        next_ip = f->gateway + 1;
        for (uint32_t i = 0; i < count; i++) {
            size_t k = 0;
            while (k < nused && used_ips[k] < next_ip)
                k++;
            while (k < nused && used_ips[k] == next_ip) {
                next_ip++;
                k++;
            }
            if (next_ip >= bcast) {
                rc = api_status_set(st, API_E_INSUFFICIENT_CAPACITY, "network", "subnet has no "
                                    "free address left for %u more instance%s",
                                    count - i, count - i == 1 ? "" : "s");
                goto unlock;
            }
            made[i].ipv4 = next_ip++;
        }
    }

    /* Rows. */
    for (uint32_t i = 0; i < count; i++) {
        state_instance *in = &made[i];
        snprintf(in->image_ref, sizeof in->image_ref, "%s", image_ref);
        snprintf(in->image_digest, sizeof in->image_digest, "%s", digest);
        snprintf(in->host, sizeof in->host, "%s", dec.assignments[i].host_id);
        in->state = ST_PENDING;
        in->memory_mib = (int)spec->memory_mib;
        in->vcpus = (int)spec->vcpus;
        in->args_json = args_json;
        in->env_json = env_json;
        in->labels_json = labels_json;
        in->placement_json = placement_json;
        in->restart = (state_restart)spec->restart;
        in->network = network;
        if (network)
            netbr_mac(in->id, in->mac);
        for (size_t p = 0; p < spec->n_ports && p < STATE_MAX_PORTS; p++) {
            in->ports[p].host = spec->ports[p].host;
            in->ports[p].guest = spec->ports[p].guest;
            in->nports = (int)p + 1;
        }
        in->created_ms = fleet_wall_ms();
        in->boot_us = -1;
        in->ready_ms = -1;
        in->exit_code = -1;
        in->want_running = 1;
        int src = state_inst_insert(f->db, in, err, sizeof err);
        if (src != 0) {
            rc = api_status_set(st, src == STATE_ECONFLICT ? API_E_CONFLICT : API_E_INTERNAL,
                                NULL, "%s", err);
            goto unlock;
        }
        nmade++;
        if (img_ref_acquire(f->img, digest, &e) != 0)
            log_warn("instance %s: image reference: %s", in->id, e.msg);
    }
unlock:
    if (rc != API_OK) {
        /* Nothing half-made stays behind. */
        for (size_t i = 0; i < nmade; i++) {
            state_inst_delete(f->db, made[i].id, NULL, 0);
            img_ref_release(f->img, digest, &e);
        }
        nmade = 0;
    }
    pthread_mutex_unlock(&f->create_mu);

    for (size_t i = 0; i < nmade; i++) {
        pthread_mutex_lock(&f->mu);
        fleet_rt *rt = fleet_rt_get(f, made[i].id);
        if (rt)
            rt->request_ms = fleet_now_ms();
        pthread_mutex_unlock(&f->mu);
        fleet_emit(f, "instance.created", made[i].id, made[i].name, "pending", made[i].host,
                   image_ref, digest, NULL);
        fleet_queue(f, JOB_START, made[i].id, NULL);
    }
    for (size_t i = 0; i < nmade; i++) {
        if (sink_instance(f, out, &made[i], 0) != 0) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode instance");
            break;
        }
    }
    if (nmade)
        log_info("created %zu instance%s of %s", nmade, nmade == 1 ? "" : "s", image_ref);
out:
    free(made);   /* rows share the JSON strings below */
    free(args_json);
    free(env_json);
    free(labels_json);
    free(placement_json);
    free(req_labels);
    free(used_ips);
    sched_decision_clear(&dec);
    sched_state_free(sst);
    snapshot_free(&snap);
    img_info_clear(&info);
    return rc;
}

/* Label selector on one row (state and host are filtered in SQL). */
static int selector_matches(const state_instance *in, void *ctx)
{
    const api_selector *sel = ctx;
    json_t *labels = json_loads(in->labels_json, 0, NULL);
    size_t n;
    api_kv *kv = kv_from_json(labels, &n);
    int ok = api_selector_match(sel, kv, n);
    free(kv);
    json_decref(labels);
    return ok;
}

static api_code be_instance_list(void *ctx, const api_instance_filter *flt,
                                 const api_page *page, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    state_instance *rows = NULL;
    size_t n = 0;
    char err[256];
    int more = 0, rc;
    int has_sel = flt->selector && flt->selector->n > 0;

    rc = state_inst_page(f->db, page->after, flt->has_state ? (int)flt->state : -1, flt->host,
                         has_sel ? selector_matches : NULL, (void *)flt->selector, page->limit,
                         &rows, &n, &more, err, sizeof err);
    if (rc == STATE_ENOTFOUND)
        return api_status_set(st, API_E_INVALID_FIELD, "after", "%s", err);
    if (rc != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        if (sink_instance(f, out, &rows[i], 0) != 0) {
            state_inst_array_free(rows, n);
            return api_status_set(st, API_E_INTERNAL, NULL, "cannot encode instance");
        }
    }
    if (more && n)
        api_sink_next(out, rows[n - 1].id);
    state_inst_array_free(rows, n);
    return API_OK;
}

static api_code be_instance_get(void *ctx, const char *id, api_sink *out, api_status *st)
{
    return emit_instance_by_id(ctx, id, out, 1, st);
}

static api_code be_instance_action(void *ctx, const char *id, api_action action, int timeout_s,
                                   api_sink *out, api_status *st)
{
    fleet *f = ctx;
    state_instance in;
    char err[256], full[STATE_ID_LEN + 1];
    int rc;

    /* Resolve once so a name or prefix means the same instance throughout. */
    rc = state_inst_find(f->db, id, &in, err, sizeof err);
    if (rc == STATE_ENOTFOUND)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    if (rc != 0)
        return api_status_set(st, rc == STATE_ECONFLICT ? API_E_CONFLICT : API_E_INTERNAL,
                              "id", "%s", err);
    snprintf(full, sizeof full, "%s", in.id);
    state_inst_free(&in);
    switch (action) {
    case API_ACTION_STOP:
        rc = fleet_stop(f, full, timeout_s, st);
        break;
    case API_ACTION_START:
        rc = fleet_start(f, full, st);
        break;
    case API_ACTION_RESTART:
        rc = fleet_stop(f, full, timeout_s, st);
        if (rc == API_OK)
            rc = fleet_start(f, full, st);
        break;
    default:
        rc = api_status_set(st, API_E_INTERNAL, NULL, "unknown action");
    }
    if (rc != API_OK)
        return (api_code)rc;
    return emit_instance_by_id(f, full, out, 0, st);
}

static api_code be_instance_delete(void *ctx, const char *id, bool force, api_status *st)
{
    return (api_code)fleet_delete(ctx, id, force, st);
}

/* ---- console ------------------------------------------------------------ */

typedef struct {
    char id[STATE_ID_LEN + 1];
    char path[1200];
    int fd;
    off_t off;
    bool follow;
} be_console;

static api_code be_console_open(void *ctx, const char *id, uint64_t tail, bool follow,
                                void **stream, api_status *st)
{
    fleet *f = ctx;
    state_instance in;
    char err[256];
    be_console *c;
    struct stat sb;
    int rc = state_inst_find(f->db, id, &in, err, sizeof err);

    if (rc == STATE_ENOTFOUND)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    if (rc != 0)
        return api_status_set(st, rc == STATE_ECONFLICT ? API_E_CONFLICT : API_E_INTERNAL,
                              "id", "%s", err);
    c = calloc(1, sizeof *c);
    if (!c) {
        state_inst_free(&in);
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    }
    snprintf(c->id, sizeof c->id, "%s", in.id);
    fleet_console_path(f, in.id, c->path, sizeof c->path);
    c->follow = follow;
    c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->fd >= 0 && fstat(c->fd, &sb) == 0 && tail != UINT64_MAX &&
        (uint64_t)sb.st_size > tail)
        c->off = sb.st_size - (off_t)tail;
    state_inst_free(&in);
    *stream = c;
    return API_OK;
}

/* Could the instance still write to its console? */
static int console_may_grow(fleet *f, const char *id)
{
    state_instance in;
    char err[256];
    int grow = 0;
    fleet_rt *rt;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, id);
    grow = rt && (rt->active || rt->busy || rt->backoff_due_ms);
    pthread_mutex_unlock(&f->mu);
    if (!grow && state_inst_find(f->db, id, &in, err, sizeof err) == 0) {
        grow = in.state == ST_PENDING || in.state == ST_BACKOFF || fleet_state_live(in.state);
        state_inst_free(&in);
    }
    return grow;
}

static ssize_t be_console_read(void *ctx, void *stream, char *buf, size_t len, int timeout_ms)
{
    fleet *f = ctx;
    be_console *c = stream;
    int waited = 0;

    for (;;) {
        struct stat sb;
        if (c->fd < 0)
            c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
        if (c->fd >= 0) {
            ssize_t n = pread(c->fd, buf, len, c->off);
            if (n > 0) {
                c->off += n;
                return n;
            }
            if (n < 0)
                return API_STREAM_ERROR;
            /* Rotated under us: start again at the new beginning. */
            if (fstat(c->fd, &sb) == 0 && sb.st_size < c->off)
                c->off = 0;
        }
        if (!c->follow)
            return API_STREAM_END;
        if (!console_may_grow(f, c->id)) {
            /* One last read after the end, then stop. */
            if (c->fd >= 0 && pread(c->fd, buf, 1, c->off) == 1)
                continue;
            return API_STREAM_END;
        }
        if (waited >= timeout_ms)
            return 0;
        poll(NULL, 0, 50);
        waited += 50;
    }
}

static void be_console_close(void *ctx, void *stream)
{
    be_console *c = stream;
    (void)ctx;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* ---- hosts -------------------------------------------------------------- */

static int sink_host(fleet *f, api_sink *out, size_t idx, const snapshot *snap)
{
    fleet_host h;
    api_host a;
    json_t *labels;
    api_kv *kv;
    size_t nkv;
    uint64_t mem = 0;
    uint32_t vcpus = 0, n = 0;
    int rc;

    pthread_mutex_lock(&f->mu);
    h = f->hosts[idx];
    h.labels_json = strdup(f->hosts[idx].labels_json ? f->hosts[idx].labels_json : "{}");
    const char *dt = fleet_host_domain_type(&f->hosts[idx]);
    char dtype[8], reason[256] = "";
    int kvm = -1;
    snprintf(dtype, sizeof dtype, "%s", dt);
    if (f->hosts[idx].node) {
        kvm = node_kvm_works(f->hosts[idx].node);
        snprintf(reason, sizeof reason, "%s", node_domain_type_reason(f->hosts[idx].node));
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < snap->ninsts; i++) {
        const state_instance *in = &snap->rows[snap->row_of[i]];
        if (strcmp(in->host, h.name) != 0)
            continue;
        mem += (uint64_t)in->memory_mib + FLEET_VMM_OVERHEAD_MIB;
        vcpus += (uint32_t)in->vcpus;
        n++;
    }
    labels = json_loads(h.labels_json ? h.labels_json : "{}", 0, NULL);
    kv = kv_from_json(labels, &nkv);
    memset(&a, 0, sizeof a);
    a.name = h.name;
    a.uri = h.uri;
    a.state = h.up ? "up" : "down";
    a.cordoned = h.cordoned != 0;
    a.domain_type = dtype;
    a.kvm = kvm;
    a.domain_type_reason = reason[0] ? reason : NULL;
    a.labels = kv;
    a.n_labels = nkv;
    a.capacity.memory_mib = h.mem_mib;
    a.capacity.vcpus = h.vcpus;
    a.capacity.slots = h.slots;
    a.used.memory_mib = mem;
    a.used.vcpus = vcpus;
    a.used.slots = n;
    a.instances = n;
    rc = api_sink_host(out, &a);
    free(kv);
    json_decref(labels);
    free(h.labels_json);
    return rc;
}

static api_code be_host_list(void *ctx, const api_page *page, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    snapshot snap;
    char err[256];
    size_t start = 0, emitted = 0, nh;
    api_code rc = API_OK;

    if (snapshot_take(f, &snap, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    nh = snap.nhosts;
    if (page->after) {
        start = nh + 1;
        for (size_t i = 0; i < nh; i++) {
            if (!strcmp(snap.names[i], page->after))
                start = i + 1;
        }
        if (start == nh + 1) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "after", "unknown cursor '%s'",
                                page->after);
            goto out;
        }
    }
    for (size_t i = start; i < nh && emitted < page->limit; i++, emitted++) {
        if (sink_host(f, out, i, &snap) != 0) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode host");
            goto out;
        }
    }
    if (start + emitted < nh)
        api_sink_next(out, snap.names[start + emitted - 1]);
out:
    snapshot_free(&snap);
    return rc;
}

static api_code emit_host(fleet *f, const char *name, api_sink *out, api_status *st)
{
    snapshot snap;
    char err[256];
    api_code rc = API_OK;
    size_t i;
    if (snapshot_take(f, &snap, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    for (i = 0; i < snap.nhosts && strcmp(snap.names[i], name); i++)
        ;
    if (i == snap.nhosts)
        rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    else if (sink_host(f, out, i, &snap) != 0)
        rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode host");
    snapshot_free(&snap);
    return rc;
}

static api_code be_host_get(void *ctx, const char *name, api_sink *out, api_status *st)
{
    return emit_host(ctx, name, out, st);
}

static api_code be_host_add(void *ctx, const api_host_spec *spec, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    char *labels = json_text(kv_to_json(spec->labels, spec->n_labels));
    api_code rc;
    rc = (api_code)fleet_host_add(f, spec->name, spec->uri, labels ? labels : "{}",
                                  api_domain_type_str(spec->domain_type), st);
    free(labels);
    if (rc != API_OK)
        return rc;
    return emit_host(f, spec->name, out, st);
}

static int persist_host(fleet *f, const char *name, char *err, size_t errlen)
{
    state_host row;
    fleet_host *h;
    int rc;
    memset(&row, 0, sizeof row);
    pthread_mutex_lock(&f->mu);
    h = fleet_host_find(f, name);
    if (!h) {
        pthread_mutex_unlock(&f->mu);
        return -1;
    }
    snprintf(row.name, sizeof row.name, "%s", h->name);
    snprintf(row.uri, sizeof row.uri, "%s", h->uri);
    row.labels_json = strdup(h->labels_json ? h->labels_json : "{}");
    row.cordoned = h->cordoned;
    snprintf(row.domain_type, sizeof row.domain_type, "%s", h->domain_type_cfg);
    pthread_mutex_unlock(&f->mu);
    rc = state_host_upsert(f->db, &row, err, errlen);
    free(row.labels_json);
    return rc;
}

static api_code set_cordon(fleet *f, const char *name, bool cordoned, api_status *st)
{
    fleet_host *h;
    char err[256];
    pthread_mutex_lock(&f->mu);
    h = fleet_host_find(f, name);
    if (h)
        h->cordoned = cordoned;
    pthread_mutex_unlock(&f->mu);
    if (!h)
        return api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    if (persist_host(f, name, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    fleet_emit(f, "host.state", NULL, name, cordoned ? "cordoned" : "uncordoned", name, NULL,
               NULL, NULL);
    return API_OK;
}

static api_code be_host_cordon(void *ctx, const char *name, bool cordoned, api_sink *out,
                               api_status *st)
{
    api_code rc = set_cordon(ctx, name, cordoned, st);
    return rc != API_OK ? rc : emit_host(ctx, name, out, st);
}

/* Cold-move one instance: stop where it is, re-home, start if it ran. */
static api_code move_instance(fleet *f, const char *id, const char *to, api_status *st)
{
    state_instance in;
    char err[256];
    int was_up;
    api_code rc;
    if (state_inst_find(f->db, id, &in, err, sizeof err) != 0)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", id);
    was_up = in.want_running;
    state_inst_free(&in);
    if (was_up && (rc = (api_code)fleet_stop(f, id, 2, st)) != API_OK)
        return rc;
    fleet_set_host(f, id, to);
    fleet_emit(f, "instance.moved", id, NULL, NULL, to, NULL, NULL, NULL);
    if (was_up)
        return (api_code)fleet_start(f, id, st);
    return API_OK;
}

static api_code plan_common(fleet *f, const char *drain_host, bool dry_run, api_sink *out,
                            api_status *st)
{
    snapshot snap;
    sched_state *sst = NULL;
    sched_error serr;
    sched_plan plan;
    char err[256];
    api_code rc = API_OK;
    const char **freed_names = NULL;

    memset(&plan, 0, sizeof plan);
    if (snapshot_take(f, &snap, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    {
        sched_fleet sf = { snap.hosts, snap.nhosts, snap.insts, snap.ninsts };
        if (sched_state_new(&sf, &sst, &serr) != SCHED_OK) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "scheduler: %s", serr.message);
            goto out;
        }
    }
    if (drain_host) {
        size_t h;
        for (h = 0; h < snap.nhosts && strcmp(snap.names[h], drain_host); h++)
            ;
        if (h == snap.nhosts) {
            rc = api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", drain_host);
            goto out;
        }
        if (sched_plan_drain(sst, h, NULL, &plan) != SCHED_OK) {
            rc = api_status_set(st, API_E_INSUFFICIENT_CAPACITY, NULL, "%s", plan.message);
            goto out;
        }
    } else if (sched_plan_consolidate(sst, NULL, &plan) != SCHED_OK) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "consolidate: %s", plan.message);
        goto out;
    }
    freed_names = calloc(plan.n_freed + 1, sizeof *freed_names);
    for (size_t i = 0; freed_names && i < plan.n_freed; i++)
        freed_names[i] = snap.names[plan.freed[i]];
    {
        /* run_plan encodes moves; add freed host names here. */
        api_move *moves = calloc(plan.n_moves + 1, sizeof *moves);
        api_plan a;
        if (!moves || !freed_names) {
            free(moves);
            rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < plan.n_moves; i++) {
            moves[i].instance = plan.moves[i].instance_id;
            moves[i].from = plan.moves[i].from_id;
            moves[i].to = plan.moves[i].to_id;
        }
        if (!dry_run) {
            for (size_t i = 0; i < plan.n_moves && rc == API_OK; i++)
                rc = move_instance(f, moves[i].instance, moves[i].to, st);
        }
        if (rc == API_OK) {
            memset(&a, 0, sizeof a);
            a.moves = moves;
            a.n_moves = plan.n_moves;
            a.hosts_freed = freed_names;
            a.n_hosts_freed = plan.n_freed;
            a.hosts_before = (uint32_t)plan.hosts_used_before;
            a.hosts_after = (uint32_t)plan.hosts_used_after;
            a.executed = !dry_run;
            if (api_sink_plan(out, &a) != 0)
                rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode plan");
        }
        free(moves);
    }
out:
    free(freed_names);
    sched_plan_clear(&plan);
    sched_state_free(sst);
    snapshot_free(&snap);
    return rc;
}

static api_code be_host_drain(void *ctx, const char *name, bool dry_run, api_sink *out,
                              api_status *st)
{
    fleet *f = ctx;
    api_code rc;
    if (!dry_run && (rc = set_cordon(f, name, true, st)) != API_OK)
        return rc;
    return plan_common(f, name, dry_run, out, st);
}

static api_code be_consolidate(void *ctx, bool dry_run, api_sink *out, api_status *st)
{
    return plan_common(ctx, NULL, dry_run, out, st);
}

static api_code be_host_delete(void *ctx, const char *name, api_status *st)
{
    fleet *f = ctx;
    state_instance *rows = NULL;
    size_t n = 0, users = 0, idx;
    char err[256];
    struct node *node = NULL;

    if (!strcmp(name, FLEET_LOCAL_HOST))
        return api_status_set(st, API_E_CONFLICT, "name", "host '%s' is the daemon's own "
                              "host and cannot be removed", name);
    if (state_inst_list(f->db, &rows, &n, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    for (size_t i = 0; i < n; i++)
        users += !strcmp(rows[i].host, name);
    state_inst_array_free(rows, n);
    pthread_mutex_lock(&f->mu);
    fleet_host *h = fleet_host_find(f, name);
    if (!h) {
        pthread_mutex_unlock(&f->mu);
        return api_status_set(st, API_E_NOT_FOUND, "name", "host '%s' not found", name);
    }
    if (users) {
        pthread_mutex_unlock(&f->mu);
        return api_status_set(st, API_E_CONFLICT, "name", "host '%s' still has %zu instance%s; "
                              "drain it first", name, users, users == 1 ? "" : "s");
    }
    idx = (size_t)(h - f->hosts);
    node = h->node;
    free(h->labels_json);
    f->hosts[idx] = f->hosts[--f->nhosts];
    pthread_mutex_unlock(&f->mu);
    node_close(node);
    state_host_delete(f->db, name, NULL, 0);
    fleet_emit(f, "host.removed", NULL, name, NULL, name, NULL, NULL, NULL);
    return API_OK;
}

/* ---- events ------------------------------------------------------------- */

typedef struct {
    int64_t last;
} be_sub;

static api_code be_events_open(void *ctx, bool has_since, uint64_t since, void **sub,
                               api_status *st)
{
    fleet *f = ctx;
    be_sub *s = calloc(1, sizeof *s);
    if (!s)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    pthread_mutex_lock(&f->mu);
    s->last = has_since ? (int64_t)since : f->last_event_id;
    pthread_mutex_unlock(&f->mu);
    *sub = s;
    return API_OK;
}

static void copy_field(char *dst, size_t len, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, len, "%s", v ? v : "");
}

static int be_events_next(void *ctx, void *subp, api_event *ev, int timeout_ms)
{
    fleet *f = ctx;
    be_sub *s = subp;
    for (int attempt = 0; attempt < 2; attempt++) {
        state_event *evs = NULL;
        size_t n = 0;
        if (state_event_after(f->db, s->last, 1, &evs, &n) == 0 && n == 1) {
            json_t *o = json_loads(evs[0].data_json, 0, NULL);
            memset(ev, 0, sizeof *ev);
            ev->id = (uint64_t)evs[0].id;
            ev->time = json_integer_value(json_object_get(o, "time"));
            copy_field(ev->type, sizeof ev->type, o, "type");
            copy_field(ev->instance, sizeof ev->instance, o, "instance");
            copy_field(ev->name, sizeof ev->name, o, "name");
            copy_field(ev->state, sizeof ev->state, o, "state");
            copy_field(ev->host, sizeof ev->host, o, "host");
            copy_field(ev->image, sizeof ev->image, o, "image");
            copy_field(ev->digest, sizeof ev->digest, o, "digest");
            copy_field(ev->message, sizeof ev->message, o, "message");
            s->last = evs[0].id;
            json_decref(o);
            state_event_array_free(evs, n);
            return 1;
        }
        state_event_array_free(evs, n);
        if (attempt == 1)
            break;
        pthread_mutex_lock(&f->mu);
        if (f->stopping) {
            pthread_mutex_unlock(&f->mu);
            return -1;
        }
        if (f->last_event_id <= s->last) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->event_cv, &f->mu, &ts);
        }
        pthread_mutex_unlock(&f->mu);
    }
    return 0;
}

static void be_events_close(void *ctx, void *sub)
{
    (void)ctx;
    free(sub);
}

/* ---- metrics ------------------------------------------------------------ */

static api_code be_metrics_write(void *ctx, api_sink *out, api_status *st)
{
    static const double bounds[] = { 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30 };
    fleet *f = ctx;
    state_instance *rows = NULL;
    size_t n = 0, counts[ST__COUNT] = { 0 }, up = 0, nhosts;
    name_rows nr = { NULL, 0 };
    img_err e;
    char err[256];
    uint64_t hist[12], cum = 0, ready_count;
    double ready_sum;

    if (state_inst_list(f->db, &rows, &n, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    for (size_t i = 0; i < n; i++)
        counts[rows[i].state]++;
    state_inst_array_free(rows, n);
    api_sink_printf(out, "# HELP shoal_instances Instances by state.\n"
                         "# TYPE shoal_instances gauge\n");
    for (int s = 0; s < ST__COUNT; s++)
        api_sink_printf(out, "shoal_instances{state=\"%s\"} %zu\n",
                        state_inst_state_name((state_inst_state)s), counts[s]);
    pthread_mutex_lock(&f->mu);
    nhosts = f->nhosts;
    for (size_t i = 0; i < f->nhosts; i++)
        up += f->hosts[i].up != 0;
    memcpy(hist, f->ready_hist, sizeof hist);
    ready_sum = f->ready_sum;
    ready_count = f->ready_count;
    pthread_mutex_unlock(&f->mu);
    api_sink_printf(out, "# HELP shoal_hosts Hosts known to the daemon.\n"
                         "# TYPE shoal_hosts gauge\nshoal_hosts %zu\n"
                         "# HELP shoal_hosts_up Hosts whose libvirt connection is up.\n"
                         "# TYPE shoal_hosts_up gauge\nshoal_hosts_up %zu\n", nhosts, up);
    if (load_names(f, &nr, &e) == 0) {
        size_t distinct = 0;
        for (size_t i = 0; i < nr.n; i++) {
            int seen = 0;
            for (size_t j = 0; j < i; j++)
                seen |= !strcmp(nr.rows[j].digest, nr.rows[i].digest);
            distinct += !seen;
        }
        api_sink_printf(out, "# HELP shoal_images Images stored.\n"
                             "# TYPE shoal_images gauge\nshoal_images %zu\n", distinct);
        img_list_free(nr.rows, nr.n);
    }
    api_sink_printf(out, "# HELP shoal_instance_ready_seconds Create or start request to guest "
                         "ready.\n# TYPE shoal_instance_ready_seconds histogram\n");
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        cum += hist[i];
        api_sink_printf(out, "shoal_instance_ready_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
                        (unsigned long long)cum);
    }
    cum += hist[11];
    api_sink_printf(out, "shoal_instance_ready_seconds_bucket{le=\"+Inf\"} %llu\n"
                         "shoal_instance_ready_seconds_sum %g\n"
                         "shoal_instance_ready_seconds_count %llu\n",
                    (unsigned long long)cum, ready_sum, (unsigned long long)ready_count);
    return API_OK;
}

static const api_backend BACKEND = {
    .image_upload_begin = be_image_upload_begin,
    .image_upload_write = be_image_upload_write,
    .image_upload_commit = be_image_upload_commit,
    .image_upload_abort = be_image_upload_abort,
    .image_list = be_image_list,
    .image_get = be_image_get,
    .image_tag = be_image_tag,
    .image_delete = be_image_delete,
    .instance_create = be_instance_create,
    .instance_list = be_instance_list,
    .instance_get = be_instance_get,
    .instance_action = be_instance_action,
    .instance_delete = be_instance_delete,
    .console_open = be_console_open,
    .console_read = be_console_read,
    .console_close = be_console_close,
    .host_list = be_host_list,
    .host_get = be_host_get,
    .host_add = be_host_add,
    .host_cordon = be_host_cordon,
    .host_drain = be_host_drain,
    .host_delete = be_host_delete,
    .consolidate = be_consolidate,
    .events_open = be_events_open,
    .events_next = be_events_next,
    .events_close = be_events_close,
    .metrics_write = be_metrics_write,
};

const api_backend *backend_get(void)
{
    return &BACKEND;
}

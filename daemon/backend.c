/* backend.c - the REST adapter: api.h requests -> fleet core calls
 * (core/fleet.h), core results -> api.h result structs. No fleet logic
 * lives here: only translation, in both directions, with one table per
 * mapping (errors, states, restart policies, rule kinds, protocols).
 * Every function runs on an API connection thread (see api.h). */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "fleet.h"
#include "tokens.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- one table per mapping ---------------------------------------------- */

/* fleet_code (0, -1 .. -8) -> api_code, indexed by -code. */
static const api_code CODE_MAP[FLEET_CODES] = {
    [-FLEET_OK] = API_OK,
    [-FLEET_E_INVALID] = API_E_INVALID_FIELD,
    [-FLEET_E_NOT_FOUND] = API_E_NOT_FOUND,
    [-FLEET_E_CONFLICT] = API_E_CONFLICT,
    [-FLEET_E_CAPACITY] = API_E_INSUFFICIENT_CAPACITY,
    [-FLEET_E_UNAVAILABLE] = API_E_UNAVAILABLE,
    [-FLEET_E_BAD_IMAGE] = API_E_INVALID_IMAGE,
    [-FLEET_E_TOO_LARGE] = API_E_TOO_LARGE,
    [-FLEET_E_INTERNAL] = API_E_INTERNAL,
    [-FLEET_E_BUSY] = API_E_UNAVAILABLE, /* with Retry-After (status_from) */
};
_Static_assert(-FLEET_E_BUSY == FLEET_CODES - 1, "CODE_MAP covers every fleet_code");

static api_code status_code(fleet_code c)
{
    int i = -(int)c;
    return i >= 0 && i < FLEET_CODES ? CODE_MAP[i] : API_E_INTERNAL;
}

/* Seconds a client is told to wait (Retry-After) when the state database
 * was busy: about a busy timeout's worth. */
#define BUSY_RETRY_AFTER_S 5

static api_code status_from(api_status *st, const fleet_err *e)
{
    api_code rc =
        api_status_set(st, status_code(e->code), e->field[0] ? e->field : NULL, "%s", e->msg);
    if (e->code == FLEET_E_BUSY && st)
        st->retry_after_s = BUSY_RETRY_AFTER_S;
    return rc;
}

static int put_instance(fleet *f, api_sink *out, char **json, size_t *len, const state_instance *in,
                        const fleet_health *fh_in, int detail);

static int sink_instance(fleet *f, api_sink *out, const state_instance *in, int detail)
{
    return put_instance(f, out, NULL, NULL, in, NULL, detail);
}

/* Instance states: the API's and the database's lists are the same, in
 * the same order; the table makes each pairing explicit. */
static const api_instance_state STATE_MAP[ST__COUNT] = {
    [ST_PENDING] = API_STATE_PENDING, [ST_STARTING] = API_STATE_STARTING,
    [ST_RUNNING] = API_STATE_RUNNING, [ST_STOPPING] = API_STATE_STOPPING,
    [ST_STOPPED] = API_STATE_STOPPED, [ST_EXITED] = API_STATE_EXITED,
    [ST_CRASHED] = API_STATE_CRASHED, [ST_BACKOFF] = API_STATE_BACKOFF,
    [ST_FAILED] = API_STATE_FAILED,   [ST_LOST] = API_STATE_LOST,
    [ST_IDLE] = API_STATE_IDLE,
};
_Static_assert((int)ST__COUNT == (int)API_STATE_COUNT_, "every state has an API state");

static state_inst_state state_from_api(api_instance_state s)
{
    for (int i = 0; i < ST__COUNT; i++) {
        if (STATE_MAP[i] == s)
            return (state_inst_state)i;
    }
    return ST_PENDING;
}

static const api_restart RESTART_MAP[] = {
    [RESTART_NEVER] = API_RESTART_NEVER,
    [RESTART_ON_FAILURE] = API_RESTART_ON_FAILURE,
    [RESTART_ALWAYS] = API_RESTART_ALWAYS,
};
_Static_assert(NELEM(RESTART_MAP) == 3, "restart policies");

static state_restart restart_from_api(api_restart r)
{
    for (size_t i = 0; i < NELEM(RESTART_MAP); i++) {
        if (RESTART_MAP[i] == r)
            return (state_restart)i;
    }
    return RESTART_NEVER;
}

static const api_rule_kind RULE_MAP[FLEET_RULE__COUNT] = {
    [FLEET_RULE_HOST_AFFINITY] = API_RULE_HOST_AFFINITY,
    [FLEET_RULE_HOST_ANTI_AFFINITY] = API_RULE_HOST_ANTI_AFFINITY,
    [FLEET_RULE_AFFINITY] = API_RULE_AFFINITY,
    [FLEET_RULE_ANTI_AFFINITY] = API_RULE_ANTI_AFFINITY,
};

static fleet_rule_kind rule_from_api(api_rule_kind k)
{
    for (int i = 0; i < FLEET_RULE__COUNT; i++) {
        if (RULE_MAP[i] == k)
            return (fleet_rule_kind)i;
    }
    return FLEET_RULE_HOST_AFFINITY;
}

const char *backend_rule_name(int fleet_kind)
{
    return fleet_kind >= 0 && fleet_kind < FLEET_RULE__COUNT
               ? api_rule_kind_str(RULE_MAP[fleet_kind])
               : NULL;
}

/* ---- helpers ------------------------------------------------------------ */

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
    json_object_foreach (obj, k, v) {
        a[i].key = k;
        a[i].value = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    *n = i;
    return a;
}

static void kv_from_api(const api_kv *in, size_t n, fleet_kv *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].key = in[i].key;
        out[i].value = in[i].value;
    }
}

/* ---- instances ---------------------------------------------------------- */

/* A stored JSON column decoded; NULL for an empty array or object (most
 * rows: no parse, and NULL reads as empty below). */
static json_t *column_json(const char *text)
{
    if (text == NULL || strcmp(text, "[]") == 0 || strcmp(text, "{}") == 0)
        return NULL;
    return json_loads(text, 0, NULL);
}

/* Emit one instance row (with its runs when detail). */
/* One instance for the API: appended to out, or (out NULL) encoded into
 * *json. fh: its health when the caller has it (NULL: read now). */
static int put_instance(fleet *f, api_sink *out, char **json, size_t *len, const state_instance *in,
                        const fleet_health *fh_in, int detail)
{
    api_instance a;
    json_t *args = column_json(in->args_json);
    json_t *env = column_json(in->env_json);
    json_t *labels = column_json(in->labels_json);
    fleet_placement pl;
    api_rule *rules = NULL;
    const char **argv = NULL;
    api_kv *envkv = NULL, *lkv = NULL;
    api_port ports[STATE_MAX_PORTS];
    api_run runs[10];
    api_health ah;
    fleet_health fh;
    state_run sr[10];
    size_t nargs = json_array_size(args), nsr = 0;
    char addr[40], ip[16], gw[16];
    uint32_t gateway;
    int prefix, rc = -1;

    memset(&a, 0, sizeof a);
    memset(&pl, 0, sizeof pl);
    argv = calloc(nargs + 1, sizeof *argv);
    if (!argv || fleet_placement_parse(in->placement_json, &pl) != 0)
        goto out;
    rules = calloc(pl.n_rules + 1, sizeof *rules);
    if (!rules)
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
    a.state = (unsigned)in->state < ST__COUNT ? STATE_MAP[in->state] : API_STATE_LOST;
    a.memory_mib = (uint32_t)in->memory_mib;
    a.vcpus = (uint32_t)in->vcpus;
    a.args = argv;
    a.n_args = nargs;
    a.env = envkv;
    a.labels = lkv;
    a.restart =
        (unsigned)in->restart < NELEM(RESTART_MAP) ? RESTART_MAP[in->restart] : API_RESTART_NEVER;
    a.restarts = (uint32_t)in->restarts;
    a.spread = pl.spread;
    for (size_t i = 0; i < pl.n_rules; i++) {
        rules[i].kind = RULE_MAP[pl.rules[i].kind];
        rules[i].key = pl.rules[i].key;
        rules[i].value = pl.rules[i].value;
        rules[i].soft = pl.rules[i].soft;
        rules[i].weight = pl.rules[i].weight ? pl.rules[i].weight : 1;
    }
    a.rules = rules;
    a.n_rules = pl.n_rules;
    a.network.enabled = in->network != 0;
    fleet_network(f, in->ipv4, &gateway, &prefix);
    if (in->network && in->ipv4) {
        snprintf(addr, sizeof addr, "%s/%d", cfg_ip4_str(in->ipv4, ip), prefix);
        a.network.address = addr;
        a.network.gateway = cfg_ip4_str(gateway, gw);
        a.network.mac = in->mac[0] ? in->mac : NULL;
    }
    for (int i = 0; i < in->nports; i++) {
        ports[i].host = (uint16_t)in->ports[i].host;
        ports[i].guest = (uint16_t)in->ports[i].guest;
        ports[i].protocol = in->ports[i].proto == STATE_PROTO_UDP ? API_PROTO_UDP : API_PROTO_TCP;
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
    if (fh_in)
        fh = *fh_in;
    else
        fleet_instance_health(f, in, &fh);
    a.ready = fh.ready[0] ? fh.ready : NULL;
    a.cmdline = in->cmdline;                      /* per-run override, NULL: the image's */
    a.initrd = in->initrd[0] ? in->initrd : NULL; /* the run's own */
    /* scale to zero: sleeps after idle_s seconds without a connection */
    a.idle_s = in->idle_s > 0 ? (uint32_t)in->idle_s : 0;
    ah.probe = fh.probe[0] ? fh.probe : NULL;
    ah.interval_s = fh.interval_s;
    ah.timeout_s = fh.timeout_s;
    ah.retries = fh.retries;
    ah.status = fh.status;
    ah.failures = fh.failures;
    ah.last_check = fh.last_check_ms / 1000;
    ah.last_result = fh.last_result[0] ? fh.last_result : NULL;
    a.health = &ah;
    if (detail) {
        fleet_instance_runs(f, in->id, sr, NELEM(sr), &nsr);
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
    if (out) {
        rc = api_sink_instance(out, &a);
    } else {
        *json = api_encode_instance(&a, len);
        rc = *json ? 0 : -1;
    }
out:
    free(argv);
    free(envkv);
    free(lkv);
    free(rules);
    fleet_placement_clear(&pl);
    json_decref(args);
    json_decref(env);
    json_decref(labels);
    return rc;
}

/* ---- token limits (docs/api.md "Authentication") -------------------------
 *
 * A token with a label selector sees only the instances that match it:
 * any other is "not found" to it, exactly as if it did not exist; its
 * creates must carry labels that match. Quotas are checked at create
 * against what the instances it created still hold. */

static tok_store *g_tokens;                      /* backend_set_tokens; NULL: no token store */
static void (*g_process_metrics)(api_sink *out); /* backend_set_process_metrics */

void backend_set_tokens(tok_store *ts)
{
    g_tokens = ts;
}

void backend_set_process_metrics(void (*write)(api_sink *out))
{
    g_process_metrics = write;
}

/* The request's token selector, parsed; false when it has none. */
static bool token_selector(api_selector *sel)
{
    const api_principal *who = api_request_principal();

    if (who == NULL || who->selector[0] == '\0')
        return false;
    /* checked when the token was created; a failure here matches nothing */
    if (api_selector_parse(who->selector, sel, NULL) != API_OK) {
        memset(sel, 0, sizeof *sel);
        sel->n = 1;
        sel->terms[0].op = API_SEL_HAS;
        snprintf(sel->terms[0].key, sizeof sel->terms[0].key, "shoal/none");
        sel->terms[1].op = API_SEL_LACKS;
        snprintf(sel->terms[1].key, sizeof sel->terms[1].key, "shoal/none");
        sel->n = 2;
    }
    return true;
}

static int selector_matches(const state_instance *in, void *ctx);

/* *key (id, id prefix or name) as the request's token may see it. For a
 * token with a selector, *key is resolved once and then points at idbuf,
 * the instance's id; otherwise it is left as given. An instance outside
 * the selector is not found, with the message the core gives for one that
 * does not exist. */
static api_code visible(fleet *f, const char **key, char idbuf[STATE_ID_LEN + 1], api_status *st)
{
    api_selector sel;
    state_instance in;
    fleet_err e;
    int ok;

    if (!token_selector(&sel))
        return API_OK;
    if (fleet_instance_find(f, *key, &in, &e) != FLEET_OK)
        return status_from(st, &e);
    ok = selector_matches(&in, &sel);
    snprintf(idbuf, STATE_ID_LEN + 1, "%s", in.id);
    state_inst_free(&in);
    if (!ok)
        return api_status_set(st, API_E_NOT_FOUND, "id", "instance '%s' not found", *key);
    *key = idbuf;
    return API_OK;
}

/* Both selectors (the request's and the token's; either may be NULL). */
typedef struct {
    const api_selector *a, *b;
} sel_pair;

static int pair_matches(const state_instance *in, void *ctx)
{
    const sel_pair *p = ctx;
    return (p->a == NULL || selector_matches(in, (void *)p->a)) &&
           (p->b == NULL || selector_matches(in, (void *)p->b));
}

/* A create by the request's token: its selector must match the labels and
 * its quotas leave room. Called with the quota lock held when the token
 * has quotas; *u is its usage. */
static api_code create_allowed(const api_instance_spec *spec, const api_principal *who,
                               api_status *st)
{
    api_selector sel;
    tok_info t;
    tok_usage u;
    const char *quota = NULL;
    char msg[API_MSG_MAX];

    if (who == NULL)
        return API_OK;
    if (token_selector(&sel) && !api_selector_match(&sel, spec->labels, spec->n_labels))
        return api_status_set(st, API_E_FORBIDDEN, "labels",
                              "token '%s' may only create instances whose labels match '%s'",
                              who->name, who->selector);
    if (g_tokens == NULL ||
        (who->max_instances == 0 && who->max_memory_mib == 0 && who->max_vcpus == 0))
        return API_OK;
    if (tok_usage_get(g_tokens, who->id, &u) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "cannot read token '%s' usage", who->name);
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", who->name);
    t.max_instances = who->max_instances;
    t.max_memory_mib = who->max_memory_mib;
    t.max_vcpus = who->max_vcpus;
    if (tok_quota_check(&t, &u, spec->count ? spec->count : 1, spec->memory_mib, spec->vcpus,
                        &quota, msg, sizeof msg) != 0) {
        char field[API_FIELD_MAX];
        snprintf(field, sizeof field, "quotas.%s", quota);
        return api_status_set(st, API_E_QUOTA_EXCEEDED, field, "%s", msg);
    }
    return API_OK;
}

static api_code emit_instance(fleet *f, const char *key, api_sink *out, int detail, api_status *st)
{
    state_instance in;
    fleet_err e;
    int rc;
    if (fleet_instance_find(f, key, &in, &e) != FLEET_OK)
        return status_from(st, &e);
    rc = sink_instance(f, out, &in, detail);
    state_inst_free(&in);
    return rc == 0 ? API_OK : api_status_set(st, API_E_INTERNAL, NULL, "cannot encode instance");
}

static api_code be_instance_create(void *ctx, const api_instance_spec *spec, api_sink *out,
                                   api_status *st)
{
    fleet *f = ctx;
    const api_principal *who = api_request_principal();
    bool quota_locked = false;
    fleet_instance_spec fs;
    fleet_kv *env = calloc(spec->n_env + 1, sizeof *env);
    fleet_kv *labels = calloc(spec->n_labels + 1, sizeof *labels);
    fleet_rule *rules = calloc(spec->n_rules + 1, sizeof *rules);
    state_port *ports = calloc(spec->n_ports + 1, sizeof *ports);
    state_instance *made = NULL;
    size_t nmade = 0;
    fleet_err e;
    api_code rc = API_OK;

    if (!env || !labels || !rules || !ports) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    memset(&fs, 0, sizeof fs);
    fs.image = spec->image;
    fs.name = spec->name;
    fs.count = spec->count;
    fs.memory_mib = spec->memory_mib;
    fs.vcpus = spec->vcpus;
    fs.args = spec->args;
    fs.n_args = spec->n_args;
    kv_from_api(spec->env, spec->n_env, env);
    fs.env = env;
    fs.n_env = spec->n_env;
    kv_from_api(spec->labels, spec->n_labels, labels);
    fs.labels = labels;
    fs.n_labels = spec->n_labels;
    for (size_t i = 0; i < spec->n_rules; i++) {
        rules[i].kind = rule_from_api(spec->rules[i].kind);
        rules[i].key = spec->rules[i].key;
        rules[i].value = spec->rules[i].value;
        rules[i].soft = spec->rules[i].soft;
        rules[i].weight = spec->rules[i].weight;
    }
    fs.rules = rules;
    fs.n_rules = spec->n_rules;
    fs.spread = spec->spread;
    fs.restart = restart_from_api(spec->restart);
    fs.network = spec->network;
    for (size_t i = 0; i < spec->n_ports; i++) {
        ports[i].host = spec->ports[i].host;
        ports[i].guest = spec->ports[i].guest;
        ports[i].proto =
            spec->ports[i].protocol == API_PROTO_UDP ? STATE_PROTO_UDP : STATE_PROTO_TCP;
    }
    fs.ports = ports;
    fs.n_ports = spec->n_ports;
    fs.host = spec->host;
    fs.ready = spec->ready;
    fs.health = spec->health_probe;
    fs.health_interval_s = spec->health_interval_s;
    fs.health_timeout_s = spec->health_timeout_s;
    fs.health_retries = spec->health_retries;
    fs.cmdline = spec->cmdline; /* per-run override */
    fs.initrd = spec->initrd;   /* the run's own initrd */
    fs.idle_s = spec->idle_s;   /* scale to zero */
    /* a token with quotas: its check and its create are one step */
    if (g_tokens != NULL && who != NULL &&
        (who->max_instances || who->max_memory_mib || who->max_vcpus)) {
        tok_quota_lock(g_tokens);
        quota_locked = true;
    }
    rc = create_allowed(spec, who, st);
    if (rc != API_OK)
        goto out;
    if (fleet_instance_create(f, &fs, &made, &nmade, &e) != FLEET_OK) {
        rc = status_from(st, &e);
        goto out;
    }
    for (size_t i = 0; g_tokens != NULL && who != NULL && who->id[0] && i < nmade; i++)
        tok_record_creator(g_tokens, made[i].id, who->id);
    for (size_t i = 0; i < nmade && rc == API_OK; i++) {
        if (sink_instance(f, out, &made[i], 0) != 0)
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode instance");
    }
out:
    if (quota_locked)
        tok_quota_unlock(g_tokens);
    state_inst_array_free(made, nmade);
    free(env);
    free(labels);
    free(rules);
    free(ports);
    return rc;
}

/* Label selector on a row's labels (state and host are filtered apart). */
static int labels_match(const char *labels_json, const api_selector *sel)
{
    json_t *labels = json_loads(labels_json, 0, NULL);
    size_t n;
    api_kv *kv = kv_from_json(labels, &n);
    int ok = api_selector_match(sel, kv, n);
    free(kv);
    json_decref(labels);
    return ok;
}

static int selector_matches(const state_instance *in, void *ctx)
{
    return labels_match(in->labels_json, ctx);
}

/* GET /v1/instances from memory (fleet_instance_page_rendered): a row as
 * the API shows it, and a page's rows into the sink. */
static int render_row(void *ctx, const state_instance *in, const fleet_health *h, char **out,
                      size_t *len)
{
    return put_instance(ctx, NULL, out, len, in, h, 0);
}

static int emit_row(void *ctx, const char *json, size_t len)
{
    return api_sink_instance_json(ctx, json, len);
}

static int pair_labels_match(const char *labels_json, void *ctx)
{
    const sel_pair *p = ctx;
    return (p->a == NULL || labels_match(labels_json, p->a)) &&
           (p->b == NULL || labels_match(labels_json, p->b));
}

static api_code be_instance_list(void *ctx, const api_instance_filter *flt, const api_page *page,
                                 api_sink *out, api_status *st)
{
    fleet *f = ctx;
    fleet_err e;
    int more = 0;
    int has_sel = flt->selector && flt->selector->n > 0;
    api_selector tsel;
    bool has_tsel = token_selector(&tsel);
    sel_pair both = { has_sel ? flt->selector : NULL, has_tsel ? &tsel : NULL };
    char last[STATE_ID_LEN + 1];

    if (fleet_instance_page_rendered(
            f, page->after, flt->has_state ? (int)state_from_api(flt->state) : -1, flt->host,
            has_sel || has_tsel ? pair_labels_match : NULL, &both, page->limit, render_row, f,
            emit_row, out, last, &more, &e) != FLEET_OK)
        return status_from(st, &e);
    if (more && last[0])
        api_sink_next(out, last);
    return API_OK;
}

static api_code be_instance_get(void *ctx, const char *id, api_sink *out, api_status *st)
{
    char idbuf[STATE_ID_LEN + 1];
    api_code rc = visible(ctx, &id, idbuf, st);

    return rc != API_OK ? rc : emit_instance(ctx, id, out, 1, st);
}

static api_code be_instance_action(void *ctx, const char *id, api_action action, int timeout_s,
                                   api_sink *out, api_status *st)
{
    fleet *f = ctx;
    char idbuf[STATE_ID_LEN + 1], full[STATE_ID_LEN + 1];
    fleet_err e;
    int rc;

    if (visible(f, &id, idbuf, st) != API_OK)
        return st->code;
    switch (action) {
    case API_ACTION_STOP: rc = fleet_instance_stop(f, id, timeout_s, full, &e); break;
    case API_ACTION_START: rc = fleet_instance_start(f, id, full, &e); break;
    case API_ACTION_RESTART: rc = fleet_instance_restart(f, id, timeout_s, full, &e); break;
    default: return api_status_set(st, API_E_INTERNAL, NULL, "unknown action %d", (int)action);
    }
    if (rc != FLEET_OK)
        return status_from(st, &e);
    return emit_instance(f, full, out, 0, st);
}

static api_code be_instance_delete(void *ctx, const char *id, bool force, api_status *st)
{
    char idbuf[STATE_ID_LEN + 1];
    fleet_err e;

    if (visible(ctx, &id, idbuf, st) != API_OK)
        return st->code;
    if (fleet_instance_delete(ctx, id, force, &e) != FLEET_OK)
        return status_from(st, &e);
    return API_OK;
}

/* ---- bulk --------------------------------------------------------------- */

static const fleet_bulk_op BULK_MAP[] = {
    [API_ACTION_STOP] = FLEET_BULK_STOP,
    [API_ACTION_START] = FLEET_BULK_START,
    [API_ACTION_RESTART] = FLEET_BULK_RESTART,
    [API_ACTION_DELETE] = FLEET_BULK_DELETE,
};

/* Resolve the selection once (selector through the same match function as
 * GET /v1/instances, or the keys), run it, one item per instance. */
static api_code be_instance_bulk(void *ctx, const api_bulk_req *req, api_action action,
                                 api_sink *out, api_status *st)
{
    fleet *f = ctx;
    fleet_bulk b;
    fleet_err e;
    api_code rc = API_OK;
    api_selector tsel;
    bool has_tsel = token_selector(&tsel);
    sel_pair both = { req->selector, has_tsel ? &tsel : NULL };
    int frc;

    if ((unsigned)action >= NELEM(BULK_MAP))
        return api_status_set(st, API_E_INTERNAL, NULL, "unknown action %d", (int)action);
    if (req->selector && req->selector->n > 0)
        frc = fleet_bulk_select(f, pair_matches, &both, &b, &e);
    else if (req->n_ids > 0)
        frc = fleet_bulk_keys(f, req->ids, req->n_ids, &b, &e);
    else
        return api_status_set(st, API_E_INVALID_FIELD, "selector", "selector or ids is required");
    if (frc != FLEET_OK)
        return status_from(st, &e);
    /* keys naming instances outside the token's selector: not found */
    for (size_t i = 0; has_tsel && req->n_ids > 0 && i < b.n; i++) {
        fleet_bulk_item *it = &b.items[i];
        state_instance in;
        int ok = 0;

        if (!it->id[0])
            continue;
        if (fleet_instance_find(f, it->id, &in, &e) == FLEET_OK) {
            ok = selector_matches(&in, &tsel);
            state_inst_free(&in);
        }
        if (!ok) {
            it->id[0] = it->name[0] = '\0';
            fleet_err_set(&it->err, FLEET_E_NOT_FOUND, "id", "instance '%s' not found", it->key);
        }
    }
    frc = fleet_bulk_run(f, BULK_MAP[action], req->timeout_s, req->force, &b, &e);
    if (frc != FLEET_OK) {
        fleet_bulk_clear(&b);
        return status_from(st, &e);
    }
    for (size_t i = 0; i < b.n && rc == API_OK; i++) {
        const fleet_bulk_item *it = &b.items[i];
        api_bulk_item ai = {
            .id = it->id[0] ? it->id : NULL,
            .name = it->id[0] ? it->name : NULL,
            .key = req->n_ids ? it->key : NULL,
            .ok = it->err.code == FLEET_OK,
            .code = status_code(it->err.code),
            .message = it->err.msg,
        };
        if (api_sink_bulk_item(out, &ai) != 0)
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode bulk result");
    }
    fleet_bulk_clear(&b);
    return rc;
}

/* ---- consoles ----------------------------------------------------------- */

static api_code be_console_open(void *ctx, const char *id, uint64_t tail, bool follow,
                                void **stream, api_status *st)
{
    fleet_console *c;
    char idbuf[STATE_ID_LEN + 1];
    fleet_err e;

    if (visible(ctx, &id, idbuf, st) != API_OK)
        return st->code;
    if (fleet_console_open(ctx, id, tail, follow, &c, &e) != FLEET_OK)
        return status_from(st, &e);
    *stream = c;
    return API_OK;
}

static ssize_t be_console_read(void *ctx, void *stream, char *buf, size_t len, int timeout_ms)
{
    long n = fleet_console_read(ctx, stream, buf, len, timeout_ms);
    if (n == FLEET_STREAM_END)
        return API_STREAM_END;
    if (n == FLEET_STREAM_ERROR)
        return API_STREAM_ERROR;
    return (ssize_t)n;
}

static void be_console_close(void *ctx, void *stream)
{
    (void)ctx;
    fleet_console_close(stream);
}

/* ---- images ------------------------------------------------------------- */

typedef struct {
    img_upload *up;
    char name[API_NAME_MAX + 1];
    char tag[API_TAG_MAX + 1];
    char digest[80]; /* expected, "" if none */
    bool initrd;     /* POST /v1/initrds */
    img_label *labels;
    char **strings; /* owned copies behind labels */
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
    fleet_err e;

    if (!u)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    snprintf(u->name, sizeof u->name, "%s", req->name);
    snprintf(u->tag, sizeof u->tag, "%s", req->tag[0] ? req->tag : IMG_DEFAULT_TAG);
    snprintf(u->digest, sizeof u->digest, "%s", req->digest ? req->digest : "");
    u->initrd = req->initrd_upload;
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
    if ((u->initrd ? fleet_initrd_push_begin(f, req->content_length, &u->up, &e)
                   : fleet_image_push_begin(f, req->content_length, &u->up, &e)) != FLEET_OK ||
        (req->initrd && fleet_image_push_initrd(f, u->up, req->initrd, &e) != FLEET_OK)) {
        if (u->up)
            fleet_image_push_abort(f, u->up);
        u->up = NULL;
        upload_free(u);
        return status_from(st, &e);
    }
    *upload = u;
    return API_OK;
}

static api_code be_image_upload_write(void *ctx, void *upload, const void *data, size_t len,
                                      api_status *st)
{
    be_upload *u = upload;
    fleet_err e;
    if (fleet_image_push_write(ctx, u->up, data, len, &e) != FLEET_OK)
        return status_from(st, &e);
    return API_OK;
}

static api_code emit_image(fleet *f, const char *ref, api_sink *out, api_status *st);

static api_code be_image_upload_commit(void *ctx, void *upload, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    be_upload *u = upload;
    img_info info;
    fleet_err e;
    api_code rc;

    memset(&info, 0, sizeof info);
    if (u->initrd) { /* POST /v1/initrds: the blob's digest and size */
        if (fleet_initrd_push_commit(f, u->up, u->digest[0] ? u->digest : NULL, &info, &e) !=
            FLEET_OK) {
            rc = status_from(st, &e);
        } else {
            api_image a;
            memset(&a, 0, sizeof a);
            a.digest = info.digest;
            a.size = info.size;
            a.created = info.created;
            a.kind = "initrd";
            rc = api_sink_image(out, &a) == 0
                     ? API_OK
                     : api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        }
        u->up = NULL;
        upload_free(u);
        return rc;
    }
    /* The commit consumes the upload either way. */
    if (fleet_image_push_commit(f, u->up, u->digest[0] ? u->digest : NULL, u->name, u->tag,
                                u->labels, u->n_labels, &info, &e) != FLEET_OK)
        rc = status_from(st, &e);
    else
        rc = emit_image(f, info.digest, out, st);
    u->up = NULL;
    img_info_clear(&info);
    upload_free(u);
    return rc;
}

static void be_image_upload_abort(void *ctx, void *upload)
{
    be_upload *u = upload;
    if (u)
        fleet_image_push_abort(ctx, u->up);
    upload_free(u);
}

/* All name:tag rows of the store, once per call. */
typedef struct {
    img_info *rows;
    size_t n;
} name_rows;

/* Encode the image with digest `digest` using the rows for its refs. */
static int sink_image_rows(api_sink *out, const name_rows *nr, const char *digest)
{
    const img_info *first = NULL;
    const char **refs = calloc(nr->n + 1, sizeof *refs);
    char(*bufs)[IMG_NAME_MAX + IMG_TAG_MAX + 2] = calloc(nr->n + 1, sizeof *bufs);
    api_kv *labels = NULL;
    api_image a;
    const char *evidence[IMG_EVIDENCE_MAX];
    size_t nrefs = 0, nev = 0;
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
    for (; nev < first->nevidence && nev < IMG_EVIDENCE_MAX; nev++)
        evidence[nev] = first->evidence[nev];
    a.format = img_format_name(first->format);
    a.kind = img_kind_name(first->kind);
    a.evidence = evidence;
    a.n_evidence = nev;
    a.firmware = img_firmware_name(first->profile.firmware);
    a.cmdline = first->profile.cmdline == IMG_CMDLINE_TEMPLATE
                    ? first->profile.template
                    : img_cmdline_name(first->profile.cmdline);
    a.exit = img_exit_name(first->profile.exit);
    a.ready = first->profile.ready[0] ? first->profile.ready : NULL;
    if (first->profile.health[0]) { /* the numbers as they apply: 0 is the default */
        a.health = first->profile.health;
        a.health_interval_s = first->profile.health_interval_s;
        a.health_timeout_s = first->profile.health_timeout_s;
        a.health_retries = first->profile.health_retries;
        fleet_health_defaults(&a.health_interval_s, &a.health_timeout_s, &a.health_retries);
    }
    a.warm_pool = first->profile.warm_pool;
    a.initrd = first->initrd[0] ? first->initrd : NULL;
    a.initrd_size = first->initrd_size;
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
    fleet_err e;
    api_code rc = API_OK;

    if (fleet_image_resolve(f, ref, digest, &e) != FLEET_OK ||
        fleet_image_rows(f, &nr.rows, &nr.n, &e) != FLEET_OK)
        return status_from(st, &e);
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
    fleet_err e;
    const char **digests = NULL;
    size_t nd = 0, start = 0, emitted = 0;
    api_code rc = API_OK;

    if (fleet_image_rows(f, &nr.rows, &nr.n, &e) != FLEET_OK)
        return status_from(st, &e);
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
    char digest[IMG_DIGEST_LEN + 1];
    fleet_err e;
    if (fleet_image_tag(ctx, ref, new_ref, digest, &e) != FLEET_OK)
        return status_from(st, &e);
    return emit_image(ctx, digest, out, st);
}

static api_code be_image_patch(void *ctx, const char *ref, const api_image_patch *p, api_sink *out,
                               api_status *st)
{
    char digest[IMG_DIGEST_LEN + 1];
    fleet_err e;
    img_profile_change ch = { .firmware = p->firmware,
                              .cmdline = p->cmdline,
                              .exit = p->exit,
                              .ready = p->ready,
                              .health = p->health_probe,
                              .health_interval_s = p->health_interval_s,
                              .health_timeout_s = p->health_timeout_s,
                              .health_retries = p->health_retries,
                              .warm_pool_set = p->warm_pool_set,
                              .warm_pool = p->warm_pool };
    if (fleet_image_set_profile(ctx, ref, &ch, digest, &e) != FLEET_OK)
        return status_from(st, &e);
    return emit_image(ctx, digest, out, st);
}

static api_code be_image_delete(void *ctx, const char *ref, bool force, api_status *st)
{
    fleet_err e;
    if (fleet_image_delete(ctx, ref, force, &e) != FLEET_OK)
        return status_from(st, &e);
    return API_OK;
}

/* ---- hosts -------------------------------------------------------------- */

static int sink_host(api_sink *out, const fleet_host_info *h)
{
    api_host a;
    json_t *labels = json_loads(h->labels_json ? h->labels_json : "{}", 0, NULL);
    size_t nkv;
    api_kv *kv = kv_from_json(labels, &nkv);
    int rc;

    memset(&a, 0, sizeof a);
    a.name = h->name;
    a.uri = h->uri;
    a.state = h->up ? "up" : "down";
    a.cordoned = h->cordoned;
    a.domain_type = h->domain_type;
    a.kvm = h->kvm;
    a.domain_type_reason = h->domain_type_reason[0] ? h->domain_type_reason : NULL;
    a.labels = kv;
    a.n_labels = nkv;
    a.capacity.memory_mib = h->mem_mib;
    a.capacity.vcpus = h->vcpus;
    a.capacity.slots = h->slots;
    a.used.memory_mib = h->used_mem_mib;
    a.used.vcpus = h->used_vcpus;
    a.used.slots = h->instances;
    a.instances = h->instances;
    a.capacity_model = h->measured ? "measured" : "nominal";
    a.reserved_memory_mib = h->reserved_mem_mib;
    a.available_memory_mib = h->avail_mem_mib;
    a.charged_cpu_milli = h->used_cpu_milli;
    a.busy_cpu_milli = h->busy_cpu_milli;
    a.sampled_ms_ago = h->sampled_ms_ago;
    a.usage_stale = h->usage_stale;
    a.others_domains = h->others_domains;
    a.others_memory_mib = h->others_mem_mib;
    a.others_vcpus = h->others_vcpus;
    a.others_cpu_milli = h->others_cpu_milli;
    a.free_memory_mib = h->free_mem_mib;
    a.last_error = !h->up && h->last_error[0] ? h->last_error : NULL;
    a.down_since = h->down_since_ms / 1000;
    a.guest_subnet = h->guest_subnet[0] ? h->guest_subnet : NULL;
    rc = api_sink_host(out, &a);
    free(kv);
    json_decref(labels);
    return rc;
}

static api_code be_host_list(void *ctx, const api_page *page, api_sink *out, api_status *st)
{
    fleet_host_info *hosts = NULL;
    size_t nh = 0, start = 0, emitted = 0;
    fleet_err e;
    api_code rc = API_OK;

    if (fleet_host_list(ctx, &hosts, &nh, &e) != FLEET_OK)
        return status_from(st, &e);
    if (page->after) {
        start = nh + 1;
        for (size_t i = 0; i < nh; i++) {
            if (!strcmp(hosts[i].name, page->after))
                start = i + 1;
        }
        if (start == nh + 1) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "after", "unknown cursor '%s'",
                                page->after);
            goto out;
        }
    }
    for (size_t i = start; i < nh && emitted < page->limit; i++, emitted++) {
        if (sink_host(out, &hosts[i]) != 0) {
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode host");
            goto out;
        }
    }
    if (start + emitted < nh)
        api_sink_next(out, hosts[start + emitted - 1].name);
out:
    fleet_host_info_free(hosts, nh);
    return rc;
}

static api_code emit_host(fleet *f, const char *name, api_sink *out, api_status *st)
{
    fleet_host_info h;
    fleet_err e;
    api_code rc = API_OK;
    if (fleet_host_get(f, name, &h, &e) != FLEET_OK)
        return status_from(st, &e);
    if (sink_host(out, &h) != 0)
        rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode host");
    free(h.labels_json);
    return rc;
}

static api_code be_host_get(void *ctx, const char *name, api_sink *out, api_status *st)
{
    return emit_host(ctx, name, out, st);
}

static api_code be_host_add(void *ctx, const api_host_spec *spec, api_sink *out, api_status *st)
{
    fleet *f = ctx;
    fleet_kv *labels = calloc(spec->n_labels + 1, sizeof *labels);
    fleet_err e;
    int rc;
    if (!labels)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    kv_from_api(spec->labels, spec->n_labels, labels);
    rc = fleet_host_add(f, spec->name, spec->uri, labels, spec->n_labels,
                        api_domain_type_str(spec->domain_type), &e);
    free(labels);
    if (rc != FLEET_OK)
        return status_from(st, &e);
    return emit_host(f, spec->name, out, st);
}

static api_code be_host_cordon(void *ctx, const char *name, bool cordoned, api_sink *out,
                               api_status *st)
{
    fleet_err e;
    if (fleet_host_cordon(ctx, name, cordoned, &e) != FLEET_OK)
        return status_from(st, &e);
    return emit_host(ctx, name, out, st);
}

static api_code be_host_delete(void *ctx, const char *name, api_status *st)
{
    fleet_err e;
    if (fleet_host_remove(ctx, name, &e) != FLEET_OK)
        return status_from(st, &e);
    return API_OK;
}

/* ---- plans -------------------------------------------------------------- */

static api_code sink_plan(api_sink *out, const fleet_plan *p, api_status *st)
{
    api_move *moves = calloc(p->n_moves + 1, sizeof *moves);
    const char **freed = calloc(p->n_freed + 1, sizeof *freed);
    api_plan a;
    api_code rc = API_OK;

    if (!moves || !freed) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n_moves; i++) {
        const fleet_move *m = &p->moves[i];
        moves[i].instance = m->instance;
        moves[i].from = m->from;
        moves[i].to = m->to;
        moves[i].ok = m->rc == FLEET_OK;
        moves[i].code = status_code(m->rc);
        moves[i].message = m->err.msg;
    }
    for (size_t i = 0; i < p->n_freed; i++)
        freed[i] = p->freed[i];
    memset(&a, 0, sizeof a);
    a.moves = moves;
    a.n_moves = p->n_moves;
    a.hosts_freed = freed;
    a.n_hosts_freed = p->n_freed;
    a.hosts_before = p->hosts_before;
    a.hosts_after = p->hosts_after;
    a.executed = p->executed;
    if (api_sink_plan(out, &a) != 0)
        rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode plan");
out:
    free(moves);
    free(freed);
    return rc;
}

static api_code be_host_drain(void *ctx, const char *name, bool dry_run, api_sink *out,
                              api_status *st)
{
    fleet_plan p;
    fleet_err e;
    api_code rc;
    if (fleet_plan_drain(ctx, name, dry_run, &p, &e) != FLEET_OK)
        return status_from(st, &e);
    rc = sink_plan(out, &p, st);
    fleet_plan_clear(&p);
    return rc;
}

static api_code be_moves_stop(void *ctx, api_status *st)
{
    (void)st;
    fleet_moves_stop(ctx);
    return API_OK;
}

static api_code be_consolidate(void *ctx, bool dry_run, api_sink *out, api_status *st)
{
    fleet_plan p;
    fleet_err e;
    api_code rc;
    if (fleet_plan_consolidate(ctx, dry_run, &p, &e) != FLEET_OK)
        return status_from(st, &e);
    rc = sink_plan(out, &p, st);
    fleet_plan_clear(&p);
    return rc;
}

/* ---- events ------------------------------------------------------------- */

/* A subscription. For a token with a selector: the selector, the token's
 * name and the ids of the instances seen to match it (so that their
 * events still reach it once they are deleted). */
typedef struct {
    int64_t last;
    bool limited;
    api_selector sel;
    char who[API_NAME_MAX + 1];
    char (*seen)[STATE_ID_LEN + 1];
    size_t n_seen, cap_seen;
} be_sub;

static api_code be_events_open(void *ctx, bool has_since, uint64_t since, void **sub,
                               api_status *st)
{
    const api_principal *who = api_request_principal();
    be_sub *s = calloc(1, sizeof *s);
    if (!s)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    s->last = has_since ? (int64_t)since : fleet_event_last_id(ctx);
    s->limited = token_selector(&s->sel);
    if (who != NULL)
        snprintf(s->who, sizeof s->who, "%s", who->name);
    *sub = s;
    return API_OK;
}

/* May a selector-limited subscription see this instance's events? */
static bool sub_sees(fleet *f, be_sub *s, const char *id)
{
    state_instance in;
    fleet_err e;
    bool ok;

    for (size_t i = 0; i < s->n_seen; i++) {
        if (strcmp(s->seen[i], id) == 0)
            return true;
    }
    if (fleet_instance_find(f, id, &in, &e) != FLEET_OK)
        return false; /* gone before it was seen */
    ok = selector_matches(&in, &s->sel);
    state_inst_free(&in);
    if (ok && s->n_seen < 4096) {
        if (s->n_seen == s->cap_seen) {
            size_t cap = s->cap_seen ? s->cap_seen * 2 : 16;
            void *n = realloc(s->seen, cap * sizeof *s->seen);
            if (n == NULL)
                return ok;
            s->seen = n;
            s->cap_seen = cap;
        }
        snprintf(s->seen[s->n_seen++], STATE_ID_LEN + 1, "%s", id);
    }
    return ok;
}

/* What a token with a selector sees of the event log: events of instances
 * that match (or matched) it, its own audit events, and events of no
 * instance but audit (images, hosts, bulk progress). */
static bool sub_wants(fleet *f, be_sub *s, json_t *o)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *inst = json_string_value(json_object_get(o, "instance"));
    const char *batch = json_string_value(json_object_get(o, "batch"));

    if (!s->limited)
        return true;
    if (type != NULL && strcmp(type, "audit") == 0) {
        const char *by = json_string_value(json_object_get(o, "by"));
        return by != NULL && strcmp(by, s->who) == 0;
    }
    if (inst == NULL)
        inst = batch;
    return inst == NULL || sub_sees(f, s, inst);
}

static void copy_field(char *dst, size_t len, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, len, "%s", v ? v : "");
}

static int be_events_next(void *ctx, void *subp, api_event *ev, int timeout_ms)
{
    be_sub *s = subp;
    char *text = NULL;
    json_t *o;
    int rc = fleet_event_next(ctx, &s->last, &text, timeout_ms);

    if (rc != 1)
        return rc;
    o = json_loads(text, 0, NULL);
    if (!sub_wants(ctx, s, o)) {
        json_decref(o);
        free(text);
        return 0; /* as if none came: the api polls again */
    }
    memset(ev, 0, sizeof *ev);
    ev->id = (uint64_t)s->last;
    ev->time = json_integer_value(json_object_get(o, "time"));
    copy_field(ev->type, sizeof ev->type, o, "type");
    copy_field(ev->instance, sizeof ev->instance, o, "instance");
    copy_field(ev->name, sizeof ev->name, o, "name");
    copy_field(ev->state, sizeof ev->state, o, "state");
    copy_field(ev->host, sizeof ev->host, o, "host");
    copy_field(ev->image, sizeof ev->image, o, "image");
    copy_field(ev->digest, sizeof ev->digest, o, "digest");
    copy_field(ev->message, sizeof ev->message, o, "message");
    copy_field(ev->action, sizeof ev->action, o, "action");
    copy_field(ev->by, sizeof ev->by, o, "by");
    copy_field(ev->path, sizeof ev->path, o, "path");
    ev->http_status = (int)json_integer_value(json_object_get(o, "status"));
    copy_field(ev->reason, sizeof ev->reason, o, "reason"); /* instance.sleep/wake */
    copy_field(ev->error, sizeof ev->error, o, "error");
    if (json_is_integer(json_object_get(o, "latency_ms"))) {
        ev->has_latency = true;
        ev->latency_ms = json_integer_value(json_object_get(o, "latency_ms"));
    }
    if (json_is_integer(json_object_get(o, "total"))) {
        ev->has_progress = true;
        ev->done = (uint32_t)json_integer_value(json_object_get(o, "done"));
        ev->total = (uint32_t)json_integer_value(json_object_get(o, "total"));
        ev->failed = (uint32_t)json_integer_value(json_object_get(o, "failed"));
    }
    if (json_is_string(json_object_get(o, "batch"))) {
        json_t *fails = json_object_get(o, "failures"), *x;
        size_t i;
        ev->has_batch = true;
        copy_field(ev->batch, sizeof ev->batch, o, "batch");
        ev->started = (uint32_t)json_integer_value(json_object_get(o, "started"));
        ev->ready = (uint32_t)json_integer_value(json_object_get(o, "ready"));
        ev->final = json_is_true(json_object_get(o, "final"));
        json_array_foreach (fails, i, x) {
            if (ev->n_failures == API_EVENT_FAILURES_MAX)
                break;
            copy_field(ev->failures[ev->n_failures].instance, sizeof ev->failures[0].instance, x,
                       "instance");
            copy_field(ev->failures[ev->n_failures].name, sizeof ev->failures[0].name, x, "name");
            copy_field(ev->failures[ev->n_failures].state, sizeof ev->failures[0].state, x,
                       "state");
            copy_field(ev->failures[ev->n_failures].message, sizeof ev->failures[0].message, x,
                       "message");
            ev->n_failures++;
        }
    }
    json_decref(o);
    free(text);
    return 1;
}

static void be_events_close(void *ctx, void *sub)
{
    be_sub *s = sub;

    (void)ctx;
    if (s != NULL)
        free(s->seen);
    free(s);
}

/* ---- metrics ------------------------------------------------------------ */

/* Per host, the capacity model's figures (docs/shoald.md "Capacity"). */
static void metrics_hosts(void *ctx, api_sink *out)
{
    static const struct {
        const char *name, *help;
    } G[] = {
        { "shoal_host_memory_charged_mib", "Memory charged to the host's guests." },
        { "shoal_host_memory_reserved_mib", "Memory kept for the host itself." },
        { "shoal_host_memory_available_mib", "The host's available memory as last read." },
        { "shoal_host_cpu_charged", "CPU charged to the host's guests (CPUs)." },
        { "shoal_host_cpu_busy", "CPU the host's guests used in the last sample (CPUs)." },
        { "shoal_host_others_domains", "Active domains on the host that shoal does not own." },
        { "shoal_host_others_memory_mib", "Memory those domains hold." },
        { "shoal_host_memory_free_mib", "Memory placement can still give the host's guests." },
    };
    fleet_host_info *h = NULL;
    size_t n = 0;
    fleet_err e;
    if (fleet_host_list(ctx, &h, &n, &e) != FLEET_OK)
        return;
    for (size_t g = 0; g < sizeof G / sizeof G[0]; g++) {
        api_sink_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", G[g].name, G[g].help, G[g].name);
        for (size_t i = 0; i < n; i++) {
            double v = g == 0   ? (double)h[i].used_mem_mib
                       : g == 1 ? (double)h[i].reserved_mem_mib
                       : g == 2 ? (double)h[i].avail_mem_mib
                       : g == 3 ? (double)h[i].used_cpu_milli / 1000.0
                       : g == 4 ? (double)h[i].busy_cpu_milli / 1000.0
                       : g == 5 ? (double)h[i].others_domains
                       : g == 6 ? (double)h[i].others_mem_mib
                                : (double)h[i].free_mem_mib;
            if (g == 2 && !h[i].avail_mem_mib)
                continue; /* unknown */
            api_sink_printf(out, "%s{host=\"%s\"} %g\n", G[g].name, h[i].name, v);
        }
    }
    fleet_host_info_free(h, n);
}

static api_code be_metrics_write(void *ctx, api_sink *out, api_status *st)
{
    fleet_metrics m;
    fleet_err e;
    uint64_t cum = 0;

    if (fleet_metrics_get(ctx, &m, &e) != FLEET_OK)
        return status_from(st, &e);
    api_sink_printf(out, "# HELP shoal_instances Instances by state.\n"
                         "# TYPE shoal_instances gauge\n");
    for (int s = 0; s < ST__COUNT; s++)
        api_sink_printf(out, "shoal_instances{state=\"%s\"} %zu\n", api_state_str(STATE_MAP[s]),
                        m.by_state[s]);
    api_sink_printf(out,
                    "# HELP shoal_hosts Hosts known to the daemon.\n"
                    "# TYPE shoal_hosts gauge\nshoal_hosts %zu\n"
                    "# HELP shoal_hosts_up Hosts whose libvirt connection is up.\n"
                    "# TYPE shoal_hosts_up gauge\nshoal_hosts_up %zu\n"
                    "# HELP shoal_images Images stored.\n"
                    "# TYPE shoal_images gauge\nshoal_images %zu\n",
                    m.hosts, m.hosts_up, m.images);
    api_sink_printf(out,
                    "# HELP shoal_image_volume_uploads_total Images uploaded to remote hosts' "
                    "storage pools.\n# TYPE shoal_image_volume_uploads_total counter\n"
                    "shoal_image_volume_uploads_total %llu\n"
                    "# HELP shoal_image_volume_upload_bytes_total Bytes sent to remote hosts' "
                    "image volumes.\n# TYPE shoal_image_volume_upload_bytes_total counter\n"
                    "shoal_image_volume_upload_bytes_total %llu\n"
                    "# HELP shoal_image_volume_hits_total Starts on remote hosts served by a "
                    "cached image volume.\n# TYPE shoal_image_volume_hits_total counter\n"
                    "shoal_image_volume_hits_total %llu\n"
                    "# HELP shoal_image_volumes_removed_total Unused image volumes removed "
                    "from remote hosts.\n# TYPE shoal_image_volumes_removed_total counter\n"
                    "shoal_image_volumes_removed_total %llu\n",
                    (unsigned long long)m.vol_uploads, (unsigned long long)m.vol_upload_bytes,
                    (unsigned long long)m.vol_hits, (unsigned long long)m.vol_removed);
    api_sink_printf(out,
                    "# HELP shoal_serial_stream_opens_total Serial ports of remote hosts' "
                    "guests opened as libvirt streams (two per start, two per guest streamed "
                    "again after a reconnect).\n# TYPE shoal_serial_stream_opens_total counter\n"
                    "shoal_serial_stream_opens_total %llu\n"
                    "# HELP shoal_serial_stream_failures_total Serial ports that did not open as "
                    "streams (their files are fetched instead).\n"
                    "# TYPE shoal_serial_stream_failures_total counter\n"
                    "shoal_serial_stream_failures_total %llu\n"
                    "# HELP shoal_serial_stream_aborts_total Streams of a running guest "
                    "aborted before shoald stopped it (its files are fetched at the end).\n"
                    "# TYPE shoal_serial_stream_aborts_total counter\n"
                    "shoal_serial_stream_aborts_total %llu\n",
                    (unsigned long long)m.serial_stream_opens,
                    (unsigned long long)m.serial_stream_failures,
                    (unsigned long long)m.serial_stream_aborts);
    api_sink_printf(out,
                    "# HELP shoal_warm_pool_claims_total Creates that took a waiting warm pool "
                    "guest.\n# TYPE shoal_warm_pool_claims_total counter\n"
                    "shoal_warm_pool_claims_total %llu\n"
                    "# HELP shoal_warm_pool_misses_total Creates of an image with a warm pool "
                    "that found no guest waiting.\n# TYPE shoal_warm_pool_misses_total counter\n"
                    "shoal_warm_pool_misses_total %llu\n"
                    "# HELP shoal_warm_pool_guests Warm pool guests by state.\n"
                    "# TYPE shoal_warm_pool_guests gauge\n"
                    "shoal_warm_pool_guests{state=\"waiting\"} %zu\n"
                    "shoal_warm_pool_guests{state=\"booting\"} %zu\n",
                    (unsigned long long)m.pool_claims, (unsigned long long)m.pool_misses,
                    m.pool_ready, m.pool_booting);
    api_sink_printf(out,
                    "# HELP shoal_guard_netlink_adds_total Guest ports allowed by the guard "
                    "through one nf_tables netlink batch.\n"
                    "# TYPE shoal_guard_netlink_adds_total counter\n"
                    "shoal_guard_netlink_adds_total %llu\n"
                    "# HELP shoal_guard_nft_fallbacks_total Guest ports the guard allowed by "
                    "running nft instead (netlink failed, or SHOAL_GUARD_NETLINK=off).\n"
                    "# TYPE shoal_guard_nft_fallbacks_total counter\n"
                    "shoal_guard_nft_fallbacks_total %llu\n",
                    (unsigned long long)m.guard_netlink_adds,
                    (unsigned long long)m.guard_nft_fallbacks);
    api_sink_printf(out, "# HELP shoal_instance_ready_seconds Create or start request to guest "
                         "ready.\n# TYPE shoal_instance_ready_seconds histogram\n");
    for (size_t i = 0; i < FLEET_READY_BUCKETS; i++) {
        cum += m.ready_hist[i];
        api_sink_printf(out, "shoal_instance_ready_seconds_bucket{le=\"%g\"} %llu\n",
                        fleet_ready_bounds[i], (unsigned long long)cum);
    }
    cum += m.ready_hist[FLEET_READY_BUCKETS];
    api_sink_printf(out,
                    "shoal_instance_ready_seconds_bucket{le=\"+Inf\"} %llu\n"
                    "shoal_instance_ready_seconds_sum %.6g\n"
                    "shoal_instance_ready_seconds_count %llu\n",
                    (unsigned long long)cum, m.ready_sum, (unsigned long long)m.ready_count);
    api_sink_printf(out, "# HELP shoal_instance_health Probed instances by health "
                         "(docs/shoald.md \"Probes\").\n# TYPE shoal_instance_health gauge\n");
    static const char *const health_names[4] = { "none", "starting", "healthy", "unhealthy" };
    for (int i = 0; i < 4; i++)
        api_sink_printf(out, "shoal_instance_health{health=\"%s\"} %zu\n", health_names[i],
                        m.by_health[i]);
    api_sink_printf(out,
                    "# HELP shoal_probe_checks_total Readiness and health checks done.\n"
                    "# TYPE shoal_probe_checks_total counter\nshoal_probe_checks_total %llu\n"
                    "# HELP shoal_probe_failures_total Checks that failed.\n"
                    "# TYPE shoal_probe_failures_total counter\nshoal_probe_failures_total %llu\n",
                    (unsigned long long)m.probe_checks, (unsigned long long)m.probe_failures);
    metrics_hosts(ctx, out);
    if (m.ksm_available)
        api_sink_printf(out,
                        "# HELP shoal_ksm_running The host's KSM runs (1) or not (0).\n"
                        "# TYPE shoal_ksm_running gauge\nshoal_ksm_running %d\n"
                        "# HELP shoal_ksm_pages_sharing Pages deduplicated by KSM (saved).\n"
                        "# TYPE shoal_ksm_pages_sharing gauge\nshoal_ksm_pages_sharing %ld\n"
                        "# HELP shoal_ksm_pages_shared Distinct merged pages in use.\n"
                        "# TYPE shoal_ksm_pages_shared gauge\nshoal_ksm_pages_shared %ld\n",
                        m.ksm_run == 1, m.ksm_pages_sharing, m.ksm_pages_shared);
    if (m.ksm_available && m.ksm_profit >= 0)
        api_sink_printf(out,
                        "# HELP shoal_ksm_profit_bytes Memory KSM saves, less its metadata.\n"
                        "# TYPE shoal_ksm_profit_bytes gauge\nshoal_ksm_profit_bytes %lld\n",
                        m.ksm_profit);
    if (g_process_metrics)
        g_process_metrics(out);
    return API_OK;
}

/* ---- tokens ------------------------------------------------------------- */

_Static_assert((int)TOK_READ_ONLY == (int)API_SCOPE_READ_ONLY &&
                   (int)TOK_OPERATOR == (int)API_SCOPE_OPERATOR &&
                   (int)TOK_ADMIN == (int)API_SCOPE_ADMIN,
               "token scopes in the API's order");

static api_code be_authenticate(void *ctx, const char *secret, api_principal *who)
{
    tok_info t;
    int rc;

    (void)ctx;
    memset(who, 0, sizeof *who);
    if (g_tokens == NULL || (rc = tok_authenticate(g_tokens, secret, &t)) == TOK_ENOTFOUND)
        return API_E_UNAUTHORIZED;
    if (rc == TOK_EEXPIRED) { /* named so the answer can say so (api.h) */
        snprintf(who->name, sizeof who->name, "%s", t.name);
        who->expires = t.expires_ms / 1000;
        return API_E_UNAUTHORIZED;
    }
    if (rc != 0)
        return API_E_UNAUTHORIZED;
    snprintf(who->id, sizeof who->id, "%s", t.id);
    snprintf(who->name, sizeof who->name, "%s", t.name);
    who->scope = (api_scope)t.scope;
    snprintf(who->selector, sizeof who->selector, "%s", t.selector);
    who->max_instances = t.max_instances;
    who->max_memory_mib = t.max_memory_mib;
    who->max_vcpus = t.max_vcpus;
    who->rate = t.rate;
    who->burst = t.burst;
    who->expires = t.expires_ms / 1000;
    return API_OK;
}

static int sink_token(api_sink *out, const tok_info *t, const char *secret)
{
    tok_usage u = { 0 };
    api_token at;

    tok_usage_get(g_tokens, t->id, &u);
    memset(&at, 0, sizeof at);
    at.id = t->id;
    at.name = t->name;
    at.scope = (api_scope)t->scope;
    at.selector = t->selector;
    at.max_instances = t->max_instances;
    at.max_memory_mib = t->max_memory_mib;
    at.max_vcpus = t->max_vcpus;
    at.created = t->created_ms / 1000;
    at.expires = t->expires_ms / 1000;
    at.expired = t->expires_ms != 0 && fleet_wall_ms() >= t->expires_ms;
    at.rate = t->rate;
    at.burst = t->burst;
    at.secret = secret;
    at.used_instances = u.instances;
    at.used_memory_mib = u.memory_mib;
    at.used_vcpus = u.vcpus;
    return api_sink_token(out, &at);
}

static api_code tok_status(api_status *st, int rc, const char *field, const char *msg)
{
    switch (rc) {
    case TOK_ENOTFOUND: return api_status_set(st, API_E_NOT_FOUND, field, "%s", msg);
    case TOK_ECONFLICT: return api_status_set(st, API_E_CONFLICT, field, "%s", msg);
    case TOK_EREFUSED: return api_status_set(st, API_E_CONFLICT, field, "%s", msg);
    default: return api_status_set(st, API_E_INTERNAL, NULL, "%s", msg);
    }
}

static api_code be_token_create(void *ctx, const api_token_spec *spec, api_sink *out,
                                api_status *st)
{
    char secret[TOK_SECRET_LEN + 1], err[256];
    tok_info t, made;
    int rc;

    (void)ctx;
    if (g_tokens == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "no token store");
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", spec->name);
    t.scope = (tok_scope)spec->scope;
    snprintf(t.selector, sizeof t.selector, "%s", spec->selector);
    t.max_instances = spec->max_instances;
    t.max_memory_mib = spec->max_memory_mib;
    t.max_vcpus = spec->max_vcpus;
    t.rate = spec->rate;
    t.burst = spec->burst;
    if (spec->expires_in)
        t.expires_ms = fleet_wall_ms() + (int64_t)spec->expires_in * 1000;
    else if (spec->expires_at) {
        if (spec->expires_at * 1000 <= fleet_wall_ms())
            return api_status_set(st, API_E_INVALID_FIELD, "expires_at",
                                  "expires_at is in the past");
        t.expires_ms = spec->expires_at * 1000;
    }
    rc = tok_create(g_tokens, &t, secret, &made, err, sizeof err);
    if (rc != 0)
        return tok_status(st, rc, "name", err);
    rc = sink_token(out, &made, secret);
    explicit_bzero(secret, sizeof secret);
    return rc == 0 ? API_OK : api_status_set(st, API_E_INTERNAL, NULL, "cannot encode token");
}

static api_code be_token_list(void *ctx, api_sink *out, api_status *st)
{
    tok_info *all = NULL;
    size_t n = 0;
    char err[256];
    api_code rc = API_OK;

    (void)ctx;
    if (g_tokens == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "no token store");
    if (tok_list(g_tokens, &all, &n, err, sizeof err) != 0)
        return api_status_set(st, API_E_INTERNAL, NULL, "%s", err);
    for (size_t i = 0; i < n && rc == API_OK; i++) {
        if (sink_token(out, &all[i], NULL) != 0)
            rc = api_status_set(st, API_E_INTERNAL, NULL, "cannot encode token");
    }
    free(all);
    return rc;
}

static api_code be_token_delete(void *ctx, const char *id, api_status *st)
{
    char err[256];
    int rc;

    (void)ctx;
    if (g_tokens == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "no token store");
    rc = tok_revoke(g_tokens, id, NULL, err, sizeof err);
    return rc == 0 ? API_OK : tok_status(st, rc, "id", err);
}

static void be_audit(void *ctx, const api_principal *who, const char *method, const char *path,
                     int http_status)
{
    fleet_event_audit(ctx, who->name, method, path, http_status);
}

static const api_backend BACKEND = {
    .image_upload_begin = be_image_upload_begin,
    .image_upload_write = be_image_upload_write,
    .image_upload_commit = be_image_upload_commit,
    .image_upload_abort = be_image_upload_abort,
    .image_list = be_image_list,
    .image_get = be_image_get,
    .image_tag = be_image_tag,
    .image_patch = be_image_patch,
    .image_delete = be_image_delete,
    .instance_create = be_instance_create,
    .instance_list = be_instance_list,
    .instance_get = be_instance_get,
    .instance_action = be_instance_action,
    .instance_delete = be_instance_delete,
    .instance_bulk = be_instance_bulk,
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
    .moves_stop = be_moves_stop,
    .events_open = be_events_open,
    .events_next = be_events_next,
    .events_close = be_events_close,
    .metrics_write = be_metrics_write,
    .authenticate = be_authenticate,
    .token_create = be_token_create,
    .token_list = be_token_list,
    .token_delete = be_token_delete,
    .audit = be_audit,
};

const api_backend *backend_get(void)
{
    return &BACKEND;
}

/*
 * decode.c - the one place request bodies and query strings are parsed.
 *
 * JSON is parsed by jansson with JSON_REJECT_DUPLICATES; jansson rejects
 * invalid UTF-8, "\u0000", integers beyond 64 bits and reals that overflow a
 * double, so those arrive here as parse errors (400 bad_request, with
 * jansson's position). Everything else - unknown fields, types, ranges,
 * identifier syntax - is checked below and reported as 400 invalid_field
 * naming the field. JSON null for an optional field means "absent".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "codec.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Storage behind api_instance_spec.priv_ / api_host_spec.priv_. */
typedef struct spec_store {
    json_t *root; /* strings point into it */
    const char **args;
    api_kv *env;
    api_kv *labels;
    api_port *ports;
    api_rule *rules;
} spec_store;

static void store_free(spec_store *s)
{
    if (s == NULL)
        return;
    json_decref(s->root);
    free(s->args);
    free(s->env);
    free(s->labels);
    free(s->ports);
    free(s->rules);
    free(s);
}

/* ---- helpers ------------------------------------------------------------ */

/*
 * jansson refuses numbers that overflow (1e400, 2^64) while parsing, before
 * we can see which field they belong to. Best effort: for those errors,
 * find the object key just before the error position ("count": 1e400 ->
 * "count") so the client still gets invalid_field naming it. Returns false
 * (plain bad_request) when the key cannot be found or is not plain ASCII.
 */
static bool overflow_key(const char *body, size_t len, const json_error_t *jerr, char *key,
                         size_t cap)
{
    size_t pos = (size_t)(jerr->position > 0 ? jerr->position : 0);
    size_t end, start, i;

    if (strstr(jerr->text, "too big") == NULL && strstr(jerr->text, "overflow") == NULL)
        return false;
    if (pos > len)
        pos = len;
    /* back over the number and any '[' / whitespace to the ':' */
    for (i = pos; i > 0; i--) {
        char c = body[i - 1];
        if (c == ':')
            break;
        if (c == '"' || c == '{' || c == '}')
            return false;
    }
    if (i == 0)
        return false;
    i--; /* at ':' */
    while (i > 0 && (body[i - 1] == ' ' || body[i - 1] == '\t' || body[i - 1] == '\n' ||
                     body[i - 1] == '\r'))
        i--;
    if (i == 0 || body[i - 1] != '"')
        return false;
    end = i - 1;
    for (start = end; start > 0 && body[start - 1] != '"'; start--)
        ;
    if (start == 0 || end - start == 0 || end - start >= cap)
        return false;
    for (i = start; i < end; i++) {
        if (body[i] <= 0x20 || body[i] >= 0x7f || body[i] == '\\')
            return false;
    }
    memcpy(key, body + start, end - start);
    key[end - start] = '\0';
    return true;
}

static api_code load_object(const char *body, size_t len, bool empty_ok, json_t **out,
                            api_status *st)
{
    json_error_t jerr;
    json_t *root;

    *out = NULL;
    if (len == 0) {
        if (empty_ok)
            return API_OK;
        return api_status_set(st, API_E_BAD_REQUEST, NULL,
                              "request body is empty; expected a JSON object");
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char key[41];
        if (overflow_key(body, len, &jerr, key, sizeof key))
            return api_status_set(st, API_E_INVALID_FIELD, key, "%s: number out of range (%s)", key,
                                  jerr.text);
        return api_status_set(st, API_E_BAD_REQUEST, NULL, "invalid JSON at line %d column %d: %s",
                              jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return api_status_set(st, API_E_BAD_REQUEST, NULL, "request body must be a JSON object");
    }
    *out = root;
    return API_OK;
}

static api_code check_fields(json_t *obj, const char *prefix, const char *const *allowed,
                             size_t n_allowed, api_status *st)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach (obj, key, v) {
        for (i = 0; i < n_allowed; i++) {
            if (strcmp(key, allowed[i]) == 0)
                break;
        }
        if (i == n_allowed) {
            char field[API_FIELD_MAX];
            snprintf(field, sizeof field, "%.*s%.40s", API_FIELD_MAX - 41, prefix, key);
            return api_status_set(st, API_E_INVALID_FIELD, field, "unknown field '%s%.80s'", prefix,
                                  key);
        }
    }
    return API_OK;
}

/* Optional member: NULL when absent or JSON null. */
static json_t *member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_null(v) ? NULL : v;
}

static api_code get_uint(json_t *obj, const char *key, const char *field, uint64_t min,
                         uint64_t max, uint64_t def, uint64_t *out, api_status *st)
{
    json_t *v = member(obj, key);
    json_int_t x;

    *out = def;
    if (v == NULL)
        return API_OK;
    if (!json_is_integer(v))
        return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be an integer", field);
    x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
        return api_status_set(st, API_E_INVALID_FIELD, field,
                              "%s %" JSON_INTEGER_FORMAT " is out of range %" PRIu64 "..%" PRIu64,
                              field, x, min, max);
    *out = (uint64_t)x;
    return API_OK;
}

static api_code get_bool(json_t *obj, const char *key, bool def, bool *out, api_status *st)
{
    json_t *v = member(obj, key);

    *out = def;
    if (v == NULL)
        return API_OK;
    if (!json_is_boolean(v))
        return api_status_set(st, API_E_INVALID_FIELD, key, "%s must be true or false", key);
    *out = json_is_true(v);
    return API_OK;
}

/* String member; *out NULL when absent. */
static api_code get_string(json_t *obj, const char *key, bool required, const char **out,
                           api_status *st)
{
    json_t *v = member(obj, key);

    *out = NULL;
    if (v == NULL) {
        if (required)
            return api_status_set(st, API_E_INVALID_FIELD, key, "%s is required", key);
        return API_OK;
    }
    if (!json_is_string(v))
        return api_status_set(st, API_E_INVALID_FIELD, key, "%s must be a string", key);
    *out = json_string_value(v);
    return API_OK;
}

typedef bool (*valid_fn)(const char *);

static bool valid_env_value(const char *s)
{
    size_t n = strnlen(s, API_ENV_VALUE_MAX + 1);

    return n <= API_ENV_VALUE_MAX && api_valid_text(s, n);
}

/* Object of string -> string into a malloc'd api_kv array. */
static api_code get_map(json_t *obj, const char *key, size_t max, valid_fn vkey, valid_fn vval,
                        const char *rule, api_kv **out, size_t *n_out, api_status *st)
{
    json_t *m = member(obj, key), *v;
    const char *k;
    char field[API_FIELD_MAX];
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (m == NULL)
        return API_OK;
    if (!json_is_object(m))
        return api_status_set(st, API_E_INVALID_FIELD, key, "%s must be an object of strings", key);
    if (json_object_size(m) > max)
        return api_status_set(st, API_E_INVALID_FIELD, key,
                              "%s has %zu entries, at most %zu allowed", key, json_object_size(m),
                              max);
    if (json_object_size(m) == 0)
        return API_OK;
    *out = calloc(json_object_size(m), sizeof **out);
    if (*out == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    json_object_foreach (m, k, v) {
        snprintf(field, sizeof field, "%s.%.40s", key, k);
        if (!vkey(k))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s key '%.80s' is invalid (%s)",
                                  key, k, rule);
        if (!json_is_string(v))
            return api_status_set(st, API_E_INVALID_FIELD, field,
                                  "%s value of '%.80s' must be a string", key, k);
        if (!vval(json_string_value(v)))
            return api_status_set(st, API_E_INVALID_FIELD, field,
                                  "%s value of '%.80s' is invalid (%s)", key, k, rule);
        (*out)[n].key = k;
        (*out)[n].value = json_string_value(v);
        n++;
    }
    *n_out = n;
    return API_OK;
}

static api_code get_labels(json_t *obj, api_kv **out, size_t *n, api_status *st)
{
    return get_map(obj, "labels", API_LABELS_MAX, api_valid_label_key, api_valid_label_value,
                   "keys [A-Za-z0-9][A-Za-z0-9_./-]{0,62}, values "
                   "[A-Za-z0-9_.:@+/-]{0,63}",
                   out, n, st);
}

/* ---- POST /v1/instances ------------------------------------------------- */

static api_code get_args(json_t *obj, spec_store *s, size_t *n_out, api_status *st)
{
    json_t *a = member(obj, "args"), *v;
    char field[API_FIELD_MAX];
    size_t i, len;

    *n_out = 0;
    if (a == NULL)
        return API_OK;
    if (!json_is_array(a))
        return api_status_set(st, API_E_INVALID_FIELD, "args", "args must be an array of strings");
    if (json_array_size(a) > API_ARGS_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "args",
                              "args has %zu entries, at most %d allowed", json_array_size(a),
                              API_ARGS_MAX);
    if (json_array_size(a) == 0)
        return API_OK;
    s->args = calloc(json_array_size(a), sizeof *s->args);
    if (s->args == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    json_array_foreach (a, i, v) {
        snprintf(field, sizeof field, "args[%zu]", i);
        if (!json_is_string(v))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be a string", field);
        len = json_string_length(v);
        if (len > API_ARG_MAX)
            return api_status_set(st, API_E_INVALID_FIELD, field,
                                  "%s is %zu bytes, at most %d allowed", field, len, API_ARG_MAX);
        if (!api_valid_text(json_string_value(v), len))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s contains control characters",
                                  field);
        s->args[i] = json_string_value(v);
    }
    *n_out = json_array_size(a);
    return API_OK;
}

static api_code get_ports(json_t *obj, spec_store *s, size_t *n_out, api_status *st)
{
    static const char *const fields[] = { "host", "guest", "protocol" };
    json_t *a = member(obj, "ports"), *p;
    char field[API_FIELD_MAX], prefix[API_FIELD_MAX];
    const char *proto;
    uint64_t x;
    size_t i, j;
    api_code rc;

    *n_out = 0;
    if (a == NULL)
        return API_OK;
    if (!json_is_array(a))
        return api_status_set(st, API_E_INVALID_FIELD, "ports",
                              "ports must be an array of objects");
    if (json_array_size(a) > API_PORTS_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "ports",
                              "ports has %zu entries, at most %d allowed", json_array_size(a),
                              API_PORTS_MAX);
    if (json_array_size(a) == 0)
        return API_OK;
    s->ports = calloc(json_array_size(a), sizeof *s->ports);
    if (s->ports == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    json_array_foreach (a, i, p) {
        snprintf(prefix, sizeof prefix, "ports[%zu].", i);
        if (!json_is_object(p)) {
            snprintf(field, sizeof field, "ports[%zu]", i);
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be an object", field);
        }
        rc = check_fields(p, prefix, fields, NELEM(fields), st);
        if (rc != API_OK)
            return rc;
        snprintf(field, sizeof field, "ports[%zu].host", i);
        if (json_object_get(p, "host") == NULL)
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s is required", field);
        rc = get_uint(p, "host", field, 1, 65535, 0, &x, st);
        if (rc != API_OK)
            return rc;
        s->ports[i].host = (uint16_t)x;
        snprintf(field, sizeof field, "ports[%zu].guest", i);
        if (json_object_get(p, "guest") == NULL)
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s is required", field);
        rc = get_uint(p, "guest", field, 1, 65535, 0, &x, st);
        if (rc != API_OK)
            return rc;
        s->ports[i].guest = (uint16_t)x;
        snprintf(field, sizeof field, "ports[%zu].protocol", i);
        rc = get_string(p, "protocol", false, &proto, st);
        if (rc != API_OK)
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be \"tcp\" or \"udp\"",
                                  field);
        if (proto == NULL || strcmp(proto, "tcp") == 0)
            s->ports[i].protocol = API_PROTO_TCP;
        else if (strcmp(proto, "udp") == 0)
            s->ports[i].protocol = API_PROTO_UDP;
        else
            return api_status_set(st, API_E_INVALID_FIELD, field,
                                  "%s '%.20s' must be \"tcp\" or \"udp\"", field, proto);
        for (j = 0; j < i; j++) {
            if (s->ports[j].host == s->ports[i].host &&
                s->ports[j].protocol == s->ports[i].protocol) {
                snprintf(field, sizeof field, "ports[%zu].host", i);
                return api_status_set(st, API_E_INVALID_FIELD, field,
                                      "host port %u/%s appears twice", s->ports[i].host,
                                      api_proto_str(s->ports[i].protocol));
            }
        }
    }
    *n_out = json_array_size(a);
    return API_OK;
}

/* "placement": {"policy": "binpack"|"spread", "rules": [{"kind", "key",
 * "value", "soft", "weight"}]} */
static api_code get_placement(json_t *obj, spec_store *s, api_instance_spec *out, api_status *st)
{
    static const char *const fields[] = { "policy", "rules" };
    static const char *const rfields[] = { "kind", "key", "value", "soft", "weight" };
    json_t *p = member(obj, "placement"), *a, *r;
    const char *policy;
    char field[64], prefix[48];
    size_t i;
    api_code rc;

    if (p == NULL)
        return API_OK;
    if (!json_is_object(p))
        return api_status_set(st, API_E_INVALID_FIELD, "placement", "placement must be an object");
    rc = check_fields(p, "placement.", fields, NELEM(fields), st);
    if (rc != API_OK)
        return rc;
    rc = get_string(p, "policy", false, &policy, st);
    if (rc != API_OK)
        return rc;
    if (policy != NULL && strcmp(policy, "spread") != 0 && strcmp(policy, "binpack") != 0)
        return api_status_set(st, API_E_INVALID_FIELD, "placement.policy",
                              "placement.policy '%.40s' must be binpack or spread", policy);
    out->spread = policy != NULL && strcmp(policy, "spread") == 0;
    a = member(p, "rules");
    if (a == NULL)
        return API_OK;
    if (!json_is_array(a))
        return api_status_set(st, API_E_INVALID_FIELD, "placement.rules",
                              "placement.rules must be an array of objects");
    if (json_array_size(a) > API_RULES_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "placement.rules",
                              "placement.rules has %zu entries, at most %d allowed",
                              json_array_size(a), API_RULES_MAX);
    s->rules = calloc(json_array_size(a) + 1, sizeof *s->rules);
    if (s->rules == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    json_array_foreach (a, i, r) {
        api_rule *ru = &s->rules[i];
        const char *kind;
        uint64_t w;
        size_t k;
        snprintf(field, sizeof field, "placement.rules[%zu]", i);
        if (!json_is_object(r))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be an object", field);
        snprintf(prefix, sizeof prefix, "placement.rules[%zu].", i);
        rc = check_fields(r, prefix, rfields, NELEM(rfields), st);
        if (rc != API_OK)
            return rc;
        snprintf(field, sizeof field, "placement.rules[%zu].kind", i);
        rc = get_string(r, "kind", true, &kind, st);
        if (rc != API_OK)
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s is required", field);
        /* The wire names live in one table (status.c). */
        for (k = 0; api_rule_kind_str((api_rule_kind)k) != NULL &&
                    strcmp(api_rule_kind_str((api_rule_kind)k), kind) != 0;
             k++)
            ;
        if (api_rule_kind_str((api_rule_kind)k) == NULL)
            return api_status_set(st, API_E_INVALID_FIELD, field,
                                  "%s '%.40s' must be host-affinity, "
                                  "host-anti-affinity, affinity or anti-affinity",
                                  field, kind);
        ru->kind = (api_rule_kind)k;
        snprintf(field, sizeof field, "placement.rules[%zu].key", i);
        rc = get_string(r, "key", true, &ru->key, st);
        if (rc != API_OK || !api_valid_label_key(ru->key))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be a label key", field);
        snprintf(field, sizeof field, "placement.rules[%zu].value", i);
        rc = get_string(r, "value", false, &ru->value, st);
        if (rc != API_OK || (ru->value != NULL && !api_valid_label_value(ru->value)))
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be a label value",
                                  field);
        rc = get_bool(r, "soft", false, &ru->soft, st);
        if (rc != API_OK)
            return rc;
        snprintf(field, sizeof field, "placement.rules[%zu].weight", i);
        rc = get_uint(r, "weight", field, 1, 1000, 1, &w, st);
        if (rc != API_OK)
            return rc;
        ru->weight = (uint32_t)w;
    }
    out->rules = s->rules;
    out->n_rules = json_array_size(a);
    return API_OK;
}

/* A probe spec's text: a string of 1..API_PROBE_MAX bytes, printable
 * (its syntax is the daemon's: probe.h). */
static api_code get_text(json_t *obj, const char *key, const char *field, bool required, size_t max,
                         const char **out, api_status *st);

static api_code get_probe_text(json_t *obj, const char *key, const char *field, bool required,
                               const char **out, api_status *st)
{
    return get_text(obj, key, field, required, API_PROBE_MAX, out, st);
}

/* A string of 1..max bytes without control characters (probes, the
 * command line override). */
static api_code get_text(json_t *obj, const char *key, const char *field, bool required, size_t max,
                         const char **out, api_status *st)
{
    json_t *v = member(obj, key);
    size_t n;

    *out = NULL;
    if (v == NULL)
        return required ? api_status_set(st, API_E_INVALID_FIELD, field, "%s is required", field)
                        : API_OK;
    if (!json_is_string(v))
        return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be a string", field);
    *out = json_string_value(v);
    n = strlen(*out);
    if (n == 0 || n > max)
        return api_status_set(st, API_E_INVALID_FIELD, field, "%s must be 1..%zu bytes", field,
                              max);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)(*out)[i] < 0x20 || (*out)[i] == 0x7f)
            return api_status_set(st, API_E_INVALID_FIELD, field, "%s has a control character",
                                  field);
    }
    return API_OK;
}

/* A "health" object {"probe", "interval_s", "timeout_s", "retries"}
 * (POST /v1/instances, PATCH /v1/images): its fields, each number 0 when
 * absent; probe NULL when absent and not required. */
static api_code get_health(json_t *h, bool probe_required, const char **probe, uint32_t num[3],
                           api_status *st)
{
    static const char *const fields[] = { "probe", "interval_s", "timeout_s", "retries" };
    static const uint64_t max[] = { API_HEALTH_INTERVAL_MAX, API_HEALTH_TIMEOUT_MAX,
                                    API_HEALTH_RETRIES_MAX };
    static const char *const names[] = { "health.interval_s", "health.timeout_s",
                                         "health.retries" };
    uint64_t x;
    api_code rc;

    rc = check_fields(h, "health.", fields, NELEM(fields), st);
    if (rc == API_OK)
        rc = get_probe_text(h, "probe", "health.probe", probe_required, probe, st);
    for (size_t i = 0; i < 3 && rc == API_OK; i++) {
        rc = get_uint(h, fields[i + 1], names[i], 1, max[i], 0, &x, st);
        num[i] = (uint32_t)x;
    }
    return rc;
}

/* "ready": "SPEC", "health": {"probe", "interval_s", "timeout_s",
 * "retries"}. */
static api_code get_probes(json_t *obj, api_instance_spec *out, api_status *st)
{
    json_t *h = member(obj, "health");
    uint32_t num[3] = { 0, 0, 0 };
    api_code rc;

    rc = get_probe_text(obj, "ready", "ready", false, &out->ready, st);
    if (rc != API_OK || h == NULL)
        return rc;
    if (!json_is_object(h))
        return api_status_set(st, API_E_INVALID_FIELD, "health",
                              "health must be an object {\"probe\": \"http:PORT/PATH\", ...}");
    rc = get_health(h, true, &out->health_probe, num, st);
    out->health_interval_s = num[0];
    out->health_timeout_s = num[1];
    out->health_retries = num[2];
    return rc;
}

/* "scale_to_zero": {"idle_s": N}, after the ports: only an instance with a
 * published TCP port can sleep (the port proxy is what sees its
 * connections and holds the one that wakes it). */
static api_code get_scale_to_zero(json_t *obj, api_instance_spec *out, api_status *st)
{
    static const char *const fields[] = { "idle_s" };
    json_t *z = member(obj, "scale_to_zero");
    bool tcp = false;
    uint64_t x;
    api_code rc;

    if (z == NULL)
        return API_OK;
    if (!json_is_object(z))
        return api_status_set(st, API_E_INVALID_FIELD, "scale_to_zero",
                              "scale_to_zero must be an object {\"idle_s\": SECONDS}");
    rc = check_fields(z, "scale_to_zero.", fields, NELEM(fields), st);
    if (rc == API_OK)
        rc = get_uint(z, "idle_s", "scale_to_zero.idle_s", API_IDLE_S_MIN, API_IDLE_S_MAX, 0, &x,
                      st);
    if (rc != API_OK)
        return rc;
    if (x == 0)
        return api_status_set(st, API_E_INVALID_FIELD, "scale_to_zero.idle_s",
                              "scale_to_zero needs idle_s (%d..%d seconds)", API_IDLE_S_MIN,
                              API_IDLE_S_MAX);
    for (size_t i = 0; i < out->n_ports; i++)
        tcp |= out->ports[i].protocol == API_PROTO_TCP;
    if (!tcp)
        return api_status_set(st, API_E_INVALID_FIELD, "scale_to_zero",
                              "scale_to_zero needs a published tcp port (ports: [{\"host\": "
                              "H, \"guest\": G}]): a connection to it is what wakes the instance");
    out->idle_s = (uint32_t)x;
    return API_OK;
}

api_code api_decode_instance_spec(const char *body, size_t len, api_instance_spec *out,
                                  api_status *st)
{
    static const char *const fields[] = {
        "image",     "name",          "count",   "memory_mib", "vcpus",   "args",
        "env",       "labels",        "restart", "host",       "network", "ports",
        "placement", "ready",         "health",  "cmdline", /* the per-run override */
        "initrd",    "scale_to_zero",
    };
    spec_store *s = NULL;
    const char *restart;
    uint64_t x;
    api_kv *env = NULL, *labels = NULL;
    api_code rc;

    memset(out, 0, sizeof *out);
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    out->priv_ = s;
    rc = load_object(body, len, false, &s->root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(s->root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;

    rc = get_string(s->root, "image", true, &out->image, st);
    if (rc != API_OK)
        goto out;
    if (!api_valid_image_ref(out->image)) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "image",
                            "image '%.80s' is not NAME, NAME:TAG or "
                            "sha256:HEX",
                            out->image);
        goto out;
    }

    rc = get_uint(s->root, "count", "count", 1, API_COUNT_MAX, 1, &x, st);
    if (rc != API_OK)
        goto out;
    out->count = (uint32_t)x;

    rc = get_string(s->root, "name", false, &out->name, st);
    if (rc != API_OK)
        goto out;
    if (out->name != NULL) {
        rc = api_check_instance_name(out->name, out->count, st);
        if (rc != API_OK)
            goto out;
    }

    rc = get_uint(s->root, "memory_mib", "memory_mib", API_MEMORY_MIB_MIN, API_MEMORY_MIB_MAX, 32,
                  &x, st);
    if (rc != API_OK)
        goto out;
    out->memory_mib = (uint32_t)x;
    rc = get_uint(s->root, "vcpus", "vcpus", 1, API_VCPUS_MAX, 1, &x, st);
    if (rc != API_OK)
        goto out;
    out->vcpus = (uint32_t)x;

    rc = get_args(s->root, s, &out->n_args, st);
    if (rc != API_OK)
        goto out;
    out->args = s->args;

    rc = get_map(s->root, "env", API_ENV_MAX, api_valid_env_key, valid_env_value,
                 "keys [A-Za-z_][A-Za-z0-9_]{0,126}, values up to 1024 "
                 "bytes without control characters",
                 &env, &out->n_env, st);
    s->env = env;
    if (rc != API_OK)
        goto out;
    out->env = env;
    rc = get_labels(s->root, &labels, &out->n_labels, st);
    s->labels = labels;
    if (rc != API_OK)
        goto out;
    out->labels = labels;

    rc = get_string(s->root, "restart", false, &restart, st);
    if (rc != API_OK)
        goto out;
    if (restart == NULL || strcmp(restart, "never") == 0) {
        out->restart = API_RESTART_NEVER;
    } else if (strcmp(restart, "on-failure") == 0) {
        out->restart = API_RESTART_ON_FAILURE;
    } else if (strcmp(restart, "always") == 0) {
        out->restart = API_RESTART_ALWAYS;
    } else {
        rc = api_status_set(st, API_E_INVALID_FIELD, "restart",
                            "restart '%.40s' must be never, on-failure or "
                            "always",
                            restart);
        goto out;
    }

    rc = get_string(s->root, "host", false, &out->host, st);
    if (rc != API_OK)
        goto out;
    if (out->host != NULL && !api_valid_name(out->host)) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "host",
                            "host '%.80s' is not a valid host name", out->host);
        goto out;
    }

    rc = get_bool(s->root, "network", true, &out->network, st);
    if (rc != API_OK)
        goto out;

    rc = get_ports(s->root, s, &out->n_ports, st);
    if (rc != API_OK)
        goto out;
    out->ports = s->ports;
    if (out->n_ports > 0 && out->count > 1) {
        rc =
            api_status_set(st, API_E_INVALID_FIELD, "ports", "ports are only allowed with count 1");
        goto out;
    }
    if (out->n_ports > 0 && !out->network) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "ports", "ports need network: true");
        goto out;
    }
    rc = get_scale_to_zero(s->root, out, st);
    if (rc != API_OK)
        goto out;
    rc = get_placement(s->root, s, out, st);
    if (rc != API_OK)
        goto out;
    rc = get_probes(s->root, out, st);
    if (rc != API_OK)
        goto out;
    /* the per-run command line override: a template, checked by the daemon */
    rc = get_text(s->root, "cmdline", "cmdline", false, API_CMDLINE_MAX, &out->cmdline, st);
    if (rc != API_OK)
        goto out;
    /* a run's own initrd, by the digest POST /v1/initrds gave */
    rc = get_string(s->root, "initrd", false, &out->initrd, st);
    if (rc != API_OK)
        goto out;
    if (out->initrd != NULL && !api_valid_digest(out->initrd, true)) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "initrd",
                            "initrd '%.80s' must be sha256: and 64 lowercase hex digits",
                            out->initrd);
        goto out;
    }
    rc = API_OK;
out:
    if (rc != API_OK)
        api_instance_spec_clear(out);
    return rc;
}

void api_instance_spec_clear(api_instance_spec *spec)
{
    if (spec == NULL)
        return;
    store_free(spec->priv_);
    memset(spec, 0, sizeof *spec);
}

/* ---- POST /v1/hosts ----------------------------------------------------- */

api_code api_decode_host_spec(const char *body, size_t len, api_host_spec *out, api_status *st)
{
    static const char *const fields[] = {
        "name",
        "uri",
        "labels",
        "domain_type",
    };
    spec_store *s;
    const char *dt;
    api_kv *labels = NULL;
    size_t n;
    api_code rc;

    memset(out, 0, sizeof *out);
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    out->priv_ = s;
    rc = load_object(body, len, false, &s->root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(s->root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    rc = get_string(s->root, "name", true, &out->name, st);
    if (rc != API_OK)
        goto out;
    if (!api_valid_name(out->name)) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "name",
                            "name '%.80s' is invalid (names match "
                            "[a-z0-9][a-z0-9_.-]{0,62})",
                            out->name);
        goto out;
    }
    rc = get_string(s->root, "uri", true, &out->uri, st);
    if (rc != API_OK)
        goto out;
    n = strnlen(out->uri, API_URI_MAX + 1);
    if (n == 0 || n > API_URI_MAX || !api_valid_text(out->uri, n) ||
        strchr(out->uri, '\t') != NULL || strchr(out->uri, ' ') != NULL) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "uri",
                            "uri must be 1..%d bytes without spaces or "
                            "control characters",
                            API_URI_MAX);
        goto out;
    }
    rc = get_labels(s->root, &labels, &out->n_labels, st);
    s->labels = labels;
    if (rc != API_OK)
        goto out;
    out->labels = labels;
    rc = get_string(s->root, "domain_type", false, &dt, st);
    if (rc != API_OK)
        goto out;
    if (dt == NULL || strcmp(dt, "auto") == 0) {
        out->domain_type = API_DOMAIN_AUTO;
    } else if (strcmp(dt, "kvm") == 0) {
        out->domain_type = API_DOMAIN_KVM;
    } else if (strcmp(dt, "qemu") == 0) {
        out->domain_type = API_DOMAIN_QEMU;
    } else {
        rc = api_status_set(st, API_E_INVALID_FIELD, "domain_type",
                            "domain_type '%.40s' must be auto, kvm or qemu", dt);
        goto out;
    }
    rc = API_OK;
out:
    if (rc != API_OK)
        api_host_spec_clear(out);
    return rc;
}

void api_host_spec_clear(api_host_spec *spec)
{
    if (spec == NULL)
        return;
    store_free(spec->priv_);
    memset(spec, 0, sizeof *spec);
}

/* ---- small bodies ------------------------------------------------------- */

/* PATCH's "ready" and "health": null removes the image's own (ready back
 * to the kind's default, no health probe); a health object without
 * "probe" changes the stored probe's numbers. */
static api_code get_patch_probes(json_t *root, api_image_patch *p, api_status *st)
{
    json_t *r = json_object_get(root, "ready"), *h = json_object_get(root, "health");
    uint32_t num[3] = { 0, 0, 0 };
    api_code rc;

    if (r != NULL && json_is_null(r))
        p->ready = "";
    else if ((rc = get_probe_text(root, "ready", "ready", false, &p->ready, st)) != API_OK)
        return rc;
    if (h == NULL)
        return API_OK;
    if (json_is_null(h)) {
        p->health_probe = "";
        return API_OK;
    }
    if (!json_is_object(h))
        return api_status_set(st, API_E_INVALID_FIELD, "health",
                              "health must be an object {\"probe\": \"http:PORT/PATH\", ...} "
                              "or null");
    if ((rc = get_health(h, false, &p->health_probe, num, st)) != API_OK)
        return rc;
    p->health_interval_s = num[0];
    p->health_timeout_s = num[1];
    p->health_retries = num[2];
    if (!p->health_probe && !p->health_interval_s && !p->health_timeout_s && !p->health_retries)
        return api_status_set(st, API_E_INVALID_FIELD, "health",
                              "health needs a probe, interval_s, timeout_s or retries");
    return API_OK;
}

api_code api_decode_image_patch(const char *body, size_t len, api_image_patch *p, api_status *st)
{
    static const char *const fields[] = { "firmware", "cmdline", "exit",
                                          "ready",    "health",  "warm_pool" };
    uint64_t pool;
    const char **out[] = { &p->firmware, &p->cmdline, &p->exit };
    json_t *root = NULL;
    api_code rc;

    memset(p, 0, sizeof *p);
    rc = load_object(body, len, false, &root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    /* Text of at most the lengths the privilege-separated root accepts
     * (api/chan.c get_patch): a value the front let through and root
     * refused would end the channel and restart the front. */
    for (size_t i = 0; i < NELEM(out); i++) {
        json_t *v = member(root, fields[i]);
        if (v == NULL || json_is_null(v))
            continue;
        rc = get_text(root, fields[i], fields[i], false,
                      out[i] == &p->cmdline ? API_CMDLINE_MAX : API_NAME_MAX, out[i], st);
        if (rc != API_OK)
            goto out;
    }
    rc = get_patch_probes(root, p, st);
    if (rc != API_OK)
        goto out;
    rc = get_uint(root, "warm_pool", "warm_pool", 0, UINT32_MAX, 0, &pool, st);
    if (rc != API_OK)
        goto out;
    p->warm_pool_set = member(root, "warm_pool") != NULL;
    p->warm_pool = (uint32_t)pool;
    if (!p->firmware && !p->cmdline && !p->exit && !p->ready && !p->health_probe &&
        !p->health_interval_s && !p->health_timeout_s && !p->health_retries && !p->warm_pool_set) {
        rc = api_status_set(st, API_E_INVALID_FIELD, NULL,
                            "give at least one of firmware, cmdline, exit, ready, health and "
                            "warm_pool");
        goto out;
    }
    p->priv_ = root;
    root = NULL;
out:
    json_decref(root);
    if (rc != API_OK)
        memset(p, 0, sizeof *p);
    return rc;
}

void api_image_patch_free(api_image_patch *p)
{
    if (p == NULL)
        return;
    json_decref(p->priv_);
    memset(p, 0, sizeof *p);
}

api_code api_decode_tag_request(const char *body, size_t len, char ref[API_REF_MAX + 1],
                                api_status *st)
{
    static const char *const fields[] = { "ref" };
    char name[API_NAME_MAX + 1], tag[API_TAG_MAX + 1];
    json_t *root = NULL;
    const char *s;
    api_code rc;

    ref[0] = '\0';
    rc = load_object(body, len, false, &root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    rc = get_string(root, "ref", true, &s, st);
    if (rc != API_OK)
        goto out;
    rc = api_parse_new_ref(s, "ref", name, tag, st);
    if (rc != API_OK)
        goto out;
    snprintf(ref, API_REF_MAX + 1, "%s:%s", name, tag);
out:
    json_decref(root);
    return rc;
}

api_code api_decode_stop_request(const char *body, size_t len, int *timeout_s, api_status *st)
{
    static const char *const fields[] = { "timeout_s" };
    json_t *root = NULL;
    uint64_t x;
    api_code rc;

    *timeout_s = -1;
    rc = load_object(body, len, true, &root, st);
    if (rc != API_OK || root == NULL)
        goto out;
    rc = check_fields(root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    if (member(root, "timeout_s") == NULL)
        goto out;
    rc = get_uint(root, "timeout_s", "timeout_s", 0, API_STOP_TIMEOUT_MAX, 0, &x, st);
    if (rc == API_OK)
        *timeout_s = (int)x;
out:
    json_decref(root);
    return rc;
}

/* ---- bulk: POST /v1/instances/{stop,start,restart,delete} --------------- */

typedef struct bulk_store {
    json_t *root; /* id strings point into it */
    const char **ids;
    api_selector sel;
} bulk_store;

api_code api_decode_bulk_request(const char *body, size_t len, bool allow_timeout, bool allow_force,
                                 api_bulk_req *out, api_status *st)
{
    const char *fields[4] = { "selector", "ids" };
    size_t n_fields = 2, i;
    bulk_store *bs;
    const char *sel_text = NULL;
    json_t *ids, *v;
    uint64_t x;
    api_code rc;

    memset(out, 0, sizeof *out);
    out->timeout_s = -1;
    if (allow_timeout)
        fields[n_fields++] = "timeout_s";
    if (allow_force)
        fields[n_fields++] = "force";
    bs = calloc(1, sizeof *bs);
    if (bs == NULL)
        return api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
    out->priv_ = bs;
    rc = load_object(body, len, false, &bs->root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(bs->root, "", fields, n_fields, st);
    if (rc != API_OK)
        goto out;
    if (allow_timeout) {
        rc = get_uint(bs->root, "timeout_s", "timeout_s", 0, API_STOP_TIMEOUT_MAX, 0, &x, st);
        if (rc != API_OK)
            goto out;
        if (member(bs->root, "timeout_s") != NULL)
            out->timeout_s = (int)x;
    }
    if (allow_force) {
        rc = get_bool(bs->root, "force", false, &out->force, st);
        if (rc != API_OK)
            goto out;
    }
    rc = get_string(bs->root, "selector", false, &sel_text, st);
    if (rc != API_OK)
        goto out;
    ids = member(bs->root, "ids");
    if (sel_text != NULL && ids != NULL) {
        rc =
            api_status_set(st, API_E_INVALID_FIELD, "ids", "give either selector or ids, not both");
        goto out;
    }
    if (sel_text == NULL && ids == NULL) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "selector",
                            "selector or ids is required (a bulk "
                            "request never means every instance)");
        goto out;
    }
    if (sel_text != NULL) {
        if (sel_text[0] == '\0') {
            rc = api_status_set(st, API_E_INVALID_FIELD, "selector",
                                "selector is empty (a bulk request "
                                "never means every instance)");
            goto out;
        }
        rc = api_selector_parse(sel_text, &bs->sel, st);
        if (rc != API_OK)
            goto out;
        if (bs->sel.n == 0) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "selector",
                                "selector '%.80s' has no terms (a "
                                "bulk request never means every "
                                "instance)",
                                sel_text);
            goto out;
        }
        out->selector = &bs->sel;
        goto out;
    }
    if (!json_is_array(ids)) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "ids",
                            "ids must be an array of instance ids or "
                            "names");
        goto out;
    }
    if (json_array_size(ids) == 0) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "ids",
                            "ids is empty; give at least one instance");
        goto out;
    }
    if (json_array_size(ids) > API_BULK_IDS_MAX) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "ids",
                            "ids has %zu entries, at most %d allowed", json_array_size(ids),
                            API_BULK_IDS_MAX);
        goto out;
    }
    bs->ids = calloc(json_array_size(ids), sizeof *bs->ids);
    if (bs->ids == NULL) {
        rc = api_status_set(st, API_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    json_array_foreach (ids, i, v) {
        char field[API_FIELD_MAX];
        snprintf(field, sizeof field, "ids[%zu]", i);
        if (!json_is_string(v)) {
            rc = api_status_set(st, API_E_INVALID_FIELD, field, "%s must be a string", field);
            goto out;
        }
        /* A ref of valid length but no valid syntax names no
		 * instance: its item fails with not_found, as the single
		 * route answers 404 for it. */
        if (json_string_length(v) == 0 || json_string_length(v) > API_ID_MAX ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            rc = api_status_set(st, API_E_INVALID_FIELD, field,
                                "%s '%.80s' is not an instance id, id "
                                "prefix or name (1..%d bytes)",
                                field, json_string_value(v), API_ID_MAX);
            goto out;
        }
        bs->ids[i] = json_string_value(v);
    }
    out->ids = bs->ids;
    out->n_ids = json_array_size(ids);
out:
    if (rc != API_OK)
        api_bulk_req_clear(out);
    return rc;
}

void api_bulk_req_clear(api_bulk_req *req)
{
    bulk_store *bs;

    if (req == NULL)
        return;
    bs = req->priv_;
    if (bs != NULL) {
        json_decref(bs->root);
        free(bs->ids);
        free(bs);
    }
    memset(req, 0, sizeof *req);
    req->timeout_s = -1;
}

api_code api_decode_cordon_request(const char *body, size_t len, bool *cordoned, api_status *st)
{
    static const char *const fields[] = { "cordoned" };
    json_t *root = NULL;
    api_code rc;

    *cordoned = false;
    rc = load_object(body, len, false, &root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    if (member(root, "cordoned") == NULL) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "cordoned", "cordoned is required");
        goto out;
    }
    rc = get_bool(root, "cordoned", false, cordoned, st);
out:
    json_decref(root);
    return rc;
}

api_code api_decode_token_spec(const char *body, size_t len, api_token_spec *out, api_status *st)
{
    static const char *const fields[] = { "name",       "scope",      "selector", "quotas",
                                          "expires_in", "expires_at", "rate",     "burst" };
    static const char *const qfields[] = { "instances", "memory_mib", "vcpus" };
    json_t *root = NULL, *q;
    const char *name, *scope, *sel, *at;
    api_selector parsed;
    uint64_t v;
    api_code rc;

    memset(out, 0, sizeof *out);
    rc = load_object(body, len, false, &root, st);
    if (rc != API_OK)
        goto out;
    rc = check_fields(root, "", fields, NELEM(fields), st);
    if (rc != API_OK)
        goto out;
    rc = get_string(root, "name", true, &name, st);
    if (rc != API_OK)
        goto out;
    if (!api_valid_name(name)) {
        rc =
            api_status_set(st, API_E_INVALID_FIELD, "name",
                           "name '%.80s' is invalid (names match [a-z0-9][a-z0-9_.-]{0,62})", name);
        goto out;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    rc = get_string(root, "scope", true, &scope, st);
    if (rc != API_OK)
        goto out;
    if (api_scope_parse(scope, &out->scope) != 0) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "scope",
                            "scope '%.40s' must be read-only, operator or admin", scope);
        goto out;
    }
    rc = get_string(root, "selector", false, &sel, st);
    if (rc != API_OK)
        goto out;
    if (sel != NULL && sel[0] != '\0') {
        if (strlen(sel) > API_SELECTOR_TEXT_MAX) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "selector", "selector is over %d bytes",
                                API_SELECTOR_TEXT_MAX);
            goto out;
        }
        rc = api_selector_parse(sel, &parsed, st);
        if (rc != API_OK)
            goto out;
        snprintf(out->selector, sizeof out->selector, "%s", sel);
    }
    q = member(root, "quotas");
    if (q != NULL) {
        if (!json_is_object(q)) {
            rc = api_status_set(st, API_E_INVALID_FIELD, "quotas", "quotas must be an object");
            goto out;
        }
        rc = check_fields(q, "quotas.", qfields, NELEM(qfields), st);
        if (rc != API_OK)
            goto out;
        rc = get_uint(q, "instances", "quotas.instances", 0, 100000, 0, &v, st);
        if (rc != API_OK)
            goto out;
        out->max_instances = (uint32_t)v;
        rc = get_uint(q, "memory_mib", "quotas.memory_mib", 0, 1u << 30, 0, &v, st);
        if (rc != API_OK)
            goto out;
        out->max_memory_mib = (uint32_t)v;
        rc = get_uint(q, "vcpus", "quotas.vcpus", 0, 1000000, 0, &v, st);
        if (rc != API_OK)
            goto out;
        out->max_vcpus = (uint32_t)v;
    }
    /* expiry: seconds from now (up to 10 years) or a time, not both */
    rc = get_uint(root, "expires_in", "expires_in", 1, 315360000, 0, &v, st);
    if (rc != API_OK)
        goto out;
    out->expires_in = (uint32_t)v;
    rc = get_string(root, "expires_at", false, &at, st);
    if (rc != API_OK)
        goto out;
    if (at != NULL && (out->expires_at = api_parse_time(at)) <= 0) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "expires_at",
                            "expires_at '%.40s' is not a time like 2026-12-31T23:59:59Z", at);
        goto out;
    }
    if (out->expires_in && out->expires_at) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "expires_at",
                            "give expires_in or expires_at, not both");
        goto out;
    }
    /* request rate: per second, with an optional burst */
    rc = get_uint(root, "rate", "rate", 1, 1000000, 0, &v, st);
    if (rc != API_OK)
        goto out;
    out->rate = (uint32_t)v;
    rc = get_uint(root, "burst", "burst", 1, 1000000, 0, &v, st);
    if (rc != API_OK)
        goto out;
    out->burst = (uint32_t)v;
    if (out->burst && !out->rate) {
        rc = api_status_set(st, API_E_INVALID_FIELD, "burst", "burst needs a rate");
        goto out;
    }
    rc = API_OK;
out:
    json_decref(root);
    return rc;
}

int64_t api_parse_time(const char *s)
{
    struct tm tm;
    const char *end;
    time_t t;

    memset(&tm, 0, sizeof tm);
    if (s == NULL || strlen(s) != 20 || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL ||
        strcmp(end, "Z") != 0)
        return -1;
    t = timegm(&tm);
    return t > 0 ? (int64_t)t : -1;
}

api_code api_decode_empty_body(const char *body, size_t len, api_status *st)
{
    json_t *root = NULL;
    api_code rc;

    rc = load_object(body, len, true, &root, st);
    if (rc != API_OK || root == NULL)
        goto out;
    rc = check_fields(root, "", NULL, 0, st);
out:
    json_decref(root);
    return rc;
}

/* ---- query strings ------------------------------------------------------ */

int api_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    size_t i;

    if (s == NULL || s[0] == '\0')
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (d > max || x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

static api_code q_bool(const char *key, const char *v, bool *out, api_status *st)
{
    if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return API_OK;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return API_OK;
    }
    return api_status_set(st, API_E_INVALID_FIELD, key, "%s '%.20s' must be true or false", key, v);
}

static const struct {
    const char *name;
    unsigned bit;
} qparams[] = {
    { "selector", API_Q_SELECTOR }, { "name", API_Q_NAME },       { "state", API_Q_STATE },
    { "host", API_Q_HOST },         { "limit", API_Q_LIMIT },     { "after", API_Q_AFTER },
    { "force", API_Q_FORCE },       { "dry_run", API_Q_DRY_RUN }, { "tail", API_Q_TAIL },
    { "follow", API_Q_FOLLOW },     { "since", API_Q_SINCE },     { "ref", API_Q_REF },
    { "label", API_Q_LABEL },       { "digest", API_Q_DIGEST },   { "initrd", API_Q_INITRD },
};

static api_code q_label(const char *v, api_query *q, api_status *st)
{
    char *store, *eq;
    size_t i, len;

    if (q->n_labels == API_LABELS_MAX)
        return api_status_set(st, API_E_INVALID_FIELD, "label", "at most %d labels allowed",
                              API_LABELS_MAX);
    len = v != NULL ? strnlen(v, sizeof q->label_store_[0]) : 0;
    if (v == NULL || len == sizeof q->label_store_[0] || (eq = strchr(v, '=')) == NULL)
        return api_status_set(st, API_E_INVALID_FIELD, "label", "label '%.80s' must be KEY=VALUE",
                              v != NULL ? v : "");
    store = q->label_store_[q->n_labels];
    memcpy(store, v, len + 1);
    eq = store + (eq - v);
    *eq = '\0';
    if (!api_valid_label_key(store) || !api_valid_label_value(eq + 1))
        return api_status_set(st, API_E_INVALID_FIELD, "label",
                              "label '%.80s' is invalid (keys "
                              "[A-Za-z0-9][A-Za-z0-9_./-]{0,62}, values "
                              "[A-Za-z0-9_.:@+/-]{0,63})",
                              v);
    for (i = 0; i < q->n_labels; i++) {
        if (strcmp(q->labels[i].key, store) == 0)
            return api_status_set(st, API_E_INVALID_FIELD, "label", "label '%s' given twice",
                                  store);
    }
    q->labels[q->n_labels].key = store;
    q->labels[q->n_labels].value = eq + 1;
    q->n_labels++;
    return API_OK;
}

api_code api_decode_query(const api_kv *params, size_t n, unsigned allowed, api_query *q,
                          api_status *st)
{
    unsigned seen = 0, bit = 0;
    uint64_t x;
    size_t i, j;
    api_code rc;

    memset(q, 0, sizeof *q);
    q->limit = API_LIST_LIMIT_DEFAULT;
    q->tail = UINT64_MAX;
    for (i = 0; i < n; i++) {
        const char *k = params[i].key, *v = params[i].value;

        for (j = 0; j < NELEM(qparams); j++) {
            if (k != NULL && strcmp(k, qparams[j].name) == 0)
                break;
        }
        if (j == NELEM(qparams) || !(allowed & qparams[j].bit))
            return api_status_set(st, API_E_INVALID_FIELD, k != NULL ? k : "",
                                  "unknown query parameter '%.60s'", k != NULL ? k : "");
        bit = qparams[j].bit;
        if ((seen & bit) && bit != API_Q_LABEL)
            return api_status_set(st, API_E_INVALID_FIELD, k, "query parameter '%s' given twice",
                                  k);
        seen |= bit;
        if (v == NULL && bit != API_Q_FORCE && bit != API_Q_DRY_RUN && bit != API_Q_FOLLOW)
            return api_status_set(st, API_E_INVALID_FIELD, k, "query parameter '%s' needs a value",
                                  k);
        switch (bit) {
        case API_Q_SELECTOR:
            rc = api_selector_parse(v, &q->selector, st);
            if (rc != API_OK)
                return rc;
            break;
        case API_Q_NAME:
            if (!api_valid_name(v))
                return api_status_set(st, API_E_INVALID_FIELD, k, "name '%.80s' is invalid", v);
            q->name = v;
            break;
        case API_Q_STATE:
            if (api_state_parse(v, &q->state) != 0)
                return api_status_set(st, API_E_INVALID_FIELD, k,
                                      "state '%.40s' is not an instance "
                                      "state",
                                      v);
            q->has_state = true;
            break;
        case API_Q_HOST:
            if (!api_valid_name(v))
                return api_status_set(st, API_E_INVALID_FIELD, k, "host '%.80s' is invalid", v);
            q->host = v;
            break;
        case API_Q_LIMIT:
            if (api_parse_u64(v, API_LIST_LIMIT_MAX, &x) != 0 || x < 1)
                return api_status_set(st, API_E_INVALID_FIELD, k, "limit '%.40s' must be 1..%d", v,
                                      API_LIST_LIMIT_MAX);
            q->limit = (uint32_t)x;
            break;
        case API_Q_AFTER:
            if (!api_valid_cursor(v))
                return api_status_set(st, API_E_INVALID_FIELD, k, "after is not a valid cursor");
            q->after = v;
            break;
        case API_Q_FORCE:
            rc = q_bool(k, v, &q->force, st);
            if (rc != API_OK)
                return rc;
            break;
        case API_Q_DRY_RUN:
            rc = q_bool(k, v, &q->dry_run, st);
            if (rc != API_OK)
                return rc;
            break;
        case API_Q_FOLLOW:
            rc = q_bool(k, v, &q->follow, st);
            if (rc != API_OK)
                return rc;
            break;
        case API_Q_TAIL:
            if (api_parse_u64(v, UINT64_MAX - 1, &q->tail) != 0)
                return api_status_set(st, API_E_INVALID_FIELD, k,
                                      "tail '%.40s' must be a byte count", v);
            break;
        case API_Q_SINCE:
            if (api_parse_u64(v, UINT64_MAX - 1, &q->since) != 0)
                return api_status_set(st, API_E_INVALID_FIELD, k,
                                      "since '%.40s' must be an event id", v);
            q->has_since = true;
            break;
        case API_Q_REF:
            rc = api_parse_new_ref(v, "ref", q->ref_name, q->ref_tag, st);
            if (rc != API_OK)
                return rc;
            q->has_ref = true;
            break;
        case API_Q_LABEL:
            rc = q_label(v, q, st);
            if (rc != API_OK)
                return rc;
            break;
        case API_Q_DIGEST:
            if (!api_valid_digest(v, true))
                return api_status_set(st, API_E_INVALID_FIELD, k,
                                      "digest '%.80s' must be sha256: "
                                      "and 64 lowercase hex digits",
                                      v);
            q->digest = v;
            break;
        case API_Q_INITRD:
            if (!api_valid_digest(v, true))
                return api_status_set(st, API_E_INVALID_FIELD, k,
                                      "initrd '%.80s' must be sha256: and 64 lowercase hex digits",
                                      v);
            q->initrd = v;
            break;
        default: return api_status_set(st, API_E_INTERNAL, NULL, "query table out of sync");
        }
    }
    if ((allowed & API_Q_REF) && !q->has_ref)
        return api_status_set(st, API_E_INVALID_FIELD, "ref", "query parameter ref is required");
    return API_OK;
}

/* status.c - api_status helpers and wire strings of the api.h enums. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

static const struct {
    const char *str;
    int http;
} code_tab[API_CODE_COUNT_] = {
    [API_OK] = { "ok", 200 },
    [API_E_BAD_REQUEST] = { "bad_request", 400 },
    [API_E_INVALID_FIELD] = { "invalid_field", 400 },
    [API_E_INVALID_IMAGE] = { "invalid_image", 422 },
    [API_E_UNAUTHORIZED] = { "unauthorized", 401 },
    [API_E_NOT_FOUND] = { "not_found", 404 },
    [API_E_METHOD_NOT_ALLOWED] = { "method_not_allowed", 405 },
    [API_E_CONFLICT] = { "conflict", 409 },
    [API_E_TOO_LARGE] = { "too_large", 413 },
    [API_E_UNSUPPORTED_MEDIA_TYPE] = { "unsupported_media_type", 415 },
    [API_E_INSUFFICIENT_CAPACITY] = { "insufficient_capacity", 507 },
    [API_E_UNAVAILABLE] = { "unavailable", 503 },
    [API_E_INTERNAL] = { "internal", 500 },
    [API_E_FORBIDDEN] = { "forbidden", 403 },
    [API_E_QUOTA_EXCEEDED] = { "quota_exceeded", 403 },
    [API_E_RATE_LIMITED] = { "rate_limited", 429 },
};

static const char *const scope_str[] = { "read-only", "operator", "admin" };

const char *api_scope_name(api_scope s)
{
    return (unsigned)s < 3 ? scope_str[s] : "read-only";
}

int api_scope_parse(const char *s, api_scope *out)
{
    for (unsigned i = 0; s != NULL && i < 3; i++) {
        if (strcmp(s, scope_str[i]) == 0) {
            *out = (api_scope)i;
            return 0;
        }
    }
    return -1;
}

api_code api_status_set(api_status *st, api_code code, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (st == NULL)
        return code;
    st->code = code;
    st->retry_after_s = 0;
    st->message[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(st->message, sizeof st->message, fmt, ap);
        va_end(ap);
    }
    snprintf(st->field, sizeof st->field, "%s", field != NULL ? field : "");
    return code;
}

const char *api_code_str(api_code code)
{
    if ((unsigned)code >= API_CODE_COUNT_)
        return "internal";
    return code_tab[code].str;
}

int api_code_http(api_code code)
{
    if ((unsigned)code >= API_CODE_COUNT_)
        return 500;
    return code_tab[code].http;
}

static const char *const restart_str[] = { "never", "on-failure", "always" };
static const char *const state_str[API_STATE_COUNT_] = {
    "pending", "starting", "running", "stopping", "stopped", "exited",
    "crashed", "backoff",  "failed",  "lost",     "idle",
};
static const char *const proto_str[] = { "tcp", "udp" };
static const char *const domain_str[] = { "auto", "kvm", "qemu" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *api_restart_str(api_restart r)
{
    return (unsigned)r < NELEM(restart_str) ? restart_str[r] : NULL;
}

const char *api_state_str(api_instance_state s)
{
    return (unsigned)s < NELEM(state_str) ? state_str[s] : NULL;
}

const char *api_proto_str(api_proto p)
{
    return (unsigned)p < NELEM(proto_str) ? proto_str[p] : NULL;
}

const char *api_domain_type_str(api_domain_type d)
{
    return (unsigned)d < NELEM(domain_str) ? domain_str[d] : NULL;
}

int api_state_parse(const char *s, api_instance_state *out)
{
    size_t i;

    if (s == NULL)
        return -1;
    for (i = 0; i < NELEM(state_str); i++) {
        if (strcmp(s, state_str[i]) == 0) {
            *out = (api_instance_state)i;
            return 0;
        }
    }
    return -1;
}

const char *api_rule_kind_str(api_rule_kind k)
{
    static const char *const names[] = {
        "host-affinity",
        "host-anti-affinity",
        "affinity",
        "anti-affinity",
    };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : NULL;
}

/*
 * fuzz_decode.c - libFuzzer harness for every request decoder: the JSON
 * bodies (token specs included) and the query decoder (input split at the first NUL byte into a
 * "k=v&k=v" query). Each decoder must return a status, never crash or leak,
 * and a successful instance spec must satisfy the documented limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void check_spec(const api_instance_spec *s)
{
    if (s->count < 1 || s->count > API_COUNT_MAX || s->memory_mib < API_MEMORY_MIB_MIN ||
        s->memory_mib > API_MEMORY_MIB_MAX || s->vcpus < 1 || s->vcpus > API_VCPUS_MAX ||
        s->image == NULL || s->n_args > API_ARGS_MAX || s->n_env > API_ENV_MAX ||
        s->n_labels > API_LABELS_MAX || s->n_ports > API_PORTS_MAX ||
        (s->n_ports > 0 && s->count != 1))
        abort();
}

static void fuzz_query(const char *q, size_t len)
{
    api_kv kv[16];
    char buf[1024];
    size_t n = 0;
    char *p, *save = NULL, *tok;
    api_query out;
    api_status st = { 0 };

    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, q, len);
    buf[len] = '\0';
    for (p = buf; (tok = strtok_r(p, "&", &save)) != NULL && n < 16; p = NULL) {
        char *eq = strchr(tok, '=');
        kv[n].key = tok;
        kv[n].value = NULL;
        if (eq != NULL) {
            *eq = '\0';
            kv[n].value = eq + 1;
        }
        n++;
    }
    api_decode_query(kv, n, ~0u & ~(unsigned)API_Q_REF, &out, &st);
    api_decode_query(kv, n, ~0u, &out, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    api_instance_spec spec;
    api_host_spec host;
    api_status st = { 0 };
    char ref[API_REF_MAX + 1];
    const uint8_t *nul;
    int t;
    bool b;

    if (api_decode_instance_spec(body, size, &spec, &st) == API_OK)
        check_spec(&spec);
    api_instance_spec_clear(&spec);
    api_decode_host_spec(body, size, &host, &st);
    api_host_spec_clear(&host);
    api_decode_tag_request(body, size, ref, &st);
    api_decode_stop_request(body, size, &t, &st);
    api_decode_cordon_request(body, size, &b, &st);
    api_decode_empty_body(body, size, &st);
    {
        api_image_patch ip;
        if (api_decode_image_patch(body, size, &ip, &st) == API_OK && !ip.firmware && !ip.cmdline &&
            !ip.exit && !ip.ready && !ip.health_probe && !ip.health_interval_s &&
            !ip.health_timeout_s && !ip.health_retries && !ip.warm_pool_set)
            __builtin_trap(); /* API_OK means at least one field */
        api_image_patch_free(&ip);
    }
    {
        /* tokens: expiry given one way at most, a burst only with a rate */
        api_token_spec ts;
        if (api_decode_token_spec(body, size, &ts, &st) == API_OK &&
            (!api_valid_name(ts.name) || (ts.expires_in && ts.expires_at) || ts.expires_at < 0 ||
             (ts.burst && !ts.rate)))
            __builtin_trap();
    }
    nul = memchr(data, 0, size);
    if (nul != NULL)
        fuzz_query((const char *)nul + 1, size - (size_t)(nul - data) - 1);
    else
        fuzz_query(body, size);
    {
        /* the error encoder must take whatever message came back */
        size_t len;
        free(api_encode_error(&st, &len));
    }
    return 0;
}

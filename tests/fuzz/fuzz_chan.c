/* Fuzz target: the root process's parser of what the API front sends over
 * the privilege-separation channel (api/chan.c: chan_hdr_get and
 * chan_call_decode), the one place a compromised front's bytes are read by
 * root. Input: one frame, 16-byte header then payload (the header's length
 * is taken as given, the payload as what follows it). Checks beyond "no
 * crash, no leak": a frame longer than the bound never gets past the
 * header; every call that decodes carries a secret of 1..128 bytes, and
 * the fields the backend trusts hold the documented rules again (names,
 * refs, counts, ports only with count 1, one of selector or ids). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_chan: decoded call breaks a rule: %s\n", what);
        abort();
    }
}

static void check_call(const chan_call *c)
{
    size_t n = strlen(c->secret);

    check(n >= 1 && n <= API_TOKEN_SECRET_MAX, "secret length");
    switch (c->type) {
    case CHAN_T_INSTANCE_CREATE:
        check(api_valid_image_ref(c->spec.image), "image ref");
        check(c->spec.name == NULL || api_valid_name(c->spec.name), "name");
        check(c->spec.count >= 1 && c->spec.count <= API_COUNT_MAX, "count");
        check(c->spec.n_ports == 0 || c->spec.count == 1, "ports with count 1");
        check(c->spec.n_env <= API_ENV_MAX && c->spec.n_labels <= API_LABELS_MAX, "kv counts");
        for (size_t i = 0; i < c->spec.n_labels; i++)
            check(api_valid_label_key(c->spec.labels[i].key), "label key");
        for (size_t i = 0; i < c->spec.n_env; i++)
            check(api_valid_env_key(c->spec.env[i].key), "env key");
        break;
    case CHAN_T_INSTANCE_BULK:
        check((c->bulk.selector != NULL) != (c->bulk.n_ids != 0), "selector or ids");
        check(c->bulk.selector == NULL || c->bulk.selector->n >= 1, "selector terms");
        check(c->bulk.n_ids <= API_BULK_IDS_MAX, "ids");
        break;
    case CHAN_T_IMAGE_GET:
    case CHAN_T_IMAGE_DELETE:
    case CHAN_T_IMAGE_TAG:
    case CHAN_T_IMAGE_PATCH: check(api_valid_image_ref(c->s1), "image ref"); break;
    case CHAN_T_INSTANCE_GET:
    case CHAN_T_INSTANCE_DELETE:
    case CHAN_T_INSTANCE_ACTION:
    case CHAN_T_CONSOLE_OPEN: check(api_valid_instance_ref(c->s1), "instance ref"); break;
    case CHAN_T_HOST_GET:
    case CHAN_T_HOST_DELETE:
    case CHAN_T_HOST_CORDON:
    case CHAN_T_HOST_DRAIN: check(api_valid_name(c->s1), "host name"); break;
    case CHAN_T_UPLOAD_WRITE:
        check(c->data_len >= 1 && c->data_len <= CHAN_CHUNK_MAX, "chunk");
        break;
    case CHAN_T_CONSOLE_READ: check(c->u32 >= 1 && c->u32 <= CHAN_CHUNK_MAX, "read length"); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chan_hdr h;
    chan_call c;
    char why[160];

    if (size < CHAN_HDR_LEN)
        return 0;
    if (chan_hdr_get(data, CHAN_REQ_MAX, &h) != 0)
        return 0;
    check(h.len <= CHAN_REQ_MAX, "header bound");
    size -= CHAN_HDR_LEN;
    if (chan_call_decode(h.type, data + CHAN_HDR_LEN, h.len < size ? h.len : size, &c, why,
                         sizeof why) != 0) {
        check(why[0] != '\0', "a refusal says why");
        return 0;
    }
    check_call(&c);
    chan_call_clear(&c);
    return 0;
}

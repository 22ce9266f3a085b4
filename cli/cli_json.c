/* cli_json.c: jansson accessors used by the renderers. */
#include "cli_json.h"

#include <stdlib.h>
#include <string.h>

const char *cli_jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

double cli_jnum(const json_t *obj, const char *key, double dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void cli_jlabels(const json_t *obj, char *out, size_t len)
{
    out[0] = '\0';
    size_t n = json_is_object(obj) ? json_object_size(obj) : 0;
    if (!n || !len)
        return;
    const char **keys = calloc(n, sizeof *keys);
    if (!keys)
        return;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)obj, k, v)
        keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_str);
    size_t used = 0;
    for (i = 0; i < n && used < len; i++) {
        const char *val = json_string_value(json_object_get(obj, keys[i]));
        int w = snprintf(out + used, len - used, "%s%s=%s", i ? "," : "", keys[i], val ? val : "");
        if (w < 0)
            break;
        used += (size_t)w;
    }
    free(keys);
}

int cli_jprint(FILE *out, const json_t *v)
{
    /* 15 significant digits: the shortest that round-trips what the server
     * wrote (jansson's default 17 prints 1.697 as 1.6970000000000001). */
    if (json_dumpf(v, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) < 0)
        return -1;
    fputc('\n', out);
    return 0;
}

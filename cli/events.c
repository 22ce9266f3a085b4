/* events.c: `shoal events`, the server-sent event stream as lines. */
#include "cli_args.h"
#include "cli_http.h"
#include "cli_json.h"
#include "cli_util.h"
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char events_help[] =
    "Usage: shoal events [OPTIONS]\n"
    "\n"
    "Stream fleet events (instance, image and host changes), one per line:\n"
    "  TIME TYPE key=value...\n"
    "Runs until interrupted unless --max or --timeout is given.\n"
    "\n"
    "Options:\n"
    "      --since ID         replay retained events after event ID first\n"
    "  -n, --max N            exit after N events\n"
    "  -t, --timeout SECONDS  exit after SECONDS (status 0)\n"
    "  -o, --output FMT       table (lines) or json (one JSON object per line)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal events\n"
    "  shoal events --since 0 --max 20 -o json\n"
    "  shoal events --timeout 30 | grep instance.state\n";

struct events_state {
    cli_buf line;      /* partial line carried across chunks */
    cli_buf data;      /* data: lines of the current event */
    unsigned long max; /* stop after this many (0: no limit) */
    unsigned long seen;
    cli_fmt fmt;
};

void events_format(const json_t *ev, char *out, size_t len)
{
    const char *t = cli_jstr(ev, "time"), *type = cli_jstr(ev, "type");
    int w = snprintf(out, len, "%s %s", t ? t : "-", type ? type : "-");
    size_t used = w > 0 ? (size_t)w : 0;
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)ev, k, v) {
        if (used >= len)
            break;
        if (!strcmp(k, "time") || !strcmp(k, "type") || !strcmp(k, "id") || json_is_null(v))
            continue;
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        w = snprintf(out + used, len - used, " %s=%s", k, s ? s : json_string_value(v));
        free(s);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* One complete event: print it. Returns 1 when --max is reached. */
static int events_dispatch(struct events_state *s)
{
    if (!s->data.len)
        return 0;
    json_t *ev = json_loadb(s->data.data, s->data.len, JSON_DECODE_ANY, NULL);
    if (s->fmt == CLI_FMT_JSON || !ev) {
        fwrite(s->data.data, 1, s->data.len, stdout);
        fputc('\n', stdout);
    } else {
        char line[2048];
        events_format(ev, line, sizeof line);
        puts(line);
    }
    fflush(stdout);
    json_decref(ev);
    s->data.len = 0;
    s->seen++;
    return s->max && s->seen >= s->max;
}

static int events_line(struct events_state *s, char *l, size_t n)
{
    if (n && l[n - 1] == '\r')
        l[--n] = '\0';
    if (n == 0)
        return events_dispatch(s);
    if (l[0] == ':')
        return 0; /* comment (keepalive) */
    if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        const char *v = l + 5;
        if (*v == ' ')
            v++;
        if (s->data.len)
            cli_buf_append(&s->data, "\n", 1);
        cli_buf_puts(&s->data, v);
    }
    return 0; /* id:, event:, retry: are not needed for display */
}

static int events_cb(void *arg, const char *p, size_t len)
{
    struct events_state *s = arg;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (cli_buf_append(&s->line, p + i, 1) < 0)
                return 1;
            continue;
        }
        int stop = events_line(s, s->line.data ? s->line.data : (char *)"", s->line.len);
        s->line.len = 0;
        if (s->line.data)
            s->line.data[0] = '\0';
        if (stop)
            return 1;
    }
    return 0;
}

int events_main(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "since", required_argument, NULL, 's' },   { "max", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' }, { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    char err[256];
    unsigned long since = 0, timeout = 0;
    bool have_since = false;
    struct events_state s = { 0 };
    cli_buf path = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:t:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (cli_parse_uint(optarg, 0, (unsigned long)-1 >> 1, &since, err, sizeof err) < 0) {
                rc = cli_usage("events", "--since: %s", err);
                goto out;
            }
            have_since = true;
            break;
        case 'n':
            if (cli_parse_uint(optarg, 1, 1000000, &s.max, err, sizeof err) < 0) {
                rc = cli_usage("events", "--max: %s", err);
                goto out;
            }
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, 86400 * 365, &timeout, err, sizeof err) < 0) {
                rc = cli_usage("events", "--timeout: %s", err);
                goto out;
            }
            break;
        case 'o':
            if (cli_parse_format(optarg, &s.fmt, err, sizeof err) < 0) {
                rc = cli_usage("events", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(events_help, stdout); goto out;
        default: rc = cli_opt_error("events", argv, c); goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage("events", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    cli_buf_puts(&path, "/v1/events");
    if (have_since)
        cli_buf_printf(&path, "?since=%lu", since);
    rc = cli_http_stream(ctx, cli_buf_str(&path), (long)timeout * 1000, events_cb, &s);
out:
    cli_buf_free(&s.line);
    cli_buf_free(&s.data);
    cli_buf_free(&path);
    return rc;
}

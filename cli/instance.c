/* instance.c: run, ps, inspect, logs, stop, start, restart, rm. */
#include "cli_args.h"
#include "cli_http.h"
#include "cli_json.h"
#include "cli_jv.h"
#include "cli_table.h"
#include "cli_util.h"
#include "cmd.h"

#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ run */

static const char run_help[] =
    "Usage: shoal run [OPTIONS] IMAGE [-- ARGS...]\n"
    "\n"
    "Start one or more instances of IMAGE (NAME[:TAG] or sha256:DIGEST).\n"
    "Prints the new instance ids, one per line. With --count N > 1, then\n"
    "follows the batch until every instance is running or has failed: a\n"
    "progress bar on a terminal (stderr), a line per progress event\n"
    "otherwise, and a last line with the count running; the instances that\n"
    "failed are named with why, and the exit status is then 1.\n"
    "\n"
    "Options:\n"
    "  -n, --name NAME        instance name (with --count N: NAME-1..NAME-N)\n"
    "  -c, --count N          number of instances, 1..1000 (default 1)\n"
    "  -m, --memory SIZE      guest memory: 32, 32M, 32MiB, 1G (default 32M)\n"
    "      --vcpus N          virtual CPUs (default 1)\n"
    "  -e, --env K=V          environment variable for the app (repeatable)\n"
    "  -l, --label K=V        label (repeatable)\n"
    "  -p, --publish H:P[/udp] forward host port H to guest port P (tcp or udp, count 1)\n"
    "      --no-network       no network interface\n"
    "      --restart POLICY   never, on-failure or always (default never); with\n"
    "                         on-failure or always an unhealthy instance is\n"
    "                         restarted, with never it keeps running, unhealthy\n"
    "      --ready SPEC       when the instance is ready (running): status (the\n"
    "                         status channel of shoal's guests), tcp:PORT (the\n"
    "                         guest accepts on PORT), http:PORT/PATH (a GET\n"
    "                         answers 2xx), console:REGEX (a console line\n"
    "                         matches, POSIX ERE) or none (once it boots).\n"
    "                         Default: status for shoal's guests, else tcp: of\n"
    "                         the first published port, else none\n"
    "      --health SPEC      health check once ready: tcp:PORT or http:PORT/PATH\n"
    "      --health-interval S  seconds between checks (default 10)\n"
    "      --health-timeout S   seconds a check may take (default 2)\n"
    "      --health-retries N   failures in a row that make it unhealthy (default 3)\n"
    "      --cmdline TEMPLATE the guest's command line for these instances instead\n"
    "                         of the image's profile: placeholders {address}\n"
    "                         {prefix} {gateway} {mac} {env} {args} {name}\n"
    "      --initrd FILE|sha256:HEX  these instances' initrd instead of the image's:\n"
    "                         a file is uploaded first (POST /v1/initrds), or\n"
    "                         the digest of one uploaded before\n"
    "      --scale-to-zero N  sleep after N seconds without a connection on the\n"
    "                         published ports (state idle); the next connection\n"
    "                         is held while it starts again (needs -p, tcp)\n"
    "      --host HOST        place on this host instead of letting shoald choose\n"
    "      --spread           spread over hosts (default: pack the fullest host)\n"
    "      --anti-affinity R  never share a host with an instance labelled R\n"
    "      --affinity R       share a host with an instance labelled R\n"
    "      --host-affinity R  only hosts labelled R\n"
    "      --host-anti-affinity R  no host labelled R\n"
    "                         R is KEY or KEY=VALUE; a leading ~ makes the rule\n"
    "                         a preference (soft) instead of a must (repeatable)\n"
    "  -a, --attach           follow the console until the guest exits; the\n"
    "                         guest's exit status becomes shoal's\n"
    "      --no-wait          with --count: return once the instances are created\n"
    "  -o, --output FMT       table (ids), json or wide\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal run hello\n"
    "  shoal run --name web --count 3 -m 64M -l app=web web:1.2 -- --port 80\n"
    "  shoal run -p 8080:80 --restart on-failure web:1.2\n"
    "  shoal run -p 8080:80 --health http:80/healthz --restart on-failure web:1.2\n"
    "  shoal run --ready 'console:^listening' unikraft-app\n"
    "  shoal run -c 3 -l app=web --anti-affinity app=web web:1.2   # one per host\n"
    "  shoal run --attach exitcode -- 3; echo $?    # prints 3\n";

static int kv_into(json_t *obj, const char *cmd, const char *what, const char *s)
{
    char err[256];
    size_t kl;
    const char *v;
    if (cli_parse_kv(s, &kl, &v, err, sizeof err) < 0)
        return cli_usage(cmd, "%s: %s", what, err);
    char *k = strndup(s, kl);
    int rc = !k || json_object_set_new(obj, k, json_string(v)) < 0 ? CLI_EFAIL : CLI_OK;
    free(k);
    return rc;
}

/* --affinity and friends: "[~]KEY[=VALUE]" -> a placement rule object.
 * The option's name is the rule's kind on the wire ("host-affinity", ...),
 * so the option table is the CLI's only list of kinds. */
static int rule_into(json_t *rules, const char *kind, const char *s)
{
    char err[256];
    size_t kl;
    const char *v;
    json_t *r;
    int soft = s[0] == '~';
    if (soft)
        s++;
    if (!strchr(s, '=')) {
        if (!*s)
            return cli_usage("run", "--%s needs KEY or KEY=VALUE", kind);
        r = json_pack("{s:s,s:s}", "kind", kind, "key", s);
    } else {
        if (cli_parse_kv(s, &kl, &v, err, sizeof err) < 0)
            return cli_usage("run", "--%s: %s", kind, err);
        char *k = strndup(s, kl);
        r = k ? json_pack("{s:s,s:s,s:s}", "kind", kind, "key", k, "value", v) : NULL;
        free(k);
    }
    if (!r)
        return CLI_EFAIL;
    if (soft)
        json_object_set_new(r, "soft", json_true());
    return json_array_append_new(rules, r) < 0 ? CLI_EFAIL : CLI_OK;
}

void inst_run_opts_free(struct inst_run_opts *o)
{
    if (!o)
        return;
    json_decref(o->env);
    json_decref(o->labels);
    json_decref(o->ports);
    json_decref(o->rules);
    o->env = o->labels = o->ports = o->rules = NULL;
}

int inst_run_parse(int argc, char **argv, struct inst_run_opts *o)
{
    static const struct option longopts[] = {
        { "name", required_argument, NULL, 'n' },
        { "count", required_argument, NULL, 'c' },
        { "memory", required_argument, NULL, 'm' },
        { "vcpus", required_argument, NULL, 'V' },
        { "env", required_argument, NULL, 'e' },
        { "label", required_argument, NULL, 'l' },
        { "publish", required_argument, NULL, 'p' },
        { "no-network", no_argument, NULL, 'N' },
        { "restart", required_argument, NULL, 'r' },
        { "host", required_argument, NULL, 'H' },
        { "spread", no_argument, NULL, 'S' },
        { "host-affinity", required_argument, NULL, 1000 },
        { "host-anti-affinity", required_argument, NULL, 1000 },
        { "affinity", required_argument, NULL, 1000 },
        { "anti-affinity", required_argument, NULL, 1000 },
        { "attach", no_argument, NULL, 'a' },
        { "no-wait", no_argument, NULL, 'W' },
        { "ready", required_argument, NULL, 1001 },
        { "health", required_argument, NULL, 1002 },
        { "health-interval", required_argument, NULL, 1003 },
        { "health-timeout", required_argument, NULL, 1004 },
        { "health-retries", required_argument, NULL, 1005 },
        { "cmdline", required_argument, NULL, 1006 },
        { "initrd", required_argument, NULL, 1007 },
        { "scale-to-zero", required_argument, NULL, 1008 },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_EUSAGE;
    char err[256];
    memset(o, 0, sizeof *o);
    o->env = json_object();
    o->labels = json_object();
    o->ports = json_array();
    o->rules = json_array();
    if (!o->env || !o->labels || !o->ports || !o->rules)
        return CLI_EFAIL;
    /* Guest arguments follow "--": getopt never sees them. */
    int end = argc;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            end = i;
            o->args = argv + i + 1;
            o->nargs = argc - i - 1;
            break;
        }
    optind = 0;
    opterr = 0;
    int c;
    int li = -1;
    while ((c = getopt_long(end, argv, ":n:c:m:e:l:p:ao:h", longopts, &li)) != -1) {
        unsigned long v;
        uint16_t hp, gp;
        const char *proto;
        switch (c) {
        case 'n': o->name = optarg; break;
        case 'c':
            if (cli_parse_uint(optarg, 1, 1000, &o->count, err, sizeof err) < 0)
                return cli_usage("run", "--count: %s", err);
            break;
        case 'm':
            if (cli_parse_memory(optarg, &o->memory_mib, err, sizeof err) < 0)
                return cli_usage("run", "%s", err);
            break;
        case 'V':
            if (cli_parse_uint(optarg, 1, 64, &v, err, sizeof err) < 0)
                return cli_usage("run", "--vcpus: %s", err);
            o->vcpus = v;
            break;
        case 'e':
            if ((rc = kv_into(o->env, "run", "--env", optarg)) != CLI_OK)
                return rc;
            break;
        case 'l':
            if ((rc = kv_into(o->labels, "run", "--label", optarg)) != CLI_OK)
                return rc;
            break;
        case 'p':
            if (cli_parse_port(optarg, &hp, &gp, &proto, err, sizeof err) < 0)
                return cli_usage("run", "%s", err);
            json_t *pm = json_pack("{s:i,s:i}", "host", (int)hp, "guest", (int)gp);
            if (proto) /* only what was given is sent */
                json_object_set_new(pm, "protocol", json_string(proto));
            json_array_append_new(o->ports, pm);
            break;
        case 'N': o->no_network = true; break;
        case 'r':
            if (strcmp(optarg, "never") && strcmp(optarg, "on-failure") && strcmp(optarg, "always"))
                return cli_usage("run", "invalid restart policy '%s' (never, on-failure, always)",
                                 optarg);
            o->restart = optarg;
            break;
        case 'H': o->host = optarg; break;
        case 'S': o->spread = true; break;
        case 1000: /* a placement rule: the option's name is its kind */
            if ((rc = rule_into(o->rules, longopts[li].name, optarg)) != CLI_OK)
                return rc;
            break;
        case 'a': o->attach = true; break;
        case 'W': o->no_wait = true; break;
        case 1001: o->ready = optarg; break;
        case 1006: o->cmdline = optarg; break;
        case 1007: o->initrd = optarg; break;
        case 1008:
            if (cli_parse_uint(optarg, 1, 86400, &o->idle_s, err, sizeof err) < 0)
                return cli_usage("run", "--scale-to-zero: %s", err);
            break;
        case 1002: o->health = optarg; break;
        case 1003:
            if (cli_parse_uint(optarg, 1, 3600, &o->health_interval, err, sizeof err) < 0)
                return cli_usage("run", "--health-interval: %s", err);
            break;
        case 1004:
            if (cli_parse_uint(optarg, 1, 3600, &o->health_timeout, err, sizeof err) < 0)
                return cli_usage("run", "--health-timeout: %s", err);
            break;
        case 1005:
            if (cli_parse_uint(optarg, 1, 100, &o->health_retries, err, sizeof err) < 0)
                return cli_usage("run", "--health-retries: %s", err);
            break;
        case 'o':
            if (cli_parse_format(optarg, &o->fmt, err, sizeof err) < 0)
                return cli_usage("run", "%s", err);
            break;
        case 'h': fputs(run_help, stdout); return CLI_DONE;
        default: return cli_opt_error("run", argv, c);
        }
    }
    if (optind >= end)
        return cli_usage("run", "missing IMAGE");
    o->image = argv[optind++];
    if (optind < end)
        return cli_usage("run", "unexpected argument '%s' (guest arguments go after --)",
                         argv[optind]);
    if (o->attach && o->count > 1)
        return cli_usage("run", "--attach needs a single instance (got --count %lu)", o->count);
    if (json_array_size(o->ports) && o->count > 1)
        return cli_usage("run", "-p needs a single instance (got --count %lu)", o->count);
    if (json_array_size(o->ports) && o->no_network)
        return cli_usage("run", "-p cannot be used with --no-network");
    if (!o->health && (o->health_interval || o->health_timeout || o->health_retries))
        return cli_usage("run", "--health-interval, --health-timeout and --health-retries need "
                                "--health SPEC");
    return CLI_OK;
}

json_t *inst_run_body(const struct inst_run_opts *o)
{
    json_t *b = json_object();
    if (!b)
        return NULL;
    json_object_set_new(b, "image", json_string(o->image));
    if (o->name)
        json_object_set_new(b, "name", json_string(o->name));
    if (o->count)
        json_object_set_new(b, "count", json_integer((json_int_t)o->count));
    if (o->memory_mib)
        json_object_set_new(b, "memory_mib", json_integer(o->memory_mib));
    if (o->vcpus)
        json_object_set_new(b, "vcpus", json_integer((json_int_t)o->vcpus));
    if (o->nargs) {
        json_t *a = json_array();
        for (int i = 0; i < o->nargs; i++)
            json_array_append_new(a, json_string(o->args[i]));
        json_object_set_new(b, "args", a);
    }
    if (json_object_size(o->env))
        json_object_set(b, "env", o->env);
    if (json_object_size(o->labels))
        json_object_set(b, "labels", o->labels);
    if (o->restart)
        json_object_set_new(b, "restart", json_string(o->restart));
    if (o->host)
        json_object_set_new(b, "host", json_string(o->host));
    if (o->no_network)
        json_object_set_new(b, "network", json_false());
    if (json_array_size(o->ports))
        json_object_set(b, "ports", o->ports);
    if (o->spread || json_array_size(o->rules)) {
        json_t *p = json_object();
        if (o->spread)
            json_object_set_new(p, "policy", json_string("spread"));
        if (json_array_size(o->rules))
            json_object_set(p, "rules", o->rules);
        json_object_set_new(b, "placement", p);
    }
    if (o->ready)
        json_object_set_new(b, "ready", json_string(o->ready));
    if (o->cmdline)
        json_object_set_new(b, "cmdline", json_string(o->cmdline));
    if (o->initrd && !strncmp(o->initrd, "sha256:", 7))
        json_object_set_new(b, "initrd", json_string(o->initrd));
    if (o->idle_s)
        json_object_set_new(b, "scale_to_zero",
                            json_pack("{s:I}", "idle_s", (json_int_t)o->idle_s));
    if (o->health) {
        json_t *h = json_pack("{s:s}", "probe", o->health);
        if (h && o->health_interval)
            json_object_set_new(h, "interval_s", json_integer((json_int_t)o->health_interval));
        if (h && o->health_timeout)
            json_object_set_new(h, "timeout_s", json_integer((json_int_t)o->health_timeout));
        if (h && o->health_retries)
            json_object_set_new(h, "retries", json_integer((json_int_t)o->health_retries));
        json_object_set_new(b, "health", h);
    }
    return b;
}

/* Console follower for --attach: prints output, skipping bytes already
 * printed by an earlier connection. */
struct attach_state {
    size_t seen;  /* bytes received on this connection */
    size_t shown; /* bytes printed in total */
};

static int attach_cb(void *arg, const char *data, size_t len)
{
    struct attach_state *a = arg;
    size_t skip = 0;
    if (a->seen < a->shown)
        skip = a->shown - a->seen < len ? a->shown - a->seen : len;
    a->seen += len;
    if (len > skip) {
        fwrite(data + skip, 1, len - skip, stdout);
        fflush(stdout);
        a->shown += len - skip;
    }
    return 0;
}

static bool state_terminal(const char *s)
{
    return s && (!strcmp(s, "exited") || !strcmp(s, "crashed") || !strcmp(s, "failed") ||
                 !strcmp(s, "stopped") || !strcmp(s, "lost"));
}

/* Follow the console of id until the instance reaches a terminal state;
 * return the guest's exit status. */
static int run_attach(cli_ctx *ctx, const char *id)
{
    int rc = CLI_EFAIL;
    cli_buf cpath = { 0 }, ipath = { 0 };
    json_t *inst = NULL;
    struct attach_state a = { 0 };
    cli_buf_puts(&cpath, "/v1/instances/");
    cli_buf_escape(&cpath, id);
    cli_buf_puts(&ipath, cli_buf_str(&cpath));
    cli_buf_puts(&cpath, "/console?follow=true");
    int settle = 0;
    for (;;) {
        a.seen = 0;
        char err[512];
        rc = cli_http_stream(ctx, cli_buf_str(&cpath), 0, attach_cb, &a);
        if (rc == CLI_EUNREACHABLE || rc == CLI_EAUTH)
            goto out;
        json_decref(inst);
        inst = NULL;
        rc = cli_http_json_quiet(ctx, "GET", cli_buf_str(&ipath), NULL, &inst, err, sizeof err);
        if (rc != CLI_OK) {
            cli_err("%s", err);
            goto out;
        }
        const char *st = cli_jstr(inst, "state");
        if (state_terminal(st)) {
            json_t *code = json_object_get(inst, "exit_code");
            /* The exit record may trail the state change by a moment. */
            if (!json_is_integer(code) && !strcmp(st, "exited") && settle++ < 50) {
                usleep(100000);
                continue;
            }
            if (json_is_integer(code)) {
                rc = (int)json_integer_value(code) & 0xff;
            } else {
                const char *why = cli_jstr(inst, "last_error");
                cli_err("instance '%s' %s%s%s", id, st, why ? ": " : "", why ? why : "");
                rc = CLI_EFAIL;
            }
            goto out;
        }
        usleep(200000); /* not done yet: console not open or stream cut */
    }
out:
    json_decref(inst);
    cli_buf_free(&cpath);
    cli_buf_free(&ipath);
    return rc;
}

/* ---- following a batch (run --count N) ---- */

/* The batch.progress events of one batch (docs/api.md, "Batches"), read
 * off /v1/events. The stream is opened (and answered) before the create,
 * so no event of the batch can be missed; events of other batches are
 * skipped. */
struct batch_follow {
    cli_ctx *ctx;
    char batch[64];    /* items[0].id of the create's answer */
    cli_buf line;      /* partial SSE line */
    long long last_id; /* last event id seen, to resume a cut stream */
    long long total, started, ready, failed;
    bool final, shown; /* the last event came; a bar is on the screen */
    json_t *failures;  /* of the last event */
    int64_t t0_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void batch_draw(struct batch_follow *b)
{
    double secs = (double)(mono_ms() - b->t0_ms) / 1000.0;
    if (!b->ctx->tty_err) {
        fprintf(stderr, "%lld/%lld running, %lld started, %lld failed (%.0f s)\n", b->ready,
                b->total, b->started, b->failed, secs);
        return;
    }
    enum { W = 30 };
    char bar[W + 1];
    long long t = b->total > 0 ? b->total : 1;
    int full = (int)(b->ready * W / t), part = (int)((b->started + b->failed) * W / t);
    for (int i = 0; i < W; i++)
        bar[i] = i < full ? '#' : i < part ? '-' : '.';
    bar[W] = 0;
    fprintf(stderr, "\r[%s] %lld/%lld running, %lld started, %lld failed, %.0f s\033[K", bar,
            b->ready, b->total, b->started, b->failed, secs);
    fflush(stderr);
    b->shown = true;
}

static void batch_line(struct batch_follow *b, const char *l)
{
    json_t *ev;
    if (strncmp(l, "data: ", 6) != 0 || !strstr(l, "batch.progress"))
        return;
    if (!(ev = json_loads(l + 6, 0, NULL)))
        return;
    const char *type = cli_jstr(ev, "type"), *id = cli_jstr(ev, "batch");
    if (type && id && !strcmp(type, "batch.progress") && !strcmp(id, b->batch)) {
        b->total = json_integer_value(json_object_get(ev, "total"));
        b->started = json_integer_value(json_object_get(ev, "started"));
        b->ready = json_integer_value(json_object_get(ev, "ready"));
        b->failed = json_integer_value(json_object_get(ev, "failed"));
        b->final = json_is_true(json_object_get(ev, "final"));
        json_decref(b->failures);
        b->failures = json_incref(json_object_get(ev, "failures"));
        batch_draw(b);
    }
    json_decref(ev);
}

static void batch_data(void *arg, const char *data, size_t len)
{
    struct batch_follow *b = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            cli_buf_append(&b->line, &data[i], 1);
            continue;
        }
        const char *l = cli_buf_str(&b->line);
        if (!strncmp(l, "id: ", 4))
            b->last_id = atoll(l + 4);
        else if (!b->final)
            batch_line(b, l);
        b->line.len = 0;
        if (b->line.data)
            b->line.data[0] = 0;
    }
}

/* Follow the batch on w (already answered) until its final event; a cut
 * stream is reopened where it stopped. Prints the outcome on stderr. */
static int batch_follow_run(cli_ctx *ctx, cli_http_watch *w, struct batch_follow *b)
{
    int rc = CLI_OK, reopen = 0;
    cli_http_watch_on_data(w, batch_data, b);
    while (!b->final) {
        if (cli_http_watch_wait(w, 1000) >= 0)
            continue;
        /* The stream ended (shoald restarted, a proxy cut it): resume. */
        cli_http_watch_free(w);
        cli_buf path = { 0 };
        cli_buf_printf(&path, "/v1/events?since=%lld", b->last_id);
        w = cli_http_watch_open(ctx, cli_buf_str(&path));
        cli_buf_free(&path);
        if (!w || cli_http_watch_connect(w, 10000) != 0) {
            if (++reopen > 30) {
                cli_err("lost the event stream; the batch goes on (see shoal ps)");
                rc = CLI_EFAIL;
                break;
            }
            sleep(1);
            continue;
        }
        reopen = 0;
        cli_http_watch_on_data(w, batch_data, b);
    }
    cli_http_watch_free(w);
    if (b->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    if (b->final) {
        fprintf(stderr, "%lld/%lld running", b->ready, b->total);
        if (b->failed)
            fprintf(stderr, ", %lld failed", b->failed);
        fprintf(stderr, " (%.1f s)\n", (double)(mono_ms() - b->t0_ms) / 1000.0);
        size_t i;
        json_t *x;
        json_array_foreach (b->failures, i, x) {
            const char *msg = cli_jstr(x, "message");
            cli_err("%s: %s%s%s", cli_jstr(x, "name") ? cli_jstr(x, "name") : "?",
                    cli_jstr(x, "state") ? cli_jstr(x, "state") : "failed", msg ? ": " : "",
                    msg ? msg : "");
        }
        if (b->failed > (long long)json_array_size(b->failures))
            cli_err("... and %lld more (shoal ps -a)",
                    b->failed - (long long)json_array_size(b->failures));
        if (b->failed)
            rc = CLI_EFAIL;
    }
    json_decref(b->failures);
    cli_buf_free(&b->line);
    return rc;
}

int inst_run(cli_ctx *ctx, int argc, char **argv)
{
    struct inst_run_opts o;
    json_t *body = NULL, *resp = NULL;
    cli_http_watch *follow = NULL;
    int rc = inst_run_parse(argc, argv, &o);
    if (rc != CLI_OK)
        goto out;
    rc = CLI_EFAIL;
    body = inst_run_body(&o);
    if (!body)
        goto out;
    /* --initrd FILE: uploaded first, the instances name it by digest */
    if (o.initrd && strncmp(o.initrd, "sha256:", 7) != 0) {
        char rd[72];
        if ((rc = image_push_initrd(ctx, o.initrd, ctx->tty_err, rd)) != CLI_OK)
            goto out;
        rc = CLI_EFAIL;
        json_object_set_new(body, "initrd", json_string(rd));
    }
    /* A batch is followed on /v1/events, opened before the create. */
    if (o.count > 1 && !o.no_wait && !o.attach) {
        follow = cli_http_watch_open(ctx, "/v1/events");
        if (follow && cli_http_watch_connect(follow, 10000) != 0) {
            cli_http_watch_free(follow);
            follow = NULL;
        }
        if (!follow)
            cli_err("cannot follow the batch on /v1/events; not waiting for it");
    }
    rc = cli_http_json(ctx, "POST", "/v1/instances", body, &resp);
    if (rc != CLI_OK)
        goto out;
    json_t *items = json_object_get(resp, "items");
    if (o.attach) {
        const char *id = cli_jstr(json_array_get(items, 0), "id");
        if (!id) {
            cli_err("the server returned no instance");
            rc = CLI_EFAIL;
            goto out;
        }
        rc = run_attach(ctx, id);
        goto out;
    }
    if (o.fmt == CLI_FMT_JSON) {
        cli_jprint(stdout, items);
    } else if (o.fmt == CLI_FMT_WIDE) {
        /* Render through the list renderer's document type. */
        char *txt = json_dumps(items, JSON_COMPACT | JSON_PRESERVE_ORDER);
        cli_jv_doc doc = { 0 };
        cli_jv arr;
        char err[128];
        if (txt && cli_jv_parse(&doc, txt, strlen(txt), &arr, err, sizeof err) == 0)
            inst_render_list(stdout, &arr, CLI_FMT_WIDE, time(NULL));
        cli_jv_free(&doc);
        free(txt);
    } else {
        size_t i;
        json_t *it;
        json_array_foreach (items, i, it)
            printf("%s\n", cli_jstr(it, "id"));
    }
    fflush(stdout);
    if (follow && json_array_size(items) > 1 && cli_jstr(json_array_get(items, 0), "id")) {
        struct batch_follow b = { .ctx = ctx, .total = (long long)json_array_size(items) };
        snprintf(b.batch, sizeof b.batch, "%s", cli_jstr(json_array_get(items, 0), "id"));
        b.t0_ms = mono_ms();
        rc = batch_follow_run(ctx, follow, &b);
        follow = NULL; /* freed by batch_follow_run */
    }
out:
    cli_http_watch_free(follow);
    json_decref(body);
    json_decref(resp);
    inst_run_opts_free(&o);
    return rc == CLI_DONE ? CLI_OK : rc;
}

/* ------------------------------------------------------------------- ps */

static const char ps_help[] =
    "Usage: shoal ps [OPTIONS]\n"
    "\n"
    "List instances. Without -a, instances that are stopped, exited, crashed\n"
    "or failed are hidden.\n"
    "\n"
    "Options:\n"
    "  -a, --all              include stopped, exited, crashed and failed ones\n"
    "  -l, --selector SEL     only instances whose labels match SEL\n"
    "                         (k=v, k!=v, k, !k; comma-separated, all must hold)\n"
    "      --host HOST        only instances on HOST\n"
    "  -q, --quiet            print ids only\n"
    "  -w, --watch            redraw on every event, at least every 2 s\n"
    "  -o, --output FMT       table, json or wide\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal ps\n"
    "  shoal ps -a -l app=web,tier!=db\n"
    "  shoal ps -o json | jq '.[].name'\n"
    "  shoal ps --watch\n";

int inst_ps_parse(int argc, char **argv, struct inst_ps_opts *o)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },        { "selector", required_argument, NULL, 'l' },
        { "host", required_argument, NULL, 'H' }, { "quiet", no_argument, NULL, 'q' },
        { "watch", no_argument, NULL, 'w' },      { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    char err[256];
    memset(o, 0, sizeof *o);
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":al:qwo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->all = true; break;
        case 'l':
            if (cli_parse_selector(optarg, err, sizeof err) < 0)
                return cli_usage("ps", "%s", err);
            o->selector = optarg;
            break;
        case 'H': o->host = optarg; break;
        case 'q': o->quiet = true; break;
        case 'w': o->watch = true; break;
        case 'o':
            if (cli_parse_format(optarg, &o->fmt, err, sizeof err) < 0)
                return cli_usage("ps", "%s", err);
            break;
        case 'h': fputs(ps_help, stdout); return CLI_DONE;
        default: return cli_opt_error("ps", argv, c);
        }
    }
    if (optind < argc)
        return cli_usage("ps", "unexpected argument '%s'", argv[optind]);
    if (o->watch && o->fmt == CLI_FMT_JSON)
        return cli_usage("ps", "--watch cannot be combined with -o json");
    return CLI_OK;
}

bool inst_state_active(const char *s)
{
    return !(s && (!strcmp(s, "stopped") || !strcmp(s, "exited") || !strcmp(s, "crashed") ||
                   !strcmp(s, "failed")));
}

static void fmt_state(const cli_jv *it, char *out, size_t len)
{
    const char *st = cli_jv_str(it, "state");
    const cli_jv *code = cli_jv_get(it, "exit_code");
    double restarts = cli_jv_num(it, "restarts", 0);
    /* Health as Docker shows it: "running (healthy)" */
    const char *health = cli_jv_str(cli_jv_get(it, "health"), "status");
    if (st && !strcmp(st, "exited") && code && code->type == CLI_JV_NUM)
        snprintf(out, len, "exited (%s)", code->u.str);
    else if (st && !strcmp(st, "backoff") && restarts > 0)
        snprintf(out, len, "backoff (%g)", restarts);
    else if (st && health && strcmp(health, "none") != 0)
        snprintf(out, len, "%s (%s)", st, health);
    else
        snprintf(out, len, "%s", st ? st : "-");
}

static void fmt_ports(const cli_jv *net, char *out, size_t len)
{
    const cli_jv *ports = cli_jv_get(net, "ports");
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cli_jv_size(ports); i++) {
        const cli_jv *p = cli_jv_at(ports, i);
        const char *proto = cli_jv_str(p, "protocol");
        int w = snprintf(out + used, len - used, "%s%d->%d/%s", i ? "," : "",
                         (int)cli_jv_num(p, "host", 0), (int)cli_jv_num(p, "guest", 0),
                         proto ? proto : "tcp");
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

int inst_render_list(FILE *out, const cli_jv *items, cli_fmt fmt, time_t now)
{
    if (fmt == CLI_FMT_JSON)
        return cli_jv_print(out, items);
    static const char *const table_h[] = { "ID",   "NAME",   "IMAGE",   "STATE",
                                           "HOST", "MEMORY", "ADDRESS", "CREATED" };
    static const char *const wide_h[] = { "ID",     "NAME",   "IMAGE",   "STATE", "HOST",
                                          "MEMORY", "VCPUS",  "ADDRESS", "PORTS", "RESTART",
                                          "READY",  "LABELS", "CREATED" };
    bool wide = fmt == CLI_FMT_WIDE;
    cli_table *t = wide ? cli_table_new(13, wide_h) : cli_table_new(8, table_h);
    if (!t)
        return -1;
    if (!wide) {
        cli_table_set_max(t, 1, 24);
        cli_table_set_max(t, 2, 24);
        cli_table_set_max(t, 4, 16);
    }
    int rc = 0;
    for (size_t i = 0; i < cli_jv_size(items); i++) {
        const cli_jv *it = cli_jv_at(items, i);
        char state[48], mem[24], vcpus[16], created[48], ports[256], restart[48], ready[24],
            labels[512], addr[64];
        const cli_jv *net = cli_jv_get(it, "network");
        const cli_jv *enabled = cli_jv_get(net, "enabled");
        fmt_state(it, state, sizeof state);
        cli_fmt_mib((uint64_t)cli_jv_num(it, "memory_mib", 0), mem, sizeof mem);
        snprintf(vcpus, sizeof vcpus, "%d", (int)cli_jv_num(it, "vcpus", 0));
        cli_fmt_ago(cli_jv_str(it, "created"), now, created, sizeof created);
        fmt_ports(net, ports, sizeof ports);
        const char *a = cli_jv_str(net, "address");
        if (net && !(enabled && enabled->type == CLI_JV_TRUE))
            snprintf(addr, sizeof addr, "none");
        else
            snprintf(addr, sizeof addr, "%s", a ? a : "-");
        char *slash = strchr(addr, '/');
        if (slash && !wide)
            *slash = '\0';
        const char *pol = cli_jv_str(it, "restart");
        snprintf(restart, sizeof restart, "%s/%d", pol ? pol : "-",
                 (int)cli_jv_num(it, "restarts", 0));
        double rm = cli_jv_num(it, "ready_ms", -1);
        if (rm >= 0)
            snprintf(ready, sizeof ready, "%.0fms", rm);
        else
            snprintf(ready, sizeof ready, "-");
        cli_jv_labels(cli_jv_get(it, "labels"), labels, sizeof labels);
        const char *id = cli_jv_str(it, "id"), *name = cli_jv_str(it, "name"),
                   *image = cli_jv_str(it, "image"), *host = cli_jv_str(it, "host");
        if (wide) {
            const char *row[] = { id,   name,  image,   state, host,   mem,    vcpus,
                                  addr, ports, restart, ready, labels, created };
            rc = cli_table_add(t, row);
        } else {
            const char *row[] = { id, name, image, state, host, mem, addr, created };
            rc = cli_table_add(t, row);
        }
        if (rc < 0)
            goto out;
    }
    cli_table_print(t, out);
out:
    cli_table_free(t);
    return rc;
}

/* Fetch, filter and render once into out. */
static int ps_once(cli_ctx *ctx, const struct inst_ps_opts *o, FILE *out)
{
    int rc;
    cli_buf path = { 0 };
    cli_jv_doc doc = { 0 };
    cli_jv items, shown = { .type = CLI_JV_ARR };
    cli_buf_puts(&path, "/v1/instances?limit=1000");
    if (o->selector) {
        cli_buf_puts(&path, "&selector=");
        cli_buf_escape(&path, o->selector);
    }
    if (o->host) {
        cli_buf_puts(&path, "&host=");
        cli_buf_escape(&path, o->host);
    }
    rc = cli_http_list_jv(ctx, cli_buf_str(&path), &doc, &items);
    if (rc != CLI_OK)
        goto out;
    rc = CLI_EFAIL;
    size_t n = cli_jv_size(&items);
    shown.u.elems = n ? cli_jv_alloc(&doc, n * sizeof(cli_jv)) : NULL;
    if (n && !shown.u.elems)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const cli_jv *it = cli_jv_at(&items, i);
        if (o->all || inst_state_active(cli_jv_str(it, "state")))
            shown.u.elems[shown.len++] = *it;
    }
    if (o->quiet) {
        for (size_t i = 0; i < shown.len; i++) {
            const char *id = cli_jv_str(&shown.u.elems[i], "id");
            fprintf(out, "%s\n", id ? id : "-");
        }
    } else if (inst_render_list(out, &shown, o->fmt, time(NULL)) < 0) {
        goto out;
    }
    rc = CLI_OK;
out:
    cli_jv_free(&doc);
    cli_buf_free(&path);
    return rc;
}

static int ps_watch(cli_ctx *ctx, const struct inst_ps_opts *o)
{
    int rc = CLI_EFAIL;
    cli_http_watch *w = cli_http_watch_open(ctx, "/v1/events");
    char *frame = NULL;
    size_t flen = 0;
    if (!w)
        goto out;
    for (;;) {
        FILE *m = open_memstream(&frame, &flen);
        if (!m)
            goto out;
        rc = ps_once(ctx, o, m);
        fclose(m);
        if (rc != CLI_OK)
            goto out;
        char stamp[64];
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
        printf("\033[H\033[2J%s  (every 2s or on events; Ctrl-C quits)\n\n%s", stamp, frame);
        fflush(stdout);
        free(frame);
        frame = NULL;
        /* Redraw at once on an event, but at most 5 times a second. */
        int ev = cli_http_watch_wait(w, 2000);
        if (ev > 0)
            usleep(200000);
    }
out:
    free(frame);
    cli_http_watch_free(w);
    return rc;
}

int inst_ps(cli_ctx *ctx, int argc, char **argv)
{
    struct inst_ps_opts o;
    int rc = inst_ps_parse(argc, argv, &o);
    if (rc != CLI_OK)
        return rc == CLI_DONE ? CLI_OK : rc;
    if (o.watch)
        return ps_watch(ctx, &o);
    return ps_once(ctx, &o, stdout);
}

/* -------------------------------------------------------------- inspect */

static const char inspect_help[] =
    "Usage: shoal inspect ID|NAME...\n"
    "\n"
    "Show instances as JSON, including their last runs. ID may be a unique id\n"
    "prefix. One argument prints an object, several print an array.\n"
    "\n"
    "Examples:\n"
    "  shoal inspect web-1\n"
    "  shoal inspect 3f9a | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])'\n";

int inst_inspect(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "output", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    json_t *all = NULL;
    cli_buf path = { 0 };
    char err[256];
    cli_fmt fmt;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(inspect_help, stdout); goto out;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0 || fmt != CLI_FMT_JSON) {
                rc = cli_usage("inspect", "inspect prints JSON only (-o json)");
                goto out;
            }
            break;
        default: rc = cli_opt_error("inspect", argv, c); goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_usage("inspect", "missing ID or NAME");
        goto out;
    }
    all = json_array();
    if (!all) {
        rc = CLI_EFAIL;
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        json_t *obj = NULL;
        path.len = 0;
        cli_buf_puts(&path, "/v1/instances/");
        cli_buf_escape(&path, argv[i]);
        int r = cli_http_json(ctx, "GET", cli_buf_str(&path), NULL, &obj);
        if (r != CLI_OK) {
            if (rc == CLI_OK)
                rc = r;
            continue;
        }
        json_array_append_new(all, obj);
    }
    if (argc - optind == 1) {
        if (json_array_size(all))
            cli_jprint(stdout, json_array_get(all, 0));
    } else {
        cli_jprint(stdout, all);
    }
out:
    json_decref(all);
    cli_buf_free(&path);
    return rc;
}

/* ----------------------------------------------------------------- logs */

static const char logs_help[] =
    "Usage: shoal logs [OPTIONS] ID|NAME\n"
    "\n"
    "Print an instance's console output.\n"
    "\n"
    "Options:\n"
    "  -f, --follow           keep printing new output until the instance stops\n"
    "  -t, --tail BYTES       only the last BYTES bytes\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal logs web-1\n"
    "  shoal logs -f --tail 4096 3f9a\n";

static int logs_cb(void *arg, const char *data, size_t len)
{
    fwrite(data, 1, len, stdout);
    if (*(bool *)arg)
        fflush(stdout);
    return 0;
}

int inst_logs(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "follow", no_argument, NULL, 'f' },
        { "tail", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    bool follow = false;
    const char *tail = NULL;
    char err[256];
    unsigned long v;
    cli_buf path = { 0 };
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ft:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': follow = true; break;
        case 't':
            if (cli_parse_uint(optarg, 0, 1UL << 30, &v, err, sizeof err) < 0) {
                rc = cli_usage("logs", "--tail: %s", err);
                goto out;
            }
            tail = optarg;
            break;
        case 'h': fputs(logs_help, stdout); goto out;
        default: rc = cli_opt_error("logs", argv, c); goto out;
        }
    }
    if (optind + 1 != argc) {
        rc = cli_usage("logs", "%s",
                       optind >= argc ? "missing ID or NAME" : "logs takes exactly one ID or NAME");
        goto out;
    }
    cli_buf_puts(&path, "/v1/instances/");
    cli_buf_escape(&path, argv[optind]);
    cli_buf_puts(&path, "/console");
    char sep = '?';
    if (tail) {
        cli_buf_printf(&path, "%ctail=%s", sep, tail);
        sep = '&';
    }
    if (follow)
        cli_buf_printf(&path, "%cfollow=true", sep);
    rc = cli_http_stream(ctx, cli_buf_str(&path), 0, logs_cb, &follow);
    fflush(stdout);
out:
    cli_buf_free(&path);
    return rc;
}

/* ------------------------------------------ stop, start, restart, rm */

static const char action_help[] =
    "Usage: shoal stop    [-t SECONDS] ID|NAME... | -l SELECTOR\n"
    "       shoal start   ID|NAME... | -l SELECTOR\n"
    "       shoal restart ID|NAME... | -l SELECTOR\n"
    "       shoal rm [-f] ID|NAME... | -l SELECTOR\n"
    "\n"
    "Act on instances given by name, id or unique id prefix, or on every\n"
    "instance whose labels match a selector, in one request that shoald runs\n"
    "in parallel (up to 32 at once). Prints each instance acted on; failures\n"
    "are reported one by one and the first failure sets the exit status. On\n"
    "a terminal, a progress line (done/total) shows while it runs.\n"
    "\n"
    "Options:\n"
    "  -l, --selector SEL     every instance matching SEL (k=v, k!=v, k, !k)\n"
    "  -t, --timeout SECONDS  stop: graceful period before forcing (server default 10)\n"
    "  -f, --force            rm: remove running instances too (stops them first)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  shoal stop web-1 web-2\n"
    "  shoal restart 3f9a\n"
    "  shoal rm -f -l app=web\n";

int inst_target_parse(const char *verb, int argc, char **argv, struct inst_target_opts *o)
{
    static const struct option longopts[] = {
        { "selector", required_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, 't' },
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char err[256];
    unsigned long v;
    memset(o, 0, sizeof *o);
    o->verb = verb;
    o->timeout_s = -1;
    bool is_rm = !strcmp(verb, "rm"), is_stop = !strcmp(verb, "stop");
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":l:t:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cli_parse_selector(optarg, err, sizeof err) < 0)
                return cli_usage(verb, "%s", err);
            o->selector = optarg;
            break;
        case 't':
            if (!is_stop)
                return cli_usage(verb, "-t/--timeout is only for stop");
            if (cli_parse_uint(optarg, 0, 3600, &v, err, sizeof err) < 0)
                return cli_usage(verb, "--timeout: %s", err);
            o->timeout_s = (long)v;
            break;
        case 'f':
            if (!is_rm)
                return cli_usage(verb, "-f/--force is only for rm");
            o->force = true;
            break;
        case 'h': fputs(action_help, stdout); return CLI_DONE;
        default: return cli_opt_error(verb, argv, c);
        }
    }
    o->targets = argv + optind;
    o->ntargets = argc - optind;
    if (o->selector && o->ntargets)
        return cli_usage(verb, "give either names/ids or -l SELECTOR, not both");
    if (!o->selector && !o->ntargets)
        return cli_usage(verb, "missing ID or NAME (or -l SELECTOR)");
    return CLI_OK;
}

/* One bulk request for the whole selection (POST /v1/instances/{verb};
 * rm is "delete"), so shoald runs it in parallel. */
static json_t *bulk_body(const struct inst_target_opts *o)
{
    json_t *body = json_object();
    if (o->selector) {
        json_object_set_new(body, "selector", json_string(o->selector));
    } else {
        json_t *ids = json_array();
        for (int i = 0; i < o->ntargets; i++)
            json_array_append_new(ids, json_string(o->targets[i]));
        json_object_set_new(body, "ids", ids);
    }
    if (o->timeout_s >= 0)
        json_object_set_new(body, "timeout_s", json_integer(o->timeout_s));
    if (o->force)
        json_object_set_new(body, "force", json_true());
    return body;
}

struct bulk_call {
    cli_ctx *ctx;
    const char *path;
    json_t *body, *resp;
    int rc;
    volatile int finished;
};

static void *bulk_thread(void *arg)
{
    struct bulk_call *c = arg;
    c->rc = cli_http_json(c->ctx, "POST", c->path, c->body, &c->resp);
    __atomic_store_n(&c->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* TTY progress: the bulk.progress events of this action on /v1/events
 * (opened just before the request, so only events from now on count). */
struct bulk_progress {
    const char *action;
    cli_buf line; /* partial SSE line */
    int shown;
};

static void progress_line(struct bulk_progress *p, const char *l)
{
    json_t *ev;
    if (strncmp(l, "data: ", 6) != 0 || !strstr(l, "bulk.progress"))
        return;
    if (!(ev = json_loads(l + 6, 0, NULL)))
        return;
    const char *type = cli_jstr(ev, "type"), *act = cli_jstr(ev, "action");
    if (type && act && !strcmp(type, "bulk.progress") && !strcmp(act, p->action)) {
        fprintf(stderr, "\r%s: %lld/%lld done, %lld failed\033[K", p->action,
                (long long)json_integer_value(json_object_get(ev, "done")),
                (long long)json_integer_value(json_object_get(ev, "total")),
                (long long)json_integer_value(json_object_get(ev, "failed")));
        fflush(stderr);
        p->shown = 1;
    }
    json_decref(ev);
}

static void progress_cb(void *arg, const char *data, size_t len)
{
    struct bulk_progress *p = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            progress_line(p, cli_buf_str(&p->line));
            p->line.len = 0;
            if (p->line.data)
                p->line.data[0] = 0;
        } else {
            cli_buf_append(&p->line, &data[i], 1);
        }
    }
}

/* The request, with a progress line on a TTY while it runs. */
static int bulk_request(cli_ctx *ctx, const char *path, const char *action, json_t *body,
                        json_t **resp)
{
    struct bulk_call c = { .ctx = ctx, .path = path, .body = body };
    struct bulk_progress p = { .action = action };
    cli_http_watch *w = NULL;
    pthread_t th;

    if (!ctx->tty_err || !(w = cli_http_watch_open(ctx, "/v1/events")) ||
        pthread_create(&th, NULL, bulk_thread, &c) != 0) {
        cli_http_watch_free(w);
        int rc = cli_http_json(ctx, "POST", path, body, resp);
        return rc;
    }
    cli_http_watch_on_data(w, progress_cb, &p);
    while (!__atomic_load_n(&c.finished, __ATOMIC_ACQUIRE)) {
        if (cli_http_watch_wait(w, 200) < 0)
            usleep(200 * 1000);
    }
    pthread_join(th, NULL);
    cli_http_watch_free(w);
    cli_buf_free(&p.line);
    if (p.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    *resp = c.resp;
    return c.rc;
}

/* Print each instance acted on (the name, or the ref as given), report
 * each failure by instance; the first failure sets the exit status. */
static int bulk_report(const struct inst_target_opts *o, json_t *resp)
{
    int rc = CLI_OK;
    size_t i;
    json_t *it, *items = json_object_get(resp, "items");
    if (!json_is_array(items)) {
        cli_err("the server sent no items");
        return CLI_EFAIL;
    }
    if (o->selector && json_array_size(items) == 0)
        cli_err("no instances match selector '%s'", o->selector);
    json_array_foreach (items, i, it) {
        const char *label = cli_jstr(it, "key");
        if (!label)
            label = cli_jstr(it, "name");
        if (!label)
            label = cli_jstr(it, "id");
        if (!label)
            label = "?";
        if (json_is_true(json_object_get(it, "ok"))) {
            printf("%s\n", label);
            continue;
        }
        json_t *e = json_object_get(it, "error");
        const char *code = cli_jstr(e, "code"), *msg = cli_jstr(e, "message");
        cli_err("%s: %s", label, msg && *msg ? msg : code ? code : "failed");
        int st = cli_status_from_http(0, code);
        if (rc == CLI_OK)
            rc = st == CLI_OK ? CLI_EFAIL : st;
    }
    fflush(stdout);
    return rc;
}

int inst_action(cli_ctx *ctx, int argc, char **argv)
{
    struct inst_target_opts o;
    json_t *body = NULL, *resp = NULL;
    cli_buf path = { 0 };
    int rc = inst_target_parse(argv[0], argc, argv, &o);
    if (rc != CLI_OK)
        goto out;
    const char *action = !strcmp(o.verb, "rm") ? "delete" : o.verb;
    cli_buf_printf(&path, "/v1/instances/%s", action);
    body = bulk_body(&o);
    rc = bulk_request(ctx, cli_buf_str(&path), action, body, &resp);
    if (rc == CLI_OK)
        rc = bulk_report(&o, resp);
out:
    json_decref(body);
    json_decref(resp);
    cli_buf_free(&path);
    return rc == CLI_DONE ? CLI_OK : rc;
}

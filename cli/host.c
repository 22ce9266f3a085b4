/* host.c: hosts, host add|inspect|cordon|uncordon|drain|rm, consolidate. */
#include "cli_args.h"
#include "cli_http.h"
#include "cli_json.h"
#include "cli_table.h"
#include "cli_util.h"
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char hosts_help[] =
    "Usage: shoal hosts [-o table|json|wide]\n"
    "\n"
    "List hosts with their capacity use as bars (memory, vCPUs, instance\n"
    "slots), what each runs that shoal does not own (OTHERS: VMs and their\n"
    "memory) and the memory placement can still give there (FREE). Wide\n"
    "output adds absolute numbers, the others' vCPUs, the libvirt URI and\n"
    "labels.\n"
    "\n"
    "Examples:\n"
    "  shoal hosts\n"
    "  shoal hosts -o wide\n";

static const char host_help[] =
    "Usage: shoal host COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  add NAME URI           register a libvirt host\n"
    "        -l, --label K=V        host label (repeatable)\n"
    "        -t, --domain-type T    auto, kvm or qemu (default auto)\n"
    "  inspect NAME...        show hosts as JSON\n"
    "  cordon NAME...         place no new instances there\n"
    "  uncordon NAME...       allow placement again\n"
    "  drain [--dry-run] NAME cordon and move its instances elsewhere\n"
    "  drain --stop           stop the drain or consolidation under way\n"
    "  rm NAME...             remove a host that has no instances\n"
    "  ls                     same as 'shoal hosts'\n"
    "\n"
    "Examples:\n"
    "  shoal host add h2 qemu+ssh://h2/system -l zone=a\n"
    "  shoal host cordon h2\n"
    "  shoal host drain --dry-run h2\n";

static const char consolidate_help[] =
    "Usage: shoal consolidate [--dry-run] [-o table|json]\n"
    "\n"
    "Pack instances onto as few hosts as possible. Shows the plan (moves and\n"
    "hosts freed), then executes it unless --dry-run is given.\n"
    "\n"
    "Examples:\n"
    "  shoal consolidate --dry-run\n"
    "  shoal consolidate\n";

/* -------------------------------------------------------------- render */

static void usage_cell(const json_t *h, const char *key, bool wide, bool mib, char *out, size_t len)
{
    const json_t *usage = json_object_get(h, "usage");
    const char *model = cli_jstr(usage, "model");
    double used = cli_jnum(json_object_get(h, "used"), key, 0);
    double cap = cli_jnum(json_object_get(h, "capacity"), key, 0);
    bool cpu_use = !strcmp(key, "vcpus") && model && !strcmp(model, "measured");
    char bar[64];
    /* Measured capacity charges CPU by use (thousandths of a CPU), not by
     * vCPUs asked for (docs/shoald.md "Capacity"). */
    if (cpu_use)
        used = cli_jnum(usage, "charged_cpu_milli", 0) / 1000.0;
    cli_bar(used, cap, 10, bar, sizeof bar);
    if (!wide) {
        snprintf(out, len, "%s", bar);
    } else if (mib) {
        char u[24], c[24];
        cli_fmt_mib((uint64_t)used, u, sizeof u);
        cli_fmt_mib((uint64_t)cap, c, sizeof c);
        snprintf(out, len, "%s %s/%s", bar, u, c);
    } else if (cpu_use) {
        snprintf(out, len, "%s %.3f/%.0f", bar, used, cap);
    } else if (cap == 0 && !strcmp(key, "slots")) {
        snprintf(out, len, "%s %.0f/-", bar, used); /* no slot limit */
    } else {
        snprintf(out, len, "%s %.0f/%.0f", bar, used, cap);
    }
}

/* What the host runs that shoal does not own ("-": nothing, or a daemon
 * that does not say), and the memory placement can still give. */
static void others_cells(const json_t *h, bool wide, char *others, size_t olen, char *free_,
                         size_t flen)
{
    const json_t *o = json_object_get(h, "others");
    const json_t *fr = json_object_get(h, "free_memory_mib");
    int doms = (int)cli_jnum(o, "domains", 0);
    char m[24];
    snprintf(others, olen, "-");
    if (doms > 0) {
        cli_fmt_mib((uint64_t)cli_jnum(o, "memory_mib", 0), m, sizeof m);
        if (wide)
            snprintf(others, olen, "%d vm %s %d vCPU", doms, m, (int)cli_jnum(o, "vcpus", 0));
        else
            snprintf(others, olen, "%d vm %s", doms, m);
    }
    snprintf(free_, flen, "-");
    if (json_is_integer(fr) && !strcmp(cli_jstr(h, "state") ? cli_jstr(h, "state") : "", "up"))
        cli_fmt_mib((uint64_t)json_integer_value(fr), free_, flen);
}

int host_render_list(FILE *out, const json_t *items, cli_fmt fmt)
{
    if (fmt == CLI_FMT_JSON)
        return cli_jprint(out, items);
    static const char *const table_h[] = { "NAME", "STATE", "TYPE",   "INSTANCES", "MEMORY",
                                           "CPU",  "SLOTS", "OTHERS", "FREE" };
    static const char *const wide_h[] = { "NAME",  "STATE",  "TYPE", "INSTANCES", "MEMORY", "CPU",
                                          "SLOTS", "OTHERS", "FREE", "URI",       "LABELS" };
    bool wide = fmt == CLI_FMT_WIDE;
    cli_table *t = wide ? cli_table_new(11, wide_h) : cli_table_new(9, table_h);
    int rc = 0;
    if (!t)
        return -1;
    if (!wide)
        cli_table_set_max(t, 0, 24);
    cli_table_set_right(t, 3, true);
    size_t i;
    json_t *h;
    json_array_foreach ((json_t *)items, i, h) {
        char state[48], inst[16], mem[160], cpu[160], slots[160], labels[512], others[64],
            free_[24];
        const char *st = cli_jstr(h, "state");
        snprintf(state, sizeof state, "%s%s", st ? st : "-",
                 json_is_true(json_object_get(h, "cordoned")) ? ",cordoned" : "");
        snprintf(inst, sizeof inst, "%d", (int)cli_jnum(h, "instances", 0));
        usage_cell(h, "memory_mib", wide, true, mem, sizeof mem);
        usage_cell(h, "vcpus", wide, false, cpu, sizeof cpu);
        usage_cell(h, "slots", wide, false, slots, sizeof slots);
        cli_jlabels(json_object_get(h, "labels"), labels, sizeof labels);
        others_cells(h, wide, others, sizeof others, free_, sizeof free_);
        const char *row[] = { cli_jstr(h, "name"),
                              state,
                              cli_jstr(h, "domain_type"),
                              inst,
                              mem,
                              cpu,
                              slots,
                              others,
                              free_,
                              cli_jstr(h, "uri"),
                              labels };
        if ((rc = cli_table_add(t, row)) < 0)
            goto out;
    }
    cli_table_print(t, out);
out:
    cli_table_free(t);
    return rc;
}

int host_render_plan(FILE *out, const json_t *plan, cli_fmt fmt)
{
    if (fmt == CLI_FMT_JSON)
        return cli_jprint(out, plan);
    static const char *const hdr[] = { "INSTANCE", "FROM", "TO", "RESULT" };
    json_t *moves = json_object_get(plan, "moves");
    int rc = 0;
    bool executed = json_is_true(json_object_get(plan, "executed"));
    if (json_array_size(moves) == 0) {
        fprintf(out, "nothing to move\n");
    } else {
        /* a carried-out plan says what became of each move */
        cli_table *t = cli_table_new(executed ? 4 : 3, hdr);
        if (!t)
            return -1;
        size_t i;
        json_t *m;
        json_array_foreach (moves, i, m) {
            const char *res = json_is_true(json_object_get(m, "ok")) ? "moved" : NULL;
            if (!res)
                res = cli_jstr(json_object_get(m, "error"), "code");
            const char *row[] = { cli_jstr(m, "instance"), cli_jstr(m, "from"), cli_jstr(m, "to"),
                                  res ? res : "failed" };
            if ((rc = cli_table_add(t, row)) < 0)
                break;
        }
        if (rc == 0)
            cli_table_print(t, out);
        cli_table_free(t);
    }
    json_t *freed = json_object_get(plan, "hosts_freed");
    char list[512] = "";
    size_t used = 0, i;
    json_t *f;
    json_array_foreach (freed, i, f) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         json_string_value(f) ? json_string_value(f) : "?");
        if (w < 0 || (size_t)w >= sizeof list - used)
            break;
        used += (size_t)w;
    }
    if (json_object_get(plan, "hosts_before"))
        fprintf(out, "hosts: %d -> %d", (int)cli_jnum(plan, "hosts_before", 0),
                (int)cli_jnum(plan, "hosts_after", 0));
    else
        fprintf(out, "moves: %zu", json_array_size(moves));
    if (used)
        fprintf(out, " (frees %s)", list);
    if (executed && cli_jnum(plan, "failed", 0) > 0)
        fprintf(out, ", executed: %d moved, %d failed\n", (int)cli_jnum(plan, "succeeded", 0),
                (int)cli_jnum(plan, "failed", 0));
    else
        fprintf(out, "%s\n", executed ? ", executed" : ", not executed");
    return rc;
}

int host_plan_status(const json_t *plan)
{
    int rc = CLI_OK;
    size_t i;
    json_t *m;
    json_array_foreach (json_object_get(plan, "moves"), i, m) {
        json_t *e = json_object_get(m, "error");
        if (!e || json_is_true(json_object_get(m, "ok")))
            continue;
        const char *code = cli_jstr(e, "code"), *msg = cli_jstr(e, "message");
        cli_err("move of %s (%s -> %s): %s",
                cli_jstr(m, "instance") ? cli_jstr(m, "instance") : "?",
                cli_jstr(m, "from") ? cli_jstr(m, "from") : "?",
                cli_jstr(m, "to") ? cli_jstr(m, "to") : "?",
                msg && *msg ? msg
                : code      ? code
                            : "failed");
        int st = cli_status_from_http(0, code);
        if (rc == CLI_OK)
            rc = st == CLI_OK ? CLI_EFAIL : st;
    }
    return rc;
}

/* ---------------------------------------------------------------- hosts */

int host_list(cli_ctx *ctx, int argc, char **argv)
{
    return cli_list_cmd(ctx, argc, argv, "hosts", hosts_help, "/v1/hosts?limit=1000",
                        host_render_list);
}

/* ----------------------------------------------------------------- host */

static int host_add(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "label", required_argument, NULL, 'l' },
        { "domain-type", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    char err[256];
    const char *dtype = NULL;
    json_t *labels = json_object(), *body = NULL;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:t:h", longopts, NULL)) != -1) {
        size_t kl;
        const char *v;
        char *k;
        switch (c) {
        case 'l':
            if (cli_parse_kv(optarg, &kl, &v, err, sizeof err) < 0) {
                rc = cli_usage("host add", "--label: %s", err);
                goto out;
            }
            k = strndup(optarg, kl);
            if (k)
                json_object_set_new(labels, k, json_string(v));
            free(k);
            break;
        case 't':
            if (strcmp(optarg, "auto") && strcmp(optarg, "kvm") && strcmp(optarg, "qemu")) {
                rc = cli_usage("host add", "invalid domain type '%s' (auto, kvm, qemu)", optarg);
                goto out;
            }
            dtype = optarg;
            break;
        case 'h': fputs(host_help, stdout); goto out;
        default: rc = cli_opt_error("host add", argv, c); goto out;
        }
    }
    if (argc - optind != 2) {
        rc = cli_usage("host add", "expected NAME and URI");
        goto out;
    }
    body = json_pack("{s:s,s:s}", "name", argv[optind], "uri", argv[optind + 1]);
    if (!body) {
        rc = CLI_EFAIL;
        goto out;
    }
    if (json_object_size(labels))
        json_object_set(body, "labels", labels);
    if (dtype)
        json_object_set_new(body, "domain_type", json_string(dtype));
    rc = cli_http_json(ctx, "POST", "/v1/hosts", body, NULL);
    if (rc == CLI_OK)
        printf("added %s\n", argv[optind]);
out:
    json_decref(labels);
    json_decref(body);
    return rc;
}

/* inspect, cordon, uncordon, drain, rm over one or more host names. */
static int host_each(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "stop", no_argument, NULL, 's' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb = argv[0];
    bool is_drain = !strcmp(verb, "drain");
    char cmd[32], err[256];
    snprintf(cmd, sizeof cmd, "host %s", verb);
    int rc = CLI_OK, c;
    bool dry = false;
    cli_fmt fmt = CLI_FMT_TABLE;
    cli_buf path = { 0 };
    json_t *all = json_array();
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":no:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': /* POST /v1/moves/stop: no host named */
            if (!is_drain || optind < argc) {
                rc = cli_usage(cmd, "--stop is only for drain, with no host NAME");
                goto out;
            }
            if ((rc = cli_http_json(ctx, "POST", "/v1/moves/stop", NULL, NULL)) == CLI_OK)
                printf("stop requested: the move under way finishes or is given up, no other "
                       "begins\n");
            goto out;
        case 'n':
            if (!is_drain) {
                rc = cli_usage(cmd, "--dry-run is only for drain");
                goto out;
            }
            dry = true;
            break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage(cmd, "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(host_help, stdout); goto out;
        default: rc = cli_opt_error(cmd, argv, c); goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_usage(cmd, "missing host NAME");
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        json_t *resp = NULL, *body = NULL;
        int r;
        path.len = 0;
        cli_buf_puts(&path, "/v1/hosts/");
        cli_buf_escape(&path, argv[i]);
        if (!strcmp(verb, "inspect")) {
            r = cli_http_json(ctx, "GET", cli_buf_str(&path), NULL, &resp);
            if (r == CLI_OK) {
                json_array_append(all, resp);
            }
        } else if (!strcmp(verb, "rm")) {
            r = cli_http_json(ctx, "DELETE", cli_buf_str(&path), NULL, NULL);
            if (r == CLI_OK)
                printf("removed %s\n", argv[i]);
        } else if (is_drain) {
            cli_buf_puts(&path, dry ? "/drain?dry_run=true" : "/drain");
            r = cli_http_json(ctx, "POST", cli_buf_str(&path), NULL, &resp);
            if (r == CLI_OK) {
                host_render_plan(stdout, resp, fmt);
                fflush(stdout);
                r = host_plan_status(resp);
            }
        } else {
            bool on = !strcmp(verb, "cordon");
            cli_buf_puts(&path, "/cordon");
            body = json_pack("{s:b}", "cordoned", on);
            r = cli_http_json(ctx, "POST", cli_buf_str(&path), body, NULL);
            if (r == CLI_OK)
                printf("%s %s\n", on ? "cordoned" : "uncordoned", argv[i]);
        }
        json_decref(resp);
        json_decref(body);
        if (r != CLI_OK && rc == CLI_OK)
            rc = r;
    }
    if (!strcmp(verb, "inspect")) {
        if (argc - optind == 1 && json_array_size(all))
            cli_jprint(stdout, json_array_get(all, 0));
        else if (argc - optind > 1)
            cli_jprint(stdout, all);
    }
out:
    json_decref(all);
    cli_buf_free(&path);
    return rc;
}

int host_main(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("host",
                         "missing host command (add, inspect, cordon, uncordon, drain, rm)");
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(host_help, stdout);
        return CLI_OK;
    }
    if (!strcmp(sub, "add"))
        return host_add(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
        return host_list(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "inspect") || !strcmp(sub, "cordon") || !strcmp(sub, "uncordon") ||
        !strcmp(sub, "drain") || !strcmp(sub, "rm"))
        return host_each(ctx, argc - 1, argv + 1);
    return cli_usage("host",
                     "unknown host command '%s' (add, inspect, cordon, uncordon, drain, rm)", sub);
}

/* --------------------------------------------------------- consolidate */

int host_consolidate(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int rc = CLI_OK, c;
    bool dry = false;
    cli_fmt fmt = CLI_FMT_TABLE;
    char err[256];
    json_t *plan = NULL, *done = NULL;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":no:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': dry = true; break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage("consolidate", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(consolidate_help, stdout); goto out;
        default: rc = cli_opt_error("consolidate", argv, c); goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage("consolidate", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    rc = cli_http_json(ctx, "POST", "/v1/consolidate?dry_run=true", NULL, &plan);
    if (rc != CLI_OK)
        goto out;
    if (dry || json_array_size(json_object_get(plan, "moves")) == 0) {
        host_render_plan(stdout, plan, fmt);
        goto out;
    }
    if (fmt != CLI_FMT_JSON) {
        fputs("plan:\n", stdout);
        host_render_plan(stdout, plan, fmt);
        fflush(stdout);
    }
    rc = cli_http_json(ctx, "POST", "/v1/consolidate", NULL, &done);
    if (rc != CLI_OK)
        goto out;
    if (fmt != CLI_FMT_JSON)
        fputs("result:\n", stdout);
    host_render_plan(stdout, done, fmt);
    fflush(stdout);
    rc = host_plan_status(done);
out:
    json_decref(plan);
    json_decref(done);
    return rc;
}

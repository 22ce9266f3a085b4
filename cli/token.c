/* token.c: token create|ls|rm (admin scope; docs/api.md "Authentication"). */
#include "cli_args.h"
#include "cli_http.h"
#include "cli_json.h"
#include "cli_table.h"
#include "cli_util.h"
#include "cmd.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char token_help[] =
    "Usage: shoal token COMMAND [OPTIONS]\n"
    "\n"
    "API tokens (needs an admin token). A token's secret is shown once, when\n"
    "it is created; the daemon keeps only its hash.\n"
    "\n"
    "Commands:\n"
    "  create NAME --scope SCOPE   make a token and print its secret\n"
    "        -s, --scope SCOPE          read-only, operator or admin (required)\n"
    "        -l, --selector SEL         only instances whose labels match SEL\n"
    "        --max-instances N          quota: instances it created that exist\n"
    "        --max-memory MIB           quota: their memory\n"
    "        --max-vcpus N              quota: their vCPUs\n"
    "        --expires DURATION         refused after that long (30m, 24h, 7d)\n"
    "        --rate N/s                 at most N requests a second (429 past it)\n"
    "        --burst N                  requests at once within the rate (default N)\n"
    "        -q, --quiet                print only the secret\n"
    "        -o, --output json          print the token object (with the secret)\n"
    "  ls [-o table|json]          list tokens, their quotas and use, expiry, rate\n"
    "  rm ID|NAME...               revoke tokens (at once)\n"
    "\n"
    "Examples:\n"
    "  shoal token create ci --scope operator -l team=web --max-instances 20\n"
    "  shoal token create bot --scope operator --expires 24h --rate 50/s\n"
    "  SHOAL_TOKEN=$(shoal token create viewer --scope read-only -q)\n"
    "  shoal token rm ci\n";

/* "used/max" or "used/-" for one quota object. */
static void quota_cell(const json_t *tok, const char *key, char *out, size_t len)
{
    const json_t *q = json_object_get(json_object_get(tok, "quotas"), key);
    const json_t *max = json_object_get(q, "max");

    if (json_is_integer(max))
        snprintf(out, len, "%.0f/%lld", cli_jnum(q, "used", 0), (long long)json_integer_value(max));
    else
        snprintf(out, len, "%.0f/-", cli_jnum(q, "used", 0));
}

int token_render_list(FILE *out, const json_t *items, cli_fmt fmt)
{
    static const char *const hdr[] = { "ID",     "NAME",  "SCOPE",   "SELECTOR", "INSTANCES",
                                       "MEMORY", "VCPUS", "CREATED", "EXPIRES",  "RATE" };
    cli_table *t;
    size_t i;
    json_t *tok;
    int rc = 0;

    if (fmt == CLI_FMT_JSON)
        return cli_jprint(out, items);
    t = cli_table_new(10, hdr);
    if (!t)
        return -1;
    json_array_foreach ((json_t *)items, i, tok) {
        char inst[32], mem[32], cpu[32], exp[48], rate[48];
        const char *sel = cli_jstr(tok, "selector"), *until = cli_jstr(tok, "expires");
        snprintf(exp, sizeof exp, "%s%s", until ? until : "never",
                 json_is_true(json_object_get(tok, "expired")) ? " (expired)" : "");
        if (json_is_integer(json_object_get(tok, "rate")))
            snprintf(rate, sizeof rate, "%.0f/s burst %.0f", cli_jnum(tok, "rate", 0),
                     cli_jnum(tok, "burst", 0));
        else
            snprintf(rate, sizeof rate, "-");
        quota_cell(tok, "instances", inst, sizeof inst);
        quota_cell(tok, "memory_mib", mem, sizeof mem);
        quota_cell(tok, "vcpus", cpu, sizeof cpu);
        const char *row[] = { cli_jstr(tok, "id"),
                              cli_jstr(tok, "name"),
                              cli_jstr(tok, "scope"),
                              sel ? sel : "-",
                              inst,
                              mem,
                              cpu,
                              cli_jstr(tok, "created"),
                              exp,
                              rate };
        if ((rc = cli_table_add(t, row)) < 0)
            goto out;
    }
    cli_table_print(t, out);
out:
    cli_table_free(t);
    return rc;
}

static int token_create(cli_ctx *ctx, int argc, char **argv)
{
    enum { OPT_MAX_INST = 256, OPT_MAX_MEM, OPT_MAX_CPU, OPT_EXPIRES, OPT_RATE, OPT_BURST };
    static const struct option longopts[] = {
        { "scope", required_argument, NULL, 's' },
        { "selector", required_argument, NULL, 'l' },
        { "max-instances", required_argument, NULL, OPT_MAX_INST },
        { "max-memory", required_argument, NULL, OPT_MAX_MEM },
        { "max-vcpus", required_argument, NULL, OPT_MAX_CPU },
        { "expires", required_argument, NULL, OPT_EXPIRES },
        { "rate", required_argument, NULL, OPT_RATE },
        { "burst", required_argument, NULL, OPT_BURST },
        { "quiet", no_argument, NULL, 'q' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *scope = NULL, *sel = NULL;
    unsigned long q[3] = { 0, 0, 0 }, expires = 0, rate = 0, burst = 0;
    bool quiet = false;
    cli_fmt fmt = CLI_FMT_TABLE;
    json_t *body = NULL, *quotas = NULL, *resp = NULL;
    char err[256];
    int rc = CLI_OK, c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:l:qo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (strcmp(optarg, "read-only") && strcmp(optarg, "operator") &&
                strcmp(optarg, "admin")) {
                rc = cli_usage("token create", "invalid scope '%s' (read-only, operator, admin)",
                               optarg);
                goto out;
            }
            scope = optarg;
            break;
        case 'l':
            if (cli_parse_selector(optarg, err, sizeof err) < 0) {
                rc = cli_usage("token create", "--selector: %s", err);
                goto out;
            }
            sel = optarg;
            break;
        case OPT_MAX_INST:
        case OPT_MAX_MEM:
        case OPT_MAX_CPU:
            if (cli_parse_uint(optarg, 1, 1ul << 30, &q[c - OPT_MAX_INST], err, sizeof err) < 0) {
                rc = cli_usage("token create", "%s: %s", longopts[c - OPT_MAX_INST + 2].name, err);
                goto out;
            }
            break;
        case OPT_EXPIRES:
            if (cli_parse_duration(optarg, &expires, err, sizeof err) < 0) {
                rc = cli_usage("token create", "--expires: %s", err);
                goto out;
            }
            break;
        case OPT_RATE:
            if (cli_parse_rate(optarg, &rate, err, sizeof err) < 0) {
                rc = cli_usage("token create", "--rate: %s", err);
                goto out;
            }
            break;
        case OPT_BURST:
            if (cli_parse_uint(optarg, 1, 1000000, &burst, err, sizeof err) < 0) {
                rc = cli_usage("token create", "--burst: %s", err);
                goto out;
            }
            break;
        case 'q': quiet = true; break;
        case 'o':
            if (cli_parse_format(optarg, &fmt, err, sizeof err) < 0) {
                rc = cli_usage("token create", "%s", err);
                goto out;
            }
            break;
        case 'h': fputs(token_help, stdout); goto out;
        default: rc = cli_opt_error("token create", argv, c); goto out;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage("token create", "expected one token NAME");
        goto out;
    }
    if (scope == NULL) {
        rc = cli_usage("token create", "--scope is required (read-only, operator, admin)");
        goto out;
    }
    if (burst && !rate) {
        rc = cli_usage("token create", "--burst needs --rate");
        goto out;
    }
    body = json_pack("{s:s,s:s}", "name", argv[optind], "scope", scope);
    quotas = json_object();
    if (!body || !quotas) {
        rc = CLI_EFAIL;
        goto out;
    }
    if (sel)
        json_object_set_new(body, "selector", json_string(sel));
    if (q[0])
        json_object_set_new(quotas, "instances", json_integer((json_int_t)q[0]));
    if (q[1])
        json_object_set_new(quotas, "memory_mib", json_integer((json_int_t)q[1]));
    if (q[2])
        json_object_set_new(quotas, "vcpus", json_integer((json_int_t)q[2]));
    if (json_object_size(quotas))
        json_object_set(body, "quotas", quotas);
    if (expires)
        json_object_set_new(body, "expires_in", json_integer((json_int_t)expires));
    if (rate)
        json_object_set_new(body, "rate", json_integer((json_int_t)rate));
    if (burst)
        json_object_set_new(body, "burst", json_integer((json_int_t)burst));
    rc = cli_http_json(ctx, "POST", "/v1/tokens", body, &resp);
    if (rc != CLI_OK)
        goto out;
    if (quiet)
        printf("%s\n", cli_jstr(resp, "secret") ? cli_jstr(resp, "secret") : "");
    else if (fmt == CLI_FMT_JSON)
        cli_jprint(stdout, resp);
    else
        printf("created token %s (id %s, scope %s%s%s)\n"
               "secret: %s\n"
               "(shown once: shoald keeps only its hash)\n",
               cli_jstr(resp, "name"), cli_jstr(resp, "id"), cli_jstr(resp, "scope"),
               cli_jstr(resp, "expires") ? ", expires " : "",
               cli_jstr(resp, "expires") ? cli_jstr(resp, "expires") : "",
               cli_jstr(resp, "secret"));
out:
    json_decref(body);
    json_decref(quotas);
    json_decref(resp);
    return rc;
}

static int token_ls(cli_ctx *ctx, int argc, char **argv)
{
    return cli_list_cmd(ctx, argc, argv, "token ls", token_help, "/v1/tokens", token_render_list);
}

static int token_rm(cli_ctx *ctx, int argc, char **argv)
{
    cli_buf path = { 0 };
    int rc = CLI_OK;

    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(token_help, stdout);
        return CLI_OK;
    }
    if (argc < 2)
        return cli_usage("token rm", "missing token ID or NAME");
    for (int i = 1; i < argc; i++) {
        int r;
        path.len = 0;
        cli_buf_puts(&path, "/v1/tokens/");
        cli_buf_escape(&path, argv[i]);
        r = cli_http_json(ctx, "DELETE", cli_buf_str(&path), NULL, NULL);
        if (r == CLI_OK)
            printf("revoked %s\n", argv[i]);
        else if (rc == CLI_OK)
            rc = r;
    }
    cli_buf_free(&path);
    return rc;
}

int token_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *sub;

    if (argc < 2)
        return cli_usage("token", "missing token command (create, ls, rm)");
    sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(token_help, stdout);
        return CLI_OK;
    }
    if (!strcmp(sub, "create"))
        return token_create(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
        return token_ls(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "rm") || !strcmp(sub, "revoke"))
        return token_rm(ctx, argc - 1, argv + 1);
    return cli_usage("token", "unknown token command '%s' (create, ls, rm)", sub);
}

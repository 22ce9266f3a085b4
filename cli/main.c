/* main.c: `shoal` entry point: global options, command dispatch, exit. */
#include "cli.h"
#include "cli_http.h"
#include "cmd.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "0.1.0"
#endif

static const char main_help[] =
    "Usage: shoal [--url URL] [--token TOKEN] COMMAND [ARGS...]\n"
    "\n"
    "Drive a shoal fleet of unikernel VMs through shoald's REST API.\n"
    "\n"
    "Instances:\n"
    "  run IMAGE [-- ARGS]    start instances (--count, --memory, --attach, ...)\n"
    "  ps                     list instances (-a, -l SELECTOR, --watch)\n"
    "  inspect ID...          show instances as JSON\n"
    "  logs [-f] ID           print or follow an instance's console\n"
    "  stop|start|restart ID...|-l SEL   change instance state\n"
    "  rm [-f] ID...|-l SEL   remove instances\n"
    "Images:\n"
    "  image push FILE NAME[:TAG]   upload an image\n"
    "  image ls|inspect|tag|rm      manage images (alias: images = image ls)\n"
    "Fleet:\n"
    "  hosts                  hosts with capacity bars\n"
    "  host add|inspect|cordon|uncordon|drain|rm   manage hosts\n"
    "  consolidate [--dry-run]   pack instances onto fewer hosts\n"
    "  events                 stream fleet events\n"
    "  token create|ls|rm     API tokens: scopes, selectors, quotas (admin)\n"
    "  version                print the client version and check the server\n"
    "\n"
    "Global options (anywhere before --):\n"
    "  --url URL       shoald address (default $SHOAL_URL, config file, or\n"
    "                  " CLI_DEFAULT_URL ")\n"
    "  --token TOKEN   API token (default $SHOAL_TOKEN, config file, or the local\n"
    "                  daemon's $SHOAL_STATE_DIR/admin.token)\n"
    "  -h, --help      this help; 'shoal COMMAND --help' for a command\n"
    "  --version       print the client version\n"
    "\n"
    "Config file: ~/.config/shoal/config with lines 'url = ...', 'token = ...'.\n"
    "Listings take -o table|json|wide.\n"
    "Exit status: 0 ok, 1 failure, 2 usage error, 3 not found, 4 conflict,\n"
    "5 server unreachable, 6 unauthorized; run --attach returns the guest's.\n"
    "\n"
    "Examples:\n"
    "  shoal image push hello.elf hello:1.0\n"
    "  shoal run --count 3 --name hello hello:1.0 -- world\n"
    "  shoal ps -o wide\n"
    "  shoal rm -f -l app=web\n";

typedef int (*cmd_fn)(cli_ctx *ctx, int argc, char **argv);

static const struct {
    const char *name;
    cmd_fn fn;
} commands[] = {
    { "run", inst_run },        { "ps", inst_ps },       { "inspect", inst_inspect },
    { "logs", inst_logs },      { "stop", inst_action }, { "start", inst_action },
    { "restart", inst_action }, { "rm", inst_action },   { "image", image_main },
    { "hosts", host_list },     { "host", host_main },   { "consolidate", host_consolidate },
    { "events", events_main },  { "token", token_main },
};

/* Remove "--url X", "--url=X", "--token X", "--token=X" from argv (before
 * any "--"), so every command accepts them in any position. */
static int take_globals(int *argc, char **argv, const char **url, const char **token)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--url") || !strcmp(a, "--token")) {
            dst = a[2] == 'u' ? url : token;
            if (i + 1 >= *argc)
                return cli_usage(NULL, "option '%s' needs a value", a);
            val = argv[++i];
        } else if (!strncmp(a, "--url=", 6)) {
            dst = url;
            val = a + 6;
        } else if (!strncmp(a, "--token=", 8)) {
            dst = token;
            val = a + 8;
        }
        if (dst)
            *dst = val;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return CLI_OK;
}

static int version(cli_ctx *ctx)
{
    json_t *h = NULL;
    printf("client: shoal %s\nserver: %s\n", SHOAL_VERSION, ctx->url);
    int rc = cli_http_json(ctx, "GET", "/healthz", NULL, &h);
    if (rc == CLI_OK) {
        const char *st = json_string_value(json_object_get(h, "status"));
        printf("health: %s\n", st ? st : "?");
    }
    json_decref(h);
    return rc;
}

int main(int argc, char **argv)
{
    cli_ctx ctx = { 0 };
    const char *url = NULL, *token = NULL;
    int rc = take_globals(&argc, argv, &url, &token);
    if (rc != CLI_OK)
        goto out;
    if (argc < 2) {
        fputs(main_help, stderr);
        rc = CLI_EUSAGE;
        goto out;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(main_help, stdout);
        goto out;
    }
    if (!strcmp(cmd, "--version")) {
        printf("shoal %s\n", SHOAL_VERSION);
        goto out;
    }
    ctx.tty_out = isatty(STDOUT_FILENO);
    ctx.tty_err = isatty(STDERR_FILENO);
    rc = cli_config_load(&ctx, url, token);
    if (rc != CLI_OK)
        goto out;
    if (!strcmp(cmd, "version")) {
        rc = version(&ctx);
        goto out;
    }
    /* "images" is "image ls". */
    if (!strcmp(cmd, "images")) {
        argv[1] = (char *)"ls";
        rc = image_main(&ctx, argc, argv);
        goto out;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!strcmp(commands[i].name, cmd)) {
            rc = commands[i].fn(&ctx, argc - 1, argv + 1);
            goto out;
        }
    }
    rc = cli_usage(NULL, "unknown command '%s'", cmd);
out:
    cli_ctx_free(&ctx);
    fflush(stdout);
    if (ferror(stdout) && rc == CLI_OK)
        rc = CLI_EFAIL;
    return rc;
}

/* cli_config.c: where the server URL and the token come from. */
#include "cli.h"
#include "cli_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = 0;
    if (buf) {
        n = fread(buf, 1, max, f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int cli_config_parse(const char *text, char **url, char **token, char *err, size_t errlen)
{
    int rc = -1;
    char *copy = strdup(text);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and so miscount; split by hand. */
    for (char *line = copy; line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (!*l)
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            snprintf(err, errlen, "line %d: expected 'key = value', got '%s'", lineno, l);
            goto out;
        }
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 &&
            ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
            val[vl - 1] = '\0';
            val++;
        }
        char **dst = NULL;
        if (strcmp(key, "url") == 0)
            dst = url;
        else if (strcmp(key, "token") == 0)
            dst = token;
        else {
            snprintf(err, errlen, "line %d: unknown key '%s' (known: url, token)", lineno, key);
            goto out;
        }
        char *v = strdup(val);
        if (!v) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        free(*dst);
        *dst = v;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

bool cli_url_is_loopback(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strpbrk(p, "@/");
    if (at && *at == '@')
        p = at + 1;
    if (strncmp(p, "127.", 4) == 0)
        return true;
    if (strncmp(p, "[::1]", 5) == 0)
        return true;
    if (strncmp(p, "localhost", 9) == 0 && (p[9] == '\0' || p[9] == ':' || p[9] == '/'))
        return true;
    return false;
}

static int set_url(cli_ctx *ctx, const char *u, const char *source)
{
    if (!*u) {
        cli_err("empty server URL from %s", source);
        return CLI_EUSAGE;
    }
    const char *scheme = strstr(u, "://");
    if (scheme && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        cli_err("server URL '%s' from %s: only http:// and https:// are supported", u, source);
        return CLI_EUSAGE;
    }
    size_t n = strlen(u) + 8;
    char *s = malloc(n);
    if (!s)
        return CLI_EFAIL;
    snprintf(s, n, "%s%s", scheme ? "" : "http://", u);
    size_t l = strlen(s);
    while (l > 8 && s[l - 1] == '/')
        s[--l] = '\0';
    free(ctx->url);
    ctx->url = s;
    return CLI_OK;
}

int cli_config_load(cli_ctx *ctx, const char *url_flag, const char *token_flag)
{
    int rc = CLI_EFAIL;
    char *cfg_url = NULL, *cfg_token = NULL, *text = NULL;
    char path[4096];
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    path[0] = '\0';
    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/shoal/config", xdg);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.config/shoal/config", home);
    if (path[0] && (text = read_small_file(path, 65536)) != NULL) {
        char err[512];
        if (cli_config_parse(text, &cfg_url, &cfg_token, err, sizeof err) < 0) {
            cli_err("%s: %s", path, err);
            rc = CLI_EUSAGE;
            goto out;
        }
    }

    const char *env_url = getenv("SHOAL_URL");
    if (url_flag)
        rc = set_url(ctx, url_flag, "--url");
    else if (env_url && *env_url)
        rc = set_url(ctx, env_url, "SHOAL_URL");
    else if (cfg_url)
        rc = set_url(ctx, cfg_url, path);
    else
        rc = set_url(ctx, CLI_DEFAULT_URL, "the default");
    if (rc != CLI_OK)
        goto out;

    const char *env_token = getenv("SHOAL_TOKEN");
    const char *tok = NULL;
    if (token_flag)
        tok = token_flag;
    else if (env_token && *env_token)
        tok = env_token;
    else if (cfg_token)
        tok = cfg_token;
    if (tok) {
        ctx->token = strdup(tok);
    } else if (cli_url_is_loopback(ctx->url)) {
        /* Same machine: use the local daemon's admin token if readable. */
        const char *dir = getenv("SHOAL_STATE_DIR");
        char tpath[4096];
        snprintf(tpath, sizeof tpath, "%s/admin.token", dir && *dir ? dir : CLI_DEFAULT_STATE_DIR);
        char *t = read_small_file(tpath, 4096);
        if (t) {
            ctx->token = strdup(trim(t));
            free(t);
        }
    }
    rc = CLI_OK;
out:
    free(text);
    free(cfg_url);
    free(cfg_token);
    return rc;
}

void cli_ctx_free(cli_ctx *ctx)
{
    if (!ctx)
        return;
    cli_http_free(ctx->http);
    ctx->http = NULL;
    free(ctx->url);
    ctx->url = NULL;
    free(ctx->token);
    ctx->token = NULL;
}

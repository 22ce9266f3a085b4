/* config.c - shoald's configuration. See config.h. */
#include "config.h"
#include "errbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: shoald [options]\n"
    "\n"
    "Runs the shoal host daemon: images, instances and the REST API.\n"
    "\n"
    "  --state-dir DIR      all state under DIR (default " CFG_DEFAULT_STATE_DIR ")\n"
    "  --listen ADDR:PORT   REST API address (default " CFG_DEFAULT_LISTEN "; [::1]:PORT for IPv6)\n"
    "  --config FILE        config file (default STATE_DIR/shoald.conf if present)\n"
    "  --domain-type T      local host accelerator: auto (canary probe), kvm or qemu\n"
    "  --local-uri URI      libvirt URI of the local host (default: embedded driver\n"
    "                       qemu:///embed?root=STATE_DIR/libvirt, no libvirtd needed)\n"
    "  --bridge NAME        guest bridge to manage (default " CFG_DEFAULT_BRIDGE ")\n"
    "  --subnet CIDR        guest subnet (default " CFG_DEFAULT_SUBNET ")\n"
    "  --no-network         no bridge; every instance runs without network\n"
    "  --publish-addr ADDR  host address published ports listen on (default 0.0.0.0)\n"
    "  --max-instances N    guest slots of each host (default 1000)\n"
    "  --mem-overcommit R   usable memory per host as a multiple of its RAM (default 1)\n"
    "  --cpu-overcommit R   guest vCPUs per host CPU (default 16: idle unikernels halt)\n"
    "  --console-max-kib N  console kept per instance before rotation (default 1024)\n"
    "  --tls-cert FILE      serve HTTPS with this certificate (needs --tls-key)\n"
    "  --tls-key FILE       private key for --tls-cert\n"
    "  --check-config       validate the configuration and exit\n"
    "  -v, --verbose        debug logging\n"
    "  -h, --help           this text\n"
    "  --version            print the version\n";

const char *cfg_ip4_str(uint32_t ip, char *buf)
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return buf;
}

int cfg_parse_cidr(const char *s, uint32_t *net, int *prefix)
{
    char addr[32];
    const char *slash = strchr(s, '/');
    struct in_addr in;
    char *end;
    long p;

    if (!slash || (size_t)(slash - s) >= sizeof addr)
        return -1;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = 0;
    if (inet_pton(AF_INET, addr, &in) != 1)
        return -1;
    errno = 0;
    p = strtol(slash + 1, &end, 10);
    if (errno || *end || end == slash + 1 || p < 8 || p > 30)
        return -1;
    *prefix = (int)p;
    *net = ntohl(in.s_addr) & (0xffffffffu << (32 - p));
    return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < lo || n > hi)
        return -1;
    *out = (int)n;
    return 0;
}

static int parse_listen(cfg_t *c, const char *v)
{
    const char *colon;
    size_t hlen;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - v - 1);
        if (hlen == 0 || hlen >= sizeof c->listen_host)
            return -1;
        memcpy(c->listen_host, v + 1, hlen);
        c->listen_host[hlen] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - v);
        if (hlen == 0 || hlen >= sizeof c->listen_host)
            return -1;
        memcpy(c->listen_host, v, hlen);
        c->listen_host[hlen] = 0;
    }
    return parse_int(colon + 1, 0, 65535, &c->listen_port);
}

static int parse_ratio(const char *v, double *out)
{
    char *end;
    double d;
    errno = 0;
    d = strtod(v, &end);
    if (errno || *end || end == v || !(d >= 0.1 && d <= 1000))
        return -1;
    *out = d;
    return 0;
}

static int copy_str(char *dst, size_t len, const char *v)
{
    if (strlen(v) >= len)
        return -1;
    strcpy(dst, v);
    return 0;
}

/* Apply one setting. `where` names its origin for messages. */
static int apply(cfg_t *c, const char *key, const char *v, const char *where,
                 char *err, size_t errlen)
{
    int bad = 0;
    if (!strcmp(key, "state-dir"))
        bad = copy_str(c->state_dir, sizeof c->state_dir, v) || v[0] != '/';
    else if (!strcmp(key, "listen"))
        bad = parse_listen(c, v);
    else if (!strcmp(key, "domain-type"))
        bad = (strcmp(v, "auto") && strcmp(v, "kvm") && strcmp(v, "qemu")) ||
              copy_str(c->domain_type, sizeof c->domain_type, v);
    else if (!strcmp(key, "local-uri"))
        bad = copy_str(c->local_uri, sizeof c->local_uri, v) || !strstr(v, ":/");
    else if (!strcmp(key, "bridge"))
        bad = copy_str(c->bridge, sizeof c->bridge, v) || !v[0] ||
              strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(v);
    else if (!strcmp(key, "subnet"))
        bad = cfg_parse_cidr(v, &c->subnet, &c->prefix);
    else if (!strcmp(key, "publish-addr")) {
        struct in_addr a;
        bad = copy_str(c->publish_addr, sizeof c->publish_addr, v) ||
              inet_pton(AF_INET, v, &a) != 1;
    } else if (!strcmp(key, "network"))
        bad = parse_int(v, 0, 1, &c->network);
    else if (!strcmp(key, "max-instances"))
        bad = parse_int(v, 1, 100000, &c->max_instances);
    else if (!strcmp(key, "mem-overcommit"))
        bad = parse_ratio(v, &c->mem_overcommit);
    else if (!strcmp(key, "cpu-overcommit"))
        bad = parse_ratio(v, &c->cpu_overcommit);
    else if (!strcmp(key, "console-max-kib"))
        bad = parse_int(v, 1, 1 << 20, &c->console_max_kib);
    else if (!strcmp(key, "tls-cert"))
        bad = copy_str(c->tls_cert, sizeof c->tls_cert, v);
    else if (!strcmp(key, "tls-key"))
        bad = copy_str(c->tls_key, sizeof c->tls_key, v);
    else
        return errbuf_set(err, errlen, "%s: unknown setting '%s'", where, key);
    if (bad)
        return errbuf_set(err, errlen, "%s: invalid value '%s' for '%s'", where, v, key);
    return 0;
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

static int read_file(cfg_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[2048], where[1100];
    int lineno = 0, rc = 0;
    if (!f)
        return errbuf_set(err, errlen, "cannot read config file '%s': %s", path, strerror(errno));
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *s, *eq;
        lineno++;
        s = trim(line);
        if (!*s || *s == '#')
            continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        eq = strchr(s, '=');
        if (!eq) {
            rc = errbuf_set(err, errlen, "%s: expected 'key = value', got '%s'", where, s);
            break;
        }
        *eq = 0;
        rc = apply(c, trim(s), trim(eq + 1), where, err, errlen);
    }
    fclose(f);
    return rc;
}

int cfg_load(cfg_t *c, int argc, char **argv, char *err, size_t errlen)
{
    /* Flags are applied twice: once to find --state-dir/--config, then again
     * after the file so that flags win. */
    static const char *const with_value[] = {
        "state-dir", "listen", "config", "domain-type", "local-uri", "bridge", "subnet",
        "publish-addr", "mem-overcommit", "cpu-overcommit",
        "max-instances", "console-max-kib", "tls-cert", "tls-key", NULL,
    };
    char explicit_cfg[1024] = "";
    int pass;

    memset(c, 0, sizeof *c);
    strcpy(c->state_dir, CFG_DEFAULT_STATE_DIR);
    parse_listen(c, CFG_DEFAULT_LISTEN);
    strcpy(c->domain_type, "auto");
    strcpy(c->bridge, CFG_DEFAULT_BRIDGE);
    strcpy(c->publish_addr, "0.0.0.0");
    cfg_parse_cidr(CFG_DEFAULT_SUBNET, &c->subnet, &c->prefix);
    c->network = 1;
    c->max_instances = 1000;
    c->mem_overcommit = 1.0;
    c->cpu_overcommit = 16.0;
    c->console_max_kib = 1024;

    for (pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i], *val = NULL;
            char key[64];
            int takes = 0;
            if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                fputs(USAGE, stdout);
                return 1;
            }
            if (!strcmp(a, "--version")) {
                puts("shoald " SHOAL_VERSION);
                return 1;
            }
            if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
                c->verbose = 1;
                continue;
            }
            if (!strcmp(a, "--check-config")) {
                c->check_only = 1;
                continue;
            }
            if (!strcmp(a, "--no-network")) {
                if (pass == 1)
                    c->network = 0;
                continue;
            }
            if (strncmp(a, "--", 2) != 0 || strlen(a) - 2 >= sizeof key)
                return errbuf_set(err, errlen, "unknown argument '%s' (see --help)", a);
            snprintf(key, sizeof key, "%s", a + 2);
            {
                char *eq = strchr(key, '=');
                if (eq) {
                    *eq = 0;
                    val = strchr(a, '=') + 1;
                }
            }
            for (int k = 0; with_value[k]; k++)
                takes |= !strcmp(key, with_value[k]);
            if (!takes)
                return errbuf_set(err, errlen, "unknown option '%s' (see --help)", a);
            if (!val) {
                if (i + 1 >= argc)
                    return errbuf_set(err, errlen, "option '--%s' needs a value", key);
                val = argv[++i];
            }
            if (!strcmp(key, "config")) {
                if (copy_str(explicit_cfg, sizeof explicit_cfg, val))
                    return errbuf_set(err, errlen, "config path too long");
                continue;
            }
            /* Pass 0 only needs the state dir (to find the config file). */
            if (pass == 0 && strcmp(key, "state-dir"))
                continue;
            if (apply(c, key, val, "command line", err, errlen) < 0)
                return -1;
        }
        if (pass == 0) {
            char def[1100];
            snprintf(def, sizeof def, "%s/shoald.conf", c->state_dir);
            if (explicit_cfg[0]) {
                if (read_file(c, explicit_cfg, err, errlen) < 0)
                    return -1;
                snprintf(c->config_path, sizeof c->config_path, "%s", explicit_cfg);
            } else if (access(def, R_OK) == 0) {
                if (read_file(c, def, err, errlen) < 0)
                    return -1;
                snprintf(c->config_path, sizeof c->config_path, "%s", def);
            }
        }
    }
    if (!!c->tls_cert[0] != !!c->tls_key[0])
        return errbuf_set(err, errlen, "--tls-cert and --tls-key go together");
    for (const char *const *p = (const char *const[]){c->tls_cert, c->tls_key, NULL}; *p; p++) {
        if ((*p)[0] && access(*p, R_OK) != 0)
            return errbuf_set(err, errlen, "cannot read '%s': %s", *p, strerror(errno));
    }
    return 0;
}

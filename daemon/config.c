/* config.c - shoald's configuration. See config.h. */
#include "config.h"
#include "errbuf.h"
#include "hosturi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- the option table ---------------------------------------------------- */

static int check_absolute(const char *v)
{
    return v[0] != '/';
}

static int check_domain_type(const char *v)
{
    return strcmp(v, "auto") && strcmp(v, "kvm") && strcmp(v, "qemu");
}

static int check_uri(const char *v)
{
    return !strstr(v, ":/");
}

static int check_bridge(const char *v)
{
    return !v[0] ||
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
               strlen(v);
}

/* A CIDR of prefix 8..24 whose address is its network (a /24 per host). */
static int check_remote_nets(const char *v)
{
    uint32_t net;
    int prefix;
    const char *slash = strchr(v, '/');
    struct in_addr in;
    char addr[20];
    if (cfg_parse_cidr(v, &net, &prefix) != 0 || prefix > 24 || !slash ||
        (size_t)(slash - v) >= sizeof addr)
        return 1;
    memcpy(addr, v, (size_t)(slash - v));
    addr[slash - v] = 0;
    return inet_pton(AF_INET, addr, &in) != 1 || ntohl(in.s_addr) != net;
}

static int check_capacity(const char *v)
{
    return strcmp(v, "measured") && strcmp(v, "nominal");
}

static int check_ksm(const char *v)
{
    return strcmp(v, "off") && strcmp(v, "auto") && strcmp(v, "on");
}

static int check_on_off(const char *v)
{
    return strcmp(v, "on") && strcmp(v, "off");
}

/* A system user name: [a-z_][a-z0-9_-]*, at most 32 characters. */
static int check_user(const char *v)
{
    size_t n = strlen(v);
    return n == 0 || n > 32 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n ||
           (v[0] >= '0' && v[0] <= '9') || v[0] == '-';
}

static int check_move_mode(const char *v)
{
    return strcmp(v, "live") && strcmp(v, "cold");
}

static int check_ipv4(const char *v)
{
    struct in_addr a;
    return inet_pton(AF_INET, v, &a) != 1;
}

static int check_host_uri_allow(const char *v)
{
    char err[160];
    return huri_allow_check(v, err, sizeof err);
}

#define FIELD(f) offsetof(cfg_t, f), sizeof(((cfg_t *)0)->f)
#define NOFIELD  0, 0

/* Every option shoald has: --help, getopt_long and the config file come
 * from here (and docs/shoald.md lists the same; test_config checks). */
static const cfg_option OPTIONS[] = {
    { "state-dir", 0, "state-dir", "DIR", CFG_DEFAULT_STATE_DIR, NULL, "all state under DIR",
      CFG_STR, FIELD(state_dir), 0, 0, check_absolute, 1 },
    { "listen", 0, "listen", "ADDR:PORT", CFG_DEFAULT_LISTEN, "; [::1]:PORT for IPv6",
      "REST API address", CFG_LISTEN, NOFIELD, 0, 0, NULL, 0 },
    { "config", 0, NULL, "FILE", NULL, NULL,
      "config file (default STATE_DIR/shoald.conf if present)", CFG_CONFIG, NOFIELD, 0, 0, NULL,
      1 },
    { "domain-type", 0, "domain-type", "T", "auto", NULL,
      "local host accelerator: auto (canary probe), kvm\n"
      "or qemu",
      CFG_STR, FIELD(domain_type), 0, 0, check_domain_type, 0 },
    { "local-uri", 0, "local-uri", "URI", NULL, NULL,
      "libvirt URI of the local host (default: embedded driver\n"
      "qemu:///embed?root=STATE_DIR/libvirt, no libvirtd needed)",
      CFG_STR, FIELD(local_uri), 0, 0, check_uri, 0 },
    { "bridge", 0, "bridge", "NAME", CFG_DEFAULT_BRIDGE, NULL, "guest bridge to manage", CFG_STR,
      FIELD(bridge), 0, 0, check_bridge, 0 },
    { "subnet", 0, "subnet", "CIDR", CFG_DEFAULT_SUBNET, NULL, "guest subnet", CFG_CIDR, NOFIELD, 0,
      0, NULL, 0 },
    { "remote-subnets", 0, "remote-subnets", "CIDR", CFG_DEFAULT_REMOTE_SUBNETS, NULL,
      "guest subnets of remote hosts: a /24 of it each\n"
      "(prefix 8..24)",
      CFG_STR, FIELD(remote_nets), 0, 0, check_remote_nets, 0 },
    { "no-network", 0, "network", NULL, "1", NULL, "no bridge; every instance runs without network",
      CFG_FLAG, FIELD(network), 0, 0, NULL, 0 },
    { "dhcp", 0, "dhcp", "MODE", "on", NULL,
      "on: answer DHCP on the guest bridge with each\n"
      "instance's address (runs dnsmasq), or off",
      CFG_STR, FIELD(dhcp), 0, 0, check_on_off, 0 },
    { "publish-addr", 0, "publish-addr", "ADDR", "0.0.0.0", NULL,
      "host address published ports listen on", CFG_STR, FIELD(publish_addr), 0, 0, check_ipv4, 0 },
    { "max-instances", 0, "max-instances", "N", "auto", ": no limit, memory and CPU decide",
      "guest slots of each host, auto or 1..1000000", CFG_AUTO, FIELD(max_instances), 1, 1000000,
      NULL, 0 },
    { "capacity", 0, "capacity", "MODEL", "measured", NULL,
      "charge guests what they use (measured) or what they\n"
      "ask for (nominal)",
      CFG_STR, FIELD(capacity), 0, 0, check_capacity, 0 },
    { "mem-reserve", 0, "mem-reserve", "MIB", "auto", ": a tenth of RAM, at most 2048",
      "memory kept for the host itself, auto or MiB", CFG_AUTO, FIELD(mem_reserve_mib), 1, 1 << 30,
      NULL, 0 },
    { "mem-overcommit", 0, "mem-overcommit", "R", "1", NULL,
      "usable memory per host as a multiple of its RAM", CFG_RATIO, FIELD(mem_overcommit), 0, 0,
      NULL, 0 },
    { "cpu-overcommit", 0, "cpu-overcommit", "R", "16", ": idle unikernels halt",
      "nominal capacity: guest vCPUs per host CPU", CFG_RATIO, FIELD(cpu_overcommit), 0, 0, NULL,
      0 },
    { "cpu-target", 0, "cpu-target", "PCT", "90", NULL,
      "measured capacity: share of the host's CPUs its guests\n"
      "may use, 1..100",
      CFG_INT, FIELD(cpu_target), 1, 100, NULL, 0 },
    { "ksm", 0, "ksm", "MODE", "off", NULL,
      "kernel samepage merging of guest memory: off, auto\n"
      "(on where the host allows) or on",
      CFG_STR, FIELD(ksm), 0, 0, check_ksm, 0 },
    { "qemu-aslr", 0, "qemu-aslr", "on|off", "on", NULL,
      "off: start QEMU without address randomisation, so KSM\n"
      "merges far more (density; weaker against exploits)",
      CFG_STR, FIELD(qemu_aslr), 0, 0, check_on_off, 0 },
    { "qemu-user", 0, "qemu-user", "USER", "shoal-qemu", NULL,
      "user every guest's QEMU runs as on the local host\n"
      "(must exist; root: as root, not recommended)",
      CFG_STR, FIELD(qemu_user), 0, 0, check_user, 0 },
    { "privsep", 0, "privsep", "on|off", "on", NULL,
      "on: HTTP, TLS and JSON run in a separate unprivileged\n"
      "process (docs/security.md); off: all in one process",
      CFG_STR, FIELD(privsep), 0, 0, check_on_off, 0 },
    { "privsep-user", 0, "privsep-user", "USER", "shoal-api", NULL,
      "user the API front process runs as (must exist)", CFG_STR, FIELD(privsep_user), 0, 0,
      check_user, 0 },
    { "console-max-kib", 0, "console-max-kib", "N", "1024", NULL,
      "console kept per instance before rotation", CFG_INT, FIELD(console_max_kib), 1, 1 << 20,
      NULL, 0 },
    { "host-grace", 0, "host-grace", "S", "30", NULL,
      "seconds a host may be down before its instances\n"
      "with a restart policy start elsewhere",
      CFG_INT, FIELD(host_grace_s), 1, 86400, NULL, 0 },
    { "start-parallel", 0, "start-parallel", "N", "auto", ": 4 per CPU, 8..32",
      "domain starts at once (boot storms), auto or 1..256", CFG_AUTO, FIELD(start_parallel), 1,
      256, NULL, 0 },
    { "host-uri-allow", 0, "host-uri-allow", "LIST", HURI_DEFAULT_ALLOW, NULL,
      "libvirt URI schemes (and ?param&param) that POST\n"
      "/v1/hosts may add; 'qemu' is the local libvirtd",
      CFG_STR, FIELD(host_uri_allow), 0, 0, check_host_uri_allow, 0 },
    { "api-max-conns", 0, "api-max-conns", "N", "1024", NULL,
      "API connections at once, all clients (one thread each)", CFG_INT, FIELD(api_max_conns), 16,
      65536, NULL, 0 },
    { "api-max-conns-per-ip", 0, "api-max-conns-per-ip", "N", "64", NULL,
      "API connections at once from one client address", CFG_INT, FIELD(api_max_conns_per_ip), 1,
      65536, NULL, 0 },
    { "api-timeout", 0, "api-timeout", "S", "10", NULL,
      "API: seconds a connection may send nothing before it\n"
      "is closed (event and console streams are exempt)",
      CFG_INT, FIELD(api_timeout_s), 1, 3600, NULL, 0 },
    { "publish-max-conns", 0, "publish-max-conns", "N", "auto", ": a third of the fd limit / 2",
      "published TCP connections at once, all ports", CFG_AUTO, FIELD(publish_max_conns), 1,
      1000000, NULL, 0 },
    { "publish-port-max-conns", 0, "publish-port-max-conns", "N", "1024", NULL,
      "published TCP connections at once per host port", CFG_INT, FIELD(publish_port_max_conns), 1,
      1000000, NULL, 0 },
    { "publish-connect-timeout", 0, "publish-connect-timeout", "MS", "5000", NULL,
      "published ports: ms to wait for the guest to accept", CFG_INT, FIELD(publish_connect_ms),
      100, 600000, NULL, 0 },
    { "publish-wake-timeout", 0, "publish-wake-timeout", "MS", "30000", NULL,
      "scale to zero: ms a held connection waits for its instance to wake and accept", CFG_INT,
      FIELD(publish_wake_ms), 100, 600000, NULL, 0 },
    { "move", 0, "move", "MODE", "live", NULL,
      "drain/consolidate moves: live (a ready stand-in carries the\n"
      "published ports meanwhile) or cold (stop, re-home, start)",
      CFG_STR, FIELD(move_mode), 0, 0, check_move_mode, 0 },
    { "move-ready-timeout", 0, "move-ready-timeout", "MS", "30000", NULL,
      "live moves: ms a new copy has to become ready", CFG_INT, FIELD(move_ready_ms), 500, 600000,
      NULL, 0 },
    { "tls-cert", 0, "tls-cert", "FILE", NULL, NULL,
      "serve HTTPS with this certificate (needs --tls-key)", CFG_STR, FIELD(tls_cert), 0, 0, NULL,
      0 },
    { "tls-key", 0, "tls-key", "FILE", NULL, NULL, "private key for --tls-cert", CFG_STR,
      FIELD(tls_key), 0, 0, NULL, 0 },
    { "check-config", 0, NULL, NULL, NULL, NULL, "validate the configuration and exit", CFG_FLAG,
      FIELD(check_only), 1, 0, NULL, 0 },
    { "verbose", 'v', "verbose", NULL, NULL, NULL, "debug logging", CFG_FLAG, FIELD(verbose), 1, 0,
      NULL, 0 },
    { "help", 'h', NULL, NULL, NULL, NULL, "this text", CFG_HELP, NOFIELD, 0, 0, NULL, 1 },
    { "version", 0, NULL, NULL, NULL, NULL, "print the version", CFG_VERSION, NOFIELD, 0, 0, NULL,
      1 },
};

#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

const cfg_option *cfg_options(size_t *n)
{
    *n = N_OPTIONS;
    return OPTIONS;
}

void cfg_usage(FILE *out)
{
    fputs("usage: shoald [options]\n"
          "\n"
          "Runs the shoal host daemon: images, instances and the REST API.\n"
          "\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const cfg_option *o = &OPTIONS[i];
        char left[64];
        const char *h = o->help, *nl;
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(out, "  %-20s ", left);
        while ((nl = strchr(h, '\n')) != NULL) {
            fprintf(out, "%.*s\n%23s", (int)(nl - h), h, "");
            h = nl + 1;
        }
        fputs(h, out);
        if (o->arg && o->dflt)
            fprintf(out, " (default %s%s)", o->dflt, o->dflt_note ? o->dflt_note : "");
        fputc('\n', out);
    }
    fputs("\nThe config file (STATE_DIR/shoald.conf, or --config) has 'key = value'\n"
          "lines; the keys are the long option names of the options that take a\n"
          "value, and",
          out);
    for (size_t i = 0, first = 1; i < N_OPTIONS; i++) {
        const cfg_option *o = &OPTIONS[i];
        if (o->kind != CFG_FLAG || !o->key)
            continue;
        fprintf(out, "%s '%s = %ld' for --%s", first ? "" : ",", o->key, o->lo, o->name);
        first = 0;
    }
    fputs(".\n", out);
}

/* Store v through option o (from the file when in_file: a flag's key then
 * takes 0 or 1). 0, or -1 when the value is bad. */
static int set_value(cfg_t *c, const cfg_option *o, const char *v, int in_file)
{
    char *field = (char *)c + o->off;
    switch (o->kind) {
    case CFG_STR: return copy_str(field, o->size, v) || (o->check && o->check(v)) ? -1 : 0;
    case CFG_INT: return parse_int(v, (int)o->lo, (int)o->hi, (int *)(void *)field);
    case CFG_AUTO:
        if (!strcmp(v, "auto")) {
            *(int *)(void *)field = 0;
            return 0;
        }
        return parse_int(v, (int)o->lo, (int)o->hi, (int *)(void *)field);
    case CFG_RATIO: return parse_ratio(v, (double *)(void *)field);
    case CFG_LISTEN: return parse_listen(c, v);
    case CFG_CIDR: return cfg_parse_cidr(v, &c->subnet, &c->prefix);
    case CFG_FLAG:
        if (!in_file) {
            *(int *)(void *)field = (int)o->lo;
            return 0;
        }
        return parse_int(v, 0, 1, (int *)(void *)field);
    case CFG_CONFIG:
    case CFG_HELP:
    case CFG_VERSION: break;
    }
    return -1;
}

/* One `key = value` of the config file. */
static int apply_key(cfg_t *c, const char *key, const char *v, const char *where, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const cfg_option *o = &OPTIONS[i];
        if (!o->key || strcmp(o->key, key))
            continue;
        if (set_value(c, o, v, 1) < 0)
            return errbuf_set(err, errlen, "%s: invalid value '%s' for '%s'", where, v, key);
        return 0;
    }
    return errbuf_set(err, errlen, "%s: unknown setting '%s'", where, key);
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
        rc = apply_key(c, trim(s), trim(eq + 1), where, err, errlen);
    }
    fclose(f);
    return rc;
}

/* The command line, one pass: pass 0 applies only the early options (state
 * dir, config file, help, version) and reports unknown options; pass 1,
 * after the config file, applies the rest so that flags win. Returns 0, 1
 * (help or version printed) or -1 (err filled). */
static int parse_args(cfg_t *c, int argc, char **argv, int pass, char *explicit_cfg,
                      size_t ecfg_len, char *err, size_t errlen)
{
    struct option longopts[N_OPTIONS + 1];
    char shortopts[2 + 2 * N_OPTIONS + 1] = "+:"; /* stop at a non-option */
    size_t ns = 2;

    memset(longopts, 0, sizeof longopts);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        longopts[i].name = OPTIONS[i].name;
        longopts[i].has_arg = OPTIONS[i].arg ? required_argument : no_argument;
        longopts[i].val = 256 + (int)i;
        if (OPTIONS[i].short_name) {
            shortopts[ns++] = OPTIONS[i].short_name;
            if (OPTIONS[i].arg)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = 0;
    optind = 0; /* glibc: start over (cfg_load may run more than once) */
    opterr = 0; /* messages are ours */
    for (;;) {
        int before = optind ? optind : 1;
        int ch = getopt_long(argc, argv, shortopts, longopts, NULL);
        const cfg_option *o = NULL;
        const char *arg = before < argc ? argv[before] : "";

        if (ch == -1) {
            if (optind == before + 1 && !strcmp(arg, "--"))
                return errbuf_set(err, errlen, "unknown option '--' (see --help)");
            if (optind < argc)
                return errbuf_set(err, errlen, "unknown argument '%s' (see --help)", argv[optind]);
            return 0;
        }
        if (ch == '?' || ch == ':') {
            const cfg_option *bad = NULL;
            if (optopt >= 256 && optopt < 256 + (int)N_OPTIONS)
                bad = &OPTIONS[optopt - 256];
            for (size_t i = 0; !bad && optopt > 0 && optopt < 256 && i < N_OPTIONS; i++)
                if (OPTIONS[i].short_name == optopt)
                    bad = &OPTIONS[i];
            if (ch == ':' && bad)
                return errbuf_set(err, errlen, "option '--%s' needs a value", bad->name);
            if (bad && !strncmp(arg, "--", 2))
                return errbuf_set(err, errlen, "option '--%s' takes no value", bad->name);
            if (strncmp(arg, "--", 2))
                return errbuf_set(err, errlen, "unknown argument '-%c' (see --help)",
                                  optopt > 0 && optopt < 256 ? optopt : '?');
            return errbuf_set(err, errlen, "unknown option '%s' (see --help)", arg);
        }
        if (ch >= 256) {
            size_t n;
            o = &OPTIONS[ch - 256];
            /* getopt_long takes unique abbreviations (--list); shoald
             * takes only whole names. */
            n = strcspn(arg + 2, "=");
            if (strncmp(arg, "--", 2) || n != strlen(o->name) || strncmp(arg + 2, o->name, n))
                return errbuf_set(err, errlen, "unknown option '%s' (see --help)", arg);
        } else {
            for (size_t i = 0; i < N_OPTIONS && !o; i++)
                if (OPTIONS[i].short_name == ch)
                    o = &OPTIONS[i];
            if (!o)
                return errbuf_set(err, errlen, "unknown argument '-%c' (see --help)", ch);
        }
        switch (o->kind) {
        case CFG_HELP: cfg_usage(stdout); return 1;
        case CFG_VERSION: puts("shoald " SHOAL_VERSION); return 1;
        case CFG_CONFIG:
            if (copy_str(explicit_cfg, ecfg_len, optarg))
                return errbuf_set(err, errlen, "config path too long");
            continue;
        default: break;
        }
        if (pass == 0 && !o->early)
            continue;
        if (set_value(c, o, optarg, 0) < 0)
            return errbuf_set(err, errlen, "command line: invalid value '%s' for '%s'", optarg,
                              o->name);
    }
}

int cfg_load(cfg_t *c, int argc, char **argv, char *err, size_t errlen)
{
    char explicit_cfg[1024] = "";
    char def[1100];
    int rc;

    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (OPTIONS[i].dflt && set_value(c, &OPTIONS[i], OPTIONS[i].dflt, 1) < 0)
            return errbuf_set(err, errlen, "internal: bad default '%s' for '%s'", OPTIONS[i].dflt,
                              OPTIONS[i].name);

    rc = parse_args(c, argc, argv, 0, explicit_cfg, sizeof explicit_cfg, err, errlen);
    if (rc != 0)
        return rc;
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
    rc = parse_args(c, argc, argv, 1, explicit_cfg, sizeof explicit_cfg, err, errlen);
    if (rc != 0)
        return rc;
    if (!!c->tls_cert[0] != !!c->tls_key[0])
        return errbuf_set(err, errlen, "--tls-cert and --tls-key go together");
    for (const char *const *p = (const char *const[]){ c->tls_cert, c->tls_key, NULL }; *p; p++) {
        if ((*p)[0] && access(*p, R_OK) != 0)
            return errbuf_set(err, errlen, "cannot read '%s': %s", *p, strerror(errno));
    }
    return 0;
}

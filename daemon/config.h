/* config.h - shoald's configuration: defaults, config file, flags.
 *
 * Precedence: built-in defaults < config file < command-line flags. The
 * config file is `key = value` lines ('#' starts a comment); keys are the
 * long flag names without the dashes (e.g. `listen = 127.0.0.1:7878`),
 * `network = 0|1` for --no-network and `verbose = 0|1` for -v. The file is
 * STATE_DIR/shoald.conf when present, or the one given with --config
 * (which must exist).
 *
 * One table (config.c, cfg_options()) lists every option: its long name,
 * short letter, config-file key, value type and field, default and help
 * text. --help, the command-line parser (getopt_long) and the config file
 * reader are all derived from it; docs/shoald.md lists the same options
 * (tests/unit/test_config.c checks).
 */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_DEFAULT_STATE_DIR "/var/lib/shoal"
#define CFG_DEFAULT_LISTEN    "127.0.0.1:7878"
#define CFG_DEFAULT_BRIDGE    "shoal0"
#define CFG_DEFAULT_SUBNET    "10.88.0.0/16"

/* remote hosts' guest networks: a /24 of it each (docs/node.md) */
#define CFG_DEFAULT_REMOTE_SUBNETS "10.89.0.0/16"

typedef struct {
    char state_dir[1024];   /* all state lives here */
    char listen_host[256];  /* address to bind ("127.0.0.1", "::1", "0.0.0.0") */
    int listen_port;        /* TCP port, 0 = ephemeral (printed at start) */
    char config_path[1100]; /* config file actually read, "" when none */
    char domain_type[8];    /* "auto", "kvm" or "qemu" for the local host */
    char local_uri[1024];   /* local host's libvirt URI; "" = embedded default */
    char bridge[16];        /* bridge shoald manages for guest networks */
    uint32_t subnet;        /* guest subnet network address, host order */
    int prefix;             /* guest subnet prefix length (8..30) */
    char remote_nets[20];   /* --remote-subnets: a /24 of it per remote host */
    char publish_addr[16];  /* host address published ports listen on */
    int network;            /* 0: no bridge, instances run without network */
    char dhcp[4];           /* "on" (default) or "off": DHCP on the bridge (dhcp.h) */
    char tls_cert[1024];    /* PEM paths; both or neither */
    char tls_key[1024];
    int check_only;             /* --check-config: validate and exit */
    int verbose;                /* log debug lines */
    int max_instances;          /* guest slots of each host; 0 = no limit */
    char capacity[12];          /* "measured" (charge what guests use) or "nominal" */
    int mem_reserve_mib;        /* memory kept for the host; 0 = auto (docs/shoald.md) */
    double mem_overcommit;      /* usable/physical memory per host (>= 0.1) */
    double cpu_overcommit;      /* nominal capacity: guest vCPUs per host CPU (>= 0.1) */
    int cpu_target;             /* measured capacity: % of the host's CPUs guests may use */
    char ksm[8];                /* "off", "auto" or "on" (ksm.h) */
    char qemu_aslr[4];          /* "on" (default) or "off": node_opts.qemu_no_aslr */
    char qemu_user[64];         /* node_opts.qemu_user of the local host ("shoal-qemu") */
    char privsep[4];            /* "on" (default): the API front runs apart (privsep.h) */
    char privsep_user[64];      /* the front's user ("shoal-api") */
    int console_max_kib;        /* console log kept per instance before rotation */
    int host_grace_s;           /* a down host's instances fail over after (failover.h) */
    int start_parallel;         /* domain starts at once; 0 = auto (core/jobs.c) */
    char host_uri_allow[1024];  /* host URIs the API may add (hosturi.h) */
    int api_max_conns;          /* API connections at once (threads), all clients */
    int api_max_conns_per_ip;   /* API connections at once from one address */
    int api_timeout_s;          /* API: idle seconds before a connection is closed */
    int publish_max_conns;      /* published TCP connections, all ports; 0 = auto */
    int publish_port_max_conns; /* published TCP connections per port */
    int publish_connect_ms;     /* published ports: connect to the guest, ms */
    int publish_wake_ms;        /* scale to zero: a held connection waits, ms */
    char move_mode[8];          /* drain/consolidate moves: "live" or "cold" (core/move.c) */
    int move_ready_ms;          /* a move's new copy must be ready within, ms */
} cfg_t;

/* One option of the table. */
typedef enum {
    CFG_STR,     /* string into a char array, optional extra rule */
    CFG_INT,     /* integer in [lo, hi] */
    CFG_AUTO,    /* "auto" (stored as 0) or an integer in [lo, hi] */
    CFG_RATIO,   /* real in [0.1, 1000] */
    CFG_LISTEN,  /* ADDR:PORT or [ADDR6]:PORT */
    CFG_CIDR,    /* A.B.C.D/N, N 8..30 */
    CFG_FLAG,    /* no value: sets the int field to lo; in the file 0|1 */
    CFG_CONFIG,  /* --config FILE: command line only */
    CFG_HELP,    /* --help: print the usage, cfg_load returns 1 */
    CFG_VERSION, /* --version: likewise */
} cfg_kind;

typedef struct cfg_option {
    const char *name;      /* long option, without "--" */
    char short_name;       /* single-letter option, 0 if none */
    const char *key;       /* config-file key, NULL: command line only */
    const char *arg;       /* value placeholder in --help, NULL: no value */
    const char *dflt;      /* default, applied like a value; NULL: none */
    const char *dflt_note; /* appended to "(default X" in --help */
    const char *help;      /* --help text ('\n' continues the line) */
    cfg_kind kind;
    size_t off, size;            /* the cfg_t field */
    long lo, hi;                 /* CFG_INT range; CFG_FLAG: the value set */
    int (*check)(const char *v); /* CFG_STR: 0 when v is acceptable */
    int early;                   /* applied before the config file is read */
} cfg_option;

/* The table, n entries. */
const cfg_option *cfg_options(size_t *n);

/* The --help text, derived from the table. */
void cfg_usage(FILE *out);

/* Fill cfg from defaults, the config file and argv. On error returns -1
 * with a message naming the bad flag or line in err. Returns 1 when
 * --help or --version printed something and the caller should exit 0. */
int cfg_load(cfg_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* "10.88.0.0/16" -> network + prefix; -1 when malformed. */
int cfg_parse_cidr(const char *s, uint32_t *net, int *prefix);

/* Host-order address to dotted quad in buf (>= 16 bytes). */
const char *cfg_ip4_str(uint32_t ip, char *buf);

#endif

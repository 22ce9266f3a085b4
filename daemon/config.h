/* config.h - shoald's configuration: defaults, config file, flags.
 *
 * Precedence: built-in defaults < config file < command-line flags. The
 * config file is `key = value` lines ('#' starts a comment); keys are the
 * long flag names without the dashes (e.g. `listen = 127.0.0.1:7878`).
 * The file is STATE_DIR/shoald.conf when present, or the one given with
 * --config (which must exist).
 */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_DEFAULT_STATE_DIR "/var/lib/shoal"
#define CFG_DEFAULT_LISTEN    "127.0.0.1:7878"
#define CFG_DEFAULT_BRIDGE    "shoal0"
#define CFG_DEFAULT_SUBNET    "10.88.0.0/16"

typedef struct {
    char state_dir[1024];     /* all state lives here */
    char listen_host[256];    /* address to bind ("127.0.0.1", "::1", "0.0.0.0") */
    int listen_port;          /* TCP port, 0 = ephemeral (printed at start) */
    char config_path[1100];   /* config file actually read, "" when none */
    char domain_type[8];      /* "auto", "kvm" or "qemu" for the local host */
    char local_uri[1024];     /* local host's libvirt URI; "" = embedded default */
    char bridge[16];          /* bridge shoald manages for guest networks */
    uint32_t subnet;          /* guest subnet network address, host order */
    int prefix;               /* guest subnet prefix length (8..30) */
    char publish_addr[16];    /* host address published ports listen on */
    int network;              /* 0: no bridge, instances run without network */
    char tls_cert[1024];      /* PEM paths; both or neither */
    char tls_key[1024];
    int check_only;           /* --check-config: validate and exit */
    int verbose;              /* log debug lines */
    int max_instances;        /* guest slots of each host */
    double mem_overcommit;    /* usable/physical memory per host (>= 0.1) */
    double cpu_overcommit;    /* guest vCPUs per host CPU (>= 0.1) */
    int console_max_kib;      /* console log kept per instance before rotation */
} cfg_t;

/* Fill cfg from defaults, the config file and argv. On error returns -1
 * with a message naming the bad flag or line in err. Returns 1 when
 * --help or --version printed something and the caller should exit 0. */
int cfg_load(cfg_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* "10.88.0.0/16" -> network + prefix; -1 when malformed. */
int cfg_parse_cidr(const char *s, uint32_t *net, int *prefix);

/* Host-order address to dotted quad in buf (>= 16 bytes). */
const char *cfg_ip4_str(uint32_t ip, char *buf);

#endif

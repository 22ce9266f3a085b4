/*
 * dhcp.h - DHCP on the guest network: one dnsmasq per shoald, static leases.
 *
 * Guests that take their address by DHCP (Unikraft without `netdev.ip=`,
 * Nanos without a static address in its manifest) must get exactly the
 * address shoal allocated for their MAC, the one `shoal ps` shows and
 * published ports forward to. shoald runs one dnsmasq (the DHCP server
 * libvirt runs for its own networks), bound to the main bridge only, that
 * answers from a hosts file of MAC -> address lines and hands nothing to a
 * MAC the file does not list.
 *
 * One dnsmasq serves a whole bridge set (netbr.h): the overflow bridges are
 * joined to the main bridge by veth links, one L2 segment, so a DISCOVER
 * broadcast on shoal0.K reaches the main bridge's host interface and the
 * reply goes back through the link (test_dhcp_netns checks it).
 *
 * dnsmasq is run directly (posix_spawn, an argv array, no shell) as
 *
 *   dnsmasq --conf-file=/dev/null --keep-in-foreground --log-facility=-
 *           [--quiet-dhcp] --interface=BRIDGE --bind-dynamic
 *           --except-interface=lo --port=0 --no-resolv --no-hosts
 *           --dhcp-range=NET,static,MASK,infinite --dhcp-ignore=tag:!known
 *           --dhcp-authoritative --dhcp-option=option:router,GATEWAY
 *           --dhcp-lease-max=ADDRESSES --no-ping
 *           --dhcp-hostsfile=DIR/hosts --dhcp-leasefile=DIR/leases
 *           --pid-file=DIR/dnsmasq.pid
 *
 *   --conf-file=/dev/null  no /etc/dnsmasq.conf (the full dnsmasq package
 *                       ships one with conf-dir=/etc/dnsmasq.d).
 *   --keep-in-foreground   not --no-daemon: that is dnsmasq's debug mode
 *                       (no pid file, keeps root). This one stays shoald's
 *                       child and still drops to user `nobody` after
 *                       binding its socket.
 *   --bind-dynamic      the DHCP socket is bound to BRIDGE only
 *                       (SO_BINDTODEVICE, "sockets bound exclusively to
 *                       interface"), so other DHCP servers on the host, e.g.
 *                       libvirt's on virbr0 or a second shoald's, coexist.
 *   --port=0            no DNS: none is advertised either (no option 6).
 *   static + tag:!known only MACs in the hosts file get an answer; any other
 *                       client's DISCOVER and REQUEST are ignored.
 *   --dhcp-authoritative   a guest that asks to keep its address (REQUEST
 *                       after a reboot, or after dnsmasq restarted and has
 *                       no lease for it) is ACKed at once.
 *   infinite            guests outlive shoald (docs/shoald.md): a finite
 *                       lease would expire under a running guest while shoald
 *                       is down. The address belongs to the instance until
 *                       it is deleted anyway.
 *   --dhcp-lease-max    the subnet's size (dnsmasq's default, 1,000, would
 *                       refuse the 1,001st guest).
 *   --log-facility=-    dnsmasq's log to its stderr, a pipe this module
 *                       reads into shoald's log; --quiet-dhcp (unless
 *                       verbose) leaves out the four lines per exchange.
 *
 * FILES (under cfg.dir, created 0711; dnsmasq reads the hosts file as
 * `nobody` at start and on every SIGHUP, so cfg.dir and all its parents
 * must be searchable by others, as the state dir already is for QEMU under
 * a libvirt daemon; otherwise dhcp_start fails with dnsmasq's "cannot read"
 * line):
 *   hosts          the lease list, 0644, replaced atomically (hosts.tmp,
 *                  then rename) by dhcp_set. One line per lease, by address:
 *                      MAC,ADDRESS[,HOSTNAME]
 *   leases         dnsmasq's lease database ("EXPIRY MAC ADDRESS NAME
 *                  CLIENT-ID" per line, then DHCPv6 ones after a "duid"
 *                  line); kept across restarts.
 *   dnsmasq.pid    the running dnsmasq's pid.
 *
 * STALE LEASES: shoald hands a freed address out again at once (the lowest
 * free one), but dnsmasq refuses a configured address while its lease
 * database shows it leased to another MAC ("not using configured address
 * ... because it is leased to ..."), and an infinite lease never expires.
 * dnsmasq has no way to drop one lease while it runs (a dhcp-host line
 * listing the old MAC too would let dnsmasq move the lease, but would also
 * hand the address back to the old MAC if it asked: not static). So
 * before every start of dnsmasq the lease database is pruned to the MACs
 * of the list (dhcp_leases_prune), and a dhcp_set whose list has an
 * address leased to a MAC of no line restarts dnsmasq (SIGTERM, prune,
 * start: ~10 ms without a DHCP server, clients retransmit) instead of
 * signalling it. That happens only when a guest that took a lease was
 * deleted and its address given to a new instance; a MAC that is in no
 * line never gets an answer.
 *
 * THREADS AND LOCKS: dhcp_start starts one thread per dhcp handle. It reads
 * dnsmasq's stderr (log lines go to shoald's log: "read"/option lines at
 * debug level, the rest at info), reaps dnsmasq when it exits and starts it
 * again: at once when dhcp_set asked for the restart, else after
 * DHCP_BACKOFF_MIN_MS, doubling up to DHCP_BACKOFF_MAX_MS, back to the
 * minimum after a run of DHCP_STABLE_MS. Inside the handle:
 *   set_mu  serializes dhcp_set (file writes, the signal or restart, the
 *           wait for dnsmasq) and guards the stored list; the thread only
 *           tries it (to prune before a restart after a crash) or relies on
 *           the dhcp_set that holds it and waits (a requested restart);
 *   mu      the child's pid and counters; a leaf: held for no I/O, never
 *           while set_mu is wanted (set_mu > mu).
 * dhcp_set and dhcp_info_get may be called from any thread.
 *
 * Costs measured here (dnsmasq 2.90, test_dhcp_netns): start to serving
 * 4-12 ms; dhcp_set of 1,004 leases (write, rename, SIGHUP, dnsmasq's
 * re-read confirmed) ~3-4 ms; a dhcp_set that restarts dnsmasq ~10 ms.
 *
 * Errors: DHCP_OK (0) or a negative dhcp_status with a message in err that
 * quotes the bad value or says what dnsmasq said.
 */
#ifndef SHOAL_DHCP_H
#define SHOAL_DHCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum dhcp_status {
    DHCP_OK = 0,
    DHCP_E_INVAL = -1,    /* bad configuration (message quotes it) */
    DHCP_E_NOTFOUND = -2, /* no dnsmasq program (install dnsmasq-base) */
    DHCP_E_IO = -3,       /* creating the directory or writing a file failed,
                             or dnsmasq could not read the hosts file */
    DHCP_E_START = -4,    /* dnsmasq exited at start or did not get ready;
                             the message holds its last line */
    DHCP_E_TIMEOUT = -5,  /* dnsmasq did not confirm a re-read within
                             DHCP_RELOAD_TIMEOUT_MS (the file is in place) */
};

#define DHCP_MAC_STRLEN        18 /* "xx:xx:xx:xx:xx:xx" + NUL */
#define DHCP_HOSTNAME_MAX      64 /* a DNS label (63) + NUL */
#define DHCP_SKIP_STRLEN       64 /* dhcp_hosts_write's first_skip */
#define DHCP_START_TIMEOUT_MS  5000
#define DHCP_RELOAD_TIMEOUT_MS 2000
#define DHCP_STOP_TIMEOUT_MS   2000 /* SIGTERM, then SIGKILL */
#define DHCP_BACKOFF_MIN_MS    500
#define DHCP_BACKOFF_MAX_MS    30000
#define DHCP_STABLE_MS         10000

/* One static lease. */
struct dhcp_lease {
    char mac[DHCP_MAC_STRLEN];        /* "xx:xx:xx:xx:xx:xx", hex, either case */
    uint32_t ipv4;                    /* host byte order */
    char hostname[DHCP_HOSTNAME_MAX]; /* sent as option 12 when it is a valid
                                          label (a letter, then letters, digits,
                                          '-'; not ending in '-'); else not sent */
};

/* What dhcp_start needs. Strings are copied. */
struct dhcp_config {
    const char *dir;       /* files (see FILES); created if missing */
    const char *interface; /* the main bridge; must exist and hold gateway */
    uint32_t subnet;       /* network address, host order */
    int prefix;            /* 8..30 */
    uint32_t gateway;      /* the bridge's address: the router option */
    const char *dnsmasq;   /* program; NULL: PATH, then /usr/sbin, /sbin */
    int verbose;           /* log every DHCP exchange (no --quiet-dhcp) */
};

/* The running server and its thread. Opaque. */
struct dhcp;

/* What dhcp_hosts_write did. */
struct dhcp_write_result {
    size_t written;                    /* lines */
    size_t skipped;                    /* leases left out */
    size_t stale;                      /* addresses of the file that the lease database shows
                       leased to a MAC of no line (see STALE LEASES) */
    char first_skip[DHCP_SKIP_STRLEN]; /* the first left out, described */
};

/* Counters for tests and metrics. */
struct dhcp_info {
    pid_t pid;         /* the running dnsmasq, 0 while none (backoff) */
    unsigned starts;   /* dnsmasq processes started, the first included */
    unsigned restarts; /* of those, restarts dhcp_set asked for (stale leases) */
    unsigned reloads;  /* hosts file reads dnsmasq confirmed (starts too) */
    size_t leases;     /* lines of the last hosts file written */
};

/*
 * Write the hosts file for leases[0..n) to `path` atomically: PATH.tmp,
 * written whole, mode 0644, then renamed over PATH (a reader sees the old
 * or the new file, never a part). Lines are sorted by address. A lease
 * whose MAC is malformed, whose address is 0, or whose MAC or address an
 * earlier lease of the array already has, is left out. `leasefile` (may be
 * NULL or missing) is dnsmasq's lease database, read for res->stale. res
 * may be NULL. Returns DHCP_OK, or DHCP_E_IO (PATH.tmp is removed).
 */
int dhcp_hosts_write(const char *path, const struct dhcp_lease *leases, size_t n,
                     const char *leasefile, struct dhcp_write_result *res, char *err,
                     size_t errlen);

/*
 * Drop from dnsmasq's lease database `leasefile` the IPv4 leases of MACs
 * not in leases[0..n) (the same ones dhcp_hosts_write would write), by the
 * same atomic replacement; DHCPv6 lines stay. Only while dnsmasq is not
 * running (it keeps the file open). *dropped (may be NULL) = leases
 * removed; the file is rewritten only when there are some. A missing file
 * is DHCP_OK. DHCP_E_IO otherwise.
 */
int dhcp_leases_prune(const char *leasefile, const struct dhcp_lease *leases, size_t n,
                      size_t *dropped, char *err, size_t errlen);

/*
 * Start serving: create cfg->dir, stop a dnsmasq that a previous shoald
 * left running (the pid in DIR/dnsmasq.pid, if its command line names that
 * file), write the hosts file for leases[0..n), prune the lease database,
 * start dnsmasq and wait until it has read the file
 * (DHCP_START_TIMEOUT_MS). On DHCP_OK *out is
 * the handle (dhcp_stop frees it); else *out is NULL and nothing runs.
 */
int dhcp_start(const struct dhcp_config *cfg, const struct dhcp_lease *leases, size_t n,
               struct dhcp **out, char *err, size_t errlen);

/*
 * Replace the whole lease list with leases[0..n) (dhcp_hosts_write), signal
 * dnsmasq (SIGHUP; or restart it over a pruned lease database when the
 * list has stale leases, see STALE LEASES) and wait until it reports the
 * file read: when this returns DHCP_OK, DISCOVERs are answered from the
 * new list. While dnsmasq is down (between a crash and its restart) it
 * returns at once: the next dnsmasq reads the file when it starts. Entries
 * left out are logged. DHCP_E_IO (file not written, or dnsmasq could not
 * read it), DHCP_E_TIMEOUT. Any thread; calls are serialized.
 */
int dhcp_set(struct dhcp *d, const struct dhcp_lease *leases, size_t n, char *err, size_t errlen);

/* Fill *out. Any thread. */
void dhcp_info_get(struct dhcp *d, struct dhcp_info *out);

/*
 * Stop dnsmasq (SIGTERM; SIGKILL after DHCP_STOP_TIMEOUT_MS), join the
 * thread, free the handle. The hosts and lease files stay for the next
 * start. NULL ok.
 */
void dhcp_stop(struct dhcp *d);

#endif /* SHOAL_DHCP_H */

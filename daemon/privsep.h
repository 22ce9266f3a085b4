/*
 * privsep.h - shoald's privilege separation (docs/security.md "Privilege
 * separation"; OpenBSD vmd's model).
 *
 * With --privsep on, the root process never touches the network. It binds
 * the API socket, then starts the front: shoald itself again (fork + exec
 * of /proc/self/exe with PS_FRONT_ARG, so the front gets a fresh address
 * space holding none of the root's tokens, database or libvirt state),
 * handing it the listening socket and one end of a socketpair. The front
 * reads the TLS files, enters an empty directory (chroot), drops to the
 * --privsep-user with no capabilities (bounding set emptied) and
 * no_new_privs, and only then starts libmicrohttpd: HTTP, TLS, routing and
 * the JSON decoders run there. Each backend call crosses the socketpair
 * (api/chan.h) to the root, which checks the bearer secret and the scope of
 * every call itself.
 *
 * The root keeps no copy of the listening socket: when the front dies
 * (a crash, SIGKILL, a frame the root refused) the root logs it, releases
 * what it left open, binds the address again and starts a new front after
 * a backoff (PS_BACKOFF_MIN_MS doubling to PS_BACKOFF_MAX_MS, back to the
 * minimum after PS_STABLE_S of service). Guests are not involved. The front
 * exits when the root goes (channel EOF, and PR_SET_PDEATHSIG).
 *
 * Threads (root): one supervisor (ps_root_start .. ps_root_stop) that
 * starts the front and reads its calls; one thread per call in flight
 * (api/chan_server.c).
 */
#ifndef SHOAL_PRIVSEP_H
#define SHOAL_PRIVSEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api.h"

#define PS_FRONT_ARG      "--privsep-front" /* argv[1] of the front process */
#define PS_BACKOFF_MIN_MS 100
#define PS_BACKOFF_MAX_MS 5000
#define PS_STABLE_S       30
#define PS_EMPTY_DIR      "privsep-empty" /* under the state dir: the front's root */

typedef struct ps_opts {
    const char *listen_host; /* numeric address */
    int listen_port;         /* 0 = ephemeral (later fronts reuse the port bound first) */
    const char *tls_cert;    /* PEM paths, or NULL for plain HTTP */
    const char *tls_key;
    const char *user;      /* the front's user; must exist and not be root */
    const char *state_dir; /* PS_EMPTY_DIR is made here */
    unsigned max_conns;    /* api_config limits of the front's server */
    unsigned max_conns_per_ip;
    unsigned timeout_s;
    uint64_t max_upload;
    int verbose;
} ps_opts;

typedef struct ps_root ps_root;

/* Bind the API address, start the front and serve it with be/be_ctx (the
 * real backend) until ps_root_stop. 0 and *out set, or -1 with err filled
 * (unknown user, bind failure, no exec). */
int ps_root_start(const ps_opts *o, const api_backend *be, void *be_ctx, ps_root **out, char *err,
                  size_t errlen);
/* The bound port. */
uint16_t ps_root_port(const ps_root *r);
/* Stop the front (SIGTERM, SIGKILL after 5 s) and the supervisor; free.
 * NULL is a no-op. Returns once no call of the front runs in the root. */
void ps_root_stop(ps_root *r);

/* main() of the front process (argv[1] == PS_FRONT_ARG): returns the exit
 * status. Not for anyone but ps_root_start's child. */
int ps_front_main(int argc, char **argv);

#endif

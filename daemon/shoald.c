/* shoald.c - the shoal host daemon: configuration, fleet, REST API, signals. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "backend.h"
#include "config.h"
#include "fleet.h"
#include "log.h"
#include "privsep.h"
#include "sdnotify.h"
#include "tokens.h"
#include "tstack.h"

/* Memory per running guest (issue 13, docs/benchmarks.md "shoald memory per
 * instance"): libvirt's embedded driver runs one event thread per running
 * domain, and glibc gives every thread a cache (tcache) of up to 7 freed
 * chunks per size class up to 1 KiB that no other thread reuses: measured
 * at 42 KiB of shoald's RSS per running guest (100 -> 200 guests). glibc
 * reads its tunables only when a program starts, so shoald starts itself
 * again, once, before anything else, with this added to GLIBC_TUNABLES. An
 * operator's own glibc.malloc.tcache_count wins. QEMU does not inherit it:
 * libvirt starts QEMU with an environment of its own. */
#define SHOALD_TCACHE_TUNABLE "glibc.malloc.tcache_count=0"

/* The same for GLib's slice allocator (GLib 2.74, Debian 12), which libvirt
 * allocates its objects, events, GSources and list nodes from: it keeps
 * per-thread magazines of freed chunks, so every domain's event thread
 * holds slabs of its own. G_SLICE=always-malloc makes it call malloc (what
 * GLib does anyway from 2.76 on, where the variable is ignored). GLib
 * reads it once, before main (GObject's constructor makes hash tables),
 * hence the same restart. An operator's own G_SLICE wins. */
#define SHOALD_GSLICE "always-malloc"

/* Starts at scale (issue 13, docs/node.md "Starts at scale"): libvirt forks
 * shoald up to 4 times per start while holding its security manager's lock
 * (docs/benchmarks.md "What a start waits for"), so every fork's cost is a
 * wait for every other start, and that cost grows with shoald's threads:
 * one libvirt event thread per running guest. tstack.c gives every thread
 * a stack of shoald's (no copy-on-write of each thread's descriptor in the
 * fork child, few mappings); this is their default size where a thread
 * does not choose one (libvirt's, GLib's, shoald's): 512 KiB instead of
 * glibc's RLIMIT_STACK (8 MiB), so their page tables are small too
 * (musl's default is 128 KiB; shoald's deepest frames are 64 KiB buffers).
 * Sanitizer builds keep glibc's default (ASan's frames are larger). */
#define SHOALD_THREAD_STACK (512u * 1024u)

/* The GLIBC_TUNABLES value shoald wants given the current one (may be
 * NULL): 1 and out filled when it differs, 0 when it already says
 * something about the tcache count (ours or the operator's) or does not
 * fit. */
static int tunables_wanted(const char *cur, char *out, size_t outlen)
{
    int n;
    if (cur && strstr(cur, "glibc.malloc.tcache_count="))
        return 0;
    n = snprintf(out, outlen, "%s%s%s", cur ? cur : "", cur && cur[0] ? ":" : "",
                 SHOALD_TCACHE_TUNABLE);
    return n > 0 && (size_t)n < outlen;
}

/* Before any thread starts: SHOALD_THREAD_STACK for threads that do not
 * choose (a failure keeps glibc's default; only forks cost more). */
static void thread_stack_default(void)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    pthread_attr_t a;
    size_t cur = 0;
    int rc;

    if (pthread_getattr_default_np(&a) != 0)
        return;
    /* an operator's smaller RLIMIT_STACK wins */
    if (pthread_attr_getstacksize(&a, &cur) == 0 && cur > SHOALD_THREAD_STACK &&
        (rc = pthread_attr_setstacksize(&a, SHOALD_THREAD_STACK)) == 0 &&
        (rc = pthread_setattr_default_np(&a)) != 0)
        log_warn("thread stacks stay at %zu KiB: %s", cur / 1024, strerror(rc));
    pthread_attr_destroy(&a);
#endif
}

/* /metrics: shoald's thread stacks (tstack.h), so that an operator sees
 * libvirt's per-guest threads on them. */
static void process_metrics(api_sink *out)
{
    tstack_stats_t ts;

    if (!tstack_active())
        return;
    tstack_stats(&ts);
    api_sink_printf(out,
                    "# HELP shoal_thread_stacks Thread stacks of shoald's process by state "
                    "(live: a thread on it; retiring: its detached thread ended, the kernel "
                    "not done; pooled: kept for reuse).\n"
                    "# TYPE shoal_thread_stacks gauge\n"
                    "shoal_thread_stacks{state=\"live\"} %zu\n"
                    "shoal_thread_stacks{state=\"retiring\"} %zu\n"
                    "shoal_thread_stacks{state=\"pooled\"} %zu\n"
                    "# HELP shoal_thread_stack_guard_markers Guard pages are markers in "
                    "shared mappings (1) or mappings of their own (0).\n"
                    "# TYPE shoal_thread_stack_guard_markers gauge\n"
                    "shoal_thread_stack_guard_markers %d\n"
                    "# HELP shoal_threads_created_total Threads created on shoald's stacks.\n"
                    "# TYPE shoal_threads_created_total counter\n"
                    "shoal_threads_created_total %zu\n",
                    ts.live, ts.retiring, ts.pooled, ts.guard_markers, ts.created);
}

/* The API in this process (--privsep off), or in a front process of its
 * own that calls back into this one (privsep.h). */
static int serve_api(const cfg_t *cfg, const api_config *ac, fleet *f, api_server **srv,
                     ps_root **ps, char *err, size_t errlen)
{
    api_err aerr;
    ps_opts po = {
        .listen_host = cfg->listen_host,
        .listen_port = cfg->listen_port,
        .tls_cert = ac->tls_cert_path,
        .tls_key = ac->tls_key_path,
        .user = cfg->privsep_user,
        .state_dir = cfg->state_dir,
        .max_conns = ac->max_connections,
        .max_conns_per_ip = ac->max_conns_per_ip,
        .timeout_s = ac->conn_timeout_s,
        .max_upload = ac->max_upload,
        .verbose = cfg->verbose,
    };

    if (strcmp(cfg->privsep, "on") == 0)
        return ps_root_start(&po, backend_get(), f, ps, err, errlen);
    if (api_server_start(ac, backend_get(), f, srv, &aerr) != 0) {
        snprintf(err, errlen, "%s", aerr.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cfg_t cfg;
    char err[1024];
    fleet *f = NULL;
    api_server *srv = NULL;
    ps_root *ps = NULL;
    unsigned port;
    api_config ac;
    tok_store *toks = NULL;
    char dbpath[4200];
    sigset_t set;
    int sig, rc, reexec_errno = 0, want_tunables, want_gslice;

    if (argc > 1 && strcmp(argv[1], PS_FRONT_ARG) == 0)
        return ps_front_main(argc, argv); /* the API front (privsep.h) */
    want_tunables = tunables_wanted(getenv("GLIBC_TUNABLES"), err, sizeof err);
    want_gslice = getenv("G_SLICE") == NULL;
    if (want_tunables || want_gslice) {
        /* No thread exists yet. On failure carry on with the defaults.
         * Exec'd by its resolved path so the process keeps its name
         * (`shoald`, not `exe`: pgrep, systemctl status); /proc/self/exe
         * when the file is gone (an upgrade replaced it). */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if ((!want_tunables || setenv("GLIBC_TUNABLES", err, 1) == 0) &&
            (!want_gslice || setenv("G_SLICE", SHOALD_GSLICE, 1) == 0)) {
            if (n > 0) {
                self[n] = '\0';
                execv(self, argv);
            }
            execv("/proc/self/exe", argv);
        }
        reexec_errno = errno;
    }

    rc = cfg_load(&cfg, argc, argv, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "shoald: %s\n", err);
        return 2;
    }
    if (cfg.check_only) {
        printf("shoald: configuration ok (state dir %s, listen %s:%d%s%s)\n", cfg.state_dir,
               cfg.listen_host, cfg.listen_port, cfg.config_path[0] ? ", file " : "",
               cfg.config_path);
        return 0;
    }
    log_set_verbose(cfg.verbose);
    /* Large response bodies (instance lists are ~0.5 MB per 1,000) go to
     * mmap: with glibc's default sliding threshold they land in the heap and
     * every free runs malloc_consolidate, measured at ~20% of a list. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    thread_stack_default();

    /* Signals are taken synchronously by the main thread; block them before
     * any thread starts so that every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sdn_init(); /* systemd's Type=notify (sdnotify.h); before any thread */
    sdn_notify("STATUS=opening %s (a first start probes QEMU, ~10 s)", cfg.state_dir);

    log_info("shoald %s starting, state in %s", SHOAL_VERSION, cfg.state_dir);
    if (reexec_errno)
        log_warn("cannot restart with GLIBC_TUNABLES=%s G_SLICE=%s (%s): glibc's and "
                 "GLib's per-thread caches stay on (more memory per running guest)",
                 SHOALD_TCACHE_TUNABLE, SHOALD_GSLICE, strerror(reexec_errno));
    if (fleet_open(&cfg, &f, err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }
    memset(&ac, 0, sizeof ac);
    ac.listen_addr = cfg.listen_host;
    ac.port = (uint16_t)cfg.listen_port;
    ac.tls_cert_path = cfg.tls_cert[0] ? cfg.tls_cert : NULL;
    ac.tls_key_path = cfg.tls_key[0] ? cfg.tls_key : NULL;
    /* every token, the first-start admin one too, is checked by its hash
     * in the state database (tokens.h) */
    snprintf(dbpath, sizeof dbpath, "%s/shoald.db", cfg.state_dir);
    if (tok_open(dbpath, fleet_admin_token(f), &toks, err, sizeof err) != 0) {
        log_error("%s", err);
        fleet_close(f);
        return 1;
    }
    backend_set_tokens(toks);
    backend_set_process_metrics(process_metrics);
    ac.max_upload = 1ull << 30;
    /* issue 16: connection limits and the idle/header timeout (api.h) */
    ac.max_connections = (unsigned)cfg.api_max_conns;
    ac.max_conns_per_ip = (unsigned)cfg.api_max_conns_per_ip;
    ac.conn_timeout_s = (unsigned)cfg.api_timeout_s;
    if (serve_api(&cfg, &ac, f, &srv, &ps, err, sizeof err) != 0) {
        log_error("cannot serve the API on %s:%d: %s", cfg.listen_host, cfg.listen_port, err);
        tok_close(toks);
        fleet_close(f);
        return 1;
    }
    port = srv != NULL ? api_server_port(srv) : ps_root_port(ps);
    log_info("listening on %s://%s%s%s:%u (token in %s/admin.token)",
             ac.tls_cert_path ? "https" : "http", strchr(cfg.listen_host, ':') ? "[" : "",
             cfg.listen_host, strchr(cfg.listen_host, ':') ? "]" : "", port, cfg.state_dir);
    fflush(stderr);
    sdn_notify("READY=1\nSTATUS=serving the API on %s port %u", cfg.listen_host, port);

    do {
        rc = sigwait(&set, &sig);
    } while (rc == EINTR);
    log_info("signal %d: shutting down (instances keep running)", sig);
    sdn_notify("STOPPING=1\nSTATUS=shutting down (instances keep running)");
    api_server_stop(srv);
    ps_root_stop(ps);
    tok_close(toks);
    fleet_close(f);
    log_info("stopped");
    return 0;
}

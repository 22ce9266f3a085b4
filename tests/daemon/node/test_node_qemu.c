/*
 * test_node_qemu.c - the node layer against real QEMU through libvirt's
 * embedded driver (qemu:///embed?root=<tmpdir>), label `integration`.
 *
 * One embed root per test process (libvirt allows one per process, and the
 * first open of a root probes QEMU for ~8 s). Adoption of running domains
 * by a new process is tested with two child processes (this binary
 * re-executed with --child-start / --child-adopt). Every wait is bounded;
 * teardown destroys all shoal domains, kills any QEMU whose command line
 * mentions the temp root (by pid) and removes the root.
 *
 * Prints the measured timings (open, create, poweroff->STOPPED) and the
 * KVM verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evlog.h"
#include "node.h"
#include "shoal_skip.h"

#define WAIT_S 30.0

static char root[128];
static char root2[128];
static char uri[256];
static struct node *node;
static struct evlog elog;
static char err[NODE_ERR_MAX];

/* ---- helpers ---------------------------------------------------------- */

static int file_has(const char *path, const char *needle)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static int wait_file_has(const char *path, const char *needle, double timeout_s)
{
    double deadline = evlog_now() + timeout_s;
    while (evlog_now() < deadline) {
        if (file_has(path, needle))
            return 1;
        usleep(20000);
    }
    return 0;
}

struct guest {
    char name[64], id[64], console[256], status[256];
    struct domxml_spec spec;
};

static void guest_init(struct guest *g, const char *id, const char *cmdline, enum domxml_virt virt)
{
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    snprintf(g->name, sizeof g->name, "t-%s", id);
    snprintf(g->console, sizeof g->console, "%s/%s.console", root, id);
    snprintf(g->status, sizeof g->status, "%s/%s.status", root, id);
    g->spec = (struct domxml_spec){
        .name = g->name,
        .virt = virt,
        .boot = DOMXML_BOOT_PVH,
        .memory_mib = 16,
        .vcpus = 1,
        .kernel = CANARY_ELF,
        .cmdline = cmdline,
        .console_log = g->console,
        .status_log = g->status,
        .instance_id = g->id,
    };
}

static void start_ok(struct guest *g, double *create_s)
{
    double t0 = evlog_now();
    int rc = node_start(node, &g->spec, NULL, err, sizeof err);
    if (rc != NODE_OK)
        fail_msg("node_start %s: %d %s", g->name, rc, err);
    if (create_s)
        *create_s = evlog_now() - t0;
}

static void expect_event(const char *id, enum node_event ev, const char *detail,
                         struct evlog_entry *out)
{
    struct evlog_entry e;
    if (evlog_wait(&elog, id, ev, WAIT_S, &e) < 0)
        fail_msg("no %s event for '%s' within %.0f s", node_event_name(ev), id, WAIT_S);
    if (detail && strcmp(e.detail, detail) != 0)
        fail_msg("%s event for '%s' has detail '%s', want '%s'", node_event_name(ev), id, e.detail,
                 detail);
    if (out)
        *out = e;
}

/* The events logged so far for instance id, in arrival order; returns the
 * count (at most max). */
static int events_of(const char *id, struct evlog_entry *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&elog.lock);
    for (int i = 0; i < elog.n && k < max; i++)
        if (strcmp(elog.e[i].id, id) == 0)
            out[k++] = elog.e[i];
    pthread_mutex_unlock(&elog.lock);
    return k;
}

/* Format the events of id as "started(booted) suspended(paused) ..." */
static void events_str(const char *id, char *buf, size_t len)
{
    struct evlog_entry e[16];
    int k = events_of(id, e, 16);
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < k && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s(%s)", i ? " " : "", node_event_name(e[i].ev),
                              e[i].detail);
}

static int list_find(const char *id, struct node_dom *out)
{
    struct node_dom *l = NULL;
    size_t n = 0;
    int found = 0;
    int rc = node_list(node, &l, &n, err, sizeof err);
    if (rc != NODE_OK)
        fail_msg("node_list: %d %s", rc, err);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].instance_id, id) == 0) {
            found = 1;
            if (out)
                *out = l[i];
        }
    }
    node_list_free(l);
    return found;
}

/* Kill (by pid) every process whose command line mentions dir. */
static void kill_qemus_under(const char *dir)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        char path[300], buf[8192];
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        if (strstr(buf, "qemu-system") && strstr(buf, dir)) {
            fprintf(stderr, "teardown: killing leftover qemu pid %d\n", (int)pid);
            kill(pid, SIGKILL);
        }
    }
    closedir(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void destroy_all(struct node *n)
{
    struct node_dom *l = NULL;
    size_t cnt = 0;
    if (!n || node_list(n, &l, &cnt, NULL, 0) != NODE_OK)
        return;
    for (size_t i = 0; i < cnt; i++)
        node_destroy(n, l[i].name, NULL, 0);
    node_list_free(l);
}

static struct node *open_root(struct evlog *log, double *open_s)
{
    struct node_opts o = { .state_dir = root, .on_event = evlog_cb, .user = log };
    struct node *n = NULL;
    double t0 = evlog_now();
    int rc = node_open(uri, &o, &n, err, sizeof err);
    if (open_s)
        *open_s = evlog_now() - t0;
    if (rc != NODE_OK) {
        fprintf(stderr, "node_open %s: %d %s\n", uri, rc, err);
        return NULL;
    }
    return n;
}

/* ---- children (a new process per embed-root user) ------------------------- */

static int child_start(void)
{
    struct evlog l;
    struct guest g;
    int rc = 1;
    evlog_init(&l);
    node = open_root(&l, NULL);
    if (!node)
        goto out;
    guest_init(&g, "adopt-1", "canary=hang", node_domain_type(node));
    if (node_start(node, &g.spec, NULL, err, sizeof err) != NODE_OK) {
        fprintf(stderr, "child: start: %s\n", err);
        goto out;
    }
    if (evlog_wait(&l, "adopt-1", NODE_EVENT_STARTED, WAIT_S, NULL) < 0 ||
        !wait_file_has(g.console, "hang", WAIT_S)) {
        fprintf(stderr, "child: adopt-1 did not start\n");
        goto out;
    }
    rc = 0; /* exit leaving the guest running */
out:
    node_close(node);
    evlog_destroy(&l);
    return rc;
}

static int child_adopt(void)
{
    struct evlog l;
    struct node_dom d;
    double open_s;
    int rc = 1;
    evlog_init(&l);
    node = open_root(&l, &open_s);
    if (!node)
        goto out;
    fprintf(stderr, "child: reopen with a running domain took %.3f s (%s)\n", open_s,
            node_domain_type_reason(node));
    /* child 1 ran the canary on this root; its verdict must be reused */
    if (strncmp(node_domain_type_reason(node), "cached verdict", 14) != 0) {
        fprintf(stderr, "child: verdict not taken from the cache\n");
        goto out;
    }
    /* straight after open: the domain must be listed, running, and
     * destroyable (node_open waited for libvirt's async adoption) */
    if (!list_find("adopt-1", &d) || d.state != NODE_DOM_RUNNING) {
        fprintf(stderr, "child: adopt-1 not listed as running\n");
        goto out;
    }
    if (node_destroy(node, d.name, err, sizeof err) != NODE_OK) {
        fprintf(stderr, "child: destroy adopted: %s\n", err);
        goto out;
    }
    if (evlog_wait(&l, "adopt-1", NODE_EVENT_STOPPED, WAIT_S, NULL) < 0) {
        fprintf(stderr, "child: no STOPPED for adopt-1\n");
        goto out;
    }
    if (list_find("adopt-1", NULL)) {
        fprintf(stderr, "child: adopt-1 still listed after destroy\n");
        goto out;
    }
    rc = 0;
out:
    node_close(node);
    evlog_destroy(&l);
    return rc;
}

static int run_child(const char *mode, const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_node_qemu", mode, dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- setup / teardown ----------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    double open_s;
    snprintf(root, sizeof root, "/tmp/shoal-node-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(uri, sizeof uri, "qemu:///embed?root=%s", root);
    evlog_init(&elog);
    elog.verbose = getenv("SHOAL_TEST_VERBOSE") != NULL;
    node = open_root(&elog, &open_s);
    if (!node)
        return -1;
    fprintf(stderr, "open %s: %.3f s; domain type %s (%s)\n", uri, open_s,
            node_domain_type(node) == DOMXML_VIRT_KVM ? "kvm" : "qemu",
            node_domain_type_reason(node));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    destroy_all(node);
    node_close(node);
    node = NULL;
    if (root[0]) {
        kill_qemus_under(root);
        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (root2[0]) {
        kill_qemus_under(root2);
        nftw(root2, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    evlog_destroy(&elog);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void capacity(void **state)
{
    (void)state;
    struct node_capacity c;
    assert_int_equal(node_capacity(node, &c, err, sizeof err), NODE_OK);
    assert_true(c.memory_mib > 0);
    assert_true(c.vcpus > 0);
    assert_string_equal(node_uri(node), uri);
    fprintf(stderr, "capacity: %llu MiB (%llu free), %u vcpus, %s\n",
            (unsigned long long)c.memory_mib, (unsigned long long)c.free_memory_mib, c.vcpus,
            c.model);
}

/* node_open writes what an embedded root needs into ROOT/etc/qemu.conf and
 * keeps an operator's own values. libvirt allows one embed root per
 * process, so opening a second one here fails, but only after its
 * qemu.conf was written, which is what the second half checks. */
static void write_conf(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void qemu_conf_settings(void **state)
{
    (void)state;
    char path[300], dir[128], conf[300], u2[256], want[64];
    struct node *n2 = NULL;
    unsigned uid = 0, gid = 0;
    struct stat st;

    assert_int_equal(node_qemu_ids(NULL, &uid, &gid, err, sizeof err), NODE_OK);
    assert_int_not_equal(uid, 0);
    snprintf(path, sizeof path, "%s/etc/qemu.conf", root);
    assert_true(file_has(path, "stdio_handler = \"file\"\n"));
    assert_true(file_has(path, "remember_owner = 0\n"));
    snprintf(want, sizeof want, "\nuser = \"+%u\"\ngroup = \"+%u\"\n", uid, gid);
    assert_true(file_has(path, want));
    assert_true(file_has(path, "\ndynamic_ownership = 0\n"));
    assert_true(file_has(path, "\nclear_emulator_capabilities = 1\n"));
    assert_true(file_has(path, "\nseccomp_sandbox = 1\n"));
    /* The root lets QEMU's group through, nobody else. */
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0710);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_gid, gid);

    snprintf(dir, sizeof dir, "/tmp/shoal-conf-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof conf, "%s/etc", dir);
    assert_int_equal(mkdir(conf, 0755), 0);
    snprintf(conf, sizeof conf, "%s/etc/qemu.conf", dir);
    snprintf(u2, sizeof u2, "qemu:///embed?root=%s", dir);
    /* An operator's file with stdio_handler: remember_owner is added (a
     * comment does not count) in shoal's block, with QEMU's user. */
    write_conf(conf, "stdio_handler = \"file\"\n# remember_owner = 1");
    node_open(u2, NULL, &n2, err, sizeof err);
    node_close(n2);
    n2 = NULL;
    assert_true(file_has(conf, "stdio_handler = \"file\"\n# remember_owner = 1\n# shoal: begin"));
    assert_true(file_has(conf, "\nremember_owner = 0\n"));
    assert_true(file_has(conf, want));
    assert_true(file_has(conf, "# shoal: end\n"));
    /* An operator's remember_owner is kept, and not written again; a
     * second open rewrites the block in place (one block). */
    write_conf(conf, "remember_owner=1\n stdio_handler = \"file\"\n");
    node_open(u2, NULL, &n2, err, sizeof err);
    node_close(n2);
    n2 = NULL;
    node_open(u2, NULL, &n2, err, sizeof err);
    node_close(n2);
    n2 = NULL;
    assert_false(file_has(conf, "remember_owner = 0"));
    assert_true(file_has(conf, "remember_owner=1\n stdio_handler = \"file\"\n# shoal: begin"));
    assert_false(file_has(conf, "# shoal: end\n# shoal: begin"));
    /* A root written before issue 16 (QEMU as root): shoal's old lines go. */
    write_conf(conf,
               "# mine\n# written by shoal (docs/node.md, \"Connection\")\nremember_owner = 0\n"
               "stdio_handler = \"file\"\nuser = \"+0\"\ngroup = \"+0\"\n");
    node_open(u2, NULL, &n2, err, sizeof err);
    node_close(n2);
    n2 = NULL;
    assert_false(file_has(conf, "user = \"+0\""));
    assert_false(file_has(conf, "written by shoal"));
    assert_true(file_has(conf, "# mine\n# shoal: begin"));
    assert_true(file_has(conf, want));
    /* The operator may not choose QEMU's user or its confinement there. */
    write_conf(conf, "user = \"root\"\n");
    assert_int_equal(node_open(u2, NULL, &n2, err, sizeof err), NODE_E_INVAL);
    assert_non_null(strstr(err, "sets 'user'"));
    write_conf(conf, "seccomp_sandbox = 0\n");
    assert_int_equal(node_open(u2, NULL, &n2, err, sizeof err), NODE_E_INVAL);
    assert_non_null(strstr(err, "seccomp_sandbox"));
    /* No such user: refused, with the way out. */
    write_conf(conf, "");
    struct node_opts o = { .qemu_user = "shoal-no-such-user" };
    assert_int_equal(node_open(u2, &o, &n2, err, sizeof err), NODE_E_INVAL);
    assert_non_null(strstr(err, "'shoal-no-such-user' does not exist"));
    assert_non_null(strstr(err, "--qemu-user"));
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void poweroff(enum domxml_virt virt, const char *id)
{
    struct guest g;
    struct evlog_entry st, sd, sp;
    double create_s;

    char seq[512];

    guest_init(&g, id, NULL, virt);
    start_ok(&g, &create_s);
    expect_event(id, NODE_EVENT_STARTED, "booted", &st);
    expect_event(id, NODE_EVENT_SHUTDOWN, NULL, &sd);
    expect_event(id, NODE_EVENT_STOPPED, "shutdown", &sp);
    assert_true(file_has(g.console, "ok"));
    assert_false(list_find(id, NULL));
    /* the order node.h documents: node_start creates the domain paused and
     * then resumes it */
    events_str(id, seq, sizeof seq);
    if (strcmp(seq, "started(booted) suspended(paused) resumed(unpaused) "
                    "shutdown(guest) stopped(shutdown)") != 0)
        fail_msg("%s: events %s", id, seq);
    fprintf(stderr,
            "%s: create %.3f s, STARTED->SHUTDOWN %.3f s, "
            "SHUTDOWN->STOPPED %.3f s\n",
            virt == DOMXML_VIRT_KVM ? "kvm" : "tcg", create_s, sd.t - st.t, sp.t - sd.t);
}

static void poweroff_tcg(void **state)
{
    (void)state;
    poweroff(DOMXML_VIRT_QEMU, "off-tcg");
}

static void poweroff_kvm(void **state)
{
    (void)state;
    /* Where KVM cannot run guests at all, the same path runs under TCG. */
    if (!node_kvm_works(node)) {
        fprintf(stderr, "KVM not usable here (%s): running under TCG\n",
                node_domain_type_reason(node));
        poweroff(DOMXML_VIRT_QEMU, "off-kvm-fallback");
        return;
    }
    poweroff(DOMXML_VIRT_KVM, "off-kvm");
}

/* A guest that powers off as soon as it runs (the canary under TCG, ~10 ms
 * after its vCPUs start) must be reported as started and then ended, never
 * as a failed start. libvirt kills QEMU from its SHUTDOWN handler; when a
 * plain virDomainCreateXML was still finishing, the create failed with
 * "qemu unexpectedly closed the monitor ... terminating on signal 15"
 * (issue 12). The window is widest when the starting thread waits for a
 * CPU, so this case keeps both cores busy with SHOAL_TEST_BUSY (default 2)
 * spinning child processes while it starts IMMEDIATE_N guests one after
 * another. Against the old plain create this case failed 3 runs of 3: failed
 * starts (issue 12's error), or SHUTDOWN delivered before STARTED. */
#define IMMEDIATE_N 8

static void poweroff_immediate(void **state)
{
    (void)state;
    struct guest g[IMMEDIATE_N];
    pid_t busy[8];
    int nbusy = 2, failed = 0;
    char first_err[NODE_ERR_MAX + 64] = "", seq[512];
    const char *env = getenv("SHOAL_TEST_BUSY");
    double t0, worst = 0;

    if (env)
        nbusy = atoi(env) < 0 ? 0 : atoi(env) > 8 ? 8 : atoi(env);
    for (int b = 0; b < nbusy; b++) {
        busy[b] = fork();
        if (busy[b] == 0) {
            alarm(120); /* never outlive a crashed test for long */
            for (volatile unsigned long x = 0;; x++)
                ;
        }
    }
    for (int i = 0; i < IMMEDIATE_N; i++) {
        char id[32];
        snprintf(id, sizeof id, "off-now-%d", i);
        guest_init(&g[i], id, NULL, DOMXML_VIRT_QEMU);
        t0 = evlog_now();
        int rc = node_start(node, &g[i].spec, NULL, err, sizeof err);
        if (evlog_now() - t0 > worst)
            worst = evlog_now() - t0;
        if (rc != NODE_OK) {
            if (!failed++)
                snprintf(first_err, sizeof first_err, "%s: %d %s", id, rc, err);
            g[i].id[0] = '\0';
        } else {
            /* Let libvirt finish tearing this guest down before the next
             * start: each start still races its own guest's poweroff, and
             * no libvirt thread is busy tearing down while the next start
             * forks (under ASan, GCC 12's allocator has no fork handler, and
             * a fork child of libvirt that logs hung on its lock). */
            struct evlog_entry done;
            (void)evlog_wait(&elog, g[i].id, NODE_EVENT_STOPPED, WAIT_S, &done);
        }
    }
    for (int b = 0; b < nbusy; b++) {
        if (busy[b] > 0) {
            kill(busy[b], SIGKILL);
            waitpid(busy[b], NULL, 0);
        }
    }
    fprintf(stderr,
            "immediate poweroff: %d of %d starts failed with %d busy "
            "loops (slowest start %.3f s)%s%s\n",
            failed, IMMEDIATE_N, nbusy, worst, failed ? "; first: " : "", first_err);
    if (failed)
        fail_msg("%d of %d immediate-poweroff guests failed to start; first: %s", failed,
                 IMMEDIATE_N, first_err);
    for (int i = 0; i < IMMEDIATE_N; i++) {
        struct evlog_entry st, sd, sp;
        expect_event(g[i].id, NODE_EVENT_STARTED, "booted", &st);
        expect_event(g[i].id, NODE_EVENT_SHUTDOWN, "guest", &sd);
        expect_event(g[i].id, NODE_EVENT_STOPPED, "shutdown", &sp);
        events_str(g[i].id, seq, sizeof seq);
        if (!(st.t <= sd.t && sd.t <= sp.t))
            fail_msg("%s: events out of order: %s", g[i].id, seq);
        if (!file_has(g[i].console, "ok"))
            fail_msg("%s: console has no 'ok' (events %s)", g[i].id, seq);
        assert_false(list_find(g[i].id, NULL));
    }
}

static void poweroff_multiboot(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g, "off-mb", NULL, DOMXML_VIRT_QEMU);
    g.spec.kernel = CANARY_MB_ELF;
    g.spec.boot = DOMXML_BOOT_MULTIBOOT;
    start_ok(&g, NULL);
    expect_event("off-mb", NODE_EVENT_STOPPED, "shutdown", NULL);
    assert_true(file_has(g.console, "ok"));
}

static void hang_list_destroy(void **state)
{
    (void)state;
    struct guest g;
    struct node_dom d;
    struct evlog_entry e;

    guest_init(&g, "hang-1", "canary=hang", node_domain_type(node));
    start_ok(&g, NULL);
    expect_event("hang-1", NODE_EVENT_STARTED, NULL, NULL);
    assert_true(wait_file_has(g.console, "hang", WAIT_S));
    assert_true(list_find("hang-1", &d));
    assert_string_equal(d.name, "t-hang-1");
    assert_int_equal(d.state, NODE_DOM_RUNNING);
    assert_int_equal(d.internal_error, 0);
    assert_int_equal(strlen(d.uuid), DOMXML_UUID_LEN);
    assert_int_equal(node_state(node, "t-hang-1", &d, err, sizeof err), NODE_OK);
    assert_int_equal(d.state, NODE_DOM_RUNNING);
    assert_string_equal(d.instance_id, "hang-1");

    double t0 = evlog_now();
    assert_int_equal(node_destroy(node, "t-hang-1", err, sizeof err), NODE_OK);
    expect_event("hang-1", NODE_EVENT_STOPPED, "destroyed", &e);
    fprintf(stderr, "destroy -> STOPPED: %.3f s\n", e.t - t0);
    assert_false(list_find("hang-1", NULL));
    assert_int_equal(node_destroy(node, "t-hang-1", err, sizeof err), NODE_E_NOTFOUND);
    assert_non_null(strstr(err, "'t-hang-1'"));
    assert_int_equal(node_state(node, "t-hang-1", &d, err, sizeof err), NODE_E_NOTFOUND);
}

/* The pid of the QEMU whose command line names guest=NAME, or 0. */
static pid_t qemu_pid_of(const char *name)
{
    char want[128], path[300], buf[8192];
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t found = 0;
    snprintf(want, sizeof want, "guest=%s,", name);
    while (d && !found && (de = readdir(d))) {
        FILE *f;
        size_t n;
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = '\0';
        if (strstr(buf, "qemu-system") && strstr(buf, want))
            found = (pid_t)atoi(de->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

/* "Key:\tvalue" of /proc/PID/status into out. */
static int proc_status(pid_t pid, const char *key, char *out, size_t len)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            snprintf(out, len, "%s", line + kl + 1 + strspn(line + kl + 1, " \t"));
            out[strcspn(out, "\n")] = '\0';
        }
    }
    fclose(f);
    return out[0] ? 0 : -1;
}

/* A cgroup v1 file of pid's controller ctl ("memory", "cpu"), its
 * domain's level (libvirt puts QEMU's threads one level down, "emulator"). */
static long long cgroup_value(pid_t pid, const char *ctl, const char *file)
{
    char path[600], line[512], *p;
    long long v = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    path[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || (size_t)(c2 - c1 - 1) != strlen(ctl) || strncmp(c1 + 1, ctl, strlen(ctl)))
            continue;
        c2[strcspn(c2, "\n")] = '\0';
        if ((p = strstr(c2 + 1, "/emulator")) && !p[9])
            *p = '\0';
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s/%s", ctl, c2 + 1, file);
    }
    fclose(f);
    if (path[0] && (f = fopen(path, "r"))) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Issue 16: a guest's QEMU as seen from outside. It runs as QEMU's user
 * (not root) with no capabilities and its seccomp filter; the private
 * record is on fw_cfg, not on its command line, and its file is gone once
 * the domain exists; its cgroup limits memory and CPU. */
static void confined(void **state)
{
    (void)state;
    struct guest g;
    char v[128], cfg[300], cmd[8192];
    unsigned uid = 0, gid = 0;
    pid_t pid;
    FILE *f;
    size_t n;

    assert_int_equal(node_qemu_ids(NULL, &uid, &gid, err, sizeof err), NODE_OK);
    guest_init(&g, "conf-1", "canary=hang", DOMXML_VIRT_QEMU);
    g.spec.fwcfg_data = "DB_PASSWORD=conf-secret-1 -- arg-secret-1";
    start_ok(&g, NULL);
    expect_event("conf-1", NODE_EVENT_STARTED, NULL, NULL);
    assert_true(wait_file_has(g.console, "hang", WAIT_S));
    pid = qemu_pid_of("t-conf-1");
    assert_true(pid > 0);
    assert_int_equal(proc_status(pid, "Uid", v, sizeof v), 0);
    fprintf(stderr, "QEMU %d: Uid %s", (int)pid, v);
    assert_int_equal((unsigned)atoi(v), uid);
    assert_int_equal(proc_status(pid, "CapEff", v, sizeof v), 0);
    fprintf(stderr, ", CapEff %s", v);
    assert_string_equal(v, "0000000000000000");
    assert_int_equal(proc_status(pid, "Seccomp", v, sizeof v), 0);
    fprintf(stderr, ", Seccomp %s\n", v);
    assert_string_equal(v, "2");
    snprintf(cfg, sizeof cfg, "/proc/%d/cmdline", (int)pid);
    assert_non_null(f = fopen(cfg, "r"));
    n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!cmd[i])
            cmd[i] = ' ';
    cmd[n] = '\0';
    assert_null(strstr(cmd, "conf-secret-1"));
    assert_null(strstr(cmd, "arg-secret-1"));
    assert_non_null(strstr(cmd, "name=opt/org.shoal/cmdline,file="));
    snprintf(cfg, sizeof cfg, "%s/guestcfg/t-conf-1.cfg", root);
    assert_int_not_equal(access(cfg, F_OK), 0);
    /* Limits: where this process sees the controllers (not under
     * `ip netns exec`, which hides them; node_confinement says so). */
    fprintf(stderr, "confinement: %s\n", node_confinement(node));
    if (strstr(node_confinement(node), "memory"))
        assert_int_equal(cgroup_value(pid, "memory", "memory.limit_in_bytes"),
                         (16ll + NODE_QEMU_MEM_OVERHEAD_MIB) << 20);
    if (strstr(node_confinement(node), "cpu"))
        assert_int_equal(cgroup_value(pid, "cpu", "cpu.cfs_quota_us"),
                         (100ll + NODE_QEMU_CPU_EXTRA_PCT) * 1000);
    assert_int_equal(node_destroy(node, "t-conf-1", err, sizeof err), NODE_OK);
    expect_event("conf-1", NODE_EVENT_STOPPED, "destroyed", NULL);
    /* libvirt's log of the domain goes when asked to. */
    snprintf(cfg, sizeof cfg, "%s/log/qemu/t-conf-1.log", root);
    assert_int_equal(access(cfg, F_OK), 0);
    assert_int_equal(node_domain_log_remove(uri, "t-conf-1"), 0); /* this root's */
    assert_int_not_equal(access(cfg, F_OK), 0);
}

static void hang_shutdown_forced(void **state)
{
    (void)state;
    struct guest g;
    int forced = -1;
    guest_init(&g, "hang-2", "canary=hang", node_domain_type(node));
    start_ok(&g, NULL);
    expect_event("hang-2", NODE_EVENT_STARTED, NULL, NULL);
    double t0 = evlog_now();
    assert_int_equal(node_shutdown(node, "t-hang-2", 500, &forced, err, sizeof err), NODE_OK);
    assert_int_equal(forced, 1); /* the canary ignores the power button */
    expect_event("hang-2", NODE_EVENT_STOPPED, "destroyed", NULL);
    fprintf(stderr, "shutdown(500 ms) -> gone: %.3f s\n", evlog_now() - t0);
    assert_int_equal(node_shutdown(node, "t-hang-2", 500, &forced, err, sizeof err),
                     NODE_E_NOTFOUND);
}

static void panic_is_crash(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g, "panic-1", "canary=panic", node_domain_type(node));
    start_ok(&g, NULL);
    expect_event("panic-1", NODE_EVENT_CRASHED, "panicked", NULL);
    expect_event("panic-1", NODE_EVENT_STOPPED, "crashed", NULL);
}

static void kvm_internal_error(void **state)
{
    (void)state;
    struct guest g;
    struct node_dom d;
    struct evlog_entry e;

    /* How KVM reports a guest it cannot run: a KVM-only path, so no TCG
     * fallback. Run alone (--kvm, CTest test_node_qemu_kvm, registered
     * where KVM works); where KVM cannot start a domain after all, the case
     * skips and the program exits 77 (CTest: Skipped). */
    if (access("/dev/kvm", R_OK | W_OK) != 0)
        SHOAL_SKIP("kvm_internal_error: /dev/kvm not usable");
    guest_init(&g, "sse-kvm", "canary=sse", DOMXML_VIRT_KVM);
    if (node_start(node, &g.spec, NULL, err, sizeof err) != NODE_OK)
        SHOAL_SKIP("kvm_internal_error: kvm domain does not start: %s", err);
    /* kvm-pvm: emulation failure pauses the VM -> CRASHED kvm-internal-error.
     * Hardware KVM: #UD -> triple fault -> reset -> STOPPED. */
    for (double end = evlog_now() + WAIT_S; evlog_now() < end;) {
        if (evlog_wait(&elog, "sse-kvm", NODE_EVENT_CRASHED, 0.1, &e) >= 0)
            break;
        if (evlog_wait(&elog, "sse-kvm", NODE_EVENT_STOPPED, 0.1, NULL) >= 0) {
            fprintf(stderr, "sse under kvm: guest reset (hardware KVM?)\n");
            return;
        }
    }
    assert_string_equal(e.detail, "kvm-internal-error");
    assert_int_equal(node_state(node, "t-sse-kvm", &d, err, sizeof err), NODE_OK);
    assert_int_equal(d.state, NODE_DOM_PAUSED);
    assert_int_equal(d.internal_error, 1);
    assert_true(list_find("sse-kvm", &d));
    assert_int_equal(d.internal_error, 1);
    assert_int_equal(node_destroy(node, "t-sse-kvm", err, sizeof err), NODE_OK);
    expect_event("sse-kvm", NODE_EVENT_STOPPED, "destroyed", NULL);
}

static void start_errors(void **state)
{
    (void)state;
    struct guest g;

    guest_init(&g, "dup-1", "canary=hang", DOMXML_VIRT_QEMU);
    start_ok(&g, NULL);
    assert_int_equal(node_start(node, &g.spec, NULL, err, sizeof err), NODE_E_EXISTS);
    assert_non_null(strstr(err, "'t-dup-1'"));
    assert_int_equal(node_destroy(node, "t-dup-1", err, sizeof err), NODE_OK);

    guest_init(&g, "bad-1", NULL, DOMXML_VIRT_QEMU);
    g.spec.name = "bad name";
    assert_int_equal(node_start(node, &g.spec, NULL, err, sizeof err), NODE_E_INVAL);
    assert_non_null(strstr(err, "'bad name'"));

    guest_init(&g, "nokernel-1", NULL, DOMXML_VIRT_QEMU);
    g.spec.kernel = "/nonexistent/kernel.elf";
    assert_int_equal(node_start(node, &g.spec, NULL, err, sizeof err), NODE_E_LIBVIRT);
    fprintf(stderr, "missing kernel: %s\n", err);
    assert_false(list_find("nokernel-1", NULL));
}

/* Run `cp -a src dst`; 0 on success. */
static int copy_tree(const char *src, const char *dst)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("cp", "cp", "-a", src, dst, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* libvirt keeps an embedded driver alive until the process exits (its pid
 * file lock on ROOT/run/qemu/driver.pid stays held after the last close),
 * so the adoption test uses a second root, owned only by two successive
 * child processes. Copying the first root's capability cache avoids a
 * second ~8 s QEMU probe. */
static void adopt_in_new_process(void **state)
{
    (void)state;
    char src[300], dst[300];
    snprintf(root2, sizeof root2, "/tmp/shoal-node2-XXXXXX");
    assert_non_null(mkdtemp(root2));
    snprintf(src, sizeof src, "%s/cache", root);
    snprintf(dst, sizeof dst, "%s/cache", root2);
    if (copy_tree(src, dst) != 0)
        fprintf(stderr, "note: could not copy capability cache\n");
    double t0 = evlog_now();
    assert_int_equal(run_child("--child-start", root2), 0);
    fprintf(stderr, "child 1 (open, start, exit): %.3f s\n", evlog_now() - t0);
    t0 = evlog_now();
    assert_int_equal(run_child("--child-adopt", root2), 0);
    fprintf(stderr, "child 2 (open, adopt, destroy): %.3f s\n", evlog_now() - t0);
}

/* The embedded driver stays loaded in this process, so closing and
 * reopening the connection (what node_reconnect does) must work and see
 * running domains again. */
/* node_usage on a local host reads each guest's cost from /proc through
 * its pid file (no QMP round trip into QEMU): private memory, and CPU time
 * that only grows. */
static void usage_from_proc(void **state)
{
    (void)state;
    struct guest g;
    struct node_usage *u = NULL;
    size_t n = 0;
    uint64_t avail = 0, cpu1 = 0, cpu2 = 0;
    guest_init(&g, "use-1", "canary=hang", node_domain_type(node));
    start_ok(&g, NULL);
    expect_event("use-1", NODE_EVENT_STARTED, NULL, NULL);
    assert_true(wait_file_has(g.console, "hang", WAIT_S));
    for (int round = 0; round < 2; round++) {
        const struct node_usage *mine = NULL;
        if (round)
            usleep(300000);
        assert_int_equal(node_usage(node, &u, &n, &avail, err, sizeof err), NODE_OK);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(u[i].instance_id, "use-1"))
                mine = &u[i];
        assert_non_null(mine);
        assert_int_equal(mine->mem_private, 1);
        assert_in_range(mine->mem_kib, 1024, 512 * 1024);
        assert_true(mine->cpu_ns > 0);
        *(round ? &cpu2 : &cpu1) = mine->cpu_ns;
        free(u);
        u = NULL;
    }
    assert_true(cpu2 >= cpu1);
    assert_true(avail > 0);
    fprintf(stderr, "usage: cpu %.3f -> %.3f s\n", cpu1 / 1e9, cpu2 / 1e9);
    assert_int_equal(node_destroy(node, "t-use-1", err, sizeof err), NODE_OK);
    expect_event("use-1", NODE_EVENT_STOPPED, "destroyed", NULL);
}

static void reconnect_sees_running(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g, "recon-1", "canary=hang", node_domain_type(node));
    start_ok(&g, NULL);
    expect_event("recon-1", NODE_EVENT_STARTED, NULL, NULL);
    double t0 = evlog_now();
    int rc = node_reconnect(node, err, sizeof err);
    if (rc != NODE_OK)
        fail_msg("node_reconnect: %d %s", rc, err);
    fprintf(stderr, "reconnect: %.3f s\n", evlog_now() - t0);
    assert_true(node_alive(node));
    assert_true(list_find("recon-1", NULL));
    assert_int_equal(node_destroy(node, "t-recon-1", err, sizeof err), NODE_OK);
    /* events flow on the new connection */
    expect_event("recon-1", NODE_EVENT_STOPPED, "destroyed", NULL);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child-start") == 0) {
        snprintf(root, sizeof root, "%s", argv[2]);
        snprintf(uri, sizeof uri, "qemu:///embed?root=%s", root);
        return child_start();
    }
    if (argc == 3 && strcmp(argv[1], "--child-adopt") == 0) {
        snprintf(root, sizeof root, "%s", argv[2]);
        snprintf(uri, sizeof uri, "qemu:///embed?root=%s", root);
        return child_adopt();
    }
    /* The KVM-only case runs alone, as test_node_qemu_kvm, which CMake
     * registers only where KVM works (tests/CMakeLists.txt): elsewhere the
     * rest of this program still runs and passes, and nothing skips. */
    if (argc == 2 && strcmp(argv[1], "--kvm") == 0) {
        const struct CMUnitTest kvm_tests[] = {
            cmocka_unit_test(kvm_internal_error),
        };
        return shoal_test_exit(cmocka_run_group_tests(kvm_tests, group_setup, group_teardown));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity),           cmocka_unit_test(qemu_conf_settings),
        cmocka_unit_test(poweroff_tcg),       cmocka_unit_test(poweroff_kvm),
        cmocka_unit_test(poweroff_immediate), cmocka_unit_test(poweroff_multiboot),
        cmocka_unit_test(hang_list_destroy),  cmocka_unit_test(hang_shutdown_forced),
        cmocka_unit_test(confined),           cmocka_unit_test(panic_is_crash),
        cmocka_unit_test(start_errors),       cmocka_unit_test(reconnect_sees_running),
        cmocka_unit_test(usage_from_proc),    cmocka_unit_test(adopt_in_new_process),
    };
    return shoal_test_exit(cmocka_run_group_tests(tests, group_setup, group_teardown));
}

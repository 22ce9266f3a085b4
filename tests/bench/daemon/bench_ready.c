/* bench_ready - instance create-to-ready latency: shoald's REST API against
 * libvirt's virDomainCreateXML of the same domain XML (what `virsh create`
 * does), both to the guest's ready record on its status channel.
 *
 * usage: bench_ready SHOALD SLEEP_ELF [N]
 * Prints p50/p99 of both and the ratio. Uses loopback only; guests run
 * without network. Cleans up its VMs, daemon and temp dirs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "bench_boot.h"
#include "domxml.h"

#define PORT 17871

static volatile int loop_run = 1;
static void *event_loop(void *arg)
{
    (void)arg;
    while (loop_run)
        virEventRunDefaultImpl();
    return NULL;
}

static void loop_tick(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
}

/* ---- baseline: libvirt directly ---------------------------------------- */

static int baseline(const char *root, const char *kernel, const char *dtype, int n, double *out)
{
    char path[512], name[64];
    virConnectPtr conn;
    FILE *f;
    int done = 0;

    snprintf(path, sizeof path, "%s/etc", root);
    mkdir(root, 0700);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/etc/qemu.conf", root);
    f = fopen(path, "w");
    /* The same settings node_open writes for shoald's embedded root. */
    fputs("stdio_handler = \"file\"\nuser = \"+0\"\ngroup = \"+0\"\n", f);
    fclose(f);
    snprintf(path, sizeof path, "qemu:///embed?root=%s", root);
    conn = virConnectOpen(path);
    if (!conn) {
        fprintf(stderr, "baseline: cannot open %s\n", path);
        return -1;
    }
    for (int i = 0; i < n + 2; i++) { /* two warm-up runs */
        virDomainPtr d;
        double ms;
        snprintf(name, sizeof name, "bench-%d", i);
        if (!(d = bench_boot_sleep(conn, root, kernel, dtype, name, &ms)))
            break;
        if (i >= 2)
            out[done++] = ms;
        virDomainDestroy(d);
        virDomainFree(d);
    }
    virConnectClose(conn);
    return done;
}

/* ---- shoald over HTTP --------------------------------------------------- */

struct buf {
    char *p;
    size_t n;
};

static size_t collect(void *d, size_t sz, size_t nm, void *ud)
{
    struct buf *b = ud;
    char *np = realloc(b->p, b->n + sz * nm + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, d, sz * nm);
    b->n += sz * nm;
    b->p[b->n] = 0;
    return sz * nm;
}

static long http(CURL *c, const char *method, const char *url, const char *token, const char *ctype,
                 const void *body, long blen, struct buf *out)
{
    struct curl_slist *h = NULL;
    char auth[128];
    long code = 0;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, blen);
    }
    out->n = 0;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    return code;
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)*len + 1);
    if (fread(p, 1, (size_t)*len, f) != (size_t)*len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

static int daemon_runs(const char *state, const char *kernel, int n, double *out, char *dtype)
{
    char url[256], token[128] = "", path[512];
    CURL *c = curl_easy_init();
    struct buf b = { NULL, 0 };
    long len = 0;
    char *img = slurp(kernel, &len);
    int done = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/admin.token", state);
    f = fopen(path, "r");
    if (!f || !fgets(token, sizeof token, f)) {
        fprintf(stderr, "daemon: no token\n");
        return -1;
    }
    fclose(f);
    token[strcspn(token, "\n")] = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/images?ref=sleep:latest", PORT);
    if (http(c, "POST", url, token, "application/octet-stream", img, len, &b) != 201) {
        fprintf(stderr, "daemon: push failed: %s\n", b.p ? b.p : "");
        return -1;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/hosts/local", PORT);
    if (http(c, "GET", url, token, NULL, NULL, 0, &b) == 200) {
        json_t *j = json_loads(b.p, 0, NULL);
        snprintf(dtype, 8, "%s", json_string_value(json_object_get(j, "domain_type")));
        json_decref(j);
    }
    for (int i = 0; i < n + 2; i++) {
        const char *body = "{\"image\":\"sleep\",\"args\":[\"600\"],\"network\":false}";
        char id[32] = "";
        double t0 = now_ms();
        int ready = 0;
        json_t *j;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/instances", PORT);
        if (http(c, "POST", url, token, "application/json", body, (long)strlen(body), &b) != 201) {
            fprintf(stderr, "daemon: create failed: %s\n", b.p ? b.p : "");
            break;
        }
        j = json_loads(b.p, 0, NULL);
        snprintf(id, sizeof id, "%s",
                 json_string_value(
                     json_object_get(json_array_get(json_object_get(j, "items"), 0), "id")));
        json_decref(j);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/instances/%s", PORT, id);
        while (!ready && now_ms() - t0 < 30000) {
            if (http(c, "GET", url, token, NULL, NULL, 0, &b) == 200)
                ready =
                    strstr(b.p, "\"state\": \"running\"") || strstr(b.p, "\"state\":\"running\"");
            if (!ready)
                usleep(1000);
        }
        if (i >= 2 && ready)
            out[done++] = now_ms() - t0;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/instances/%s?force=true", PORT, id);
        http(c, "DELETE", url, token, NULL, NULL, 0, &b);
    }
    free(b.p);
    free(img);
    curl_easy_cleanup(c);
    return done;
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/shoal-bench-ready-XXXXXX", state[256], root[256], listen[64], url[128];
    char dtype[8] = "qemu", cmd[640];
    int n = argc > 3 ? atoi(argv[3]) : 20, nd, nb;
    double *d, *bl;
    pid_t pid;
    pthread_t loop;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_ready SHOALD SLEEP_ELF [N]\n");
        return 2;
    }
    d = calloc((size_t)n, sizeof *d);
    bl = calloc((size_t)n, sizeof *bl);
    /* QEMU runs as shoald's QEMU user (issue 16): it must get through
     * to the state dir, which shoald guards itself. */
    if (!mkdtemp(tmp) || chmod(tmp, 0711) != 0)
        return 1;
    snprintf(state, sizeof state, "%s/shoald", tmp);
    snprintf(root, sizeof root, "%s/baseline", tmp);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", PORT);
    curl_global_init(CURL_GLOBAL_ALL);

    pid = fork();
    if (pid == 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/shoald.log", tmp);
        mkdir(state, 0700);
        freopen(log, "w", stderr);
        execl(argv[1], argv[1], "--state-dir", state, "--listen", listen, "--no-network",
              (char *)NULL);
        _exit(127);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", PORT);
    for (int i = 0; i < 240; i++) {
        CURL *c = curl_easy_init();
        long code = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        if (code == 200)
            break;
        usleep(250000);
    }
    nd = daemon_runs(state, argv[2], n, d, dtype);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    virEventRegisterDefaultImpl();
    virEventAddTimeout(100, loop_tick, NULL, NULL);
    pthread_create(&loop, NULL, event_loop, NULL);
    {
        char kernel[4096];
        if (!realpath(argv[2], kernel)) {
            fprintf(stderr, "bench_ready: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        nb = baseline(root, kernel, dtype, n, bl);
    }
    loop_run = 0;

    /* libvirt's embedded driver stays loaded in this process and may still
     * write under the root for a moment: retry the removal. */
    snprintf(cmd, sizeof cmd,
             "pkill -9 -f 'qemu-system.*%s'; sleep 0.5; rm -rf %s || "
             "(sleep 1; rm -rf %s)",
             tmp, tmp, tmp);
    if (system(cmd) != 0 || access(tmp, F_OK) == 0)
        fprintf(stderr, "cleanup of %s incomplete\n", tmp);
    if (nd <= 0 || nb <= 0) {
        fprintf(stderr, "bench_ready: runs failed (daemon %d, baseline %d)\n", nd, nb);
        return 1;
    }
    {
        double dp50 = pct(d, nd, 0.5), dp99 = pct(d, nd, 0.99);
        double bp50 = pct(bl, nb, 0.5), bp99 = pct(bl, nb, 0.99);
        printf("create-to-ready, domain type %s, %d runs each\n", dtype, nd < nb ? nd : nb);
        printf("  shoald POST /v1/instances : p50 %7.1f ms  p99 %7.1f ms\n", dp50, dp99);
        printf("  virDomainCreateXML (virsh): p50 %7.1f ms  p99 %7.1f ms\n", bp50, bp99);
        printf("  ratio p50 %.3fx (target <= 1.10x), p99 %.3fx\n", dp50 / bp50, dp99 / bp99);
    }
    return 0;
}

/* dhcp.c - one dnsmasq for the guest network, static leases (see dhcp.h). */
#include "dhcp.h"
#include "child.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DHCP_ARGS_MAX 24
#define DHCP_LINE_MAX 1024

struct dhcp {
    /* Set by dhcp_start, read-only afterwards. */
    char dir[PATH_MAX];
    char hosts[PATH_MAX + 16];     /* DIR/hosts */
    char leasefile[PATH_MAX + 16]; /* DIR/leases */
    char pidfile[PATH_MAX + 16];   /* DIR/dnsmasq.pid */
    char prog[PATH_MAX];
    char args[DHCP_ARGS_MAX][PATH_MAX + 64];
    char *argv[DHCP_ARGS_MAX + 2];
    int wake_fd; /* eventfd: dhcp_stop wakes the thread */
    pthread_t th;
    int th_started;

    pthread_mutex_t set_mu; /* serializes dhcp_set; taken before mu */
    pthread_mutex_t mu;     /* the fields below; a leaf */
    pthread_cond_t cv;      /* with mu: ready, attempts or pid changed */
    pid_t pid;              /* running dnsmasq, 0 = none */
    int ready;              /* that dnsmasq has read the hosts file once */
    unsigned starts, reloads;
    unsigned attempts;       /* hosts file reads, failed ones included */
    char read_error[256];    /* dnsmasq's "cannot read" line of the last attempt */
    char last_line[256];     /* dnsmasq's last log line (error messages) */
    int exit_status, exited; /* the last dnsmasq's wait status */
    int stopping;
    int restart_req; /* dhcp_set stopped it: prune, start at once */
    unsigned restarts;
    size_t nleases;
    /* The last list (for pruning before a start): replaced under set_mu
     * and mu; read with set_mu held, or by the thread while restart_req is
     * set (the dhcp_set that set it holds set_mu and waits). */
    struct dhcp_lease *cur;
    size_t ncur;

    /* Owned by whoever pumps the pipe: dhcp_start, then the thread. */
    int out_fd; /* read end of dnsmasq's stdout+stderr, -1 after EOF */
    char line[DHCP_LINE_MAX];
    size_t used;
    int64_t started_ms; /* monotonic ms the running dnsmasq was started */
    int64_t due_ms;     /* next start while pid == 0 */
    int backoff_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Format the message into err and return rc (a dhcp_status). */
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The wait after a start that lasted ran_ms, the last wait being cur. */
static int next_backoff(int cur, int ran_ms)
{
    if (cur <= 0 || ran_ms >= DHCP_STABLE_MS)
        return DHCP_BACKOFF_MIN_MS;
    return cur * 2 > DHCP_BACKOFF_MAX_MS ? DHCP_BACKOFF_MAX_MS : cur * 2;
}

static void deadline_ts(struct timespec *ts, int64_t deadline_ms)
{
    ts->tv_sec = deadline_ms / 1000;
    ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

/* ---- the hosts file ----------------------------------------------------- */

typedef struct {
    uint32_t ip;
    size_t idx;                /* position in the caller's array */
    char mac[DHCP_MAC_STRLEN]; /* lower case */
    int skip;
} hent;

/* "xx:xx:xx:xx:xx:xx" in hex: lower-cased into out. 0 ok, -1 malformed. */
static int mac_norm(const char *in, char out[DHCP_MAC_STRLEN])
{
    for (int i = 0; i < 17; i++) {
        char c = in[i];
        if (i % 3 == 2 ? c != ':' : !isxdigit((unsigned char)c))
            return -1;
        out[i] = (char)tolower((unsigned char)c);
    }
    if (in[17])
        return -1;
    out[17] = 0;
    return 0;
}

/* A hostname dnsmasq takes as one (not a lease time, tag or address): a
 * letter, then letters, digits and '-', not ending in '-', at most 63. */
static int hostname_ok(const char *h)
{
    size_t n = strnlen(h, DHCP_HOSTNAME_MAX);
    if (n == 0 || n > 63 || !isalpha((unsigned char)h[0]) || h[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-')
            return 0;
    return strcmp(h, "infinite") && strcmp(h, "ignore");
}

static int by_mac(const void *a, const void *b)
{
    const hent *x = a, *y = b;
    int c = strcmp(x->mac, y->mac);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int by_ip(const void *a, const void *b)
{
    const hent *x = a, *y = b;
    if (x->ip != y->ip)
        return x->ip < y->ip ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Count a lease left out; the first one's description ("BEFORE'VALUE'AFTER")
 * goes to res. */
static void note_skip(struct dhcp_write_result *res, const char *before, const char *value,
                      const char *after)
{
    if (res->skipped++ == 0)
        snprintf(res->first_skip, sizeof res->first_skip, "%s'%.17s'%s", before, value, after);
}

/* Drop the entries marked skip; returns the new count. */
static size_t compact(hent *e, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!e[i].skip)
            e[m++] = e[i];
    return m;
}

/* The leases that make lines, in e (sorted by address; *m of them) and
 * their MACs in macs (sorted; pointers into e). Left out: a malformed
 * MAC, address 0, a MAC or address an earlier lease of the array has. */
static int prepare(const struct dhcp_lease *leases, size_t n, hent **pe, char ***pmacs, size_t *pm,
                   struct dhcp_write_result *res)
{
    hent *e = calloc(n + 1, sizeof *e);
    char **macs = calloc(n + 1, sizeof *macs);
    size_t m;

    if (!e || !macs) {
        free(e);
        free(macs);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        e[i].idx = i;
        e[i].ip = leases[i].ipv4;
        if (mac_norm(leases[i].mac, e[i].mac) != 0) {
            e[i].skip = 1;
            note_skip(res, "malformed MAC ", leases[i].mac, "");
        } else if (!leases[i].ipv4) {
            e[i].skip = 1;
            note_skip(res, "MAC ", e[i].mac, " has no address");
        }
    }
    m = compact(e, n);
    /* The first lease of a MAC or an address wins. */
    qsort(e, m, sizeof *e, by_mac);
    for (size_t i = 1; i < m; i++)
        if (!strcmp(e[i].mac, e[i - 1].mac)) {
            e[i].skip = 1;
            note_skip(res, "MAC ", e[i].mac, " given twice");
        }
    m = compact(e, m);
    qsort(e, m, sizeof *e, by_ip);
    for (size_t i = 1; i < m; i++)
        if (e[i].ip == e[i - 1].ip) {
            char a[16];
            snprintf(a, sizeof a, "%u.%u.%u.%u", e[i].ip >> 24, (e[i].ip >> 16) & 255,
                     (e[i].ip >> 8) & 255, e[i].ip & 255);
            e[i].skip = 1;
            note_skip(res, "address ", a, " given twice");
        }
    m = compact(e, m);
    for (size_t i = 0; i < m; i++)
        macs[i] = e[i].mac;
    qsort(macs, m, sizeof *macs, cmp_str);
    *pe = e;
    *pmacs = macs;
    *pm = m;
    return 0;
}

static int has_mac(char **macs, size_t m, const char *mac)
{
    return bsearch(&mac, macs, m, sizeof *macs, cmp_str) != NULL;
}

/* One IPv4 line of dnsmasq's lease database ("EXPIRY MAC ADDRESS NAME
 * CLIENT-ID"): 1 with the MAC (lower case) and address, 0 for another
 * line, -1 at the "duid" line after which DHCPv6 leases follow. */
static int lease_line(const char *line, char mac[DHCP_MAC_STRLEN], uint32_t *ip)
{
    char mac_in[64], ip_in[64];
    struct in_addr a;
    if (!strncmp(line, "duid ", 5))
        return -1;
    if (sscanf(line, "%*s %63s %63s", mac_in, ip_in) != 2 || mac_norm(mac_in, mac) != 0 ||
        inet_pton(AF_INET, ip_in, &a) != 1)
        return 0;
    *ip = ntohl(a.s_addr);
    return 1;
}

/* Addresses of e[0..m) (sorted by address) that the lease database shows
 * leased to a MAC in no line. */
static size_t count_stale(const char *leasefile, const hent *e, size_t m, char **macs)
{
    FILE *fp = leasefile ? fopen(leasefile, "re") : NULL;
    char buf[512], mac[DHCP_MAC_STRLEN];
    size_t stale = 0;
    uint32_t ip;
    int k;

    if (!fp)
        return 0;
    while (fgets(buf, sizeof buf, fp) && (k = lease_line(buf, mac, &ip)) >= 0) {
        size_t lo = 0, hi = m;
        if (k == 0 || has_mac(macs, m, mac))
            continue;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (e[mid].ip == ip) {
                stale++;
                break;
            }
            if (e[mid].ip < ip)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    fclose(fp);
    return stale;
}

/* Write len bytes of text to PATH.tmp (mode 0644), then rename it over
 * PATH. */
static int replace_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 8];
    int fd, rc = DHCP_E_IO;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return fail(rc, err, errlen, "path '%s' is too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(rc, err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(rc, err, errlen, "cannot write '%s': %s", tmp, strerror(w < 0 ? errno : EIO));
            goto out;
        }
        off += (size_t)w;
    }
    /* Readable by dnsmasq once it runs as nobody, whatever the umask. */
    if (fchmod(fd, 0644) != 0) {
        fail(rc, err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        fail(rc, err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fail(rc, err, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = DHCP_OK;
out:
    if (fd >= 0)
        close(fd);
    if (rc != DHCP_OK)
        unlink(tmp);
    return rc;
}

int dhcp_hosts_write(const char *path, const struct dhcp_lease *leases, size_t n,
                     const char *leasefile, struct dhcp_write_result *res, char *err, size_t errlen)
{
    struct dhcp_write_result local;
    hent *e = NULL;
    char **macs = NULL, *text = NULL;
    size_t m = 0, len = 0;
    int rc;

    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    if (prepare(leases, n, &e, &macs, &m, res) != 0)
        return fail(DHCP_E_IO, err, errlen, "out of memory");
    /* MAC,255.255.255.255,HOSTNAME\n */
    text = malloc(m * (DHCP_MAC_STRLEN + 16 + DHCP_HOSTNAME_MAX + 2) + 1);
    if (!text) {
        rc = fail(DHCP_E_IO, err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        const char *h = leases[e[i].idx].hostname;
        int ok = hostname_ok(h);
        len += (size_t)sprintf(text + len, "%s,%u.%u.%u.%u%s%.63s\n", e[i].mac, e[i].ip >> 24,
                               (e[i].ip >> 16) & 255, (e[i].ip >> 8) & 255, e[i].ip & 255,
                               ok ? "," : "", ok ? h : "");
    }
    if ((rc = replace_file(path, text, len, err, errlen)) != DHCP_OK)
        goto out;
    res->written = m;
    res->stale = count_stale(leasefile, e, m, macs);
out:
    free(text);
    free(macs);
    free(e);
    return rc;
}

int dhcp_leases_prune(const char *leasefile, const struct dhcp_lease *leases, size_t n,
                      size_t *dropped, char *err, size_t errlen)
{
    struct dhcp_write_result res;
    FILE *fp;
    hent *e = NULL;
    char **macs = NULL, *text = NULL, buf[512];
    size_t m = 0, len = 0, cap = 4096, drop = 0;
    int rc = DHCP_OK, v4 = 1;

    if (dropped)
        *dropped = 0;
    fp = fopen(leasefile, "re");
    if (!fp)
        return errno == ENOENT ? DHCP_OK
                               : fail(DHCP_E_IO, err, errlen, "cannot read '%s': %s", leasefile,
                                      strerror(errno));
    memset(&res, 0, sizeof res);
    text = malloc(cap);
    if (!text || prepare(leases, n, &e, &macs, &m, &res) != 0) {
        rc = fail(DHCP_E_IO, err, errlen, "out of memory");
        goto out;
    }
    while (fgets(buf, sizeof buf, fp)) {
        char mac[DHCP_MAC_STRLEN];
        uint32_t ip;
        size_t l = strlen(buf);
        if (v4 && lease_line(buf, mac, &ip) < 0)
            v4 = 0; /* DHCPv6 leases: kept as they are */
        else if (v4 && lease_line(buf, mac, &ip) == 1 && !has_mac(macs, m, mac)) {
            drop++;
            continue;
        }
        if (len + l + 1 > cap) {
            char *t = realloc(text, cap = 2 * (len + l + 1));
            if (!t) {
                rc = fail(DHCP_E_IO, err, errlen, "out of memory");
                goto out;
            }
            text = t;
        }
        memcpy(text + len, buf, l);
        len += l;
    }
    if (drop)
        rc = replace_file(leasefile, text, len, err, errlen);
    if (rc == DHCP_OK && dropped)
        *dropped = drop;
out:
    fclose(fp);
    free(text);
    free(macs);
    free(e);
    return rc;
}

/* ---- dnsmasq, the process ----------------------------------------------- */

/* The program: cfg's, else the first executable `dnsmasq` in PATH, then
 * /usr/sbin and /sbin (root's PATH has them, a service's may not). */
static int find_dnsmasq(const char *given, char *out, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[4096];

    if (given) {
        snprintf(out, len, "%s", given);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!d[0])
            continue;
        if (snprintf(out, len, "%s/dnsmasq", d) < (int)len && access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* pid exists and is not a zombie (an orphan whose new parent does not
 * reap it stays one; it holds no socket any more). */
static int proc_alive(pid_t pid)
{
    char path[64], buf[512];
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    p = strrchr(buf, ')'); /* "PID (COMM) STATE ..." */
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Stop the dnsmasq a previous shoald left running: the pid of DIR's pid
 * file, if that process's command line names the same pid file. */
static void stop_stale(const struct dhcp *d)
{
    char buf[8192], want[PATH_MAX + 32], path[64];
    FILE *fp = fopen(d->pidfile, "re");
    long pid = 0;
    size_t n;
    int fd, match = 0;

    if (!fp)
        return;
    if (fscanf(fp, "%ld", &pid) != 1)
        pid = 0;
    fclose(fp);
    if (pid <= 1 || pid > INT_MAX || pid == (long)getpid())
        return;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = 0;
    for (ssize_t r; n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd);
    buf[n] = 0;
    snprintf(want, sizeof want, "--pid-file=%s", d->pidfile);
    for (size_t off = 0; off < n; off += strlen(buf + off) + 1)
        match |= !strcmp(buf + off, want);
    if (!match)
        return;
    log_info("dhcp: stopping dnsmasq (pid %ld) left running by a previous shoald", pid);
    kill((pid_t)pid, SIGTERM);
    for (int64_t end = now_ms() + DHCP_STOP_TIMEOUT_MS; now_ms() < end;) {
        if (!proc_alive((pid_t)pid))
            return;
        poll(NULL, 0, 20);
    }
    kill((pid_t)pid, SIGKILL);
    for (int i = 0; i < 100 && proc_alive((pid_t)pid); i++)
        poll(NULL, 0, 10);
}

/* Start dnsmasq with its output on a pipe (d->out_fd). child_start resets
 * its signals (shoald blocks SIGINT/SIGTERM in every thread and ignores
 * SIGPIPE, and a child inherits both). Own process group: a ^C at shoald's
 * terminal reaches shoald, which stops dnsmasq itself. d->prog is a path
 * (find_dnsmasq), never looked up in PATH. */
static int spawn(struct dhcp *d, char *err, size_t errlen)
{
    char why[256];
    pid_t pid;
    int fd;

    if (child_start(d->argv, CHILD_PGROUP | CHILD_NOSEARCH, &pid, &fd, why, sizeof why) != CHILD_OK)
        return fail(DHCP_E_START, err, errlen, "%s", why);
    d->out_fd = fd;
    d->used = 0;
    d->started_ms = now_ms();
    pthread_mutex_lock(&d->mu);
    d->pid = pid;
    d->ready = 0;
    d->exited = 0;
    d->starts++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    log_debug("dhcp: dnsmasq started (pid %d)", (int)pid);
    return DHCP_OK;
}

/* One line of dnsmasq's log. */
static void on_line(struct dhcp *d, char *line)
{
    const char *r = strstr(line, ": read ");
    int is_read = r && !strcmp(r + 7, d->hosts);
    int cannot = !is_read && strstr(line, "cannot read ") && strstr(line, d->hosts);

    pthread_mutex_lock(&d->mu);
    snprintf(d->last_line, sizeof d->last_line, "%s", line);
    if (is_read || cannot) {
        d->attempts++;
        d->ready = 1;
        if (is_read) {
            d->reloads++;
            d->read_error[0] = 0;
        } else {
            snprintf(d->read_error, sizeof d->read_error, "%s", line);
        }
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    if (is_read || strstr(line, "compile time options"))
        log_debug("%s", line);
    else if (cannot)
        log_warn("%s", line);
    else
        log_info("%s", line);
}

/* Read what is there on the pipe (waiting up to timeout_ms for it), one
 * line at a time; closes the pipe at EOF. */
static void pump(struct dhcp *d, int timeout_ms)
{
    struct pollfd p[2] = { { d->wake_fd, POLLIN, 0 }, { d->out_fd, POLLIN, 0 } };
    char buf[4096];
    ssize_t n;

    if (poll(p, d->out_fd >= 0 ? 2 : 1, timeout_ms) <= 0)
        return;
    if (p[0].revents & POLLIN) {
        uint64_t v;
        if (read(d->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
            log_debug("dhcp: wake: %s", strerror(errno));
    }
    if (d->out_fd < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    n = read(d->out_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || d->used == sizeof d->line - 1) {
            d->line[d->used] = 0;
            if (d->used)
                on_line(d, d->line);
            d->used = 0;
            if (buf[i] == '\n')
                continue;
        }
        if (buf[i] != '\r')
            d->line[d->used++] = buf[i];
    }
    if (n <= 0) {
        if (d->used) {
            d->line[d->used] = 0;
            on_line(d, d->line);
            d->used = 0;
        }
        close(d->out_fd);
        d->out_fd = -1;
    }
}

/* Reap dnsmasq if it has exited. 1 when it had. */
static int reap(struct dhcp *d)
{
    int st;
    pid_t pid;

    pthread_mutex_lock(&d->mu);
    pid = d->pid;
    pthread_mutex_unlock(&d->mu);
    if (pid <= 0 || waitpid(pid, &st, WNOHANG) != pid)
        return 0;
    /* The last lines it wrote (its reason) are still in the pipe; a
     * forked child of another thread of shoald may hold a copy of the write
     * end until it execs, so the wait for EOF is bounded. */
    for (int i = 0; i < 20 && d->out_fd >= 0; i++)
        pump(d, 50);
    pthread_mutex_lock(&d->mu);
    d->pid = 0;
    d->ready = 0;
    d->exited = 1;
    d->exit_status = st;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return 1;
}

static void describe_exit(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, len, "ended (wait status %d)", st);
}

/* SIGTERM, up to DHCP_STOP_TIMEOUT_MS, then SIGKILL; reaped. */
static void terminate(struct dhcp *d)
{
    pid_t pid;
    pthread_mutex_lock(&d->mu);
    pid = d->pid;
    pthread_mutex_unlock(&d->mu);
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int64_t end = now_ms() + DHCP_STOP_TIMEOUT_MS; now_ms() < end && !reap(d);)
            pump(d, 20);
        pthread_mutex_lock(&d->mu);
        pid = d->pid;
        pthread_mutex_unlock(&d->mu);
        if (pid > 0) {
            int st;
            log_warn("dhcp: dnsmasq (pid %d) ignored SIGTERM for %d ms: killed", (int)pid,
                     DHCP_STOP_TIMEOUT_MS);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            pthread_mutex_lock(&d->mu);
            d->pid = 0;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
        }
    }
    if (d->out_fd >= 0) {
        close(d->out_fd);
        d->out_fd = -1;
    }
    /* dnsmasq, no longer root, cannot remove its pid file from DIR. */
    unlink(d->pidfile);
}

/* Start dnsmasq, first pruning the lease database to the stored list
 * when the caller may read it (see struct dhcp). */
static int prune_and_spawn(struct dhcp *d, int list_stable, char *err, size_t errlen)
{
    if (list_stable) {
        size_t dropped = 0;
        char perr[256];
        if (dhcp_leases_prune(d->leasefile, d->cur, d->ncur, &dropped, perr, sizeof perr) !=
            DHCP_OK)
            log_warn("dhcp: %s", perr);
        else if (dropped)
            log_info("dhcp: dropped %zu lease%s of MACs no instance has from %s", dropped,
                     dropped == 1 ? "" : "s", d->leasefile);
    }
    return spawn(d, err, errlen);
}

/* The thread: log dnsmasq's output, restart it when it dies. */
static void *dhcp_main(void *arg)
{
    struct dhcp *d = arg;

    for (;;) {
        int stopping, timeout, rc;
        pid_t pid;
        int64_t now = now_ms();

        pthread_mutex_lock(&d->mu);
        stopping = d->stopping;
        pid = d->pid;
        pthread_mutex_unlock(&d->mu);
        if (stopping)
            break;
        if (pid > 0)
            timeout = d->out_fd >= 0 ? 1000 : 5; /* after EOF: until reaped */
        else
            timeout = d->due_ms > now ? (int)(d->due_ms - now) : 0;
        pump(d, timeout);
        if (pid > 0 && reap(d)) {
            char how[64], err[256];
            int ran, asked;
            pthread_mutex_lock(&d->mu);
            describe_exit(d->exit_status, how, sizeof how);
            stopping = d->stopping;
            asked = d->restart_req;
            d->restart_req = 0;
            pthread_mutex_unlock(&d->mu);
            if (stopping)
                break;
            if (asked) {
                if (prune_and_spawn(d, 1, err, sizeof err) == DHCP_OK) {
                    pthread_mutex_lock(&d->mu);
                    d->restarts++;
                    pthread_mutex_unlock(&d->mu);
                    continue;
                }
                log_warn("dhcp: %s", err);
            }
            now = now_ms();
            ran = (int)(now - d->started_ms);
            d->backoff_ms = next_backoff(d->backoff_ms, ran);
            d->due_ms = now + d->backoff_ms;
            log_warn("dhcp: dnsmasq (pid %d) %s after %d ms; starting it again in %d ms", (int)pid,
                     how, ran, d->backoff_ms);
        } else if (pid <= 0 && now_ms() >= d->due_ms) {
            char err[256];
            int stable = pthread_mutex_trylock(&d->set_mu) == 0;
            rc = prune_and_spawn(d, stable, err, sizeof err);
            if (stable)
                pthread_mutex_unlock(&d->set_mu);
            if (rc != DHCP_OK) {
                d->backoff_ms = next_backoff(d->backoff_ms, 0);
                d->due_ms = now_ms() + d->backoff_ms;
                log_warn("dhcp: %s; trying again in %d ms", err, d->backoff_ms);
            }
        }
    }
    terminate(d);
    return NULL;
}

/* ---- the handle ----------------------------------------------------------- */

static int valid_ifname(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 15 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static const char *ip4(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return buf;
}

static void free_handle(struct dhcp *d)
{
    if (!d)
        return;
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    if (d->out_fd >= 0)
        close(d->out_fd);
    pthread_mutex_destroy(&d->set_mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d->cur);
    free(d);
}

/* Keep a copy of leases[0..n) as the stored list (set_mu held, or no
 * thread yet). On no memory the old list stays (pruning then keeps more). */
static void store_list(struct dhcp *d, const struct dhcp_lease *leases, size_t n)
{
    struct dhcp_lease *copy = malloc((n + 1) * sizeof *copy);
    if (!copy) {
        log_warn("dhcp: out of memory keeping the lease list");
        return;
    }
    if (n)
        memcpy(copy, leases, n * sizeof *copy);
    pthread_mutex_lock(&d->mu);
    free(d->cur);
    d->cur = copy;
    d->ncur = n;
    pthread_mutex_unlock(&d->mu);
}

/* The argv of dnsmasq (see dhcp.h). */
static void build_args(struct dhcp *d, const struct dhcp_config *cfg)
{
    uint32_t mask = 0xffffffffu << (32 - cfg->prefix);
    char net[16], msk[16], gw[16];
    size_t n = 0;

#define ARG(...) snprintf(d->args[n++], sizeof d->args[0], __VA_ARGS__)
    ARG("%s", d->prog);
    ARG("--conf-file=/dev/null");
    ARG("--keep-in-foreground");
    ARG("--log-facility=-");
    if (!cfg->verbose)
        ARG("--quiet-dhcp");
    ARG("--interface=%s", cfg->interface);
    ARG("--bind-dynamic");
    ARG("--except-interface=lo");
    ARG("--port=0");
    ARG("--no-resolv");
    ARG("--no-hosts");
    ARG("--dhcp-range=%s,static,%s,infinite", ip4(cfg->subnet & mask, net), ip4(mask, msk));
    ARG("--dhcp-ignore=tag:!known");
    ARG("--dhcp-authoritative");
    ARG("--dhcp-option=option:router,%s", ip4(cfg->gateway, gw));
    ARG("--dhcp-lease-max=%lu", 1ul << (32 - cfg->prefix));
    ARG("--no-ping");
    ARG("--dhcp-hostsfile=%s", d->hosts);
    ARG("--dhcp-leasefile=%s", d->leasefile);
    ARG("--pid-file=%s", d->pidfile);
#undef ARG
    for (size_t i = 0; i < n; i++)
        d->argv[i] = d->args[i];
    d->argv[n] = NULL;
}

static int check_config(const struct dhcp_config *cfg, char *err, size_t errlen)
{
    uint32_t mask, bcast;
    char a[16];

    if (!cfg || !cfg->dir || cfg->dir[0] != '/' || strpbrk(cfg->dir, ", \t\n") ||
        strlen(cfg->dir) > PATH_MAX - 32)
        return fail(DHCP_E_INVAL, err, errlen,
                    "dhcp directory '%s' is not an absolute path without commas or spaces",
                    cfg && cfg->dir ? cfg->dir : "");
    if (!valid_ifname(cfg->interface))
        return fail(DHCP_E_INVAL, err, errlen, "invalid interface name '%s'",
                    cfg->interface ? cfg->interface : "");
    if (cfg->prefix < 8 || cfg->prefix > 30)
        return fail(DHCP_E_INVAL, err, errlen, "invalid prefix '%d' (8..30)", cfg->prefix);
    mask = 0xffffffffu << (32 - cfg->prefix);
    bcast = (cfg->subnet & mask) | ~mask;
    if ((cfg->gateway & mask) != (cfg->subnet & mask) || cfg->gateway == (cfg->subnet & mask) ||
        cfg->gateway == bcast)
        return fail(DHCP_E_INVAL, err, errlen, "gateway '%s' is not a host address of the subnet",
                    ip4(cfg->gateway, a));
    return DHCP_OK;
}

/* dhcp_start, after the first spawn: wait until dnsmasq has read the hosts
 * file (it is serving), or exited, or DHCP_START_TIMEOUT_MS. */
static int wait_serving(struct dhcp *d, char *err, size_t errlen)
{
    for (int64_t end = now_ms() + DHCP_START_TIMEOUT_MS;;) {
        int ready, exited, st;
        char why[256], how[64];

        pump(d, 50);
        reap(d);
        pthread_mutex_lock(&d->mu);
        ready = d->ready;
        exited = d->exited;
        st = d->exit_status;
        snprintf(why, sizeof why, "%s", d->read_error[0] ? d->read_error : d->last_line);
        if (ready && !d->read_error[0]) {
            pthread_mutex_unlock(&d->mu);
            return DHCP_OK;
        }
        pthread_mutex_unlock(&d->mu);
        if (ready) /* "cannot read" */
            return fail(DHCP_E_IO, err, errlen,
                        "%s (dnsmasq reads it as user nobody: the directory and its parents "
                        "must be searchable by others)",
                        why);
        if (exited) {
            describe_exit(st, how, sizeof how);
            return fail(DHCP_E_START, err, errlen, "dnsmasq %s: %s", how,
                        why[0] ? why : "(no output)");
        }
        if (now_ms() >= end)
            return fail(DHCP_E_START, err, errlen,
                        "dnsmasq did not read '%s' within %d ms (last line: '%s')", d->hosts,
                        DHCP_START_TIMEOUT_MS, why);
    }
}

int dhcp_start(const struct dhcp_config *cfg, const struct dhcp_lease *leases, size_t n,
               struct dhcp **out, char *err, size_t errlen)
{
    struct dhcp *d;
    pthread_condattr_t ca;
    struct dhcp_write_result res;
    int rc;

    *out = NULL;
    if ((rc = check_config(cfg, err, errlen)) != DHCP_OK)
        return rc;
    d = calloc(1, sizeof *d);
    if (!d)
        return fail(DHCP_E_START, err, errlen, "out of memory");
    d->wake_fd = d->out_fd = -1;
    pthread_mutex_init(&d->set_mu, NULL);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(d->dir, sizeof d->dir, "%s", cfg->dir);
    snprintf(d->hosts, sizeof d->hosts, "%s/hosts", cfg->dir);
    snprintf(d->leasefile, sizeof d->leasefile, "%s/leases", cfg->dir);
    snprintf(d->pidfile, sizeof d->pidfile, "%s/dnsmasq.pid", cfg->dir);
    if (find_dnsmasq(cfg->dnsmasq, d->prog, sizeof d->prog) != 0) {
        rc = cfg->dnsmasq ? fail(DHCP_E_NOTFOUND, err, errlen, "dnsmasq '%s' is not an executable",
                                 cfg->dnsmasq)
                          : fail(DHCP_E_NOTFOUND, err, errlen,
                                 "dnsmasq not found in PATH, /usr/sbin or /sbin "
                                 "(install dnsmasq-base)");
        goto fail;
    }
    if ((mkdir(d->dir, 0711) != 0 && errno != EEXIST) || chmod(d->dir, 0711) != 0) {
        rc = fail(DHCP_E_IO, err, errlen, "cannot create '%s': %s", d->dir, strerror(errno));
        goto fail;
    }
    d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->wake_fd < 0) {
        rc = fail(DHCP_E_START, err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    build_args(d, cfg);
    stop_stale(d);
    rc = dhcp_hosts_write(d->hosts, leases, n, d->leasefile, &res, err, errlen);
    if (rc != DHCP_OK)
        goto fail;
    if (res.skipped)
        log_warn("dhcp: %zu lease%s left out of %s (first: %s)", res.skipped,
                 res.skipped == 1 ? "" : "s", d->hosts, res.first_skip);
    d->nleases = res.written;
    store_list(d, leases, n);
    if ((rc = prune_and_spawn(d, 1, err, errlen)) != DHCP_OK)
        goto fail;
    if ((rc = wait_serving(d, err, errlen)) != DHCP_OK) {
        terminate(d);
        goto fail;
    }
    if (pthread_create(&d->th, NULL, dhcp_main, d) != 0) {
        rc = fail(DHCP_E_START, err, errlen, "cannot start the dhcp thread");
        terminate(d);
        goto fail;
    }
    d->th_started = 1;
    log_info("dhcp: dnsmasq (pid %d) serving %zu static lease%s on %s", (int)d->pid, d->nleases,
             d->nleases == 1 ? "" : "s", cfg->interface);
    *out = d;
    return DHCP_OK;
fail:
    free_handle(d);
    return rc;
}

/* dhcp_set with mu held: restart dnsmasq over a pruned lease database
 * (the thread does it) and wait until the new one has read the file. */
static int restart_locked(struct dhcp *d, int64_t deadline, const struct timespec *ts, char *err,
                          size_t errlen)
{
    pid_t old = d->pid;
    d->restart_req = 1;
    kill(old, SIGTERM);
    while (!d->stopping && !(d->pid > 0 && d->pid != old && d->ready) && now_ms() < deadline)
        pthread_cond_timedwait(&d->cv, &d->mu, ts);
    if (!(d->pid > 0 && d->pid != old && d->ready))
        return fail(DHCP_E_TIMEOUT, err, errlen,
                    "dnsmasq was not serving again within %d ms of its restart (pid %d before)",
                    DHCP_STOP_TIMEOUT_MS + DHCP_START_TIMEOUT_MS, (int)old);
    if (d->read_error[0])
        return fail(DHCP_E_IO, err, errlen, "%s", d->read_error);
    return DHCP_OK;
}

/* dhcp_set with mu held: SIGHUP and wait for dnsmasq's re-read. */
static int reload_locked(struct dhcp *d, int64_t deadline, const struct timespec *ts, char *err,
                         size_t errlen)
{
    pid_t pid;
    unsigned a0;

    /* A dnsmasq that is starting handles SIGHUP only once it has read the
     * file (before that the signal would kill it): wait for that. */
    while (d->pid > 0 && !d->ready && now_ms() < deadline)
        pthread_cond_timedwait(&d->cv, &d->mu, ts);
    if (d->pid <= 0)
        return DHCP_OK; /* the next one reads the file when it starts */
    if (!d->ready)
        return fail(DHCP_E_TIMEOUT, err, errlen, "dnsmasq (pid %d) did not get ready within %d ms",
                    (int)d->pid, DHCP_RELOAD_TIMEOUT_MS);
    pid = d->pid;
    a0 = d->attempts;
    kill(pid, SIGHUP);
    while (d->pid == pid && d->attempts == a0 && now_ms() < deadline)
        pthread_cond_timedwait(&d->cv, &d->mu, ts);
    if (d->pid == pid && d->attempts == a0)
        return fail(DHCP_E_TIMEOUT, err, errlen,
                    "dnsmasq (pid %d) did not re-read '%s' within %d ms", (int)pid, d->hosts,
                    DHCP_RELOAD_TIMEOUT_MS);
    if (d->pid == pid && d->read_error[0])
        return fail(DHCP_E_IO, err, errlen, "%s", d->read_error);
    return DHCP_OK;
}

int dhcp_set(struct dhcp *d, const struct dhcp_lease *leases, size_t n, char *err, size_t errlen)
{
    struct dhcp_write_result res;
    struct timespec ts;
    int64_t deadline;
    int rc;

    pthread_mutex_lock(&d->set_mu);
    rc = dhcp_hosts_write(d->hosts, leases, n, d->leasefile, &res, err, errlen);
    if (rc != DHCP_OK) {
        pthread_mutex_unlock(&d->set_mu);
        return rc;
    }
    if (res.skipped)
        log_warn("dhcp: %zu lease%s left out of %s (first: %s)", res.skipped,
                 res.skipped == 1 ? "" : "s", d->hosts, res.first_skip);
    store_list(d, leases, n);
    pthread_mutex_lock(&d->mu);
    d->nleases = res.written;
    if (res.stale && d->pid > 0) {
        log_info("dhcp: %zu address%s of the list leased to MACs no instance has: restarting "
                 "dnsmasq (pid %d) without those leases",
                 res.stale, res.stale == 1 ? "" : "es", (int)d->pid);
        deadline = now_ms() + DHCP_STOP_TIMEOUT_MS + DHCP_START_TIMEOUT_MS;
        deadline_ts(&ts, deadline);
        rc = restart_locked(d, deadline, &ts, err, errlen);
    } else {
        deadline = now_ms() + DHCP_RELOAD_TIMEOUT_MS;
        deadline_ts(&ts, deadline);
        rc = reload_locked(d, deadline, &ts, err, errlen);
    }
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&d->set_mu);
    return rc;
}

void dhcp_info_get(struct dhcp *d, struct dhcp_info *out)
{
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    out->pid = d->pid;
    out->starts = d->starts;
    out->reloads = d->reloads;
    out->restarts = d->restarts;
    out->leases = d->nleases;
    pthread_mutex_unlock(&d->mu);
}

void dhcp_stop(struct dhcp *d)
{
    uint64_t one = 1;
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (write(d->wake_fd, &one, sizeof one) < 0)
        log_debug("dhcp: wake: %s", strerror(errno));
    if (d->th_started)
        pthread_join(d->th, NULL);
    else
        terminate(d);
    free_handle(d);
}

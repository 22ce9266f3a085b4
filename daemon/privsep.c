/*
 * privsep.c - the root process's supervisor of the API front, and the
 * front's main (privsep.h).
 */
#include "privsep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "chan.h"
#include "log.h"

#define FRONT_CHAN_FD   3 /* the socketpair end, in the front */
#define FRONT_LISTEN_FD 4 /* the listening socket, in the front */
#define FRONT_ARGS      14
#define STOP_GRACE_MS   5000

struct ps_root {
    ps_opts o; /* strings point into the copies below */
    char host[256], cert[1024], key[1024], user[64], state_dir[1024];
    const api_backend *be;
    void *be_ctx;
    uid_t uid;
    gid_t gid;
    char empty[1100]; /* the front's root directory */
    uint16_t port;
    int lfd; /* bound by ps_root_start, handed to the first front */
    pthread_t sup;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stopping set, or the front exited */
    bool stopping;
    pid_t pid;         /* the running front, 0 when none */
    unsigned restarts; /* fronts started after the first */
};

/* ---- root side ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bind and listen as libmicrohttpd would (dual stack for "::"). */
static int bind_listen(const char *host, uint16_t port, uint16_t *bound, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ps[8];
    int fd = -1, one = 1, zero = 0, gai;

    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof ps, "%u", port);
    gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        snprintf(err, errlen, "listen address '%s' is not a numeric IPv4/IPv6 address: %s", host,
                 gai != 0 ? gai_strerror(gai) : "no address");
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(ai);
    return fd;
fail:
    snprintf(err, errlen, "cannot listen on %s port %u: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

/* Start a front serving lfd (closed here either way). The child's argv is
 * built before fork: between fork and exec only async-signal-safe calls. */
static pid_t spawn_front(ps_root *r, int lfd, int *chan_fd)
{
    char nums[8][24];
    char *argv[FRONT_ARGS + 1];
    int sv[2];
    pid_t pid;
    size_t n = 0;

    *chan_fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("privsep: socketpair: %s", strerror(errno));
        close(lfd);
        return -1;
    }
    snprintf(nums[0], sizeof nums[0], "%u", (unsigned)r->uid);
    snprintf(nums[1], sizeof nums[1], "%u", (unsigned)r->gid);
    snprintf(nums[2], sizeof nums[2], "%u", r->o.max_conns);
    snprintf(nums[3], sizeof nums[3], "%u", r->o.max_conns_per_ip);
    snprintf(nums[4], sizeof nums[4], "%u", r->o.timeout_s);
    snprintf(nums[5], sizeof nums[5], "%" PRIu64, r->o.max_upload);
    snprintf(nums[6], sizeof nums[6], "%d", r->o.verbose);
    snprintf(nums[7], sizeof nums[7], "%d", (int)getpid());
    argv[n++] = (char *)"shoald";
    argv[n++] = (char *)PS_FRONT_ARG;
    for (int i = 0; i < 8; i++)
        argv[n++] = nums[i];
    argv[n++] = r->empty;
    argv[n++] = r->cert;
    argv[n++] = r->key;
    argv[n++] = r->user;
    argv[n] = NULL;
    _Static_assert(FRONT_ARGS == 14, "front argv");

    pid = fork();
    if (pid == 0) {
        /* child: the channel on 3, the socket on 4, nothing else */
        int a = fcntl(sv[1], F_DUPFD, 10), b = fcntl(lfd, F_DUPFD, 10);
        if (a < 0 || b < 0 || dup2(a, FRONT_CHAN_FD) < 0 || dup2(b, FRONT_LISTEN_FD) < 0)
            _exit(127);
        close_range(FRONT_LISTEN_FD + 1, ~0U, 0);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(sv[1]);
    close(lfd);
    if (pid < 0) {
        log_error("privsep: cannot start the API front: %s", strerror(errno));
        close(sv[0]);
        return -1;
    }
    *chan_fd = sv[0];
    return pid;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended (status %d)", status);
}

static void *supervisor_main(void *arg)
{
    ps_root *r = arg;
    chan_server_opts so = { r->o.max_conns + 16 };
    int backoff = PS_BACKOFF_MIN_MS;
    int lfd = r->lfd;

    r->lfd = -1;
    for (;;) {
        char err[256], why[256], how[96];
        int64_t t0 = now_ms();
        int chan_fd, status = 0, rc;
        pid_t pid;

        if (lfd < 0)
            lfd = bind_listen(r->host, r->port, &r->port, err, sizeof err);
        if (lfd < 0) {
            log_error("privsep: %s", err);
            pid = -1;
        } else {
            pid = spawn_front(r, lfd, &chan_fd);
        }
        lfd = -1;
        if (pid > 0) {
            pthread_mutex_lock(&r->mu);
            r->pid = pid;
            pthread_mutex_unlock(&r->mu);
            log_debug("privsep: API front started, pid %d", (int)pid);
            rc = chan_server_run(chan_fd, r->be, r->be_ctx, &so, why, sizeof why);
            if (rc != 0)
                /* a frame the root refused: the front is not trusted any more */
                log_error("privsep: API front pid %d broke the channel (%s): killing it", (int)pid,
                          why);
            /* without its channel a front is of no use (it may not even have
             * noticed, if it stopped reading): make sure it is gone */
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            pthread_mutex_lock(&r->mu);
            r->pid = 0;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            describe_exit(status, how, sizeof how);
        }
        pthread_mutex_lock(&r->mu);
        if (r->stopping) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (now_ms() - t0 >= PS_STABLE_S * 1000)
            backoff = PS_BACKOFF_MIN_MS;
        if (pid > 0)
            log_warn("privsep: API front pid %d %s; starting a new one in %d ms "
                     "(guests are not affected)",
                     (int)pid, how, backoff);
        {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += backoff / 1000;
            ts.tv_nsec += (long)(backoff % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!r->stopping && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
                ;
        }
        backoff = backoff * 2 > PS_BACKOFF_MAX_MS ? PS_BACKOFF_MAX_MS : backoff * 2;
        r->restarts++;
        if (r->stopping) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        pthread_mutex_unlock(&r->mu);
    }
    chan_server_wait_idle();
    return NULL;
}

/* The front's root: an empty directory only root can write. */
static int make_empty_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(path, 0555) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & 0022) != 0) {
        snprintf(err, errlen, "'%s' must be a directory owned by root, not group/other writable",
                 path);
        return -1;
    }
    return 0;
}

int ps_root_start(const ps_opts *o, const api_backend *be, void *be_ctx, ps_root **out, char *err,
                  size_t errlen)
{
    ps_root *r = calloc(1, sizeof *r);
    struct passwd *pw;

    *out = NULL;
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->o = *o;
    r->be = be;
    r->be_ctx = be_ctx;
    r->lfd = -1;
    snprintf(r->host, sizeof r->host, "%s", o->listen_host);
    snprintf(r->cert, sizeof r->cert, "%s", o->tls_cert ? o->tls_cert : "");
    snprintf(r->key, sizeof r->key, "%s", o->tls_key ? o->tls_key : "");
    snprintf(r->user, sizeof r->user, "%s", o->user);
    snprintf(r->empty, sizeof r->empty, "%s/%s", o->state_dir, PS_EMPTY_DIR);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    pw = getpwnam(o->user);
    if (pw == NULL) {
        snprintf(err, errlen,
                 "privsep user '%s' does not exist: create it (scripts/setup-debian.sh does: "
                 "useradd --system --no-create-home --shell /usr/sbin/nologin %s) or start "
                 "shoald with --privsep off",
                 o->user, o->user);
        goto fail;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        snprintf(err, errlen, "privsep user '%s' is root: the API front must not be", o->user);
        goto fail;
    }
    r->uid = pw->pw_uid;
    r->gid = pw->pw_gid;
    if (make_empty_dir(r->empty, err, errlen) != 0)
        goto fail;
    r->lfd = bind_listen(r->host, (uint16_t)o->listen_port, &r->port, err, errlen);
    if (r->lfd < 0)
        goto fail;
    if (pthread_create(&r->sup, NULL, supervisor_main, r) != 0) {
        snprintf(err, errlen, "cannot start the privsep supervisor thread");
        close(r->lfd);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return -1;
}

uint16_t ps_root_port(const ps_root *r)
{
    return r != NULL ? r->port : 0;
}

void ps_root_stop(ps_root *r)
{
    struct timespec ts;
    pid_t pid;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pid = r->pid;
    if (pid > 0) {
        kill(pid, SIGTERM);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += STOP_GRACE_MS / 1000;
        while (r->pid == pid && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
            ;
        if (r->pid == pid) {
            log_warn("privsep: API front pid %d did not stop within %d s: killing it", (int)pid,
                     STOP_GRACE_MS / 1000);
            kill(pid, SIGKILL);
        }
    }
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->sup, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* ---- front side --------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = malloc((1 << 20) + 1);
    if (buf != NULL) {
        n = fread(buf, 1, 1 << 20, f);
        if (ferror(f) || n == 0) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* A seccomp filter (no libseccomp: a short BPF program): the front may make
 * every system call but these, which nothing in HTTP, TLS or JSON needs and
 * an attacker who runs code in the front would want (new programs, other
 * processes' memory, namespaces, mounts, kernel modules, BPF, keyrings).
 * They fail with EPERM; another architecture or the x32 ABI kills. */
static int install_seccomp(void)
{
#define DENY(nr)                                                                                   \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                               \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), /* x32 */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        DENY(SYS_execve),
        DENY(SYS_execveat),
        DENY(SYS_ptrace),
        DENY(SYS_process_vm_readv),
        DENY(SYS_process_vm_writev),
        DENY(SYS_mount),
        DENY(SYS_umount2),
        DENY(SYS_pivot_root),
        DENY(SYS_chroot),
        DENY(SYS_unshare),
        DENY(SYS_setns),
        DENY(SYS_init_module),
        DENY(SYS_finit_module),
        DENY(SYS_delete_module),
        DENY(SYS_kexec_load),
        DENY(SYS_bpf),
        DENY(SYS_perf_event_open),
        DENY(SYS_keyctl),
        DENY(SYS_add_key),
        DENY(SYS_request_key),
        DENY(SYS_userfaultfd),
        DENY(SYS_open_by_handle_at),
        DENY(SYS_personality),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
#undef DENY
    struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };

    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
        log_error("privsep front: seccomp filter: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Empty root, no groups, the user's ids, no capabilities in any set,
 * no_new_privs; check that root cannot be had back; the seccomp filter. */
static int drop_privileges(const char *dir, uid_t uid, gid_t gid)
{
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
            log_error("privsep front: PR_CAPBSET_DROP %d: %s", cap, strerror(errno));
            return -1;
        }
    }
    if (chroot(dir) != 0 || chdir("/") != 0) {
        log_error("privsep front: chroot '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        log_error("privsep front: cannot become uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
                  strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        log_error("privsep front: no_new_privs: %s", strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || getuid() == 0 || geteuid() == 0) {
        log_error("privsep front: still root after dropping privileges");
        return -1;
    }
    return install_seccomp();
}

static void on_channel_dead(void *cls)
{
    (void)cls;
    /* the root is gone (or closed us): stop serving */
    kill(getpid(), SIGTERM);
}

int ps_front_main(int argc, char **argv)
{
    unsigned long v[8];
    char *cert = NULL, *key = NULL;
    chan_client *cc = NULL;
    api_server *srv = NULL;
    api_config ac;
    api_err aerr;
    sigset_t set;
    int sig, rc = 1;

    if (argc != FRONT_ARGS) {
        fprintf(stderr, "shoald: %s is started by shoald itself\n", PS_FRONT_ARG);
        return 2;
    }
    for (int i = 0; i < 8; i++)
        v[i] = strtoul(argv[2 + i], NULL, 10);
    log_set_verbose((int)v[6]);
    /* "exe" otherwise (exec of /proc/self/exe): named for ps, top and pgrep */
    prctl(PR_SET_NAME, "shoald-front", 0, 0, 0);
    /* signals are taken by sigwait below, as in the root */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (argv[11][0] != '\0') {
        cert = slurp(argv[11]);
        key = slurp(argv[12]);
        if (cert == NULL || key == NULL) {
            log_error("privsep front: cannot read the TLS certificate '%s' or key '%s'", argv[11],
                      argv[12]);
            goto out;
        }
    }
    if (drop_privileges(argv[10], (uid_t)v[0], (gid_t)v[1]) != 0)
        goto out;
    /* with the root gone there is nothing left to finish: go at once (the
     * socket must be free for the next shoald) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != (pid_t)v[7]) {
        log_error("privsep front: the root process is gone");
        goto out;
    }
    if (chan_client_open(FRONT_CHAN_FD, (unsigned)v[2] + 16, on_channel_dead, NULL, &cc) != 0) {
        log_error("privsep front: cannot open the channel");
        goto out;
    }
    memset(&ac, 0, sizeof ac);
    ac.listen_fd = FRONT_LISTEN_FD;
    ac.tls_cert_pem = cert;
    ac.tls_key_pem = key;
    ac.max_upload = v[5];
    ac.max_connections = (unsigned)v[2];
    ac.max_conns_per_ip = (unsigned)v[3];
    ac.conn_timeout_s = (unsigned)v[4];
    if (api_server_start(&ac, chan_client_backend(), cc, &srv, &aerr) != 0) {
        log_error("privsep front: cannot serve the API: %s", aerr.msg);
        goto out;
    }
    if (key != NULL)
        explicit_bzero(key, strlen(key));
    log_debug("privsep: API front serving as user %s (uid %lu)", argv[13], v[0]);
    do {
        rc = sigwait(&set, &sig);
    } while (rc == EINTR);
    rc = 0;
out:
    api_server_stop(srv);
    chan_client_close(cc);
    free(cert);
    free(key);
    /* _exit: no atexit work in the chroot (a sanitizer build's leak check
     * needs ptrace, which the filter and the dropped privileges refuse) */
    fflush(stderr);
    _exit(rc);
}

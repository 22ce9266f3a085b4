/*
 * netbr.c - Linux bridges via iproute2 (see netbr.h).
 */
#include "netbr.h"
#include "errbuf.h"
#include "domxml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *ip_path(void)
{
    static const char *cands[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return "ip"; /* let posix_spawnp search PATH */
}

/*
 * Run `ip ARGV...`, capturing stdout+stderr (up to outlen-1 bytes) in out.
 * Returns the exit status (0..255), or -1 if it could not be run.
 */
static int run_ip(char *const argv[], char *out, size_t outlen)
{
    int pfd[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    int fa_init = 0;
    pid_t pid = -1;
    int rc = -1, status;
    size_t used = 0;

    if (out && outlen)
        out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) != 0)
        goto out;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_init = 1;
    if (posix_spawn_file_actions_adddup2(&fa, pfd[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 2) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0)
        goto out;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        pid = -1;
        goto out;
    }
    close(pfd[1]);
    pfd[1] = -1;
    for (;;) {
        char tmp[512];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out && used + 1 < outlen) {
            size_t k = (size_t)n;
            if (k > outlen - 1 - used)
                k = outlen - 1 - used;
            memcpy(out + used, tmp, k);
            used += k;
            out[used] = '\0';
        }
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            goto out;
    }
    pid = -1;
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* trim trailing newline for messages */
    while (out && used > 0 && (out[used - 1] == '\n' || out[used - 1] == '\r'))
        out[--used] = '\0';
out:
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    return rc;
}

/* 1 if `name` exists, 2 if it exists and is a bridge, 0 if absent. */
static int link_kind(const char *name)
{
    char out[4096];
    if (if_nametoindex(name) == 0)
        return 0;
    char *argv[] = { (char *)ip_path(), "-o", "-d", "link", "show", "dev", (char *)name, NULL };
    if (run_ip(argv, out, sizeof out) != 0)
        return 1;
    /* `ip -d` prints the link kind as "\n    bridge ..." or, with -o,
     * "\\    bridge forward_delay ..." */
    return strstr(out, " bridge forward_delay") || strstr(out, "    bridge ") ? 2 : 1;
}

int netbr_exists(const char *name)
{
    return domxml_valid_bridge(name) && link_kind(name) == 2;
}

int netbr_create(const char *name, const char *addr, unsigned prefix, char *err, size_t errlen)
{
    char out[1024], cidr[INET_ADDRSTRLEN + 4];
    struct in_addr a;
    int rc = NETBR_E_INVAL, kind;

    if (!domxml_valid_bridge(name)) {
        errbuf_set(err, errlen, "invalid bridge name '%s' (1-15 of [A-Za-z0-9_.-])",
                   name ? name : "(null)");
        goto out;
    }
    if (!addr || strlen(addr) >= INET_ADDRSTRLEN || inet_pton(AF_INET, addr, &a) != 1) {
        errbuf_set(err, errlen, "invalid IPv4 address '%s' for bridge '%s'", addr ? addr : "(null)",
                   name);
        goto out;
    }
    if (prefix > 32) {
        errbuf_set(err, errlen, "invalid prefix length '%u' for bridge '%s' (0-32)", prefix, name);
        goto out;
    }
    snprintf(cidr, sizeof cidr, "%s/%u", addr, prefix);

    kind = link_kind(name);
    if (kind == 1) {
        errbuf_set(err, errlen, "interface '%s' exists and is not a bridge", name);
        rc = NETBR_E_EXISTS;
        goto out;
    }
    rc = NETBR_E_IP;
    if (kind == 0) {
        char *argv[] = { (char *)ip_path(), "link", "add",    "name",
                         (char *)name,      "type", "bridge", NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip link add '%s' type bridge: %s", name, out);
            goto out;
        }
    }
    {
        char *argv[] = { (char *)ip_path(), "addr", "replace", cidr, "dev", (char *)name, NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip addr replace '%s' dev '%s': %s", cidr, name, out);
            goto out;
        }
    }
    {
        char *argv[] = { (char *)ip_path(), "link", "set", "dev", (char *)name, "up", NULL };
        if (run_ip(argv, out, sizeof out) != 0) {
            errbuf_set(err, errlen, "ip link set '%s' up: %s", name, out);
            goto out;
        }
    }
    rc = NETBR_OK;
out:
    return rc;
}

int netbr_delete(const char *name, char *err, size_t errlen)
{
    char out[1024];
    int rc = NETBR_E_INVAL, kind;

    if (!domxml_valid_bridge(name)) {
        errbuf_set(err, errlen, "invalid bridge name '%s'", name ? name : "(null)");
        goto out;
    }
    kind = link_kind(name);
    if (kind == 0) {
        rc = NETBR_OK;
        goto out;
    }
    if (kind == 1) {
        errbuf_set(err, errlen, "interface '%s' is not a bridge; not deleting it", name);
        rc = NETBR_E_EXISTS;
        goto out;
    }
    char *argv[] = { (char *)ip_path(), "link", "del", "dev", (char *)name, NULL };
    if (run_ip(argv, out, sizeof out) != 0) {
        errbuf_set(err, errlen, "ip link del '%s': %s", name, out);
        rc = NETBR_E_IP;
        goto out;
    }
    rc = NETBR_OK;
out:
    return rc;
}

void netbr_mac(const char *seed, char out[NETBR_MAC_STRLEN])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)(seed ? seed : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    snprintf(out, NETBR_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", NETBR_MAC_PREFIX0,
             NETBR_MAC_PREFIX1, (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

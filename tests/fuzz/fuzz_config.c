/* Fuzz target: shoald's config file reader (daemon/config.c, cfg_load with
 * --config FILE), the text an operator (or a package, or whoever can write
 * the state dir) hands a root daemon. Input: the file's bytes. Checks: a
 * refusal names its line; an accepted file leaves every field in range and
 * every string field NUL-terminated inside its array; the CIDR parser
 * agrees with its own output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

static void check_cfg(const cfg_t *c)
{
    uint32_t net;
    int prefix;
    char ip[16];

    if (!TERMINATED(c->state_dir) || !TERMINATED(c->listen_host) || !TERMINATED(c->domain_type) ||
        !TERMINATED(c->local_uri) || !TERMINATED(c->bridge) || !TERMINATED(c->publish_addr) ||
        !TERMINATED(c->dhcp) || !TERMINATED(c->tls_cert) || !TERMINATED(c->tls_key) ||
        !TERMINATED(c->capacity) || !TERMINATED(c->ksm) || !TERMINATED(c->qemu_aslr) ||
        !TERMINATED(c->qemu_user) || !TERMINATED(c->host_uri_allow))
        abort();
    if (c->listen_port < 0 || c->listen_port > 65535 || c->prefix < 8 || c->prefix > 30 ||
        c->mem_overcommit < 0.1 || c->cpu_overcommit < 0.1 || c->max_instances < 0)
        abort();
    /* the subnet round-trips through its text form */
    {
        char text[32];
        snprintf(text, sizeof text, "%s/%d", cfg_ip4_str(c->subnet, ip), c->prefix);
        if (cfg_parse_cidr(text, &net, &prefix) != 0 || net != c->subnet || prefix != c->prefix)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    char *argv[] = { "shoald", "--config", path, NULL };
    char err[512];
    cfg_t *c = malloc(sizeof *c);
    FILE *f;
    int rc;

    if (c == NULL)
        return 0;
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/shoal-fuzz-config-%d.conf", (int)getpid());
    f = fopen(path, "wb");
    if (f == NULL) {
        free(c);
        return 0;
    }
    fwrite(data, 1, size, f);
    fclose(f);
    err[0] = '\0';
    rc = cfg_load(c, 3, argv, err, sizeof err);
    if (rc == 0)
        check_cfg(c);
    else if (rc != -1 || err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
        abort();
    unlink(path);

    /* the CIDR parser alone, on the first line */
    {
        char line[64];
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl != NULL ? (size_t)(nl - data) : size;
        uint32_t net;
        int prefix;
        if (n >= sizeof line)
            n = sizeof line - 1;
        memcpy(line, data, n);
        line[n] = '\0';
        if (cfg_parse_cidr(line, &net, &prefix) == 0 && (prefix < 8 || prefix > 30))
            abort();
    }
    free(c);
    return 0;
}

/* debugexit.c - exit codes through isa-debug-exit (see debugexit.h). */
#include "debugexit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "fleet_int.h"
#include "instpath.h"

#ifndef SHOAL_LIBEXECDIR
#define SHOAL_LIBEXECDIR "/usr/local/libexec"
#endif
#ifndef SHOAL_QEMU_EXIT_BUILD_PATH
#define SHOAL_QEMU_EXIT_BUILD_PATH ""
#endif

#define LOG_TAIL_MAX (64 * 1024)

static const char wrapper_line[] = "shoal-qemu-exit: qemu pid ";

const char *fleet_debug_exit_wrapper(void)
{
    static const char installed[] = SHOAL_LIBEXECDIR "/shoal/" FLEET_QEMU_EXIT_NAME;
    if (instpath_get(INSTPATH_QEMU_EXIT)) /* PREFIX/bin/shoald's PREFIX/libexec */
        return instpath_get(INSTPATH_QEMU_EXIT);
    if (access(installed, X_OK) == 0)
        return installed;
    if (SHOAL_QEMU_EXIT_BUILD_PATH[0] && access(SHOAL_QEMU_EXIT_BUILD_PATH, X_OK) == 0)
        return SHOAL_QEMU_EXIT_BUILD_PATH;
    return NULL;
}

/* Last occurrence of needle in [s, s + len). */
static const char *last_of(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, needle, n))
            return s + i;
    return NULL;
}

int fleet_debug_exit_parse(const char *log, size_t len, int *code)
{
    /* libvirt writes "<time>: starting up libvirt version: ..." at every
     * start of the domain: only the last run counts. */
    const char *run = last_of(log, len, ": starting up libvirt");
    const char *end = log + len, *line, *p;
    long status;
    char *num_end;

    if (!run)
        return -1;
    /* QEMU's own errors ("[time] qemu-system-x86_64: ...") end it with
     * status 1, which would read as code 0; a SIGTERM it reports is no
     * error. */
    for (p = run; (p = strstr(p, "qemu-system-x86_64: ")) && p < end; p++)
        if (strncmp(p + 20, "terminating on signal", 21) != 0)
            return -1;
    line = last_of(run, (size_t)(end - run), wrapper_line);
    if (!line)
        return -1;
    p = strchr(line + sizeof wrapper_line - 1, ' ');
    if (!p || end - p < (long)sizeof " exited with status " ||
        strncmp(p, " exited with status ", 20) != 0)
        return -1;
    status = strtol(p + 20, &num_end, 10);
    if (num_end == p + 20 || status < 0 || status > 255 || !(status & 1))
        return -1;
    *code = (int)(status >> 1);
    return 0;
}

/* The directory where libvirt keeps QEMU's log for the host named host. */
static int log_dir(fleet *f, const char *host, char *out, size_t len)
{
    const char *uri = f->cfg.local_uri, *root;
    if (strcmp(host, FLEET_LOCAL_HOST) != 0)
        return -1;
    if (!uri[0]) {
        snprintf(out, len, "%s/libvirt/log/qemu", f->cfg.state_dir);
        return 0;
    }
    if (!strncmp(uri, "qemu:///embed?root=", 19) && !strchr((root = uri + 19), '&')) {
        snprintf(out, len, "%s/log/qemu", root);
        return 0;
    }
    if (!strcmp(uri, "qemu:///system") || !strcmp(uri, "qemu+unix:///system")) {
        snprintf(out, len, "/var/log/libvirt/qemu");
        return 0;
    }
    return -1;
}

int fleet_debug_exit_code(fleet *f, const state_instance *in, int *code)
{
    img_info info;
    img_err ierr;
    char dir[FLEET_PATH_MAX], path[FLEET_PATH_MAX + 80], dom[64], *buf = NULL;
    struct stat st;
    int fd = -1, rc = -1;
    ssize_t got;

    memset(&info, 0, sizeof info);
    if (img_get(f->img, in->image_digest, &info, &ierr) != 0 ||
        info.profile.exit != IMG_EXIT_DEBUG_EXIT || log_dir(f, in->host, dir, sizeof dir) != 0)
        goto out;
    fleet_domain_name(fleet_run_id(in), dom, sizeof dom);
    snprintf(path, sizeof path, "%s/%s.log", dir, dom);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    off_t from = st.st_size > LOG_TAIL_MAX ? st.st_size - LOG_TAIL_MAX : 0;
    if (!(buf = malloc(LOG_TAIL_MAX + 1)))
        goto out;
    got = pread(fd, buf, LOG_TAIL_MAX, from);
    if (got <= 0)
        goto out;
    buf[got] = 0;
    rc = fleet_debug_exit_parse(buf, (size_t)got, code);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    img_info_clear(&info);
    return rc;
}

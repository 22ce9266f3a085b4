/* disk.c - per-instance overlays of disk images (see disk.h). */
#include "disk.h"
#include "child.h"
#include "fleet_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DISK_MIN_BYTES (1u << 20) /* SeaBIOS: at least one cylinder */

void fleet_disk_path(const struct fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/disks/%s.qcow2", f->cfg.state_dir, id);
}

/* Run argv (argv[0] looked up in PATH), its stdout and stderr kept; 0
 * when it exits 0, else -1 with its output on one line. */
static int run_tool(char *const argv[], char *err, size_t errlen)
{
    char out[400], why[256];
    struct child_opts o = { .out = out, .outlen = sizeof out };
    struct child_result r;
    size_t n;
    int st, rc = child_run(argv, &o, &r, why, sizeof why);

    if (rc == CHILD_E_START)
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(r.error));
    else if (rc != CHILD_OK && r.started) /* waitpid failed */
        snprintf(err, errlen, "%s: %s", argv[0], why);
    else if (rc != CHILD_OK)
        snprintf(err, errlen, "cannot run %s: %s", argv[0], why);
    if (rc != CHILD_OK)
        return -1;
    for (n = 0; n < r.used; n++)
        if (out[n] == '\n' || (unsigned char)out[n] < 0x20)
            out[n] = ' ';
    while (n && out[n - 1] == ' ')
        out[--n] = 0;
    st = r.status;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFEXITED(st))
        snprintf(err, errlen, "%s exited with status %d: %s", argv[0], WEXITSTATUS(st),
                 n ? out : "(no output)");
    else
        snprintf(err, errlen, "%s killed by signal %d: %s", argv[0],
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0, n ? out : "(no output)");
    return -1;
}

uint64_t fleet_disk_bytes(img_format format, uint64_t base_size)
{
    return format == IMG_FORMAT_RAW && base_size < DISK_MIN_BYTES ? DISK_MIN_BYTES : 0;
}

/* STATE_DIR/disks/<id>.host: the remote host holding the current overlay. */
static void place_path(const struct fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/disks/%s.host", f->cfg.state_dir, id);
}

int fleet_disk_remote_fresh(struct fleet *f, const char *id, const char *host)
{
    char path[FLEET_PATH_MAX + 16], at[STATE_NAME_MAX + 2] = "";
    size_t n = 0;
    FILE *fp;

    place_path(f, id, path, sizeof path);
    if ((fp = fopen(path, "re"))) {
        n = fread(at, 1, sizeof at - 1, fp);
        fclose(fp);
    }
    at[n] = '\0';
    fleet_disk_path(f, id, path, sizeof path);
    unlink(path); /* this machine's overlay is not the current one any more */
    return strcmp(at, host) != 0;
}

int fleet_disk_remote_done(struct fleet *f, const char *id, const char *host, char *err,
                           size_t errlen)
{
    char dir[FLEET_PATH_MAX], path[FLEET_PATH_MAX + 16], tmp[FLEET_PATH_MAX + 24];
    FILE *fp;
    int ok;

    snprintf(dir, sizeof dir, "%s/disks", f->cfg.state_dir);
    place_path(f, id, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (mkdir(dir, 0711) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (!(fp = fopen(tmp, "we"))) {
        snprintf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        return -1;
    }
    ok = fputs(host, fp) >= 0;
    ok = fclose(fp) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int fleet_disk_prepare(struct fleet *f, const char *id, const char *base, img_format format,
                       uint64_t base_size, char *path, size_t pathlen, char *err, size_t errlen)
{
    char dir[FLEET_PATH_MAX], tmp[FLEET_PATH_MAX + 16], size[16] = "";
    struct stat sb;

    if (format != IMG_FORMAT_RAW && format != IMG_FORMAT_QCOW2) {
        snprintf(err, errlen, "image format %s is not a disk image", img_format_name(format));
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/disks", f->cfg.state_dir);
    place_path(f, id, tmp, sizeof tmp);
    fleet_disk_path(f, id, path, pathlen);
    if (unlink(tmp) == 0) /* the disk was on a remote host since: afresh */
        unlink(path);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        return 0; /* made by an earlier run: the guest's writes stay */
    if (mkdir(dir, 0711) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create '%s': %s", dir, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    /* Smaller raw bases get a bigger overlay; a qcow2 base's own virtual
     * size (checked at push: 512 bytes up) is kept. */
    if (fleet_disk_bytes(format, base_size))
        snprintf(size, sizeof size, "%llu",
                 (unsigned long long)fleet_disk_bytes(format, base_size));
    {
        char *argv[] = { "qemu-img",
                         "create",
                         "-q",
                         "-f",
                         "qcow2",
                         "-F",
                         (char *)img_format_name(format),
                         "-b",
                         (char *)base,
                         tmp,
                         size[0] ? size : NULL,
                         NULL };
        if (run_tool(argv, err, errlen) != 0) {
            unlink(tmp);
            return -1;
        }
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void fleet_disk_remove(struct fleet *f, const char *id)
{
    char path[FLEET_PATH_MAX + 16];
    fleet_disk_path(f, id, path, sizeof path);
    unlink(path);
    strcat(path, ".tmp");
    unlink(path);
    place_path(f, id, path, sizeof path);
    unlink(path);
}

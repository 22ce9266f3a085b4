/* disk.c - per-instance overlays of disk images (see disk.h). */
#include "disk.h"
#include "fleet_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DISK_MIN_BYTES (1u << 20) /* SeaBIOS: at least one cylinder */

void fleet_disk_path(const struct fleet *f, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/disks/%s.qcow2", f->cfg.state_dir, id);
}

/* Run argv (argv[0] looked up in PATH) with stdout and stderr into one
 * pipe; 0 when it exits 0, else -1 with its first line of output. */
static int run_tool(char *const argv[], char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    char out[400];
    size_t n = 0;
    int p[2], rc, st = 0;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot run %s: pipe: %s", argv[0], strerror(errno));
        return -1;
    }
    /* Workers block signals for the main thread's sigwait: the child gets
     * an empty mask and default handlers. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGCHLD);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    for (;;) {
        char tmp[512];
        ssize_t r = read(p[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && n + 1 < sizeof out; i++)
            out[n++] = tmp[i] == '\n' || (unsigned char)tmp[i] < 0x20 ? ' ' : tmp[i];
    }
    out[n] = 0;
    while (n && out[n - 1] == ' ')
        out[--n] = 0;
    close(p[0]);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "%s: waitpid: %s", argv[0], strerror(errno));
            return -1;
        }
    }
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
    fleet_disk_path(f, id, path, pathlen);
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
    if (format == IMG_FORMAT_RAW && base_size < DISK_MIN_BYTES)
        snprintf(size, sizeof size, "%u", DISK_MIN_BYTES);
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
}

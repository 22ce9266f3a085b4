/* instpath.c - installed files relative to the executable (instpath.h). */
#include "instpath.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Relative to the install prefix, as GNUInstallDirs laid them out
 * (daemon/CMakeLists.txt passes them). */
#ifndef SHOAL_INSTALL_BINDIR
#define SHOAL_INSTALL_BINDIR "bin"
#endif
#ifndef SHOAL_INSTALL_DATADIR
#define SHOAL_INSTALL_DATADIR "share"
#endif
#ifndef SHOAL_INSTALL_LIBEXECDIR
#define SHOAL_INSTALL_LIBEXECDIR "libexec"
#endif

static const struct {
    const char *rel; /* below the prefix */
    int mode;        /* access(2) mode the file must grant */
} files[INSTPATH_N] = {
    [INSTPATH_CANARY] = { SHOAL_INSTALL_DATADIR "/shoal/canary.elf", R_OK },
    [INSTPATH_QEMU_EXIT] = { SHOAL_INSTALL_LIBEXECDIR "/shoal/shoal-qemu-exit", X_OK },
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char found[INSTPATH_N][PATH_MAX];

static void resolve(void)
{
    char exe[PATH_MAX];
    const char *bindir = "/" SHOAL_INSTALL_BINDIR;
    size_t blen = strlen(bindir), n;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash;

    if (len <= 0)
        return;
    exe[len] = '\0';
    if (!(slash = strrchr(exe, '/')))
        return;
    *slash = '\0'; /* exe is now the directory: PREFIX/bin? */
    n = strlen(exe);
    if (n < blen || strcmp(exe + n - blen, bindir) != 0)
        return;
    exe[n - blen] = '\0'; /* the prefix ("" for /bin) */
    for (int i = 0; i < INSTPATH_N; i++) {
        int w = snprintf(found[i], sizeof found[i], "%s/%s", exe, files[i].rel);
        if (w < 0 || (size_t)w >= sizeof found[i] || access(found[i], files[i].mode) != 0)
            found[i][0] = '\0';
    }
}

const char *instpath_get(enum instpath_file f)
{
    if ((unsigned)f >= INSTPATH_N)
        return NULL;
    pthread_once(&once, resolve);
    return found[f][0] ? found[f] : NULL;
}

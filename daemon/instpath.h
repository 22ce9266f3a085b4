/* instpath.h - shoald's installed files, found wherever shoal was installed.
 *
 * The paths compiled in (SHOAL_DATADIR, SHOAL_LIBEXECDIR) name the prefix
 * the build was configured with, /usr/local by default; but the Debian
 * package cpack makes from the same build installs under /usr, and
 * `cmake --install --prefix DIR` anywhere. So shoald first looks beside
 * itself: when its executable is PREFIX/bin/shoald (the layout of
 * GNUInstallDirs, SHOAL_INSTALL_BINDIR), its files are under
 * PREFIX/share/shoal and PREFIX/libexec/shoal. Callers fall back to the
 * compiled-in path, then to the build tree's (a shoald run from its build
 * dir). */
#ifndef SHOAL_INSTPATH_H
#define SHOAL_INSTPATH_H

enum instpath_file {
    INSTPATH_CANARY,    /* PREFIX/share/shoal/canary.elf, readable */
    INSTPATH_QEMU_EXIT, /* PREFIX/libexec/shoal/shoal-qemu-exit, executable */
    INSTPATH_N
};

/* The path of file f beside the running executable, or NULL when the
 * executable is not in PREFIX/bin or the file is not there. Resolved once
 * per process (thread-safe); the string is static. */
const char *instpath_get(enum instpath_file f);

#endif

#!/bin/sh
# shoal-users: create the system users shoald's guests and its API front
# run as, if missing.
# Run by the Debian package's postinst (installed as
# PREFIX/libexec/shoal/shoal-users) and by scripts/setup-debian.sh; run it
# after a by-hand `cmake --install` too. Idempotent.
set -eu

# libvirt's QEMU driver resolves its default user before reading qemu.conf;
# libvirt-daemon-system would create it, the embedded driver needs it too.
if ! getent group libvirt-qemu >/dev/null; then
    groupadd --system libvirt-qemu
fi
if ! getent passwd libvirt-qemu >/dev/null; then
    extra=""
    getent group kvm >/dev/null && extra="-G kvm"
    # shellcheck disable=SC2086
    useradd --system --no-create-home --home-dir /var/lib/libvirt \
        --shell /usr/sbin/nologin -g libvirt-qemu $extra libvirt-qemu
fi
# Every guest's QEMU under shoald's embedded driver runs as this user
# (shoald --qemu-user; docs/node.md "QEMU's user"): no login, no home, in
# group kvm for /dev/kvm. shoald makes its image cache readable to the
# group shoal-qemu only; libvirt-qemu joins it so that a libvirtd on this
# machine (a qemu:///system host) can boot the same images.
if ! getent group shoal-qemu >/dev/null; then
    groupadd --system shoal-qemu
fi
if ! getent passwd shoal-qemu >/dev/null; then
    extra=""
    getent group kvm >/dev/null && extra="-G kvm"
    # shellcheck disable=SC2086
    useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin -g shoal-qemu $extra shoal-qemu
fi
if getent group kvm >/dev/null && ! id -nG shoal-qemu | tr ' ' '\n' | grep -qx kvm; then
    usermod -a -G kvm shoal-qemu
fi
if ! id -nG libvirt-qemu | tr ' ' '\n' | grep -qx shoal-qemu; then
    usermod -a -G shoal-qemu libvirt-qemu
fi
# shoald's API front process (--privsep on, docs/security.md "Privilege
# separation") runs as this user: HTTP, TLS and JSON parsing, in an empty
# root with no capabilities. Its own group, no other membership.
if ! getent group shoal-api >/dev/null; then
    groupadd --system shoal-api
fi
if ! getent passwd shoal-api >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin -g shoal-api shoal-api
fi

#!/bin/sh
# Install every Debian package shoal needs to build, run and test.
# Idempotent: safe to run again; skips apt entirely when all are present.
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates curl iproute2 procps
      qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu
      libvirt-clients libvirt-dev libxml2-dev
      libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3 libssl-dev
      libcurl4-openssl-dev libcmocka-dev libgnutls28-dev
      clang clang-format libclang-rt-14-dev wrk hyperfine
      linux-image-cloud-amd64 busybox-static cpio gzip jq openssl python3 bc iputils-ping
      dnsmasq-base
      nftables
      gnuplot-nox"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
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
echo "setup: all packages present"

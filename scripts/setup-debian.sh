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
      nftables iptables
      gnuplot-nox
      systemd man-db
      openssh-server
      chromium chromium-driver"

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
# The users guests and the API front run as (shoal-qemu, libvirt-qemu,
# shoal-api): the same script the Debian package's postinst runs.
sh "$(dirname "$0")/../daemon/packaging/shoal-users.sh"
echo "setup: all packages present"

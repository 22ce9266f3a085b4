#!/bin/bash
# Image delivery to a remote host (issue 17) against scp of the same file
# over the same link, in the same run.
#
# One separate libvirtd (tests/e2e/lvhost.sh: its own network and mount
# namespace) reached as qemu+tcp://10.217.1.2/system over a veth from a
# client namespace this script makes. The file: MIB MiB of random bytes,
# named by its SHA-256 like shoald's image cache files. Delivery:
# bench_delivery (daemon/nodestore.c, what node_start runs for a remote
# host: upload through virStorageVolUpload, hashed on the way, size checked,
# marker made), ROUNDS times from scratch. Baseline: scp (OpenSSH, its
# default cipher) from the client namespace to an sshd started on a
# throwaway config inside the host's namespaces, writing into the same
# directory the volumes go to, ROUNDS times, then again with aes128-gcm
# (qemu+tcp does not encrypt; AES-GCM is the cheapest cipher here). Each
# prints its median round; the last line is the ratio to default scp
# (issue 17's target: >= 0.5).
# usage: bench_delivery.sh BENCH_DELIVERY [MIB [ROUNDS]]
set -eu
BIN=$1
MIB=${2:-256}
ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../e2e/lvhost.sh"

for t in /usr/sbin/sshd scp ssh-keygen sha256sum; do
    command -v "$t" >/dev/null || { echo "SKIP: no $t (scripts/setup-debian.sh installs openssh-server)"; exit 77; }
done
CNS=shoal-bdel-$$
WORK=""
SSHD_PID=""
cleanup() {
    [ -n "$WORK" ] && [ -s "$WORK/sshd.log" ] && { echo "--- sshd.log"; tail -5 "$WORK/sshd.log"; }
    set +e
    [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
    lvh_cleanup
    ip netns del "$CNS" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/shoal-bdel.XXXXXX)
ip netns add "$CNS"
ip -n "$CNS" link set lo up
lvh_init
lvh_start r1 1 "$CNS"
URI=$(lvh_uri r1)
ADDR=$(lvh_addr r1)

head -c "$((MIB * 1048576))" /dev/urandom >"$WORK/blob"
HEX=$(sha256sum "$WORK/blob" | cut -c1-64)
mv "$WORK/blob" "$WORK/$HEX.img"
FILE=$WORK/$HEX.img

# --- delivery through libvirt
out=$(ip netns exec "$CNS" "$BIN" "$URI" "$FILE" "$ROUNDS")
printf '%s\n' "$out"
lv=$(printf '%s\n' "$out" | awk '/^delivery MiB\/s:/ { print $3 }')

# --- scp over the same veth, into the same directory on the host. sshd's
# files are in the host's own /var/lib/libvirt (its /tmp is private).
SSHD_DIR=$(lvh_lib r1)/sshd
mkdir -p "$SSHD_DIR"
ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
cp "$WORK/key.pub" "$SSHD_DIR/authorized_keys"
cat >"$SSHD_DIR/sshd_config" <<CONF
ListenAddress $ADDR
Port 2222
HostKey /var/lib/libvirt/sshd/hostkey
AuthorizedKeysFile /var/lib/libvirt/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
lvh_exec r1 mkdir -p /run/sshd
lvh_exec r1 /usr/sbin/sshd -D -e -f /var/lib/libvirt/sshd/sshd_config 2>"$WORK/sshd.log" &
SSHD_PID=$!
for _ in $(seq 1 50); do
    ip netns exec "$CNS" bash -c "exec 3<>/dev/tcp/$ADDR/2222" 2>/dev/null && break
    sleep 0.1
done
DEST=/var/lib/libvirt/shoal/images/scp.bin
# scp_rounds [SCP OPTIONS]: ROUNDS copies; prints them, sets MED (median).
scp_rounds() {
    local rates=() i t0 t1 r
    for i in $(seq 1 "$ROUNDS"); do
        lvh_exec r1 rm -f "$DEST"
        t0=$(date +%s.%N)
        ip netns exec "$CNS" scp -q -i "$WORK/key" -P 2222 -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@" "$FILE" "root@$ADDR:$DEST"
        t1=$(date +%s.%N)
        r=$(echo "scale=1; $MIB / ($t1 - $t0)" | bc)
        [ "$(stat -c %s "$(lvh_lib r1)/shoal/images/scp.bin")" = "$((MIB * 1048576))" ] ||
            { echo "scp copied the wrong size"; exit 1; }
        echo "scp $* round $i: $MIB MiB in $(echo "$t1 - $t0" | bc) s: $r MiB/s"
        rates+=("$r")
    done
    lvh_exec r1 rm -f "$DEST"
    MED=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
}
scp_rounds
scp_med=$MED
cipher=$(ip netns exec "$CNS" ssh -G -p 2222 "$ADDR" | awk '/^ciphers/ { print $2 }' | cut -d, -f1)
# libvirt's qemu+tcp does not encrypt: scp with its fastest cipher here
# (AES-GCM, AES-NI) too, so the encryption's cost is visible.
scp_rounds -c aes128-gcm@openssh.com
aes_med=$MED
echo "scp MiB/s: $scp_med (default cipher $cipher); with aes128-gcm: $aes_med"
echo "delivery / scp (aes128-gcm): $(echo "scale=2; $lv / $aes_med" | bc)x"
echo "delivery / scp: $(echo "scale=2; $lv / $scp_med" | bc)x ($lv vs $scp_med MiB/s, $MIB MiB, median of $ROUNDS)"

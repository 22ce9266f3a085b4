#!/bin/bash
# End to end (issue 17): hosts that share no files with shoald. Two separate
# libvirt daemons (tests/e2e/lvhost.sh: each in its own network and mount
# namespace, with a private /tmp, reached only as qemu+tcp:// over a veth from
# the namespace shoald runs in) are added as hosts. Then:
#   - one of them decides its domain type with the KVM canary, delivered
#     and read back the same way (and collected afterwards);
#   - hello placed on one of them boots from the image volume shoald uploaded
#     into its storage pool 'shoal' and exits 0 (exit code and console read
#     back through the storage API once the domain stopped);
#   - a second hello there reuses the cached volume (no second upload:
#     /metrics' shoal_image_volume_uploads_total and the volume's inode);
#   - a disk image on r1: its base uploaded once, each instance boots from
#     its own qcow2 overlay made there (a boot counter on the disk: kept
#     across a stop/start, 1 again for a second instance), the overlay goes
#     with the instance, a host without qemu-img fails the start naming it,
#     the base goes with the image;
#   - a sleep guest on the other becomes running (its ready record carried
#     by a libvirt stream of its status port, no polling), its console
#     follows live while it runs (a stream of its console port), both
#     ports are logged on the host too, and it stops;
#   - r2's libvirtd killed and started again under a running guest: its
#     ports are streamed again, the local console stitched to r2's log;
#   - a corrupt cached volume without its marker is uploaded again;
#   - an httpd guest run on r1 with `shoal run --host r1 -p 8090:80` is on
#     r1's libvirt network 'shoal' (made by
#     shoald) with an address of r1's /24 of --remote-subnets, answers
#     /healthz from shoald's namespace through a route via r1 (the
#     operator's part, added here) and through its published port; a guest
#     claiming an address it was not given is dropped by r1's nwfilter;
#     shoald restarted: r1's subnet read back from its network, httpd
#     adopted and answering through its published port;
#     DHCP on r1 (libvirt's dnsmasq, a static entry per running guest): an
#     httpd asking by DHCP (shoal.ip=dhcp) takes its address behind r1's
#     filter and answers there; a
#     fake guest with a running sleep guest's MAC (a veth on r1's bridge,
#     busybox udhcpc) is given its address and answers there; unknown and
#     deleted MACs get nothing; the entry goes with the instance; an
#     address still leased to a deleted guest's MAC is not given out
#     again; entries changed by hand on r1 are reconciled by the restart;
#     drained off r1, httpd moves cold to local with an address of
#     --subnet, its published port following it, and r1 has no DHCP entry;
#   - the image deleted: its volume is collected from the host;
#   - the hosts removed: their networks and filters go too.
# qemu+tcp is allowed with --host-uri-allow here only: it has neither
# encryption nor authentication (hosturi.h); production hosts are qemu+tls
# or qemu+ssh. About 105 s alone (Release, 2 cores; 123 s before its waits
# overlapped): 60 s before guest networks, r2's restart under a running
# guest ~7 s (that guest's end is awaited after the next section), DHCP on
# r1 ~20 s, the disk image on r1 8 s (27 s on a loaded machine: two rounds
# of SeaBIOS boots).
# usage: daemon_remote.sh SHOALD IMAGES_DIR SHOAL_CLI
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
SHOAL=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lvhost.sh"

for f in "$SHOALD" "$SHOAL" "$IMAGES/hello.elf" "$IMAGES/sleep.elf" "$IMAGES/httpd.elf" \
    "$IMAGES/foreign_diskcount.img"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v libvirtd >/dev/null || { echo "SKIP: no libvirtd"; exit 77; }

GNS="$E2E_NS-g" # the DHCP fake guest's namespace
FAKE_HTTPD=""
remote_cleanup() {
    set +e
    [ -n "$FAKE_HTTPD" ] && kill "$FAKE_HTTPD" 2>/dev/null
    ip netns del "$GNS" 2>/dev/null
    e2e_cleanup
    lvh_cleanup
}

e2e_setup
trap remote_cleanup EXIT
lvh_init || exit 1
check "remote host r1 starts" lvh_start r1 1 "$E2E_NS"
check "remote host r2 starts" lvh_start r2 2 "$E2E_NS"
[ "$E2E_FAILS" = 0 ] || exit 1

# --domain-type qemu: no canary on the local host, which runs nothing here.
e2e_start_daemon "$SHOALD" --domain-type qemu --host-uri-allow 'qemu+tcp,qemu' || exit 1
e2e_push_images hello sleep httpd
HEX=$(sha256sum "$IMAGES/hello.elf" | cut -c1-64)

host_up() {
    api GET "/v1/hosts/$1"
    [ "$(printf '%s' "$BODY" | jq -r .state)" = up ]
}
metric() {
    api GET /metrics
    printf '%s\n' "$BODY" | awk -v m="$1" '$1 == m { print $2 }'
}
# r1 with its domain type given; r2 decides it with the KVM canary, which
# shoald delivers and reads back like a guest's files.
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"r1\",\"uri\":\"$(lvh_uri r1)\",\"domain_type\":\"qemu\"}"
check "add host r1 as $(lvh_uri r1) (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
api POST /v1/hosts -H 'Content-Type: application/json' \
    -d "{\"name\":\"r2\",\"uri\":\"$(lvh_uri r2)\"}"
check "add host r2 as $(lvh_uri r2), domain type auto (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
for h in r1 r2; do check "host $h comes up over TCP" wait_for 60 host_up $h; done
api GET /v1/hosts/r2
reason=$(printf '%s' "$BODY" | jq -r '.domain_type_reason // ""')
e2e_log "r2: domain type $(printf '%s' "$BODY" | jq -r .domain_type) ($reason)"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    check "r2's canary booted there and printed its loop count" \
        grep -qE 'canary powered off|canary loop|kvm canary paused|kvm canary crashed' <<<"$reason"
    check "r2's verdict is not a delivery failure" \
        grep -qvE 'not delivered|did not start|without printing' <<<"$reason"
else
    # No KVM on this machine, so none on r2 (it shares the kernel): libvirt
    # refuses the KVM canary's domain before QEMU starts, and r2 runs TCG.
    check "r2 without /dev/kvm: its KVM canary is refused by libvirt there" \
        grep -qE 'kvm canary did not start' <<<"$reason"
    check "r2 without /dev/kvm: domain type qemu" \
        [ "$(printf '%s' "$BODY" | jq -r .domain_type)" = qemu ]
    check "r2's verdict is not a delivery failure" grep -qv 'not delivered' <<<"$reason"
fi
check "the canary's volume and files are collected once r2 is up" \
    wait_for 10 out_is "" find "$(lvh_lib r2)/shoal" -type f

# Counters from here on (the canary was one upload and one removal).
U0=$(metric shoal_image_volume_uploads_total)
B0=$(metric shoal_image_volume_upload_bytes_total)
R0=$(metric shoal_image_volumes_removed_total)
uploads_are() { [ "$(metric shoal_image_volume_uploads_total)" = "$((U0 + $1))" ]; }

# The far host's view: its own /var/lib/libvirt is the test's LVH dir.
VOL=$(lvh_lib r1)/shoal/images/$HEX.img
check "the host cannot see shoald's state dir" lvh_exec r1 sh -c "! test -e '$E2E_STATE'"

# --- a guest on r1, from the uploaded volume
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"hello","name":"h1","host":"r1","args":["over the wire"]}'
check "create hello on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "hello exits" wait_for 30 inst_state_is h1 exited
check "hello exit code 0, read back from r1" [ "$(inst_field h1 .exit_code)" = 0 ]
check "hello ran on r1" [ "$(inst_field h1 .host)" = r1 ]
api GET /v1/instances/h1/console
check "its console, read back from r1, has the argument" grep -q 'over the wire' <<<"$BODY"
check "the image is a volume named by its digest on r1" cmp -s "$VOL" "$IMAGES/hello.elf"
check "with its marker" test -e "$(lvh_lib r1)/shoal/images/$HEX.ok"
check "the pool is libvirt's" lvh_exec r1 virsh -q pool-info shoal
id=$(inst_field h1 .id)
check "the domain booted from the volume (libvirt's log on r1)" \
    grep -q -- "-kernel /var/lib/libvirt/shoal/images/$HEX.img" "$(lvh_lib r1)/../log/qemu/shoal-$id.log"
check "one upload" uploads_are 1
check "bytes sent = the image's size" \
    [ "$(metric shoal_image_volume_upload_bytes_total)" = "$((B0 + $(stat -c %s "$IMAGES/hello.elf")))" ]
check "nothing on r2" [ ! -e "$(lvh_lib r2)/shoal/images/$HEX.img" ]
ino=$(stat -c %i "$VOL")

# --- a second instance on r1 uses the cached volume
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"hello","name":"h2","host":"r1"}'
check "create a second hello on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "it exits 0" wait_for 30 inst_state_is h2 exited
check "exit code 0" [ "$(inst_field h2 .exit_code)" = 0 ]
check "still one upload" uploads_are 1
check "a cache hit" [ "$(metric shoal_image_volume_hits_total)" -ge 1 ]
check "the same volume file" [ "$(stat -c %i "$VOL")" = "$ino" ]

# --- a disk image on r1 (docs/node.md "Remote hosts", "Disk images"): its
# base uploaded once into 'shoal', each instance booting from its own qcow2
# overlay shoal-<id>.qcow2 in 'shoal-run' (made by r1's libvirt over the
# base), kept across a stop/start there (the guest counts its boots on its
# disk), removed with the instance; a host without qemu-img says so; the
# base goes with the image. Three SeaBIOS boots under TCG in two rounds
# (dk1's second boot beside dk2's first): 8 s, 27 s on a loaded machine.
t_disk=$(date +%s)
api POST "/v1/images?ref=dcount:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_diskcount.img"
check "push the disk image dcount (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
DHEX=$(sha256sum "$IMAGES/foreign_diskcount.img" | cut -c1-64)
DVOL=$(lvh_lib r1)/shoal/images/$DHEX.img
UD=$(metric shoal_image_volume_uploads_total)
boots() { # NAME N: NAME exited after its Nth run, which said boot N (the
    # console is appended across runs)
    [ "$(inst_field "$1" '.state + " " + (.runs | length | tostring)')" = "exited $2" ] &&
        last_line_is "$1" "shoal-diskcount: boot $2"
}
last_line_is() { api GET "/v1/instances/$1/console"; [ "$(tail -n 1 <<<"$BODY")" = "$2" ]; }
ovl() { printf '%s/shoal/run/shoal-%s.qcow2' "$(lvh_lib "$1")" "$(inst_field "$2" .id)"; }
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"dcount","name":"dk1","host":"r1","network":false}'
check "create dk1 of the disk image on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "dk1 boots from its disk on r1 and exits: boot 1" wait_for 30 boots dk1 1
check "its base is a volume named by its digest on r1" cmp -s "$DVOL" "$IMAGES/foreign_diskcount.img"
check "with its marker" test -e "$(lvh_lib r1)/shoal/images/$DHEX.ok"
check "uploaded once" [ "$(metric shoal_image_volume_uploads_total)" = "$((UD + 1))" ]
O1=$(ovl r1 dk1)
check "dk1's overlay is a volume of shoal-run on r1" lvh_exec r1 virsh -q vol-info --pool shoal-run "$(basename "$O1")"
OINFO=$(lvh_exec r1 qemu-img info --output=json -U "/var/lib/libvirt/shoal/run/$(basename "$O1")" || true)
check "a qcow2 over the base volume, format raw" \
    eval '[ -n "$OINFO" ] && jq -e ".format == \"qcow2\" and .\"backing-filename\" == \"/var/lib/libvirt/shoal/images/$DHEX.img\" and .\"backing-filename-format\" == \"raw\"" <<<"$OINFO" >/dev/null'
check "the domain booted it (libvirt's log on r1 names the overlay)" \
    grep -q "/var/lib/libvirt/shoal/run/shoal-$(inst_field dk1 .id).qcow2" \
    "$(lvh_lib r1)/../log/qemu/shoal-$(inst_field dk1 .id).log"
dino=$(stat -c %i "$DVOL" 2>/dev/null || echo none)
# dk1's second run and a second instance boot side by side
api POST /v1/instances/dk1/start
check "start dk1 again (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"dcount","name":"dk2","host":"r1","network":false}'
check "create a second instance dk2 of it on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "dk1 finds what it wrote last run: boot 2" wait_for 30 boots dk1 2
check "dk2 boots from a disk of its own: boot 1" wait_for 30 boots dk2 1
check "the cached base was used (no upload, the same file)" \
    eval '[ "$(metric shoal_image_volume_uploads_total)" = "$((UD + 1))" ] && [ "$(stat -c %i "$DVOL")" = "$dino" ]'
O2=$(ovl r1 dk2)
check "dk2 has its own overlay" eval '[ -f "$O2" ] && [ "$O2" != "$O1" ]'
api_retry DELETE /v1/instances/dk2
check "delete dk2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its overlay went with it" [ ! -e "$O2" ]
check "dk1's stays" [ -f "$O1" ]
# r2 without qemu-img (a file that is not a program over it, in r2's own
# mount namespace): libvirt there cannot make a qcow2 volume.
QIMG=$(command -v qemu-img)
lvh_exec r2 mount --bind /dev/null "$QIMG"
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"dcount","name":"dk3","host":"r2","network":false}'
check "create dk3 of it on r2, which has no qemu-img (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "its start fails" wait_for 30 inst_state_is dk3 failed
check "naming qemu-img ($(inst_field dk3 .last_error))" grep -q 'qemu-img' <<<"$(inst_field dk3 .last_error)"
lvh_exec r2 umount "$QIMG"
for n in dk1 dk3; do
    api_retry DELETE "/v1/instances/$n"
    check "delete $n (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done
check "dk1's overlay went with it" [ ! -e "$O1" ]
RD=$(metric shoal_image_volumes_removed_total)
api DELETE /v1/images/dcount:latest
check "delete the disk image (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its base volume is gone from r1" wait_for 10 test ! -e "$DVOL"
check "and from r2" test ! -e "$(lvh_lib r2)/shoal/images/$DHEX.img"
check "two volumes removed" [ "$(metric shoal_image_volumes_removed_total)" = "$((RD + 2))" ]
check "the base went up once to each host" \
    [ "$(metric shoal_image_volume_uploads_total)" = "$((UD + 2))" ]
U0=$((U0 + 2)) # the uploads counted below are hello's
e2e_log "disk image on r1: $(($(date +%s) - t_disk)) s"

# --- a long-running guest on r2: ready through a stream of its status
# port, its console followed live through another; stopped through the
# connection
# until_banner FILE PID: wait (3 s at most) for the sleep guest's banner
# in FILE, which PID writes from a stream, then end PID
until_banner() {
    wait_for 4 grep -q 'shoal 0.1: sleep' "$1" || true
    kill "$2" 2>/dev/null
    wait "$2" 2>/dev/null || true
}
follow() { # follow NAME FILE: GET console?follow=1 into FILE until the banner
    ip netns exec "$E2E_NS" curl -sN -m 3 -H "Authorization: Bearer $E2E_TOKEN" \
        "http://127.0.0.1:$E2E_PORT/v1/instances/$1/console?follow=1" >"$2" 2>/dev/null &
    until_banner "$2" $!
}
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"s1","host":"r2","args":["600"]}'
check "create sleep on r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "it becomes running (its ready record streamed from r2)" wait_for 20 inst_state_is s1 running
check "with a boot time from its status" [ "$(inst_field s1 '.boot_ms != null')" = true ]
e2e_log "s1 ready_ms $(inst_field s1 .ready_ms) (request to ready record, over qemu+tcp)"
# Without streams its console is here only once the run ended.
follow s1 "$E2E_STATE/s1.follow"
check "its console followed live while it runs (console?follow=1)" \
    grep -q 'shoal 0.1: sleep' "$E2E_STATE/s1.follow"
ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_TOKEN="$E2E_TOKEN" \
    timeout 3 "$SHOAL" logs -f s1 >"$E2E_STATE/s1.logs" 2>&1 &
until_banner "$E2E_STATE/s1.logs" $!
check "and through shoal logs -f" grep -q 'shoal 0.1: sleep' "$E2E_STATE/s1.logs"
check "and it still runs" inst_state_is s1 running
id=$(inst_field s1 .id)
check "r2 logs its console port too (<log> in shoal-run)" \
    grep -q 'shoal 0.1: sleep' "$(lvh_lib r2)/shoal/run/shoal-$id.console"
check "and its status port" grep -q 'shoal-status ready' "$(lvh_lib r2)/shoal/run/shoal-$id.status"
check "no start fell back to fetching files" test -z "$(grep 'not streamed' "$E2E_STATE/shoald.log")"
# The stop aborts both streams while the guest still runs (node.c
# serials_abort: libvirt 9.0's libvirtd can deadlock when it closes a
# console stream itself as the domain goes); what the guest wrote comes
# from the host's files at the run's end.
ABORTS0=$(metric shoal_serial_stream_aborts_total)
S1PTS=$(lvh_exec r2 virsh -q -c qemu:///system dumpxml "shoal-$id" | grep -o '/dev/pts/[0-9]*' | sort -u)
check "its two ports are ptys on r2 ($(tr '\n' ' ' <<<"$S1PTS"))" [ "$(wc -w <<<"$S1PTS")" = 2 ]
api POST /v1/instances/s1/stop -H 'Content-Type: application/json' -d '{"timeout_s":5}'
check "stop it (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "it stops" wait_for 30 inst_state_is s1 stopped
ABORTS1=$(metric shoal_serial_stream_aborts_total)
# at least 2: the counter is shoald's, and an earlier delete's may land late
check "its two streams aborted before the stop, the host answering both ($ABORTS0 -> $ABORTS1)" \
    [ "$ABORTS1" -ge "$((ABORTS0 + 2))" ]
holds_s1_pty() { # does r2's libvirtd hold one of s1's ptys (a stream)?
    local p
    for p in $S1PTS; do
        [ -z "$(find "/proc/$(cat "$LVH_DIR/r2/pid")/fd" -lname "$p" 2>/dev/null)" ] || return 0
    done
    return 1
}
check "r2's libvirtd holds neither of them (no stream left to finish)" eval '! holds_s1_pty'
api GET /v1/instances/s1/console
check "its console still has what it wrote (fetched at the end)" \
    grep -q 'shoal 0.1: sleep' <<<"$BODY"

# --- r2's libvirtd restarted under a running guest (killed, as a crash
# would, then started again; the guest's QEMU runs on): shoald reconnects,
# reconcile adopts the guest and streams its ports again (docs/node.md
# "Remote hosts", "Streams after a reconnect"). The ticks it printed while
# nobody read its ports come from r2's log, the later ones live, each once
# and in order; a console follower opened before follows on. About 18 s.
t_re=$(date +%s)
ticks() { # the tick numbers in s2's console, one a line
    api GET /v1/instances/s2/console
    printf '%s' "$BODY" | grep -o 'sleep: tick [0-9]*' | awk '{ print $3 }'
}
max_tick() { ticks | tail -n 1; }
has_tick() { [ "$(max_tick)" -ge "$1" ] 2>/dev/null; }
OPENS0=$(metric shoal_serial_stream_opens_total)
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"sleep","name":"s2","host":"r2","args":["15","1"]}'
check "create sleep 15 (a tick a second) on r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "it ticks, live" wait_for 20 has_tick 1
ns_curl -sN -m 14 -H "Authorization: Bearer $E2E_TOKEN" \
    "http://127.0.0.1:$E2E_PORT/v1/instances/s2/console?follow=1" >"$E2E_STATE/s2.follow" 2>/dev/null &
FOLLOW=$!
check "kill r2's libvirtd" lvh_kill r2
host_down() { ! host_up r2; }
check "r2 goes down" wait_for 10 host_down
sleep 1 # ticks that only r2's log gets
K0=$(max_tick)
check "start r2's libvirtd again" lvh_restart r2
check "r2 comes back up" wait_for 20 host_up r2
check "s2 is adopted, running" inst_state_is s2 running
live_after() { # a tick past $1 while the run has not ended (no "slept")
    api GET /v1/instances/s2/console
    ! grep -q 'sleep: slept' <<<"$BODY" && has_tick "$1"
}
check "its console comes live again (a tick past $((K0 + 1)) while it runs)" \
    wait_for 8 live_after $((K0 + 2))
check "both ports streamed again (opens +4: its start and the reconnect)" \
    [ "$(metric shoal_serial_stream_opens_total)" = "$((OPENS0 + 4))" ]
check "shoald says so" grep -q "instance $(inst_field s2 .id): serial ports streamed again from host r2" \
    "$E2E_STATE/shoald.log"
stitched() { # from one read (a tick may come between two): 1..N, each once
    local t
    t=$(ticks | tr '\n' ' ')
    [ -n "$t" ] && [ "$t" = "$(seq -s ' ' 1 "$(wc -w <<<"$t")") " ] && return 0
    e2e_log "s2's ticks: $t"
    return 1
}
check "the ticks missed meanwhile are there, each once, in order" stitched
e2e_log "streams again after r2's restart: $(($(date +%s) - t_re)) s"
# s2 ends (and its follower with it) while h3 runs on r2 below

# --- a cached volume cut short (no marker) is uploaded again, whole
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"hello","name":"h3","host":"r2"}'
check "hello on r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "it exits 0 on r2" wait_for 30 inst_state_is h3 exited
check "exit code 0 on r2" [ "$(inst_field h3 .exit_code)" = 0 ]
check "an upload of hello to r2" uploads_are 3
printf 'garbage' | dd of="$(lvh_lib r2)/shoal/images/$HEX.img" conv=notrunc status=none
rm -f "$(lvh_lib r2)/shoal/images/$HEX.ok"
api POST /v1/instances/h3/start
check "start h3 again over a volume without its marker (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "it exits 0 again" wait_for 30 inst_state_is h3 exited
check "exit code 0 again" [ "$(inst_field h3 .exit_code)" = 0 ]
check "uploaded again" uploads_are 4
check "r2's volume is the image again" cmp -s "$(lvh_lib r2)/shoal/images/$HEX.img" "$IMAGES/hello.elf"
# s2, started before h3, ran on meanwhile
check "s2 exits 0 (its exit record)" wait_for 20 inst_state_is s2 exited
check "exit code 0" [ "$(inst_field s2 .exit_code)" = 0 ]
wait "$FOLLOW" 2>/dev/null || true
check "s2's follower opened before the restart saw the later ticks too" \
    grep -q "sleep: tick $((K0 + 2))" "$E2E_STATE/s2.follow"

# --- guest networks on a remote host (docs/node.md "Remote hosts"): r1's
# libvirt network 'shoal' (made by shoald), an address of r1's /24, reached
# from shoald's machine through a route via r1 (the operator's part, done
# here by the test); published ports through it; a guest that claims an
# address it was not given is dropped by the guest filter on r1.
t_net=$(date +%s)
fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }
shoal() { ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_TOKEN="$E2E_TOKEN" "$SHOAL" "$@"; }
check "shoal run --host r1 -p 8090:80 httpd" quiet shoal run --name web --host r1 -p 8090:80 httpd
in_pool() { case "$(inst_field "$1" .network.address)" in 10.89.*) return 0 ;; esac; return 1; }
check "web gets an address of a remote subnet" wait_for 30 in_pool web
ADDR=$(inst_field web .network.address)
IP=${ADDR%/*}
NET=${IP%.*}
e2e_log "web on r1: $ADDR, gateway $(inst_field web .network.gateway)"
check "a /24 with the gateway at .1" [ "${ADDR#*/}" = 24 ] && [ "$(inst_field web .network.gateway)" = "$NET.1" ]
check "shoald logs r1's subnet" grep -q "host r1: guest network $NET.0/24" "$E2E_STATE/shoald.log"
api GET /v1/hosts/local
check "the local host's is --subnet" [ "$(printf '%s' "$BODY" | jq -r .guest_subnet)" = 10.88.0.0/16 ]
api GET /v1/hosts/r1
SUBNET=$(printf '%s' "$BODY" | jq -r .guest_subnet)
check "GET /v1/hosts/r1 names its guest subnet ($SUBNET)" [ "$SUBNET" = "$NET.0/24" ]
ip -n "$E2E_NS" route replace "$SUBNET" via "$(lvh_addr r1)"
check "web runs" wait_for 60 inst_state_is web running
WID=$(inst_field web .id)
vr1() { lvh_exec r1 virsh -q -c qemu:///system "$@"; }
check "r1 has network shoal, active, bridge shoalr0" \
    grep -q "<bridge name='shoalr0'" <<<"$(vr1 net-dumpxml shoal)"
NXML=$(vr1 net-dumpxml --inactive shoal)
WMAC=$(inst_field web .network.mac)
check "made by shoald (its metadata)" grep -q 'shoal.dev/xmlns/network' <<<"$NXML"
check "DHCP static only: web's entry, no range" \
    eval 'grep -q "<host mac=.$WMAC. name=.web. ip=.$IP./>" <<<"$NXML" && ! grep -q "<range" <<<"$NXML"'
check "web's NIC is on network shoal behind filter shoal-guest with its address" \
    grep -q "<parameter name='IP' value='$IP'/>" <<<"$(vr1 dumpxml "shoal-$WID")"
healthz() { [ "$(ns_curl -sS -m 3 "$1" 2>/dev/null)" = ok ]; }
check "web answers /healthz at $IP from shoald's machine" wait_for 20 healthz "http://$IP/healthz"
check "and through its published port" wait_for 10 healthz "http://127.0.0.1:8090/healthz"
check "no nft table of shoald's on r1 (isolation is libvirt's there)" \
    fails lvh_exec r1 nft list table bridge shoal
# A guest configured (its own command line) with an address it was not
# given: neither ARP nor IP from it passes r1's filter.
api POST /v1/instances -H 'Content-Type: application/json' \
    -d "{\"image\":\"httpd\",\"name\":\"spoof\",\"host\":\"r1\",\"cmdline\":\"shoal.ip=$NET.200/24 shoal.gw={gateway} shoal.mac={mac}\"}"
check "create a guest on r1 claiming $NET.200 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "it runs" wait_for 60 inst_state_is spoof running
SID=$(inst_field spoof .id)
api GET /v1/instances/spoof/console
dropped() {
    # the last rule of the guest's chain: what the filter refused from it
    lvh_exec r1 nft list chain bridge nat "libvirt-I-sh$SID" 2>/dev/null |
        awk '/counter packets [0-9]+ bytes [0-9]+ drop/ { n = $3 } END { exit !(n > 0) }'
}
check "r1's filter drops what it sends as $NET.200" wait_for 15 dropped
check "$NET.200 does not answer" fails ns_curl -sS -m 3 "http://$NET.200/healthz"
learnt() { lvh_exec r1 ip neigh show "$1" | grep -q lladdr; }
check "r1 never learnt $NET.200 from it" fails learnt "$NET.200"
check "web still answers" healthz "http://127.0.0.1:8090/healthz"
api POST /v1/instances/spoof/stop -H 'Content-Type: application/json' -d '{"timeout_s":1}'
check "stop the spoofing guest (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "it stops" wait_for 30 inst_state_is spoof stopped
console_has() { api GET "/v1/instances/$1/console"; grep -qF "$2" <<<"$BODY"; }
check "it had taken $NET.200 (its console)" console_has spoof "net: $NET.200/24"
api_retry DELETE "/v1/instances/spoof?force=true"
check "delete spoof (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
# DHCP on r1 (libvirt's dnsmasq, static entries written by shoald): a
# fake guest (a veth on r1's bridge shoalr0, in a namespace of its own,
# with the MAC of a running sleep guest, which has no network stack) asks
# with busybox udhcpc, is given the address shoald shows, takes it and
# answers there from shoald's machine; an unknown MAC gets nothing; the
# entry goes with the instance, and its still-leased address is not given
# to the next instance. Then entries changed by hand on r1 (one missing, as
# in a network of an older shoald; one of no guest) are put right by the
# reconcile of the restart below.
t_dhcp=$(date +%s)
hosts_r1() { vr1 net-dumpxml shoal | grep -o "<host mac=[^>]*>" || true; }
ip netns add "$GNS"
printf '#!/bin/sh\necho "$1 ip=$ip mask=$mask router=$router" >>"$OUT"\n' >"$E2E_STATE/udhcpc.sh"
chmod 755 "$E2E_STATE/udhcpc.sh"
plug_fake() { # MAC: the fake guest's link, on r1's bridge
    ip -n "$(lvh_ns r1)" link del rdg0 2>/dev/null || true
    ip -n "$(lvh_ns r1)" link add rdg0 type veth peer name rdg1 address "$1"
    ip -n "$(lvh_ns r1)" link set rdg1 netns "$GNS"
    ip -n "$(lvh_ns r1)" link set rdg0 master shoalr0 up
    ip -n "$GNS" link set rdg1 up
}
ask() { # prints udhcpc's "bound ..." line, or nothing
    rm -f "$E2E_STATE/offer"
    OUT=$E2E_STATE/offer ip netns exec "$GNS" busybox udhcpc -i rdg1 -f -q -n -t "${1:-4}" \
        -T 1 -A 1 -s "$E2E_STATE/udhcpc.sh" >/dev/null 2>&1 || true
    grep '^bound ' "$E2E_STATE/offer" 2>/dev/null || true
}
gets() {
    got=$(ask 8) # more tries than gets_nothing: a loaded dnsmasq missed 4 once
    e2e_log "offered: ${got:-nothing}"
    grep -q " ip=$1 mask=24 router=$NET.1$" <<<"$got"
}
gets_nothing() { [ -z "$(ask 2)" ]; }
sleep_on_r1() { # NAME: a running sleep guest on r1; ADDR its address
    api POST /v1/instances -H 'Content-Type: application/json' \
        -d "{\"image\":\"sleep\",\"name\":\"$1\",\"host\":\"r1\",\"args\":[\"600\"]}"
    check "create sleep $1 on r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
    check "$1 runs" wait_for 60 inst_state_is "$1" running
    ADDR=$(inst_field "$1" .network.address)
    ADDR=${ADDR%/*}
}
sleep_on_r1 dg
DIP=$ADDR
DMAC=$(inst_field dg .network.mac)
H=$(hosts_r1)
check "r1's network has dg's entry ($DMAC $DIP) and web's" \
    eval 'grep -q "mac=.$DMAC. name=.dg. ip=.$DIP./" <<<"$H" && grep -q "$WMAC" <<<"$H"'
CHAIN=$(lvh_exec r1 nft list chain bridge nat "libvirt-I-sh$(inst_field dg .id)" 2>/dev/null)
check "r1's filter lets a guest with no address yet ask for one (udp 68 -> 67)" \
    grep -q 'udp sport 68 udp dport 67' <<<"$CHAIN"
check "and drops what a guest sends from the DHCP server's port 67" \
    grep -qE 'udp sport 67 .*drop' <<<"$CHAIN"
plug_fake "$DMAC"
check "dg's MAC is given dg's address $DIP by r1's dnsmasq, router $NET.1" gets "$DIP"
mkdir -p "$E2E_STATE/www"
echo ok >"$E2E_STATE/www/healthz"
ip -n "$GNS" addr add "$DIP/24" dev rdg1
ip -n "$GNS" route add default via "$NET.1"
ip netns exec "$GNS" busybox httpd -f -p 80 -h "$E2E_STATE/www" </dev/null >/dev/null 2>&1 &
FAKE_HTTPD=$!
check "the DHCP guest answers at $DIP from shoald's machine" wait_for 10 healthz "http://$DIP/healthz"
kill "$FAKE_HTTPD" 2>/dev/null
FAKE_HTTPD=""
ip -n "$GNS" addr flush dev rdg1
plug_fake 5a:5c:de:ad:00:02
check "an unknown MAC gets nothing" gets_nothing
# a real guest behind r1's filter: httpd told to ask by DHCP (shoal.ip=dhcp
# instead of its address) answers at the address shoald gave it
api POST /v1/instances -H 'Content-Type: application/json' \
    -d '{"image":"httpd","name":"dh","host":"r1","cmdline":"shoal.ip=dhcp shoal.mac={mac}"}'
check "create httpd dh on r1 asking by DHCP (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "dh runs" wait_for 60 inst_state_is dh running
HIP=$(inst_field dh .network.address)
HIP=${HIP%/*}
check "dh answers at $HIP, the address shoald shows" wait_for 20 healthz "http://$HIP/healthz"
api GET /v1/instances/dh/console
check "it took $HIP/24 by DHCP from $NET.1 ($(grep '^net:' <<<"$BODY" | tr '\n' ' '))" \
    eval 'grep -q "^net: $HIP/24 .* gw $NET.1 " <<<"$BODY" && grep -q "^net: address by DHCP from server $NET.1" <<<"$BODY"'
api_retry DELETE "/v1/instances/dh?force=true"
check "delete dh (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api_retry DELETE "/v1/instances/dg?force=true"
check "delete dg (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "dg's entry is gone from r1's network" wait_for 10 eval '! grep -q "$DMAC" <<<"$(hosts_r1)"'
check "from its persistent definition too" fails grep -q "$DMAC" <<<"$(vr1 net-dumpxml --inactive shoal)"
plug_fake "$DMAC"
check "the deleted instance's MAC gets nothing" gets_nothing
sleep_on_r1 dg2
D2IP=$ADDR
check "dg2 is not given $DIP, which r1's dnsmasq still leases to dg's MAC (got $D2IP)" \
    [ "$D2IP" != "$DIP" ]
plug_fake "$(inst_field dg2 .network.mac)"
check "dg2's MAC is given $D2IP" gets "$D2IP"
# by hand on r1: web's entry gone (an older shoald's network), one of a
# shoal MAC of no guest, one of a MAC not shoal's (the operator's)
vr1 net-update shoal delete ip-dhcp-host "<host mac='$WMAC'/>" --live --config >/dev/null
vr1 net-update shoal add-last ip-dhcp-host "<host mac='5a:5c:de:ad:00:01' ip='$NET.250'/>" \
    --live --config >/dev/null
vr1 net-update shoal add-last ip-dhcp-host "<host mac='52:54:00:de:ad:01' ip='$NET.251'/>" \
    --live --config >/dev/null
e2e_log "DHCP on r1: $(($(date +%s) - t_dhcp)) s"
# shoald restarted: r1's subnet known again from its network before any
# start there; web, adopted, answers through its published port again.
e2e_stop_daemon
e2e_start_daemon "$SHOALD" --domain-type qemu --host-uri-allow 'qemu+tcp,qemu' || exit 1
check "r1 comes back up" wait_for 30 host_up r1
check "r2 too" wait_for 30 host_up r2
R0=$(metric shoal_image_volumes_removed_total) # counters start again
subnet_is() { api GET "/v1/hosts/$1"; [ "$(printf '%s' "$BODY" | jq -r .guest_subnet)" = "$2" ]; }
check "r1's guest subnet is $SUBNET again (read from its network)" subnet_is r1 "$SUBNET"
check "web is adopted, running" wait_for 20 inst_state_is web running
check "and answers through its published port" wait_for 20 healthz "http://127.0.0.1:8090/healthz"
entries_are() { [ "$(hosts_r1 | grep -o "mac='[^']*'" | sort | tr '\n' ' ')" = "$1" ]; }
WANT=$(printf "mac='%s'\n" "$WMAC" "$(inst_field dg2 .network.mac)" 52:54:00:de:ad:01 | sort | tr '\n' ' ')
check "r1's DHCP entries are web's, dg2's and the operator's (reconciled: $(hosts_r1 | tr '\n' ' '))" \
    entries_are "$WANT"
vr1 net-update shoal delete ip-dhcp-host "<host mac='52:54:00:de:ad:01'/>" --live --config >/dev/null
check "dg2's MAC is still given $D2IP" gets "$D2IP"
api_retry DELETE "/v1/instances/dg2?force=true"
check "delete dg2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
in_table() { ip netns exec "$E2E_NS" nft list set bridge shoal addrs | grep -qF "$1"; }
check "no element for it in this machine's table (its filter is on r1)" fails in_table "$IP"
# Drained off r1 (r2 cordoned): a cold move to local, where it takes an
# address of --subnet and its published port follows it.
api POST /v1/hosts/r2/cordon -H 'Content-Type: application/json' -d '{"cordoned":true}'
check "cordon r2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
api POST /v1/hosts/r1/drain
check "drain r1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
on_local() { [ "$(inst_field web '.host + " " + .state')" = "local running" ]; }
check "web runs on local" wait_for 60 on_local
on_local || { ls -l "$E2E_STATE/run/$WID.status" && cat -v "$E2E_STATE/run/$WID.status"; } 2>&1 | head -20
if ! on_local; then
    t_get=$(date +%s%3N)
    api GET /v1/instances/web || true
    e2e_log "web after $(($(date +%s%3N) - t_get)) ms: HTTP $HTTP_CODE $(jq -c '{host, state, last_error}' <<<"$BODY" 2>/dev/null)"
fi
check "with an address of --subnet" grep -q '^10\.88\.' <<<"$(inst_field web .network.address)"
check "its published port answers from there" wait_for 20 healthz "http://127.0.0.1:8090/healthz"
check "r1's network has no DHCP entry left (web moved away)" wait_for 10 entries_are ""
api POST /v1/hosts/r2/cordon -H 'Content-Type: application/json' -d '{"cordoned":false}'
e2e_log "guest network on r1: $(($(date +%s) - t_net)) s"
api_retry DELETE "/v1/instances/web?force=true"
check "delete web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]

# --- image deleted: its volumes go from both hosts
for n in h1 h2 h3 s1 s2; do
    api_retry DELETE "/v1/instances/$n?force=true"
    check "delete $n (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done
api DELETE /v1/images/hello:latest
check "delete the image (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api DELETE /v1/images/sleep:latest
check "delete sleep (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api DELETE /v1/images/httpd:latest
check "delete httpd (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
check "its volume is gone from r1" wait_for 10 test ! -e "$VOL"
check "its volume is gone from r2" wait_for 10 test ! -e "$(lvh_lib r2)/shoal/images/$HEX.img"
left() { find "$(lvh_lib r1)/shoal/$1" "$(lvh_lib r2)/shoal/$1" -mindepth 1; }
check "the markers too" [ -z "$(left images)" ]
check "run files of deleted instances are gone" [ -z "$(left run)" ]
check "five volumes removed (hello on both, sleep on both, httpd on r1)" \
    [ "$(metric shoal_image_volumes_removed_total)" = "$((R0 + 5))" ]
for h in r1 r2; do
    api DELETE "/v1/hosts/$h"
    check "remove host $h (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
done
check "r1's network shoal, made by shoald, went with it" fails vr1 net-info shoal
check "and its filter" fails vr1 nwfilter-dumpxml shoal-guest
e2e_stop_daemon
e2e_finish

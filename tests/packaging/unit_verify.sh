#!/bin/bash
# shoald.service as `cmake --install` writes it: systemd-analyze verify finds
# nothing to say (an unknown or misspelt key only warns, so any output
# fails, and a planted bad key shows the check can fail), ExecStart names
# the shoald installed beside it, the settings the service depends on are
# there, and shoald.8 renders without warnings.
# usage: unit_verify.sh BUILD_DIR. Exit 77 without systemd-analyze.
set -u
BUILD=$1
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
TMP=$(mktemp -d /tmp/shoal-unit.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PASS=0
FAIL=0
check() {
    desc=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); echo "ok: $desc"; else FAIL=$((FAIL + 1)); echo "FAIL: $desc"; fi
}

cmake --install "$BUILD" --prefix "$TMP/usr" >/dev/null
UNIT=$TMP/usr/lib/systemd/system/shoald.service
check "cmake --install writes $UNIT" test -f "$UNIT"
check "ExecStart names the installed shoald" \
    grep -qx "ExecStart=$TMP/usr/bin/shoald --state-dir /var/lib/shoal" "$UNIT"
for kv in Type=notify Restart=on-failure KillMode=process TasksMax=infinity \
    ProtectSystem=strict StateDirectory=shoal WantedBy=multi-user.target; do
    check "$kv" grep -qx "$kv" "$UNIT"
done
# --man=no: Documentation= names man pages the machine may not have yet
out=$(systemd-analyze verify --man=no "$UNIT" 2>&1)
rc=$?
check "systemd-analyze verify: exit 0 and nothing said (rc $rc: '$out')" [ "$rc" -eq 0 -a -z "$out" ]
sed 's/^ProtectHome=yes$/ProtectHome=yes\nProtectHomme=yes/' "$UNIT" >"$TMP/bad.service"
out=$(systemd-analyze verify --man=no "$TMP/bad.service" 2>&1)
check "a misspelt key is reported ('$out')" grep -q "ProtectHomme" <<<"$out"

MAN=$TMP/usr/share/man/man8/shoald.8
check "shoald.8 installed" test -f "$MAN"
if command -v man >/dev/null; then
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$MAN" 2>&1 >/dev/null)
    check "shoald.8 renders without warnings ('$out')" [ -z "$out" ]
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]

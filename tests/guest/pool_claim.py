#!/usr/bin/env python3
"""pool_claim.py - the host side of the warm pool hand-over, for tests and
the benchmark (docs/guest-protocol.md, "Warm pool hand-over").

  pool_claim.py SOCK STATUS_LOG RECORD_FILE [--noise] [--chunks] [--no-ready] [--early] [--no-go] [--no-shut] [--late S] [--hold FILE] [--timeout S]

Waits for `shoal-status pool-wait` in STATUS_LOG, connects to the socket
SOCK of the guest's COM1, optionally sends noise first (--noise: lines a
guest must ignore and two headers it must refuse), then a newline and the
record `shoal-config <N>\\n` + RECORD_FILE's bytes (--chunks: in pieces of
1, 2, ... 31 bytes, again and again, 0.3 ms apart, so that the guest finds
its FIFO at every fill level). Prints every reply line as
`reply: <line>`, then, unless --no-ready, waits for the ready record and
prints `claim_host_us=<send of the record's last byte -> ready line seen>`
and the ready record. Exit 0, or 1 with a reason (timeout, a reply the
noise should have caused but did not). --early: connect and send as soon
as SOCK exists, not waiting for pool-wait (a host that writes before the
guest has booted: QEMU holds the bytes until the guest reads). After an
`ok` reply it shuts down its reading side (--no-shut: not, as hosts before
it did) and sends the go-ahead (a newline, docs/guest-protocol.md; --no-go:
none, as a host that predates it), and without --hold it hangs up right
behind it, as shoald does; --late S: S seconds after the go-ahead, as a
host that lost its CPU between the two; --hold FILE:
it stays connected and reads, and writes to FILE what the guest wrote
after the reply, as it came over the socket, until QEMU closes it. That
copy is exact; the console file QEMU logs may hold a byte twice when the
socket was full (docs/guest-protocol.md "Robustness").
"""
import os
import socket
import sys
import time

NOISE = [
    (b"\n", None),
    (b"random line noise, no header\n", None),
    (b"x" * 300 + b" shoal-config 5\n", None),       # not at a line start
    (b"xshoal-config 5\n", None),
    (b"shoal-configX 5\n", None),
    (b"shoal-config abc\n", b"shoal-config error length is not a number"),
    (b"shoal-config 8193\n", b"shoal-config error record is longer than 8192 bytes"),
    (b"shoal-config 12x\n", b"shoal-config error length is not a number"),
]


def wait_for(path, word, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                for line in f:  # whole lines only: QEMU writes byte by byte
                    if line.startswith(b"shoal-status " + word) and line.endswith(b"\n"):
                        return line.decode(errors="replace").strip()
        except FileNotFoundError:
            pass
        time.sleep(0.0002)
    return None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    if len(args) < 3:
        sys.exit(__doc__)
    sock_path, status, record_file = args[:3]
    timeout = 20.0
    if "--timeout" in sys.argv:
        timeout = float(sys.argv[sys.argv.index("--timeout") + 1])
    deadline = time.monotonic() + timeout
    if "--early" in flags:
        while not os.path.exists(sock_path) and time.monotonic() < deadline:
            time.sleep(0.001)
    elif not wait_for(status, b"pool-wait", deadline):
        sys.exit("FAIL: no pool-wait record in %s" % status)
    record = open(record_file, "rb").read()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.settimeout(max(0.1, deadline - time.monotonic()))
    rf = s.makefile("rb")

    def reply():
        # COM1 is the console too: what the guest printed while connected
        # (its banner, when connected before it was up) is not a reply
        while True:
            line = rf.readline()
            if not line:
                sys.exit("FAIL: the guest closed the console")
            line = line.rstrip(b"\n")
            if line.startswith(b"shoal-config "):
                break
            print("console: " + line.decode(errors="replace"), flush=True)
        print("reply: " + line.decode(errors="replace"), flush=True)
        return line

    if "--noise" in flags:
        for data, want in NOISE:
            s.sendall(data)
            if want is not None:
                got = reply()
                if got != want:
                    sys.exit("FAIL: after %r the guest replied %r, not %r" % (data[:40], got, want))
    # The newline first: a byte that reaches COM1 before the guest has
    # turned its FIFO on is lost (docs/guest-protocol.md).
    data = b"\nshoal-config %d\n" % len(record) + record
    if "--chunks" in flags:
        i, size = 0, 1
        while i < len(data):
            s.sendall(data[i:i + size])
            i += size
            size = size % 31 + 1
            time.sleep(0.0003)
    else:
        s.sendall(data)
    t0 = time.monotonic()
    last = reply()
    if last == b"shoal-config ok":
        if "--hold" not in sys.argv and "--no-shut" not in flags:
            # As shoald does: what QEMU sends from now on fails at once
            # (EPIPE) instead of filling a socket nobody reads, so the
            # console file holds each byte once however late the hang-up
            # comes
            s.shutdown(socket.SHUT_RD)
        if "--no-go" not in flags:
            s.sendall(b"\n")  # the go-ahead: the guest waits for it
    if "--late" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--late") + 1]))
    hold = None
    if "--hold" in sys.argv:
        hold = open(sys.argv[sys.argv.index("--hold") + 1], "wb")
    else:
        # Hang up at once, as shoald does (daemon/core/pool.c): a client
        # connected without reading as fast as the guest prints makes QEMU
        # 7.2 write bytes twice into the console file (docs/guest-protocol.md
        # "Robustness").
        rf.close()
        s.close()
    if "--no-ready" not in flags:
        ready = wait_for(status, b"ready", deadline)
        t1 = time.monotonic()
        if not ready:
            sys.exit("FAIL: no ready record after the claim (reply %r)" % last)
        print("claim_host_us=%d" % ((t1 - t0) * 1e6))
        print(ready)
    if hold:
        # everything the guest writes after its reply, as it went over the
        # socket, until QEMU closes it (the guest's end)
        s.settimeout(max(0.1, deadline - time.monotonic()))
        while True:
            b = rf.read1(65536)
            if not b:
                break
            hold.write(b)
        hold.close()


if __name__ == "__main__":
    main()

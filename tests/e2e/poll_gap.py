#!/usr/bin/env python3
"""poll_gap.py PORT OUT: GET /healthz on 127.0.0.1:PORT every 20 ms until
SIGTERM, then write "POLLS FAILED LONGEST_MS" to OUT, where LONGEST_MS is
the longest run of failed polls (first failure's start to the next
success). A poll fails when the connection is refused or reset, nothing
answers within 1 s, or the answer is not 200 (moves: daemon_moves.sh,
bench_moves.sh). Run it inside the test's network namespace."""
import signal
import socket
import sys
import time

port, out = int(sys.argv[1]), sys.argv[2]
stop = False


def on_term(*_):
    global stop
    stop = True


def poll_once():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.settimeout(1)
        s.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        return data.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
    except (OSError, IndexError):
        return False


signal.signal(signal.SIGTERM, on_term)
n = fails = 0
gap_start = None
longest = 0.0
while not stop:
    t = time.monotonic()
    ok = poll_once()
    n += 1
    if ok:
        if gap_start is not None:
            longest = max(longest, time.monotonic() - gap_start)
            gap_start = None
    else:
        fails += 1
        if gap_start is None:
            gap_start = t
    time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))
if gap_start is not None:
    longest = max(longest, time.monotonic() - gap_start)
with open(out, "w") as f:
    f.write("%d %d %d\n" % (n, fails, int(longest * 1000)))

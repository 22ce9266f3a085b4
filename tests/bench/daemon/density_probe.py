#!/usr/bin/env python3
"""density_probe.py - measurements for bench_density.sh (stdlib only).

  density_probe.py mem PATTERN
      QEMU processes whose command line contains PATTERN: prints
      "COUNT PSS_KIB" (sum of Pss from /proc/PID/smaps_rollup).
  density_probe.py idle PATTERN SHOALD_PID WINDOW_S
      CPU time (utime+stime) over WINDOW_S seconds of those QEMU processes
      (only the ones alive at both ends) and of shoald: prints
      "COUNT QEMU_CPU_S SHOALD_CPU_S WALL_S".
  density_probe.py rss PID
      VmRSS of PID in KiB.
  density_probe.py latency URL TOKEN N
      N sequential GETs of URL on one keep-alive connection (run inside
      the namespace): prints "P50_MS P99_MS MAX_MS"; exits 1 if any
      answer is not 200.
  density_probe.py healthz DEADLINE_S PARALLEL < addresses
      GET http://ADDR/healthz for each address on stdin (one a line), up
      to PARALLEL at once, each retried until it answers 200 "ok" or
      DEADLINE_S seconds have passed since the start: prints
      "ANSWERED TOTAL" and names the silent addresses on stderr.
"""
import http.client
import os
import sys
import threading
import time
import urllib.parse

TICK = os.sysconf("SC_CLK_TCK")


def qemu_pids(pattern):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and pattern.encode() in b" ".join(argv):
            pids.append(int(d))
    return pids


def cpu_ticks(pid):
    """utime + stime of PID, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2 :].split()  # fields from 3 (state) on
    return int(fields[11]) + int(fields[12])  # 14 utime, 15 stime


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cmd_mem(pattern):
    n = total = 0
    for p in qemu_pids(pattern):
        v = pss_kib(p)
        if v is not None:
            n += 1
            total += v
    print(n, total)


def cmd_idle(pattern, shoald_pid, window):
    pids = qemu_pids(pattern)
    t0 = time.monotonic()
    a = {p: cpu_ticks(p) for p in pids}
    d0 = cpu_ticks(shoald_pid)
    time.sleep(window)
    b = {p: cpu_ticks(p) for p in pids}
    d1 = cpu_ticks(shoald_pid)
    wall = time.monotonic() - t0
    both = [p for p in pids if a[p] is not None and b[p] is not None]
    q = sum(b[p] - a[p] for p in both) / TICK
    d = (d1 - d0) / TICK if d0 is not None and d1 is not None else 0.0
    print(len(both), f"{q:.2f}", f"{d:.2f}", f"{wall:.2f}")


def cmd_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print(line.split()[1])
                return
    print(0)


def pct(sorted_vals, p):
    return sorted_vals[int((len(sorted_vals) - 1) * p / 100)]


def cmd_latency(url, token, n):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    hdrs = {"Authorization": "Bearer " + token}
    times = []
    bad = 0
    for _ in range(n):
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
            ok = False
        times.append((time.perf_counter() - t) * 1000)
        bad += not ok
    times.sort()
    print(f"{pct(times, 50):.2f}", f"{pct(times, 99):.2f}", f"{times[-1]:.2f}")
    if bad:
        print(f"latency: {bad}/{n} requests failed", file=sys.stderr)
        sys.exit(1)


def cmd_healthz(deadline_s, parallel):
    addrs = [a.strip() for a in sys.stdin if a.strip()]
    end = time.monotonic() + deadline_s
    answered = set()
    lock = threading.Lock()
    todo = list(addrs)

    def probe(addr):
        while True:
            try:
                c = http.client.HTTPConnection(addr, 80, timeout=5)
                c.request("GET", "/healthz")
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status == 200 and body.strip() == b"ok":
                    return True
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() >= end:
                return False
            time.sleep(0.5)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                addr = todo.pop()
            if probe(addr):
                with lock:
                    answered.add(addr)

    threads = [threading.Thread(target=worker) for _ in range(max(1, parallel))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    silent = [a for a in addrs if a not in answered]
    if silent:
        print("silent: " + " ".join(silent[:50]) + (" ..." if len(silent) > 50 else ""), file=sys.stderr)
    print(len(answered), len(addrs))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    c = argv[1]
    if c == "mem" and len(argv) == 3:
        cmd_mem(argv[2])
    elif c == "idle" and len(argv) == 5:
        cmd_idle(argv[2], int(argv[3]), float(argv[4]))
    elif c == "rss" and len(argv) == 3:
        cmd_rss(int(argv[2]))
    elif c == "latency" and len(argv) == 5:
        cmd_latency(argv[2], argv[3], int(argv[4]))
    elif c == "healthz" and len(argv) == 4:
        cmd_healthz(float(argv[2]), int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except KeyboardInterrupt:  # the script's trap cleans up
        sys.exit(130)

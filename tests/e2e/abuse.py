#!/usr/bin/env python3
"""abuse.py - the API and a published port of a live shoald under abuse
(issue 16). Run inside the test's network namespace by daemon_abuse.sh:

    abuse.py API_PORT TOKEN PUB_PORT SHOALD_PID IMAGE

Every packet goes to 127.0.0.0/8 inside that namespace. Attackers use their
own loopback addresses (127.0.0.2 and up); the well-behaved client (the
"prober") uses 127.0.0.1. Phases, each while the prober sends GET /healthz
every 50 ms and a normal create (POST /v1/instances of IMAGE, no network)
every 3 s:

  baseline    nothing else
  slowloris   300 connections sending one header line a second, never
              finishing (the server must cut them at its header deadline)
  idle-api    10,000 idle connections to the API from 10 addresses, closed
              ones opened again at once
  idle-pub    10,000 idle connections to the published port from 10
              addresses; then all closed: shoald's descriptors must come back
  bad-input   oversized headers and bodies, pipelined garbage, path
              traversal in names, invalid UTF-8 and NUL bytes in string
              fields: every answer a 4xx (never a 5xx, never a 2xx)

Correctness bounds (what a blocked API looks like, not the 1 s goal): every
probe answered, none slower than 3 s. The 1 s goal is reported (how many
probes took longer) with p50/p99/max per phase, next to the baseline.
Exit status 0 when every check held; one line per check ("ok:"/"FAIL:").
"""
import json
import os
import resource
import selectors
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
API_PORT = int(sys.argv[1])
TOKEN = sys.argv[2]
PUB_PORT = int(sys.argv[3])
PID = int(sys.argv[4])
IMAGE = sys.argv[5]
BOUND_S = 3.0  # a probe slower than this means the API was blocked
FAILS = []


def log(msg):
    print(time.strftime("[%H:%M:%S] ") + msg, flush=True)


def check(desc, ok):
    log(("ok: " if ok else "FAIL: ") + desc)
    if not ok:
        FAILS.append(desc)


def daemon_pids():
    """shoald and, with privilege separation (the default), its API front
    (a child run as `shoald --privsep-front`): the API's connections and
    buffers live there, so both are counted."""
    pids = [PID]
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % PID):  # any thread may fork it
            with open("/proc/%d/task/%s/children" % (PID, tid)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for k in kids:
        try:
            with open("/proc/%d/cmdline" % k, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] == b"--privsep-front":
            pids.append(k)
    return pids


def fds():
    n = 0
    for pid in daemon_pids():
        try:
            n += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            if pid == PID:
                return -1
    return n


def rss_kib():
    total = 0
    for pid in daemon_pids():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            if pid == PID:
                return -1
    return total


def http(raw, src="127.0.0.1", port=None, timeout=10.0):
    """Send raw bytes, read until the server closes: (status, seconds, data).
    status 0: no HTTP answer (closed, reset or timed out)."""
    t0 = time.monotonic()
    data = b""
    try:
        s = socket.create_connection((HOST, port or API_PORT), timeout=timeout,
                                     source_address=(src, 0))
        try:
            s.sendall(raw)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
    except OSError:
        pass
    status = 0
    if data.startswith(b"HTTP/1."):
        try:
            status = int(data.split(b" ", 2)[1])
        except ValueError:
            status = 0
    return status, time.monotonic() - t0, data


def request(method, path, body=None, ctype="application/json", extra=b""):
    head = "%s %s HTTP/1.1\r\nHost: shoal\r\nAuthorization: Bearer %s\r\nConnection: close\r\n" % (
        method, path, TOKEN)
    raw = head.encode()
    if body is not None:
        raw += ("Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))).encode()
    raw += extra + b"\r\n" + (body or b"")
    return http(raw)


class Prober(threading.Thread):
    """GET /healthz every 50 ms, a create every 3 s, until stopped."""
    seq = 0

    def __init__(self, creates=True):
        super().__init__(daemon=True)
        self.health = []  # (status, seconds)
        self.create = []
        self.creates = creates
        self.stop = threading.Event()

    def run(self):
        next_create = time.monotonic() + 1.0
        while not self.stop.is_set():
            st, dt, _ = request("GET", "/healthz")
            self.health.append((st, dt))
            if self.creates and time.monotonic() >= next_create:
                Prober.seq += 1
                body = json.dumps({"image": IMAGE, "name": "probe-%d" % Prober.seq,
                                   "network": False}).encode()
                st, dt, _ = request("POST", "/v1/instances", body)
                self.create.append((st, dt))
                next_create = time.monotonic() + 3.0
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.join(30)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


RESULTS = {}
SAMPLER = None


def judge(phase, pr):
    h = [dt for st, dt in pr.health]
    hbad = [(st, dt) for st, dt in pr.health if st != 200]
    c = [dt for st, dt in pr.create]
    cbad = [(st, dt) for st, dt in pr.create if st != 201]
    over1 = sum(1 for x in h + c if x > 1.0)
    RESULTS[phase] = {"healthz_n": len(h), "p50_ms": pct(h, 50) * 1e3, "p99_ms": pct(h, 99) * 1e3,
                      "max_ms": max(h) * 1e3 if h else float("nan"), "creates": len(c),
                      "create_max_ms": max(c) * 1e3 if c else float("nan"), "over_1s": over1}
    r = RESULTS[phase]
    if SAMPLER:
        log("%-10s shoald now: %d descriptors, RSS %d KiB (peak so far %d KiB)" % (
            phase, fds(), rss_kib(), SAMPLER.max_kib))
    log("%-10s /healthz n=%d p50 %.1f ms p99 %.1f ms max %.1f ms; creates n=%d max %.1f ms; "
        "over 1 s: %d" % (phase, r["healthz_n"], r["p50_ms"], r["p99_ms"], r["max_ms"],
                          r["creates"], r["create_max_ms"], over1))
    check("%s: every /healthz answered 200 (%d failed: %s)" % (phase, len(hbad), hbad[:3]),
          not hbad and h)
    check("%s: every create answered 201 (%d failed: %s)" % (phase, len(cbad), cbad[:3]),
          not cbad and (c or phase == "bad-input"))
    check("%s: no probe took %.0f s or more (max %.0f ms)" % (phase, BOUND_S,
                                                               max(h + c) * 1e3),
          max(h + c) < BOUND_S)


class Crowd:
    """n idle TCP connections to port from addresses srcs, opened again when
    the server closes them (for as long as keep() runs)."""

    def __init__(self, port, n, srcs, payload=b""):
        self.port, self.n, self.srcs, self.payload = port, n, srcs, payload
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.opened = self.closed_by_server = 0
        self.t_open = {}

    def _open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.srcs[i % len(self.srcs)], 0))
        except OSError:
            s.close()
            return
        s.connect_ex((HOST, self.port))
        self.socks[s.fileno()] = s
        self.t_open[s.fileno()] = time.monotonic()
        self.sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.payload else 0), i)
        self.opened += 1

    def open_all(self):
        for i in range(self.n):
            self._open(i)

    def keep(self, seconds, trickle=None, reopen=True):
        """Watch for closes; reopen; every second send trickle (slowloris).
        Returns the seconds each closed connection had lived."""
        lived = []
        end = time.monotonic() + seconds
        last_trickle = time.monotonic()
        while time.monotonic() < end:
            for key, ev in self.sel.select(0.1):
                s, i = key.fileobj, key.data
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(self.payload)
                    except OSError:
                        pass
                    self.sel.modify(s, selectors.EVENT_READ, i)
                    continue
                try:
                    d = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    fd = s.fileno()
                    lived.append(time.monotonic() - self.t_open.pop(fd, time.monotonic()))
                    self.sel.unregister(s)
                    del self.socks[fd]
                    s.close()
                    self.closed_by_server += 1
                    if reopen:
                        self._open(i)
            if trickle and time.monotonic() - last_trickle >= 1.0:
                last_trickle = time.monotonic()
                for s in list(self.socks.values()):
                    try:
                        s.send(trickle)
                    except OSError:
                        pass
        return lived

    def close_all(self):
        for s in list(self.socks.values()):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.socks.clear()


class RssSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.max_kib = rss_kib()
        self.max_fds = fds()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            self.max_kib = max(self.max_kib, rss_kib())
            self.max_fds = max(self.max_fds, fds())


def phase(name, seconds, attack=None):
    pr = Prober()
    pr.start()
    if attack:
        attack(seconds)
    else:
        time.sleep(seconds)
    pr.finish()
    judge(name, pr)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 40000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    log("client descriptor limit %d; shoald pid %d, %d descriptors, RSS %d KiB" % (
        want, PID, fds(), rss_kib()))
    rss0 = rss_kib()
    global SAMPLER
    sampler = SAMPLER = RssSampler()
    sampler.start()

    phase("baseline", 10)

    def slowloris(seconds):
        c = Crowd(API_PORT, 300, ["127.0.0.2"], b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        c.open_all()
        lived = c.keep(seconds, trickle=b"X-Slow: 1\r\n", reopen=False)
        held = [x for x in lived if x > 1.0]
        log("slowloris: %d opened, %d closed by the server, %d after more than 1 s "
            "(longest %.1f s); %d still open" % (c.opened, c.closed_by_server, len(held),
                                                  max(lived) if lived else 0, len(c.socks)))
        check("slowloris: the server cut every trickling connection within %d s "
              "(%d still open)" % (seconds, len(c.socks)), not c.socks)
        check("slowloris: none held past the header deadline + 2 s (longest %.1f s)" % (
            max(lived) if lived else 0), not lived or max(lived) < 12.5)
        c.close_all()

    phase("slowloris", 15, slowloris)

    def idle_api(seconds):
        c = Crowd(API_PORT, 10000, ["127.0.0.%d" % i for i in range(3, 13)])
        c.open_all()
        log("idle-api: %d connections opened; shoald holds %d descriptors" % (c.opened, fds()))
        c.keep(seconds)
        log("idle-api: %d opened in all, %d closed by the server; shoald peak %d descriptors" % (
            c.opened, c.closed_by_server, sampler.max_fds))
        c.close_all()

    phase("idle-api", 15, idle_api)

    time.sleep(2)
    fd0 = fds()

    def idle_pub(seconds):
        c = Crowd(PUB_PORT, 10000, ["127.0.0.%d" % i for i in range(13, 23)])
        c.open_all()
        peak = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            c.keep(1.0)
            peak = max(peak, fds())
        log("idle-pub: %d opened, %d refused or closed by shoald; shoald peak %d descriptors "
            "(before %d)" % (c.opened, c.closed_by_server, peak, fd0))
        check("idle-pub: shoald's descriptors stayed bounded (peak %d, limit %d)" % (
            peak, resource.getrlimit(resource.RLIMIT_NOFILE)[0]), 0 < peak < 16000)
        c.close_all()

    phase("idle-pub", 15, idle_pub)
    back = None
    for i in range(100):
        if fds() <= fd0 + 16:
            back = i * 0.1
            break
        time.sleep(0.1)
    check("idle-pub: shoald's descriptors back to %d (+16) after the clients left (now %d, "
          "after %s s)" % (fd0, fds(), back), back is not None and back < 10)

    def bad_input(seconds):
        del seconds
        cases = []

        def case(desc, st, ok=lambda s: 400 <= s < 500):
            cases.append((desc, st))
            check("bad input: %s -> %s" % (desc, st or "closed"), ok(st))

        any4xx_or_closed = lambda s: s == 0 or 400 <= s < 500
        st, _, _ = http(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 +
                        b"\r\n\r\n")
        case("a 200 KB header", st, any4xx_or_closed)
        st, _, _ = http(b"GET /healthz HTTP/1.1\r\n" +
                        b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n")
        case("5,000 headers", st, any4xx_or_closed)
        st, _, _ = http(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        case("a 100 KB request line", st, any4xx_or_closed)
        st, _, _ = request("POST", "/v1/instances", b"{" + b" " * (2 << 20) + b"}")
        case("a 2 MiB JSON body (limit 1 MiB)", st, lambda s: s == 413 or s == 0)
        st, _, _ = http(("POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n" % TOKEN).encode() +
                        b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(40)) +
                        b"0\r\n\r\n")
        case("a 2.5 MiB chunked JSON body", st, lambda s: s == 413 or s == 0)
        st, _, _ = request("POST", "/v1/instances", b"{}", extra=b"Content-Length: 5\r\n")
        case("two Content-Length headers", st, any4xx_or_closed)
        st, _, _ = http(b"GARBAGE\r\n\r\n" * 500 + bytes(range(256)) * 40)
        case("pipelined garbage", st, any4xx_or_closed)
        st, _, d = http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50 + b"\x00\xff\r\n\r\n")
        case("50 pipelined requests then garbage (%d answers)" % d.count(b"HTTP/1.1 200"), st,
             lambda s: s == 200)
        for path in ["/v1/instances/..%2F..%2Fetc%2Fpasswd", "/v1/instances/../../etc/passwd",
                     "/v1/images/..%2f..%2fetc%2fpasswd", "/v1/hosts/..%2Fx",
                     "/v1/instances/%00", "/v1/images/a%00b", "/../../../etc/passwd"]:
            st, _, _ = request("GET", path)
            case("GET %s" % path, st)
        names = ["../../etc/passwd", "..", "a/b", "a\\b", "a\u0000b", "\u00e9", "a b",
                 "x" * 300, "", "-x", ".hidden"]
        for n in names:
            st, _, _ = request("POST", "/v1/instances",
                               json.dumps({"image": IMAGE, "name": n, "network": False}).encode())
            case("create with name %r" % n[:40], st)
        for ref in ["../../etc/passwd", "../x:latest", "a:../b", "a%00b:1"]:
            st, _, _ = request("POST", "/v1/images?ref=%s" % ref, b"\x7fELF",
                               ctype="application/octet-stream")
            case("upload with ref %r" % ref, st)
        st, _, _ = request("POST", "/v1/instances",
                           json.dumps({"image": "../../../etc/passwd"}).encode())
        case("create with image '../../../etc/passwd'", st)
        st, _, _ = request("POST", "/v1/hosts",
                           json.dumps({"name": "../x", "uri": "qemu+ssh://h/system"}).encode())
        case("host with name '../x'", st)
        raw_bodies = [
            ("invalid UTF-8 in name", b'{"image":"%s","name":"\xff\xfe","network":false}'),
            ("invalid UTF-8 in an argument", b'{"image":"%s","args":["\xc3\x28"],'
                                             b'"network":false}'),
            ("overlong UTF-8 '/' in env", b'{"image":"%s","env":{"A":"\xc0\xaf"},'
                                          b'"network":false}'),
            ("a raw NUL in name", b'{"image":"%s","name":"a\x00b","network":false}'),
            ("\\u0000 in an argument", b'{"image":"%s","args":["a\\u0000b"],"network":false}'),
            ("\\u0000 in an env value", b'{"image":"%s","env":{"A":"x\\u0000y"},'
                                        b'"network":false}'),
            ("\\u0000 in an env name", b'{"image":"%s","env":{"A\\u0000B":"x"},'
                                       b'"network":false}'),
            ("\\u0000 in a label", b'{"image":"%s","labels":{"a":"b\\u0000c"},"network":false}'),
            ("a lone surrogate in name", b'{"image":"%s","name":"\\ud800","network":false}'),
            ("a NUL in the image name", b'{"image":"hel\\u0000lo","network":false}'),
        ]
        for desc, body in raw_bodies:
            if b"%s" in body:
                body = body.replace(b"%s", IMAGE.encode())
            st, _, _ = request("POST", "/v1/instances", body)
            case(desc, st)
        log("bad input: %d requests, %d answered 4xx or closed as they should" % (
            len(cases), len(cases) - sum(1 for d in FAILS if d.startswith("bad input"))))

    phase("bad-input", 0, bad_input)
    sampler.stop.set()
    sampler.join(2)
    log("shoald RSS %d KiB before, %d KiB at most; descriptors at most %d" % (
        rss0, sampler.max_kib, sampler.max_fds))
    check("shoald's RSS stayed bounded (%d -> at most %d KiB, +%d MiB)" % (
        rss0, sampler.max_kib, (sampler.max_kib - rss0) // 1024),
        sampler.max_kib - rss0 < 256 * 1024)
    check("shoald still runs", fds() > 0)
    b = RESULTS.get("baseline", {})
    print("FIGURE: API /healthz latency, p99 (max), ms: baseline %.1f (%.1f)" % (
        b.get("p99_ms", 0), b.get("max_ms", 0)) + "".join(
        "; %s %.1f (%.1f)" % (k, v["p99_ms"], v["max_ms"]) for k, v in RESULTS.items()
        if k != "baseline"), flush=True)
    print("FIGURE: probes over 1 s: " + ", ".join("%s %d" % (k, v["over_1s"])
                                                   for k, v in RESULTS.items()), flush=True)
    log("%d checks failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

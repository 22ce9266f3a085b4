#!/usr/bin/env python3
"""bench_hosts.py SHOALD SHOAL IMAGE [MANY [FEW [CREATES]]]

Many hosts (issue 17): the cost of placement and of opening hosts as the
number of hosts grows. For FEW (default 5) and then MANY (default 500)
simulated hosts (libvirt's mock driver, test:///FILE.xml, 32 CPUs and
64 GiB each) on a fresh shoald:

  - add    every host with POST /v1/hosts, one after another (total time);
  - open   restart shoald and time from its exec until GET /v1/hosts
           lists every host `up` (what a restart of a daemon with that many
           hosts costs);
  - place  CREATES (default 200) sequential POST /v1/instances of one
           16 MiB instance without network (placement runs inside the
           request; the mock domains start in the background), p50 / p99
           of the request's latency;
  - read   GET /v1/hosts and GET /metrics (20 each, p50): both walk
           every host.

Prints each figure for FEW and MANY and MANY/FEW as the ratio (targets of
issue 17: placement across 500 hosts <= 2x across 5; opening 500 hosts
< 30 s). Loopback only; every shoald it starts is stopped, its state dir
removed. Not run in CI (label bench)."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PORT = 17897


def req(conn, method, path, token, body=None):
    headers = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    return r.status, payload


def wait_healthz(deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def start(shoald, state):
    log = open(os.path.join(state, "shoald.log"), "a")
    return subprocess.Popen(
        [shoald, "--state-dir", state, "--listen", "127.0.0.1:%d" % PORT,
         "--local-uri", "test:///default", "--no-network", "--host-uri-allow", "test",
         "--max-instances", "100000", "--mem-overcommit", "50", "--cpu-overcommit", "1000"],
        stdout=log, stderr=subprocess.STDOUT)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(shoald, shoal, image, nhosts, creates):
    state = tempfile.mkdtemp(prefix="shoal-hosts-bench.")
    p = None
    try:
        p = start(shoald, state)
        if not wait_healthz(120):
            sys.exit("shoald did not start: see " + state)
        token = open(os.path.join(state, "admin.token")).read().strip()
        env = dict(os.environ, SHOAL_URL="http://127.0.0.1:%d" % PORT, SHOAL_TOKEN=token)
        subprocess.run([shoal, "image", "push", "-q", image, "bench"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        t0 = time.monotonic()
        for i in range(nhosts):
            path = os.path.join(state, "h%d.xml" % i)
            with open(path, "w") as fp:
                fp.write("<node><cpu><mhz>2000</mhz><model>mock</model><active>32</active>"
                         "<nodes>1</nodes><sockets>1</sockets><cores>32</cores>"
                         "<threads>1</threads></cpu><memory>%d</memory></node>\n"
                         % (65536 * 1024))
            st, body = req(conn, "POST", "/v1/hosts", token,
                           {"name": "h%d" % i, "uri": "test://" + path})
            if st != 201:
                sys.exit("POST /v1/hosts h%d: %d %s" % (i, st, body[:200]))
        add_s = time.monotonic() - t0
        conn.close()

        stop(p)
        t0 = time.monotonic()
        p = start(shoald, state)
        if not wait_healthz(300):
            sys.exit("shoald did not restart: see " + state)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        while True:
            st, body = req(conn, "GET", "/v1/hosts?limit=1000", token)
            items = json.loads(body)["items"] if st == 200 else []
            up = sum(1 for h in items if h.get("state") == "up")
            if up >= nhosts + 1:
                break
            if time.monotonic() - t0 > 300:
                sys.exit("only %d of %d hosts up after 300 s" % (up, nhosts + 1))
            time.sleep(0.05)
        open_s = time.monotonic() - t0

        lat = []
        for i in range(creates):
            t = time.monotonic()
            st, body = req(conn, "POST", "/v1/instances", token,
                           {"image": "bench", "memory_mib": 16, "network": False})
            lat.append((time.monotonic() - t) * 1000)
            if st != 201:
                sys.exit("create %d: %d %s" % (i, st, body[:200]))
        # What grows with the hosts outside placement: the host list and
        # /metrics (both walk every host; neither may be quadratic).
        reads = {}
        for path in ("/v1/hosts?limit=1000", "/metrics"):
            ts = []
            for _ in range(20):
                t = time.monotonic()
                st, body = req(conn, "GET", path, token)
                ts.append((time.monotonic() - t) * 1000)
                if st != 200:
                    sys.exit("GET %s: %d" % (path, st))
            reads[path] = pct(ts, 0.5)
        conn.close()
        return (add_s, open_s, pct(lat, 0.5), pct(lat, 0.99), reads["/v1/hosts?limit=1000"],
                reads["/metrics"])
    finally:
        if p:
            stop(p)
        shutil.rmtree(state, ignore_errors=True)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    shoald, shoal, image = sys.argv[1:4]
    many = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    few = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    creates = int(sys.argv[6]) if len(sys.argv) > 6 else 200
    a = run(shoald, shoal, image, few, creates)
    b = run(shoald, shoal, image, many, creates)
    print("simulated hosts: %d vs %d; %d creates each" % (many, few, creates))
    print("  %-34s %10s %10s %8s" % ("", "%d hosts" % few, "%d hosts" % many, "ratio"))
    rows = [("add every host (POST /v1/hosts), s", 0), ("restart to all hosts up, s", 1),
            ("create (placement) p50, ms", 2), ("create (placement) p99, ms", 3),
            ("GET /v1/hosts p50, ms", 4), ("GET /metrics p50, ms", 5)]
    for name, k in rows:
        print("  %-34s %10.3f %10.3f %7.2fx" % (name, a[k], b[k], b[k] / a[k] if a[k] else 0))
    ratio = b[2] / a[2] if a[2] else 0
    print("targets: placement p50 ratio <= 2x (%.2fx: %s); restart with %d hosts < 30 s "
          "(%.1f s: %s)" % (ratio, "met" if ratio <= 2 else "NOT met", many, b[1],
                            "met" if b[1] < 30 else "NOT met"))


if __name__ == "__main__":
    main()

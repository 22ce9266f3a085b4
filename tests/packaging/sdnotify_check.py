#!/usr/bin/env python3
"""shoald speaks systemd's notify protocol (daemon/sdnotify.h).

Runs shoald (libvirt's test driver, no network: no VM, no bridge) with
NOTIFY_SOCKET naming a datagram socket this test reads, as systemd would for
a Type=notify unit, and checks:
  - a STATUS= line comes before READY=1;
  - READY=1 comes once the API answers: /healthz, asked the moment it
    arrives, answers 200 at the first try (port from its STATUS= line);
  - every message comes from shoald's own pid (its re-exec keeps the pid:
    systemd's NotifyAccess=main drops messages from any other);
  - SIGTERM gives STOPPING=1, then shoald exits 0;
  - the same with an abstract socket name ("@...").
Exit 0 pass, 1 fail, 77 skip (shoald missing).

usage: sdnotify_check.py SHOALD
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

FAILS = []
PASSES = []


def check(desc, ok):
    print(("ok: " if ok else "FAIL: ") + desc, flush=True)
    (PASSES if ok else FAILS).append(desc)


def recv(sock, deadline, proc):
    """One notify datagram as (text, sender pid), or (None, None) once the
    deadline passes or shoald has exited with nothing more sent."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        sock.settimeout(min(left, 0.5))
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
            break
        except socket.timeout:
            if proc.poll() is not None:
                return None, None
    pid = None
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", cdata[:12])[0]
    return data.decode("utf-8", "replace"), pid


def run_case(shoald, tmp, name, addr, env_value):
    state = os.path.join(tmp, "state-" + name)
    log = open(os.path.join(tmp, name + ".log"), "w")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(addr)
    env = dict(os.environ, NOTIFY_SOCKET=env_value)
    env.pop("GLIBC_TUNABLES", None)
    proc = subprocess.Popen(
        [shoald, "--state-dir", state, "--listen", "127.0.0.1:0",
         "--local-uri", "test:///default", "--no-network"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    got_status_first = False
    ready = None
    pids = set()
    try:
        deadline = time.monotonic() + 60
        while ready is None:
            msg, pid = recv(sock, deadline, proc)
            if msg is None:
                break
            pids.add(pid)
            lines = msg.split("\n")
            if "READY=1" in lines:
                # ask at once, before anything else
                m = re.search(r"STATUS=serving the API on (\S+) port (\d+)", msg)
                code = None
                if m:
                    try:
                        with urllib.request.urlopen(
                                "http://127.0.0.1:%s/healthz" % m.group(2), timeout=5) as r:
                            code = r.status
                    except Exception as e:  # noqa: BLE001 - reported below
                        code = repr(e)
                ready = (msg, code)
            elif any(l.startswith("STATUS=") for l in lines):
                got_status_first = True
        check("%s: READY=1 arrived (within 60 s)" % name, ready is not None)
        if ready is None:
            return
        check("%s: a STATUS= line came before READY=1" % name, got_status_first)
        check("%s: READY=1 names the port in STATUS= (%r)" % (name, ready[0]),
              "port" in ready[0])
        check("%s: /healthz answered 200 at READY=1 (got %s)" % (name, ready[1]),
              ready[1] == 200)
        proc.send_signal(signal.SIGTERM)
        stopping = False
        deadline = time.monotonic() + 30
        while not stopping:
            msg, pid = recv(sock, deadline, proc)
            if msg is None:
                break
            pids.add(pid)
            stopping = "STOPPING=1" in msg.split("\n")
        check("%s: SIGTERM gave STOPPING=1" % name, stopping)
        rc = proc.wait(timeout=30)
        check("%s: shoald exited 0 (got %d)" % (name, rc), rc == 0)
        check("%s: every message came from shoald's pid %d (senders %s)" % (name, proc.pid, sorted(pids, key=str)),
              pids == {proc.pid})
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
        log.close()
        if FAILS:
            with open(os.path.join(tmp, name + ".log")) as f:
                print("---- shoald log (%s) ----\n%s" % (name, f.read()[-3000:]))


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("SKIP: shoald not found: %r" % sys.argv[1:])
        return 77
    shoald = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="shoal-sdnotify.")
    try:
        path = os.path.join(tmp, "notify")
        run_case(shoald, tmp, "path", path, path)
        abstract = "shoal-sdnotify-%d" % os.getpid()
        run_case(shoald, tmp, "abstract", "\0" + abstract, "@" + abstract)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (len(PASSES), len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

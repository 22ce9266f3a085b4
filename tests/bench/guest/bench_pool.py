#!/usr/bin/env python3
"""bench_pool.py - claim latency of a warm pool guest against a cold boot,
measured in the same run (issue 15; docs/benchmarks.md "Warm pool, guest
side").

  SHOAL_IMAGES=DIR python3 bench_pool.py            (RUNS=10, ACCELS="tcg kvm")

For each accelerator (kvm only when /dev/kvm boots the image), RUNS times,
alternating:
  pool  httpd booted with shoal.pool=1 and its COM1 on a unix socket,
        logged to the console file (shoald's shape); once its
        pool-wait record is there, the record (address, gateway, port
        argument) is sent: host time from the record's last byte written
        to the ready record seen in the status file, and the guest's own
        claim_us (last byte seen -> app main).
  cold  the same httpd and configuration as a cold start (QEMU started with
        it, as shoald does): host time from starting QEMU to the ready
        record, and the guest's boot_us.
Both with QEMU user networking (no peer traffic). Prints medians, p90 and
the ratio pool / cold; and QEMU's memory (PSS, smaps_rollup) of a pool
guest waiting against the same httpd running idle after a cold start, each
1 s after its pool-wait / ready record.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "guest"))
from pool_claim import wait_for  # noqa: E402

IMAGES = os.environ.get("SHOAL_IMAGES") or sys.exit("SHOAL_IMAGES must point at the guest images")
RUNS = int(os.environ.get("RUNS", "10"))
QBOOT = "/usr/share/qemu/qboot.rom"
CONFIG = "shoal.ip=10.0.2.15/24 shoal.gw=10.0.2.2 -- 8080"


def qemu(work, accel, append, extra, com1=None):
    for f in ("status.log", "console.log"):
        try:
            os.unlink(os.path.join(work, f))
        except FileNotFoundError:
            pass
    cmd = ["qemu-system-x86_64", "-M", "pc", "-bios", QBOOT, "-kernel",
           os.path.join(IMAGES, "httpd.elf"), "-append", append,
           "-serial", com1 or "file:%s/console.log" % work,
           "-serial", "file:%s/status.log" % work,
           "-display", "none", "-no-reboot", "-m", "32", "-accel", accel,
           "-device", "virtio-net-pci,netdev=n0", "-netdev", "user,id=n0"] + extra
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def field(line, name):
    for w in line.split():
        if w.startswith(name + "="):
            return int(w.split("=", 1)[1])
    return None


def stop(p):
    p.kill()
    p.wait()


def pool_run(work, accel):
    sock = os.path.join(work, "cfg.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    # COM1 on the socket, logged to the console file (shoald's shape)
    p = qemu(work, accel, "shoal.pool=1",
             ["-chardev", "socket,id=cfg,path=%s,server=on,wait=off,logfile=%s/console.log,"
              "logappend=on" % (sock, work)], com1="chardev:cfg")
    try:
        status = os.path.join(work, "status.log")
        if not wait_for(status, b"pool-wait", time.monotonic() + 30):
            raise RuntimeError("no pool-wait record")
        time.sleep(1)
        mem = pss_kib(p.pid)
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        rec = CONFIG.encode()
        s.sendall(b"\nshoal-config %d\n" % len(rec) + rec)
        t0 = time.monotonic()
        ready = wait_for(status, b"ready", time.monotonic() + 30)
        t1 = time.monotonic()
        s.close()
        if not ready:
            raise RuntimeError("no ready record after the claim")
        return (t1 - t0) * 1e6, field(ready, "claim_us"), mem
    finally:
        stop(p)


def cold_run(work, accel):
    t0 = time.monotonic()
    p = qemu(work, accel, CONFIG, [])
    try:
        ready = wait_for(os.path.join(work, "status.log"), b"ready", time.monotonic() + 30)
        t1 = time.monotonic()
        if not ready:
            raise RuntimeError("no ready record on a cold boot")
        time.sleep(1)
        return (t1 - t0) * 1e6, field(ready, "boot_us"), pss_kib(p.pid)
    finally:
        stop(p)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    work = tempfile.mkdtemp(prefix="shoal-bench-pool.")
    accels = os.environ.get("ACCELS", "tcg kvm").split()
    try:
        for accel in accels:
            if accel == "kvm" and not os.access("/dev/kvm", os.W_OK):
                print("kvm: skipped (no /dev/kvm)")
                continue
            ph, pg, ch, cg, pm, cm = [], [], [], [], [], []
            try:
                for _ in range(RUNS):
                    h, g, m = pool_run(work, accel)
                    ph.append(h)
                    pg.append(g)
                    pm.append(m)
                    h, g, m = cold_run(work, accel)
                    ch.append(h)
                    cg.append(g)
                    cm.append(m)
            except RuntimeError as e:
                print("%s: skipped (%s)" % (accel, e))
                continue
            print("[%s] claim, record sent -> ready seen (host): p50 %.2f ms, p90 %.2f ms "
                  "(guest claim_us p50 %d us)" % (accel, pct(ph, .5) / 1e3, pct(ph, .9) / 1e3,
                                                  pct(pg, .5)))
            print("[%s] cold, QEMU start -> ready seen (host): p50 %.2f ms, p90 %.2f ms "
                  "(guest boot_us p50 %d us)" % (accel, pct(ch, .5) / 1e3, pct(ch, .9) / 1e3,
                                                 pct(cg, .5)))
            print("[%s] claim / cold: %.4fx p50 (%.1fx faster), guest claim_us / boot_us %.3fx, "
                  "%d runs each" % (accel, pct(ph, .5) / pct(ch, .5), pct(ch, .5) / pct(ph, .5),
                                    pct(pg, .5) / max(1, pct(cg, .5)), RUNS))
            print("[%s] QEMU PSS, pool guest waiting: p50 %.2f MiB; the same httpd running idle: "
                  "p50 %.2f MiB; %.3fx" % (accel, pct(pm, .5) / 1024, pct(cm, .5) / 1024,
                                          pct(pm, .5) / max(1, pct(cm, .5))))
    finally:
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)


if __name__ == "__main__":
    main()

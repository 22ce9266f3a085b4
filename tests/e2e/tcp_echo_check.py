#!/usr/bin/env python3
"""TCP echo round trip with a checksum, and many parallel connections.
usage: tcp_echo_check.py HOST PORT BYTES PARALLEL"""
import hashlib
import socket
import sys
import threading


def roundtrip(host, port, size, seed):
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    s = socket.create_connection((host, port), timeout=30)
    got = bytearray()

    def reader():
        while len(got) < size:
            b = s.recv(65536)
            if not b:
                break
            got.extend(b)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    t.join(60)
    s.close()
    return hashlib.sha256(data).hexdigest() == hashlib.sha256(bytes(got)).hexdigest(), len(got)


def main():
    host, port, size, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ok, n = roundtrip(host, port, size, 1)
    print("echo %d bytes: %s (%d back)" % (size, "match" if ok else "MISMATCH", n))
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            r = roundtrip(host, port, 4096, i)[0]
        except OSError:
            r = False
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    good = sum(results)
    print("parallel: %d/%d connections echoed intact" % (good, parallel))
    sys.exit(0 if ok and good == parallel else 1)


if __name__ == "__main__":
    main()

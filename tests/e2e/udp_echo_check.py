#!/usr/bin/env python3
"""UDP echo through a published port: several clients at once, each from its
own address (one datagram in flight per client), every datagram must come
back whole to the client that sent it and to no other. Sizes run from 1 to
MAXSIZE; each client's first datagram is MAXSIZE bytes. UDP may drop: a
datagram not echoed within half a second is sent again, at most 5 times.
usage: udp_echo_check.py HOST PORT CLIENTS DATAGRAMS MAXSIZE
exit 0 when every datagram came back intact, 1 otherwise."""
import hashlib
import select
import socket
import sys
import time

TRIES = 6
WAIT = 0.5


def payload(client, seq, maxsize):
    size = maxsize if seq == 0 else 1 + (seq * 7919 + client * 104729) % maxsize
    head = b"c%03d s%04d " % (client, seq)
    body = hashlib.sha256(head).digest() * (size // 32 + 1)
    return (head + body)[:size]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    clients, count, maxsize = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    socks, sent = [], []
    for c in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((host, port))        # replies only from HOST:PORT
        s.setblocking(False)
        socks.append(s)
        sent.append(set())
    seq = [0] * clients               # datagram in flight per client
    tries = [0] * clients
    due = [0.0] * clients
    missing, stray, resent, done = [], 0, 0, 0
    end = time.time() + 120

    def send(c):
        nonlocal resent
        try:
            socks[c].send(payload(c, seq[c], maxsize))
        except ConnectionRefusedError:
            pass                      # ICMP for an earlier one: nobody there
        sent[c].add(payload(c, seq[c], maxsize))
        resent += tries[c] > 0
        tries[c] += 1
        due[c] = time.time() + WAIT

    def advance(c):
        nonlocal done
        seq[c] += 1
        tries[c] = 0
        if seq[c] < count:
            send(c)
        else:
            done += 1

    for c in range(clients):
        send(c)
    while done < clients and time.time() < end:
        r, _, _ = select.select(socks, [], [], 0.05)
        for s in r:
            c = socks.index(s)
            while True:
                try:
                    got = s.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if seq[c] < count and got == payload(c, seq[c], maxsize):
                    advance(c)
                elif got not in sent[c]:
                    stray += 1        # not ours, or altered
        now = time.time()
        for c in range(clients):
            if seq[c] < count and now >= due[c]:
                if tries[c] < TRIES:
                    send(c)
                else:
                    missing.append((c, seq[c]))
                    advance(c)
    print("udp echo %s:%d: %d clients x %d datagrams (1..%d bytes): %d missing, "
          "%d stray or altered, %d resent" %
          (host, port, clients, count, maxsize, len(missing) + clients - done, stray, resent))
    for c, q in missing:
        print("  missing: client %d datagram %d (%d bytes)" % (c, q, len(payload(c, q, maxsize))))
    return 0 if done == clients and not missing and stray == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

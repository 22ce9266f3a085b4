#!/usr/bin/env python3
"""Send malformed Ethernet frames at a guest from inside the test's network
namespace: bad IP/TCP/UDP/ICMP checksums, truncated headers, bogus lengths,
TCP flag nonsense, random bytes. usage: net_flood.py IFACE DST_MAC DST_IP N SEED"""
import random
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip_header(src, dst, proto, payload_len, good=True, ihl=5, total=None, ver=4):
    total = 20 + payload_len if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, total, 0x1234, 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(h) if good else random.randrange(0x10000)
    return h[:10] + struct.pack("!H", c) + h[12:]


def main():
    iface, dst_mac, dst_ip, n, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    random.seed(seed)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    dmac = bytes(int(x, 16) for x in dst_mac.split(":"))
    src_ip = "10.88.0.1"
    eth = dmac + src_mac + b"\x08\x00"
    sent = 0
    for i in range(n):
        kind = i % 10
        if kind == 0:      # random bytes after a valid Ethernet header
            frame = eth + bytes(random.randrange(256) for _ in range(random.randrange(0, 80)))
        elif kind == 1:    # truncated IP header
            frame = eth + ip_header(src_ip, dst_ip, 6, 20)[:random.randrange(1, 20)]
        elif kind == 2:    # bad IP checksum
            frame = eth + ip_header(src_ip, dst_ip, 17, 8, good=False) + b"\0" * 8
        elif kind == 3:    # total length larger than the frame
            frame = eth + ip_header(src_ip, dst_ip, 6, 20, total=1400) + b"\0" * 20
        elif kind == 4:    # bogus IHL / version
            frame = eth + ip_header(src_ip, dst_ip, 6, 20, ihl=random.choice([0, 3, 15]),
                                    ver=random.choice([4, 6, 15])) + b"\0" * 20
        elif kind == 5:    # TCP with a bad checksum
            tcp = struct.pack("!HHIIBBHHH", 40000 + i % 1000, 80, random.getrandbits(32), 0,
                              5 << 4, 0x02, 65535, 0xBEEF, 0)
            frame = eth + ip_header(src_ip, dst_ip, 6, len(tcp)) + tcp
        elif kind == 6:    # TCP flag nonsense with a correct checksum
            flags = random.choice([0x3F, 0x03, 0x06, 0x05, 0x00, 0x29, 0xFF])
            tcp = struct.pack("!HHIIBBHHH", 40000 + i % 1000, 80, random.getrandbits(32),
                              random.getrandbits(32), 5 << 4, flags & 0x3F, 512, 0, 0)
            pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
            c = csum(pseudo + tcp)
            tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
            frame = eth + ip_header(src_ip, dst_ip, 6, len(tcp)) + tcp
        elif kind == 7:    # TCP data offset pointing past the segment
            tcp = struct.pack("!HHIIBBHHH", 40001, 80, 1, 0, 15 << 4, 0x18, 512, 0, 0)
            frame = eth + ip_header(src_ip, dst_ip, 6, len(tcp)) + tcp
        elif kind == 8:    # UDP length lies, ICMP with bad checksum
            udp = struct.pack("!HHHH", 5000, 7, 999, 0) + b"x" * 4
            frame = eth + ip_header(src_ip, dst_ip, 17, len(udp)) + udp
        else:
            icmp = struct.pack("!BBHHH", 8, 0, 0xDEAD, 1, 1) + b"ping"
            frame = eth + ip_header(src_ip, dst_ip, 1, len(icmp)) + icmp
        if len(frame) < 14:
            continue
        s.send(frame)
        sent += 1
    print("sent %d malformed frames" % sent)


if __name__ == "__main__":
    main()

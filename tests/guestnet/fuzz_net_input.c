/*
 * fuzz_net_input.c - fuzz target for the guest stack's untrusted input.
 *
 * Each run builds two stacks on the simulated wire (net_sim.c), opens a
 * listener (TCP 80, UDP 7) and one established connection on B, then feeds
 * the input to B's net_input as frames. Input format, repeated:
 *   op (1 byte) | len (2 bytes, big-endian) | len bytes (frames only)
 *   op & 3 == 0: a frame as is; 1: a frame sent to B's MAC with its IPv4
 *   header and TCP/UDP/ICMP checksums fixed up, so mutations get past the
 *   checksum checks; 2: advance time by len ms (capped); 3: B's app reads
 *   everything readable and accepts what is pending.
 * Built with libFuzzer (clang -fsanitize=fuzzer) it is a fuzzer; built
 * without (-DGUESTNET_REPLAY) it replays files or directories given as
 * arguments, so the seed corpus and every crash kept in corpus/ run as a
 * regression test.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "net_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* Make a mutated frame checksum-valid where its own lengths allow it. */
static void fix_frame(uint8_t *f, size_t len, const uint8_t mac[6])
{
    if (len < 14)
        return;
    memcpy(f, mac, 6);
    if (len < 34 || f[12] != 0x08 || f[13] != 0x00)
        return;
    uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = (size_t)(ip[2] << 8 | ip[3]);
    if (ihl < 20 || 14 + ihl > len)
        return;
    ip[10] = ip[11] = 0;
    uint16_t c = sum16(ip, ihl, 0);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    if (tot < ihl || 14 + tot > len)
        return;
    uint8_t *l4 = ip + ihl;
    size_t l4len = tot - ihl;
    uint32_t ps = (uint32_t)(ip[12] << 8 | ip[13]) + (uint32_t)(ip[14] << 8 | ip[15]) +
                  (uint32_t)(ip[16] << 8 | ip[17]) + (uint32_t)(ip[18] << 8 | ip[19]) + ip[9] +
                  (uint32_t)l4len;
    size_t off = ip[9] == 6 ? 16 : ip[9] == 17 ? 6 : ip[9] == 1 ? 2 : 0;
    if (!off || l4len < off + 2)
        return;
    l4[off] = l4[off + 1] = 0;
    c = sum16(l4, l4len, ip[9] == 1 ? 0 : ps);
    l4[off] = (uint8_t)(c >> 8);
    l4[off + 1] = (uint8_t)c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t scratch[4096], frame[65536];
    struct sim w;
    sim_init(&w, 1, NULL, NULL, 0);
    struct net_stack *a = w.st[0], *b = w.st[1];
    int l = nsock_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int u = nsock_socket(b, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    nsock_bind(b, l, (struct sockaddr *)&sa, sizeof sa);
    nsock_listen(b, l, 8);
    sa.sin_port = htons(7);
    nsock_bind(b, u, (struct sockaddr *)&sa, sizeof sa);
    int c = nsock_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sa.sin_addr.s_addr = htonl(SIM_IP_B);
    sa.sin_port = htons(80);
    nsock_connect(a, c, (struct sockaddr *)&sa, sizeof sa);
    sim_run(&w, 5);
    int s = nsock_accept(b, l, NULL, NULL);
    if (s >= 0)
        nsock_set_nonblock(b, s, 1);

    size_t i = 0;
    while (i + 3 <= size) {
        uint8_t op = data[i];
        size_t len = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if ((op & 3) < 2 && len > size - i)
            len = size - i;
        switch (op & 3) {
        case 0: net_input(&w.nif[1], data + i, len); break;
        case 1:
            memcpy(frame, data + i, len);
            fix_frame(frame, len, w.nif[1].mac);
            net_input(&w.nif[1], frame, len);
            break;
        case 2: sim_run(&w, (unsigned)(len > 300 ? 300 : len)); break;
        default:
            if (s >= 0)
                while (nsock_recv(b, s, scratch, sizeof scratch, 0) > 0) {
                }
            while (nsock_recv(b, u, scratch, sizeof scratch, 0) > 0) {
            }
            {
                int n;
                while ((n = nsock_accept(b, l, NULL, NULL)) >= 0)
                    nsock_close(b, n);
            }
            break;
        }
        if ((op & 3) < 2)
            i += len; /* ops 2, 3 carry no bytes */
        sim_step(&w);
    }
    sim_run(&w, 20);
    sim_free(&w);
    return 0;
}

#ifdef GUESTNET_REPLAY
#include <dirent.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz replay: cannot open '%s'\n", path);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int k = 1; k < argc; k++) {
        DIR *d = opendir(argv[k]);
        if (!d) {
            bad |= run_file(argv[k]);
            files++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[k], e->d_name);
            bad |= run_file(p);
            files++;
        }
        closedir(d);
    }
    printf("fuzz replay: %d inputs\n", files);
    return bad || files == 0;
}
#endif

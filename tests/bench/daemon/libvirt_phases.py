#!/usr/bin/env python3
"""libvirt_phases.py LOG FROM TO [TOP]

Where a domain start's time goes, from libvirt's debug log (issue 13,
docs/benchmarks.md "What a start waits for"). shoald's embedded driver
writes it when started with

    LIBVIRT_LOG_FILTERS="1:qemu.qemu_process 1:qemu.qemu_monitor 1:util.command 1:qemu.qemu_domain"
    LIBVIRT_LOG_OUTPUTS="1:file:/tmp/libvirt.log"

Each start runs in one thread of shoald (a start worker): from its
`qemuProcessStart` line to its `qemuProcessStartCPUs` line (the resume
after the paused create). Between two consecutive lines of that thread
is one step; the script sums each step (function:line -> function:line)
over the starts that began between FROM and TO (HH:MM:SS[.mmm], the
log's UTC clock) and prints the TOP steps (default 20) in ms per start,
largest first. Run it on a batch at 0 running and on the same batch at N
running: the steps whose time grows are what a start waits for.
"""
import collections
import re
import sys

LINE = re.compile(r'^\S+ (\d\d):(\d\d):(\d\d\.\d+)\+0000: (\d+): \w+ : (\w+):(\d+) :')


def ms(h, m, s):
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000.0


def clock(text):
    parts = text.split(':')
    if len(parts) != 3:
        sys.exit("libvirt_phases.py: times are HH:MM:SS[.mmm], not '%s'" % text)
    return ms(*parts)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.strip().splitlines()[0])
    t_from, t_to = clock(sys.argv[2]), clock(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    last = {}      # thread -> (ms, "function:line") of its previous line in a start
    began = {}     # thread -> ms its start began
    steps = collections.Counter()
    seen = collections.Counter()
    starts, whole = 0, 0.0
    with open(sys.argv[1], errors='replace') as log:
        for line in log:
            m = LINE.match(line)
            if not m:
                continue
            t = ms(m.group(1), m.group(2), m.group(3))
            tid, where = m.group(4), m.group(5) + ':' + m.group(6)
            if m.group(5) == 'qemuProcessStart':
                if t_from <= t <= t_to:
                    starts += 1
                    began[tid] = t
                    last[tid] = (t, where)
                continue
            if tid not in last:
                continue
            prev_t, prev = last[tid]
            steps[prev + ' -> ' + where] += t - prev_t
            seen[prev + ' -> ' + where] += 1
            last[tid] = (t, where)
            if m.group(5) == 'qemuProcessStartCPUs':
                whole += t - began.pop(tid)
                del last[tid]
    if not starts:
        sys.exit("libvirt_phases.py: no qemuProcessStart between %s and %s" % (sys.argv[2], sys.argv[3]))
    print("%d starts, qemuProcessStart -> qemuProcessStartCPUs: %.0f ms per start" %
          (starts, whole / starts))
    for step, total in steps.most_common(top):
        print("%8.1f ms/start %5d  %s" % (total / starts, seen[step], step))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""bench/xseg/cost.py - what one request round trip costs, counted.

Runs bench/build/xsegcost (bench/xseg/cost.c) under valgrind
--tool=lackey --trace-mem=yes and reads the trace: the shared cache lines
each side touches per round trip (client: submit+signal and receive;
server: accept, respond+signal), the lines both sides touch with at least
one of them writing (each moves between the CPUs at least twice per round
trip when client and server run on two CPUs), the atomic read-modify-write
instructions executed (lock-prefixed or xchg, found with objdump) and the
clock reads (calls of xseg_sys_now_ns).

  bench/xseg/cost.py [-b BINARY] [notiming]
"""
import collections, os, re, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
binary = os.path.join(here, '..', 'build', 'xsegcost')
argv = sys.argv[1:]
if argv[:1] == ['-b']:
    binary, argv = argv[1], argv[2:]

atomic_pc, clock_pc = set(), None
for line in subprocess.run(['objdump', '-d', '--no-show-raw-insn', binary],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    m = re.match(r'^([0-9a-f]+) <xseg_sys_now_ns>:', line)
    if m:
        clock_pc = int(m.group(1), 16)
    m = re.match(r'^\s+([0-9a-f]+):\s+(lock\b|xchg\b)', line)
    if m:
        atomic_pc.add(int(m.group(1), 16))

with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, 'trace')
    res = subprocess.run(['valgrind', '--tool=lackey', '--trace-mem=yes', '--log-file=' + log, binary] + argv,
                         capture_output=True, text=True)
    if res.returncode:
        sys.exit('xsegcost failed: ' + res.stderr)
    info = res.stdout
    trace = open(log).read().splitlines()

def field(key):
    return {k: int(v, 0) for k, v in re.findall(r'(\w+)=(0x[0-9a-f]+|\d+)', re.search(r'^%s (.*)$' % key, info, re.M).group(1))}

marks = field('marks')
base, size = [int(x, 0) for x in re.search(r'^base (\S+) size (\d+)', info, re.M).groups()]
reg, qs, sz = field('regions'), field('queues'), field('sizes')
rounds = sz['rounds']

def region(off):
    """A name for the shared cache line at segment offset @off."""
    line = off // 64 * 64
    for q in ('free', 'rq0', 'pq0', 'rq1', 'pq1'):
        o = qs[q]
        if o <= off < o + qs['qsize']:
            rel = off - o
            return '%s %s' % (q, {0: 'header', 64: 'tail', 128: 'head', 192: 'threshold'}.get(rel // 64 * 64, 'slot line'))
    if off < reg['ports']:
        return 'header +%d' % line
    if off < reg['reqs']:
        p, r = divmod(off - reg['ports'], sz['port'])
        return 'port %d line %d' % (p, r // 64)
    if off < reg['gens']:
        n, r = divmod(off - reg['reqs'], sz['request'])
        return 'request %d line %d' % (n, r // 64)
    if off < reg['holds']:
        return 'gen[] words %d..' % ((off - reg['gens']) // 64 * 8)
    if off < reg['queues']:
        return 'hold records %d..%d' % ((off - reg['holds']) // 64 * 2, (off - reg['holds']) // 64 * 2 + 1)
    return 'other +%d' % line

# Per round: {side: {line name: kinds}}; a queue's slot line differs every
# round (consecutive positions are spread over lines), so lines are
# collected per round and the counts averaged.
phase = None
rounds_seen = []
lines = None
atomics = collections.Counter()
atomics_seg = collections.Counter()	# of which on segment memory (the rest: the handle's hold bitmap)
last_atomic = False
clocks = collections.Counter()
mark_of = {marks['client']: 'client', marks['server']: 'server', marks['off']: None}
for t in trace:
    if not t or t[0] not in ' I':
        continue
    kind, rest = t[:2].strip(), t[2:].strip()
    addr = int(rest.split(',')[0], 16)
    if kind == 'S' and addr in mark_of:
        phase = mark_of[addr]
        if phase == 'client' and (lines is None or lines['done']):
            lines = {'client': collections.defaultdict(set), 'server': collections.defaultdict(set), 'done': False}
            rounds_seen.append(lines)
        if phase is None and lines is not None:
            lines['done'] = True
        continue
    if phase is None:
        continue
    if kind == 'I':
        last_atomic = addr in atomic_pc
        if addr in atomic_pc:
            atomics[phase] += 1
        if addr == clock_pc:
            clocks[phase] += 1
        continue
    if last_atomic and kind == 'M':
        last_atomic = False
        if base <= addr < base + size:
            atomics_seg[phase] += 1
    if base <= addr < base + size:
        lines[phase][region(addr - base)].add(kind)

def writes(kinds):
    return bool(kinds & {'S', 'M'})

n = len(rounds_seen)
assert n == rounds, (n, rounds)
touched = collections.Counter(); written = collections.Counter(); shared = 0
kinds = {'client': collections.defaultdict(set), 'server': collections.defaultdict(set)}
for r in rounds_seen:
    for side in ('client', 'server'):
        touched[side] += len(r[side])
        written[side] += sum(1 for k in r[side].values() if writes(k))
        for name, k in r[side].items():
            kinds[side][name] |= k
    shared += sum(1 for name in r['client'] if name in r['server'] and
                  (writes(r['client'][name]) or writes(r['server'][name])))
print('per round trip (%d rounds, %s)' % (n, 'ports bound with XSEG_PORT_NO_TIMING' if argv else 'default port flags'))
for side in ('client', 'server'):
    print('  %-6s touches %4.1f shared cache lines (%4.1f written), %4.1f atomic RMW (%4.1f on the segment), %3.1f clock reads'
          % (side, touched[side] / n, written[side] / n, atomics[side] / n, atomics_seg[side] / n, clocks[side] / n))
print('  lines both sides touch, at least one writing: %.1f' % (shared / n))
print('  line                      client  server   (L load, S store, M read-modify-write)')
for name in sorted(set(kinds['client']) | set(kinds['server'])):
    c, s_ = kinds['client'].get(name, set()), kinds['server'].get(name, set())
    mark = ' <->' if c and s_ and (writes(c) or writes(s_)) else ''
    print('    %-24s %-6s  %-6s%s' % (name, ''.join(sorted(c)), ''.join(sorted(s_)), mark))

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""bench/xq/cost.py - the queue's shared cache lines a producer and a consumer
touch per call, counted from a valgrind lackey trace of bench/build/xqcost
(bench/xq/cost.c): per xq_enqueue and per xq_dequeue, how often each of the
header lines (tail, head, threshold) is read or written and how many slot
lines are touched, and the atomic read-modify-write instructions executed.
A line one side writes and the other reads moves between their CPUs when
they run on two.  Usage: bench/xq/cost.py [-b BINARY]"""
import collections, os, re, subprocess, sys, tempfile

binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'build', 'xqcost')
if sys.argv[1:2] == ['-b']:
    binary = sys.argv[2]
atomic_pc = set()
for line in subprocess.run(['objdump', '-d', '--no-show-raw-insn', binary], capture_output=True,
                           text=True, check=True).stdout.splitlines():
    m = re.match(r'^\s+([0-9a-f]+):\s+(lock\b|xchg\b)', line)
    if m:
        atomic_pc.add(int(m.group(1), 16))
with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, 'trace')
    res = subprocess.run(['valgrind', '--tool=lackey', '--trace-mem=yes', '--log-file=' + log, binary],
                         capture_output=True, text=True)
    if res.returncode:
        sys.exit('xqcost failed: ' + res.stderr)
    info, trace = res.stdout, open(log).read().splitlines()
marks = {int(v, 16): k for k, v in re.findall(r'(\w+)=(0x[0-9a-f]+)', info.splitlines()[0])}
q, size, rounds = re.search(r'queue (\S+) size (\d+) rounds (\d+)', info).groups()
q, size, rounds = int(q, 16), int(size), int(rounds)
names = {64: 'tail', 128: 'head', 192: 'threshold'}
count = {s: collections.Counter() for s in ('prod', 'cons')}
slots = {s: 0 for s in ('prod', 'cons')}
rmw = collections.Counter()
phase, seen = None, set()
for t in trace:
    if not t or t[0] not in ' I':
        continue
    kind, addr = t[:2].strip(), int(t[2:].strip().split(',')[0], 16)
    if kind == 'S' and addr in marks:
        if phase in slots:
            slots[phase] += len(seen)
        phase, seen = (marks[addr] if marks[addr] != 'off' else None), set()
        continue
    if phase is None:
        continue
    if kind == 'I':
        if addr in atomic_pc:
            rmw[phase] += 1
        continue
    if q <= addr < q + size:
        off = (addr - q) // 64 * 64
        if off in names:
            count[phase][(names[off], 'write' if kind in 'SM' else 'read')] += 1
        elif off >= 256:
            seen.add(off)
if phase in slots:
    slots[phase] += len(seen)
for side, op in (('prod', 'xq_enqueue'), ('cons', 'xq_dequeue')):
    parts = ', '.join('%s %s %.3f' % (n, k, v / rounds) for (n, k), v in sorted(count[side].items()))
    print('per %s (%d calls, half-full queue): %s; slot lines %.2f; atomic RMW %.2f'
          % (op, rounds, parts, slots[side] / rounds, rmw[side] / rounds))

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
#
# bench/rados/run.py - radosd against the tools a Ceph user picks, in one
# invocation, on one one-node cluster (tools/ceph/cluster, BlueStore):
#
#   xseg      fio's nbd engine -> the NBD gateway -> radosd --stripe
#             --object-size: a block target of --size striped over 4M RADOS
#             objects, the layout of librbd's image (the gateway exports a
#             target)
#   object    the same through a radosd without --stripe: ONE RADOS object
#             of --size (one placement group)
#   volume    fio's nbd engine -> the gateway in volume mode -> vlmcd ->
#             mapperd -> radosd: a volume of --size in --object-size objects
#             (4M, as an RBD image's), so it spreads over many RADOS objects
#             and placement groups as librbd's image does
#   librbd    fio's rbd engine on an RBD image of --size (4 MiB objects),
#             CEPH_ARGS=--rbd_cache=false (with the cache, writes are acked
#             from memory)
#   qemu-nbd  qemu-nbd serving another such image (rbd: driver of
#             qemu-block-extra, --cache=none: no rbd cache), fio's nbd engine
#   rados     `rados bench` on the same pool: the cluster's own ceiling
#             (4K writes and reads of fresh objects, at the same depths)
#
# Workloads: 4K random read and write at QD1 and QD32, 1M sequential read and
# write at QD4; each target is filled first (1M sequential writes; for the
# volume: every object allocated). Each (workload, engine) pair runs --rounds
# times, interleaved; the best round is kept (noise on a shared machine only
# slows a run down). Prints a table and writes bench/results/rados.json with
# the ratios of xseg, volume and object to librbd and qemu-nbd.
#
#   bench/rados/run.py [--runtime S] [--rounds N] [--size 96M] [--object-size 4M]
#                      [--only WORKLOAD,...] [--engines E,...] [--b-args ARGS]
#
# --b-args (A/B of a radosd change, in the same invocation): "xseg-b" is a
# second striped radosd on the same target, started with these extra
# arguments (VAR=VALUE words go to its environment), measured interleaved
# with the rest; its ratio to xseg is printed. Runs with --only, --engines or
# --b-args print their rows and leave bench/results/rados.json alone.
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.join(ROOT, 'lib/user/bin')
CLUSTER = os.path.join(ROOT, 'tools/ceph/cluster')

WORKLOADS = [
    ('4K randread QD1', 'randread', '4k', 1),
    ('4K randread QD32', 'randread', '4k', 32),
    ('4K randwrite QD1', 'randwrite', '4k', 1),
    ('4K randwrite QD32', 'randwrite', '4k', 32),
    ('1M seq read QD4', 'read', '1m', 4),
    ('1M seq write QD4', 'write', '1m', 4),
]

ap = argparse.ArgumentParser(description='radosd vs librbd vs rados bench on a one-node cluster')
ap.add_argument('--runtime', type=int, default=5)
ap.add_argument('--rounds', type=int, default=2)
ap.add_argument('--size', default='96M', help='the object / image size (a RADOS object: at most 128M)')
ap.add_argument('--object-size', default='4M', help="the volume's object size (vlmcd; default 4M, as RBD's)")
ap.add_argument('--only', default='')
ap.add_argument('--engines', default='', help='measure only these engines (xseg,volume,object,librbd,qemu-nbd,xseg-b)')
ap.add_argument('--b-args', default=None,
                help='A/B: also measure "xseg-b", a second striped radosd (port 4, the same target) started with these '
                     'extra arguments, e.g. "--spin-us 0"; VAR=VALUE words set its environment '
                     '(CEPH_ARGS=--ms_async_op_threads=2)')
DEFAULT_OUT = os.path.join(ROOT, 'bench/results/rados.json')
ap.add_argument('--out', default=DEFAULT_OUT)
opt = ap.parse_args()

for tool in ('fio', 'rados', 'rbd', 'ceph-mon', 'ceph-osd', 'node'):
    if not shutil.which(tool):
        sys.exit(f'bench/rados: {tool} is missing (tools/install-deps check)')
for b in ('radosd', 'mapperd', 'vlmcd', 'xseg-tool'):
    if not os.access(os.path.join(BIN, b), os.X_OK):
        sys.exit(f'bench/rados: {BIN}/{b} is not built (make user; radosd needs librados-dev)')
if not os.path.exists(os.path.join(ROOT, 'lib/node/cli.js')):
    sys.exit('bench/rados: the node domain is not built (make node)')

work = tempfile.mkdtemp(prefix='xseg-radosbench-')
cdir = os.path.join(work, 'cluster')
# Dynamic ports for mapperd's workers, vlmcd and the gateways; 1M buffers for 1M I/O.
spec = f'posix:radosbench{os.getpid()}:64:1024:64K:0:12:dynports=48:buffers=1M*64'
sock = os.path.join(work, 'nbd.sock')
uri = f'nbd+unix:///sdisk?socket={sock}'
osock = os.path.join(work, 'object.sock')
ouri = f'nbd+unix:///disk?socket={osock}'
qsock = os.path.join(work, 'qemu-nbd.sock')
quri = f'nbd+unix:///disk?socket={qsock}'
vsock = os.path.join(work, 'volume.sock')
vuri = f'nbd+unix:///vol?socket={vsock}'
children = []


def cleanup():
    for c in children:
        if c.poll() is None:
            c.terminate()
    for c in children:
        try:
            c.wait(10)
        except subprocess.TimeoutExpired:
            c.kill()
    subprocess.run([os.path.join(BIN, 'xseg-tool'), 'destroy', spec], capture_output=True)
    if os.path.exists(cdir):
        subprocess.run([CLUSTER, 'stop', cdir, '--rm'])
    shutil.rmtree(work, ignore_errors=True)


def on_signal(sig, frame):
    sys.exit(130)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f'{" ".join(args)}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}')
    return r.stdout


def wait_bound(port):
    for _ in range(500):
        st = subprocess.run([os.path.join(BIN, 'xseg-tool'), 'status', spec], capture_output=True, text=True).stdout
        if any(l.split()[:2] == [str(port), 'bound'] for l in st.splitlines()):
            return
        time.sleep(0.02)
    raise RuntimeError(f'nobody bound port {port}')


def wait_socket(path):
    for _ in range(500):
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise RuntimeError(f'nobody listens on {path}')


def fio(engine_args, rw, bs, depth, runtime, env=None):
    out = os.path.join(work, 'fio.json')
    args = ['fio', *engine_args, '--name=bench', f'--rw={rw}', f'--bs={bs}', f'--iodepth={depth}',
            f'--size={opt.size}', '--randrepeat=0', '--norandommap', '--output-format=json', f'--output={out}']
    if runtime:
        args += ['--time_based', f'--runtime={runtime}', '--ramp_time=1']
    run(args, env=env)
    with open(out) as f:
        job = json.load(f)['jobs'][0]
    d = job['read'] if 'read' in rw else job['write']
    pct = d['clat_ns'].get('percentile', {})
    return {'iops': d['iops'], 'mbps': d['bw_bytes'] / 1e6, 'p50us': pct.get('50.000000', 0) / 1000,
            'p99us': pct.get('99.000000', 0) / 1000, 'meanus': d['clat_ns']['mean'] / 1000}


def rados_bench(conf, mode, bs, depth, runtime):
    args = ['rados', '-c', conf, '-p', 'xseg', 'bench', str(runtime), mode, '-t', str(depth)]
    if mode == 'write':
        args += ['-b', str(bs), '--no-cleanup', '--run-name', f'rb{depth}-{bs}']
    else:
        args += ['--run-name', f'rb{depth}-{bs}']
    res = {}
    for line in run(args).splitlines():
        k, _, v = line.partition(':')
        k = k.strip()
        if k == 'Average IOPS':
            res['iops'] = float(v)
        elif k.startswith('Bandwidth (MB/sec)'):
            res['mbps'] = float(v) * 1.048576
        elif k == 'Average Latency(s)':
            res['meanus'] = float(v) * 1e6
    return res


try:
    t0 = time.time()
    conf = run([CLUSTER, 'start', cdir, '--rbd']).strip()
    print(f'cluster up in {time.time() - t0:.1f} s: {conf}', file=sys.stderr)
    env = dict(os.environ, CEPH_CONF=conf, CEPH_ARGS='--rbd_cache=false')
    run([os.path.join(BIN, 'xseg-tool'), 'create', spec])
    radosd = subprocess.Popen([os.path.join(BIN, 'radosd'), '-q', '-g', spec, '-p', '1', '--conf', conf])
    children.append(radosd)
    wait_bound(1)
    run([os.path.join(BIN, 'xseg-tool'), 'submit', spec, '-p', '1', '-T', 'disk', '-o', 'create', '-s', opt.size])
    children.append(subprocess.Popen(['node', os.path.join(ROOT, 'lib/node/cli.js'), 'nbd', spec, '--storage-port', '1',
                                      '--unix', osock, '--export', 'disk', '-q'], stdout=subprocess.DEVNULL))
    wait_socket(osock)
    # xseg: a radosd striping its targets over --object-size objects (port 5), as librbd stripes an image.
    children.append(subprocess.Popen([os.path.join(BIN, 'radosd'), '-q', '-g', spec, '-p', '5', '--conf', conf,
                                      '--stripe', opt.object_size]))
    wait_bound(5)
    run([os.path.join(BIN, 'xseg-tool'), 'submit', spec, '-p', '5', '-T', 'sdisk', '-o', 'create', '-s', opt.size])
    children.append(subprocess.Popen(['node', os.path.join(ROOT, 'lib/node/cli.js'), 'nbd', spec, '--storage-port', '5',
                                      '--unix', sock, '--export', 'sdisk', '-q'], stdout=subprocess.DEVNULL))
    wait_socket(sock)
    # The volume chain on the same radosd: mapperd on port 2, vlmcd on 3, a gateway in volume mode.
    for (peer, port, extra) in (('mapperd', 2, ['--storage', '1']), ('vlmcd', 3, ['--mapper', '2', '--storage', '1'])):
        children.append(subprocess.Popen([os.path.join(BIN, peer), '-q', '-g', spec, '-p', str(port), *extra]))
        wait_bound(port)
    run(['node', os.path.join(ROOT, 'lib/node/cli.js'), 'volume', 'create', 'vol', '--size', opt.size,
         '--object-size', opt.object_size, '-g', spec, '-p', '3'])
    children.append(subprocess.Popen(['node', os.path.join(ROOT, 'lib/node/cli.js'), 'nbd', spec, '--storage-port', '3',
                                      '--unix', vsock, '--volumes', '-q'], stdout=subprocess.DEVNULL))
    wait_socket(vsock)
    run(['rbd', '-c', conf, 'create', '--size', opt.size, 'xseg/bench'])
    bsock = os.path.join(work, 'b.sock')
    if opt.b_args is not None:
        words = opt.b_args.split()
        benv = dict(os.environ, **dict(w.split('=', 1) for w in words if '=' in w and not w.startswith('-')))
        bargs = [w for w in words if not ('=' in w and not w.startswith('-'))]
        children.append(subprocess.Popen([os.path.join(BIN, 'radosd'), '-q', '-g', spec, '-p', '4', '--conf', conf,
                                          '--stripe', opt.object_size, *bargs], env=benv))
        wait_bound(4)
        children.append(subprocess.Popen(['node', os.path.join(ROOT, 'lib/node/cli.js'), 'nbd', spec,
                                          '--storage-port', '4', '--unix', bsock, '--export', 'sdisk', '-q'],
                                         stdout=subprocess.DEVNULL))
        wait_socket(bsock)
    engines = {
        'xseg': (['--ioengine=nbd', f'--uri={uri}'], None),
        'volume': (['--ioengine=nbd', f'--uri={vuri}'], None),
        'object': (['--ioengine=nbd', f'--uri={ouri}'], None),
        'librbd': (['--ioengine=rbd', '--clientname=admin', '--pool=xseg', '--rbdname=bench'], env),
    }
    if opt.b_args is not None:
        engines['xseg-b'] = (['--ioengine=nbd', f'--uri=nbd+unix:///sdisk?socket={bsock}'], None)
    if shutil.which('qemu-nbd') and subprocess.run(['qemu-img', '--help'], capture_output=True, text=True).stdout.find('rbd') >= 0:
        run(['rbd', '-c', conf, 'create', '--size', opt.size, 'xseg/qbench'])
        q = subprocess.Popen(['qemu-nbd', '--persistent', '--shared=8', '--format=raw', '--cache=none',
                              f'--socket={qsock}', '--export-name=disk',
                              f'rbd:xseg/qbench:id=admin:conf={conf}'], stderr=subprocess.PIPE)
        children.append(q)
        wait_socket(qsock)
        engines['qemu-nbd'] = (['--ioengine=nbd', f'--uri={quri}'], None)
    else:
        print('qemu-nbd or its rbd driver (qemu-block-extra) is missing: not measured', file=sys.stderr)
    if opt.engines:
        keep = [e.strip() for e in opt.engines.split(',')]
        engines = {k: v for k, v in engines.items() if k in keep}
    for name, (eargs, eenv) in engines.items():
        fio(eargs, 'write', '1m', 4, 0, eenv)		# fill it
    only = [s.strip() for s in opt.only.split(',') if s.strip()]
    rows = []
    for (wname, rw, bs, depth) in WORKLOADS:
        if only and wname not in only:
            continue
        best = {}
        for _ in range(opt.rounds):
            for name, (eargs, eenv) in engines.items():
                r = fio(eargs, rw, bs, depth, opt.runtime, eenv)
                if name not in best or r['iops'] > best[name]['iops']:
                    best[name] = r
        row = {'workload': wname, 'rw': rw, 'bs': bs, 'depth': depth, **best}
        for ours in ('xseg', 'volume', 'object', 'xseg-b'):
            for other in ('librbd', 'qemu-nbd', 'xseg'):
                if ours in best and other in best and best[other]['iops'] and ours != other and \
                        (other != 'xseg' or ours == 'xseg-b'):
                    row[f'ratio_{ours.replace("-", "")}_{other.replace("-", "")}'] = best[ours]['iops'] / best[other]['iops']
        rows.append(row)
        print(f"{wname:20s} " + '  '.join(f"{e} {best[e]['iops']:8.0f}" for e in engines) + ' IOPS  ' +
              '  '.join(f"{k[6:]} {v:.2f}" for k, v in row.items() if k.startswith('ratio_')), file=sys.stderr)
    ceiling = []
    partial = bool(opt.only or opt.engines or opt.b_args is not None)
    for (label, mode, bs, depth) in [('4K write QD1', 'write', 4096, 1), ('4K write QD32', 'write', 4096, 32),
                                     ('4K rand read QD1', 'rand', 4096, 1),
                                     ('4K rand read QD32', 'rand', 4096, 32)]:
        # rand reads the objects the write run of the same depth left (--run-name)
        if partial:
            break		# an experiment: rows only
        r = rados_bench(conf, mode, bs, depth, opt.runtime)
        ceiling.append({'workload': label, **r})
        print(f"rados bench {label:18s} {r.get('iops', 0):9.0f} IOPS", file=sys.stderr)
    doc = {
        'schemaVersion': 1,
        'benchmark': 'rados',
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'machine': {'cpus': os.cpu_count(), 'load1': os.getloadavg()[0]},
        'cluster': 'one node: ceph-mon + one BlueStore OSD on a sparse file, loopback, msgr v2, cephx, no mgr (tools/ceph/cluster)',
        'client': 'fio 3.33: --ioengine=nbd through the gateway (unix socket) -> radosd --stripe objectSize, a target striped over objectSize RADOS objects (xseg); the same to a radosd without --stripe, one RADOS object (object); --ioengine=nbd through the gateway in volume mode -> vlmcd -> mapperd -> radosd, a volume of objectSize objects (volume); --ioengine=rbd (librbd, rbd_cache=false); --ioengine=nbd to qemu-nbd on an rbd: image (--cache=none); best of rounds',
        'runtimeSeconds': opt.runtime,
        'rounds': opt.rounds,
        'size': opt.size,
        'objectSize': opt.object_size,
        'segment': spec,
        'rows': rows,
        'radosBench': ceiling,
    }
    if partial and opt.out == DEFAULT_OUT:
        print('a partial run (--only/--engines/--b-args): bench/results/rados.json left alone', file=sys.stderr)
        sys.exit(0)
    with open(opt.out, 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')
    print(f'wrote {opt.out}', file=sys.stderr)
finally:
    cleanup()

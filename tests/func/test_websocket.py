#!/usr/bin/python3
"""The websocket:// publisher through sluiced, with real WebSocket clients
(Debian's python3-websockets), all on 127.0.0.1 with free ports.

  test_websocket.py --build BUILD_DIR --src SOURCE_DIR [--keep] [--only NAME]

sluiced runs 1 ingest and 2 pipeline workers (so one worker is the hub and
the other pushes its records to it), a zmq source fed by sluice-inject,
and sinks that each have a file:// and a websocket:// publisher. Cases:

1. profiles: forward profiles `search` (meters and event types selected,
   user_id dropped) and `ops` (everything). Clients with a search token
   (Authorization: Bearer), an ops token in ?token= with ?meters=disk.*,
   and an ops token that narrows its stream with a subscribe message
   each get exactly the records file:// wrote that their profile and
   stream select, filtered by their profile. A wrong token and no token
   are refused with 401 at the handshake.
2. slow-client: a client that stops reading (small receive buffer, no
   recv) is cut off (close, counted in /stats and logged) while a fast
   client gets every record and file:// every sample.
3. failover: kill -9 of the hub's pipeline worker mid-stream; the client
   reconnects and gets records again from the worker that took over.
4. throughput: records/s delivered to 1 and to 10 clients (printed).

Exit 0 if all hold; 1 with what was expected and what came instead.
"""
import argparse
import asyncio
import fnmatch
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websockets
except ImportError:
    if os.path.realpath(sys.executable) != '/usr/bin/python3' and os.path.exists('/usr/bin/python3'):
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    raise

import sluice_functest as sf
from sluice_functest import FAILURES, check, free_port, log, read_jsonl, tail


class Agent(object):
    """One sluiced on a temporary run dir."""

    def __init__(self, env, name, ws_query, forward='', sample_extra=None):
        self.env, self.run = env, os.path.join(env.tmp, name)
        os.makedirs(self.run)
        self.port = free_port()
        self.ws = 'websocket://127.0.0.1:%d/stream?%s' % (self.port, ws_query)
        self.samples = os.path.join(self.run, 'samples.jsonl')
        self.events = os.path.join(self.run, 'events.jsonl')
        sf.write_agent(env, self.run, '{type: zmq, endpoint: "ipc://%s/notify.sock"}' % self.run,
                       ['file://' + self.samples, self.ws] + (sample_extra or []),
                       ['file://' + self.events, self.ws], extra=forward)
        self.proc = None

    def start(self):
        conf = os.path.join(self.run, 'sluice.yaml')
        r = subprocess.run([self.env.sluiced(), '-t', '-c', conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit('test_websocket: sluiced -t refused the configuration:\n%s%s'
                             % (r.stdout, r.stderr))
        self.proc = self.env.spawn([self.env.sluiced(), '-c', conf], stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            st = self.stats()
            m = self.monitor()
            if st and st.get('hub') and m and m['workers'] and \
                    all(w['state'] == 'running' for w in m['workers']):
                return
            time.sleep(0.1)
        raise SystemExit('test_websocket: sluiced did not start serving ws://127.0.0.1:%d; '
                         'see %s/sluiced.log:\n%s' % (self.port, self.run,
                                                      tail(os.path.join(self.run, 'sluiced.log'))))

    def stats(self):
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/stream/stats' % self.port,
                                        timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def monitor(self):
        return self.env.monitor(self.run)

    def inject(self, path, rate=None):
        argv = [self.env.tool('sluice-inject'), '--endpoint', 'ipc://%s/notify.sock' % self.run,
                '--run-dir', self.run, '--linger', '60']
        if rate:
            argv += ['--rate', str(rate)]
        return argv + [path]

    def wait_published(self, timeout=120):
        deadline = time.time() + timeout
        m = None
        while time.time() < deadline:
            m = self.monitor()
            t = m['totals'] if m else {}
            if t.get('samples_routed', 0) > 0 and \
                    t.get('samples_published', 0) == t.get('samples_routed', 0) and \
                    t.get('events_published', 0) == t.get('events_routed', 0):
                return m
            time.sleep(0.2)
        raise SystemExit('test_websocket: sluiced did not publish everything within %d s: %s\n%s'
                         % (timeout, m and m['totals'],
                            tail(os.path.join(self.run, 'sluiced.log'))))

    def stop(self):
        if self.proc:
            self.env.stop(self.proc)

    def log_text(self):
        with open(os.path.join(self.run, 'sluiced.log')) as f:
            return f.read()


class Env(sf.Env):
    def generate_into(self, n, seed, name):
        """n generated notifications into tmp/name; returns its path."""
        path = os.path.join(self.tmp, name)
        self.generate(path, n, seed)
        return path


def key(rec):
    return json.dumps(rec, sort_keys=True)


async def run_cmd(argv):
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.PIPE)
    _, err = await p.communicate()
    if p.returncode != 0:
        raise SystemExit('test_websocket: %s failed (exit %d): %s'
                         % (' '.join(argv), p.returncode, err.decode()[-2000:]))


class Client(object):
    """Collects what one subscriber receives (the first frame, subscribed,
    apart)."""

    def __init__(self, url, headers=None, subscribe=None):
        self.url, self.headers, self.subscribe = url, headers or {}, subscribe
        self.records, self.control, self.closed, self.error = [], [], None, None
        self.first = self.last = None
        self.ready = asyncio.Event()

    async def run(self, until):
        try:
            await self._run(until)
        except (OSError, websockets.InvalidHandshake) as e:
            self.error = e
            self.ready.set()

    async def _run(self, until):
        async with websockets.connect(self.url, extra_headers=self.headers,
                                      max_size=None) as ws:
            self.control.append(json.loads(await ws.recv()))
            if self.subscribe is not None:
                await ws.send(json.dumps(self.subscribe))
                self.control.append(json.loads(await ws.recv()))
            self.ready.set()
            try:
                while not until():
                    try:
                        m = await asyncio.wait_for(ws.recv(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    now = time.time()
                    self.first = self.first or now
                    self.last = now
                    self.records.append(json.loads(m))
            except websockets.ConnectionClosed as e:
                self.closed = e


async def settle(clients, quiet=2.0, limit=60):
    """Waits until no client got a record for `quiet` seconds: the hub
    has written what the last batches brought."""
    deadline = time.time() + limit
    while time.time() < deadline:
        now = time.time()
        if all(now - (c.last or 0) > quiet for c in clients):
            return
        await asyncio.sleep(0.2)


async def refused_status(url, headers=None):
    try:
        async with websockets.connect(url, extra_headers=headers or {}) as ws:
            await ws.recv()
    except websockets.InvalidStatusCode as e:
        return e.status_code
    except Exception as e:   # noqa: BLE001 - report whatever it was
        return repr(e)
    return 101


# --- 1. profiles ----------------------------------------------------------------

FORWARD = '''forward:
  search:
    tokens: [tok-search]
    meters: ['disk.*', 'memory*', 'cpu*']
    event_types: ['compute.instance.*']
    drop_fields: [user_id]
  ops:
    token_file: %s
'''


def search_view(rec, events):
    """What profile search lets through of a file:// record, or None."""
    if events:
        if not fnmatch.fnmatchcase(rec['event_type'], 'compute.instance.*'):
            return None
        r = dict(rec)
        r['traits'] = [t for t in rec['traits'] if t[0] != 'user_id']
        return r
    if not any(fnmatch.fnmatchcase(rec['name'], g) for g in ('disk.*', 'memory*', 'cpu*')):
        return None
    r = dict(rec)
    r.pop('user_id', None)
    return r


def compare(what, got, want):
    g = sorted(key(r) for r in got)
    w = sorted(key(r) for r in want)
    if g == w:
        return True
    gs, ws_ = set(g), set(w)
    return check(False, what, '%d records' % len(w),
                 '%d records; missing %d (e.g. %s), unexpected %d (e.g. %s)'
                 % (len(g), len(ws_ - gs), list(ws_ - gs)[:1], len(gs - ws_),
                    list(gs - ws_)[:1]))


def test_profiles(env):
    tokfile = os.path.join(env.tmp, 'ops-tokens')
    with open(tokfile, 'w') as f:
        f.write('# ops\ntok-ops\n')
    # a queue that a Python client on a loaded machine does not overflow
    ag = Agent(env, 'profiles', 'profiles=search,ops&max_client_queue=1000000',
               forward=FORWARD % tokfile)
    ag.start()
    inp = env.generate_into(1500, 5, 'profiles.jsonl')
    url = 'ws://127.0.0.1:%d/stream' % ag.port
    done = {'v': False}

    async def main():
        st_bad = await refused_status(url, {'Authorization': 'Bearer nope'})
        st_none = await refused_status(url)
        st_q = await refused_status(url + '?token=nope')
        check(st_bad == 401, 'a wrong bearer token is refused with 401', 401, st_bad)
        check(st_none == 401, 'no token is refused with 401', 401, st_none)
        check(st_q == 401, 'a wrong ?token= is refused with 401', 401, st_q)
        search = Client(url, {'Authorization': 'Bearer tok-search'})
        disk = Client(url + '?token=tok-ops&meters=disk.*')
        sub = Client(url + '?token=tok-ops', subscribe={'event_types': ['compute.*', 'image.*']})
        tasks = [asyncio.ensure_future(c.run(lambda: done['v'])) for c in (search, disk, sub)]
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in (search, disk, sub))),
                               10)
        await run_cmd(ag.inject(inp))
        await asyncio.get_event_loop().run_in_executor(None, ag.wait_published)
        await settle((search, disk, sub))
        done['v'] = True
        await asyncio.gather(*tasks)
        for c in (search, disk, sub):
            check(c.closed is None, 'a client with a large queue stays connected', None, c.closed)
        return search, disk, sub

    search, disk, sub = asyncio.run(main())
    samples, events = read_jsonl(ag.samples), read_jsonl(ag.events)
    check(len(samples) > 100 and len(events) > 100, 'the input produced samples and events',
          '> 100 each', '%d samples, %d events' % (len(samples), len(events)))
    check(search.control[0].get('subscribed', {}).get('profile') == 'search',
          'the search token opens profile search', 'search', search.control[0])
    want = [v for v in (search_view(r, 0) for r in samples) if v] + \
        [v for v in (search_view(r, 1) for r in events) if v]
    check(len(want) > 50, 'profile search selects some records', '> 50', len(want))
    compare('profile search: its meters and event types, without user_id', search.records, want)
    compare('ops with ?meters=disk.*: disk.* samples unfiltered, no events', disk.records,
            [r for r in samples if fnmatch.fnmatchcase(r['name'], 'disk.*')])
    check(sub.control[-1].get('subscribed', {}).get('select', {}).get('event_types') ==
          ['compute.*', 'image.*'], 'the subscribe message is confirmed', None, sub.control)
    compare('ops subscribed to compute.*, image.*: those events, no samples', sub.records,
            [r for r in events if fnmatch.fnmatchcase(r['event_type'], 'compute.*') or
             fnmatch.fnmatchcase(r['event_type'], 'image.*')])
    st = ag.stats()
    check(st and st['rejected'] >= 3, 'refused handshakes are counted', '>= 3', st)
    ag.stop()
    log('profiles: search %d, disk %d, subscribed %d records' %
        (len(search.records), len(disk.records), len(sub.records)))


# --- 2. slow client -------------------------------------------------------------

RATE = 1500
N_SLOW = 20000


def test_slow_client(env):
    # a queue a lagging Python client on a loaded machine stays within, but
    # that a client that reads nothing overflows (with ~4 MB in the socket
    # buffers, ~6,000 records)
    ag = Agent(env, 'slow', 'anonymous=true&max_client_queue=15000')
    ag.start()
    inp = env.generate_into(N_SLOW, 7, 'slow.jsonl')
    url = 'ws://127.0.0.1:%d/stream' % ag.port
    done = {'v': False}

    async def main():
        fast = Client(url + '?meters=*')
        ft = asyncio.ensure_future(fast.run(lambda: done['v']))
        # the slow one: a 4 KiB receive buffer and nobody reading
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', ag.port))
        slow = await websockets.connect(url + '?meters=*', sock=sock, max_queue=1,
                                        read_limit=4096)
        await asyncio.wait_for(fast.ready.wait(), 10)
        t0 = time.time()
        # at a rate a Python client keeps up with (~2,600 samples/s)
        await run_cmd(ag.inject(inp, rate=RATE))
        await asyncio.get_event_loop().run_in_executor(None, ag.wait_published)
        t1 = time.time()
        await settle([fast])
        # the shared-memory stats (sluice-monitor) carry the plugin's own
        # counters once a second: subscribers now and records lost, on the
        # instance that is the hub (of the meter or the event sink)
        deadline, pub = time.time() + 5, None
        while time.time() < deadline:
            m = ag.monitor() or {}
            ws = [p for p in m.get('publishers', []) if p['publisher'].startswith('websocket')]
            pub = {'peers': sum(p['peers'] for p in ws), 'lost': sum(p['lost'] for p in ws)}
            if pub['lost'] > 15000 and pub['peers'] >= 1:
                break
            time.sleep(0.3)
        done['v'] = True
        await ft
        st = ag.stats()
        check(pub and pub['lost'] > 15000 and pub['peers'] >= 1,
              'sluice-monitor shows the subscribers (peers) and the records lost', st, pub)
        # read what the slow one was sent: a close from the server ends it
        closed = None
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 5)
        except websockets.ConnectionClosed as e:
            closed = e
        except asyncio.TimeoutError:
            closed = None
        await slow.close()
        return fast, st, closed, t1 - t0

    fast, st, closed, secs = asyncio.run(main())
    samples = read_jsonl(ag.samples)
    check(st and st['cut_off'] == 1, 'the client that stopped reading is cut off once', 1, st)
    check(st and st['dropped'] > 15000, 'its queued records count as dropped', '> 15000', st)
    n_in = N_SLOW
    check(secs < n_in / RATE + 5, 'sluiced keeps the input rate (the slow client does not '
          'slow the pipeline)', '< %.0f s' % (n_in / RATE + 5), '%.1f s' % secs)
    check(closed is not None, 'the slow client finds its connection closed', 'closed', closed)
    compare('the fast client gets every sample file:// wrote', fast.records, samples)
    text = ag.log_text()
    check('cut off' in text and 'max_client_queue' in text, 'the cut-off is logged',
          'a "cut off" line', tail(os.path.join(ag.run, 'sluiced.log'), 5))
    log('slow-client: %d samples in %.1f s (%.0f/s) through file:// and the fast client while '
        'the slow one was cut off; stats %s' % (len(samples), secs, len(samples) / secs, st))
    ag.stop()


# --- 3. failover ----------------------------------------------------------------

def test_failover(env):
    ag = Agent(env, 'failover', 'anonymous=true&takeover_ms=200')
    ag.start()
    inp = env.generate_into(6000, 9, 'failover.jsonl')
    url = 'ws://127.0.0.1:%d/stream?meters=*' % ag.port
    result = {}

    async def main():
        hub0 = ag.stats()['pid']
        inj = asyncio.ensure_future(run_cmd(ag.inject(inp, rate=600)))
        before = Client(url)
        done = {'v': False}
        bt = asyncio.ensure_future(before.run(lambda: done['v']))
        await asyncio.wait_for(before.ready.wait(), 10)
        # let records flow, then kill the hub's worker
        t0 = time.time()
        while len(before.records) < 200 and time.time() - t0 < 20:
            await asyncio.sleep(0.1)
        os.kill(hub0, signal.SIGKILL)
        killed_at = time.time()
        await asyncio.wait_for(bt, 10)
        # reconnect until someone serves the port again
        after = None
        while time.time() - killed_at < 15:
            c = Client(url)
            at = asyncio.ensure_future(c.run(lambda: len(c.records) >= 200 or
                                             time.time() - killed_at > 30))
            await asyncio.wait_for(c.ready.wait(), 5)
            if not c.error:
                after = c
                break
            await at
            await asyncio.sleep(0.2)
        reconnect_s = time.time() - killed_at
        if after:
            await at
        st = ag.stats()
        await inj
        result.update(before=before, after=after, hub0=hub0, st=st, reconnect_s=reconnect_s)

    asyncio.run(main())
    b, a, st = result['before'], result['after'], result['st']
    check(len(b.records) >= 200 and b.closed is not None,
          'the client had records and saw its connection drop with the hub',
          '>= 200 records, closed', '%d, %s' % (len(b.records), b.closed))
    check(a is not None and len(a.records) >= 200,
          'after the kill -9 of the hub worker the client reconnects and gets records again',
          '>= 200 records', a and len(a.records))
    check(st and st['hub'] == 1 and st['pid'] != result['hub0'],
          'another worker serves the port', 'pid != %d' % result['hub0'], st)
    log('failover: %d records before the kill, reconnected after %.1f s, %d records after '
        '(new hub pid %s)' % (len(b.records), result['reconnect_s'], a and len(a.records) or 0,
                              st and st['pid']))
    ag.stop()


# --- 4. throughput ----------------------------------------------------------------

def test_throughput(env):
    """Each client is a process of its own (this script's --count-client
    mode: counts frames, parses nothing), so that the clients are not one
    Python thread's worth of CPU."""
    inp = env.generate_into(20000, 13, 'throughput.jsonl')
    for n_clients in (1, 10):
        ag = Agent(env, 'throughput%d' % n_clients, 'anonymous=true&max_client_queue=1000000')
        ag.start()
        url = 'ws://127.0.0.1:%d/stream?meters=*' % ag.port
        outs = [os.path.join(ag.run, 'client%d.json' % i) for i in range(n_clients)]
        cs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), '--count-client', url,
                                '--out', o]) for o in outs]
        env.procs.extend(cs)
        deadline = time.time() + 10
        while (ag.stats() or {}).get('clients', 0) < n_clients and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.time()
        asyncio.run(run_cmd(ag.inject(inp)))
        ag.wait_published()
        t1 = time.time()
        n = len(read_jsonl(ag.samples))
        for o in outs:
            with open(o + '.want', 'w') as f:
                f.write(str(n))
        res = []
        for c, o in zip(cs, outs):
            try:
                c.wait(120)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
            env.procs.remove(c)
            try:
                with open(o) as f:
                    res.append(json.load(f))
            except (OSError, ValueError):
                res.append({'n': 0, 'last': t0})
        check(all(r['n'] == n for r in res), '%d clients each get every sample' % n_clients,
              n, [r['n'] for r in res])
        last = max(r['last'] for r in res)
        log('throughput: %d samples to each of %d client(s): sluiced published them in %.2f s '
            '(%.0f/s); the last client had them all %.2f s after the start: %.0f records/s per '
            'client, %.0f frames/s in all' % (n, n_clients, t1 - t0, n / (t1 - t0), last - t0,
                                              n / (last - t0), n * n_clients / (last - t0)))
        ag.stop()


async def count_client(url, out):
    """--count-client: counts record frames until OUT.want names how many
    are expected and that many came (or 60 s of silence)."""
    n, last = 0, time.time()
    async with websockets.connect(url, max_size=None, max_queue=4096, ping_interval=None) as ws:
        await ws.recv()   # subscribed
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 60 if n else 120)
            except asyncio.TimeoutError:
                break
            n += 1
            last = time.time()
            if n % 1000 == 0 or n > 30000:
                try:
                    with open(out + '.want') as f:
                        if n >= int(f.read()):
                            break
                except (OSError, ValueError):
                    pass
    with open(out, 'w') as f:
        json.dump({'n': n, 'last': last}, f)


CASES = [('profiles', test_profiles), ('slow-client', test_slow_client),
         ('failover', test_failover), ('throughput', test_throughput)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build')
    ap.add_argument('--src')
    ap.add_argument('--count-client', help=argparse.SUPPRESS)
    ap.add_argument('--out', help=argparse.SUPPRESS)
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--only', action='append')
    a = ap.parse_args()
    if a.count_client:
        asyncio.run(count_client(a.count_client, a.out))
        return 0
    if not a.build or not a.src:
        ap.error('--build and --src are required')
    tmp = tempfile.mkdtemp(prefix='sluice-ws-')
    env = Env(a, tmp)
    try:
        for name, fn in CASES:
            if a.only and name not in a.only:
                continue
            t = time.time()
            log('%s ...' % name)
            try:
                fn(env)
            except SystemExit as e:   # a case that cannot go on: the others still run
                check(False, '%s: %s' % (name, e))
                env.cleanup()
            log('%s done in %.1f s' % (name, time.time() - t))
    finally:
        env.cleanup()
        if a.keep:
            log('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        log('%d check(s) failed: %s' % (len(FAILURES), '; '.join(FAILURES)))
        return 1
    log('all passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""The zaqar:// publisher against a real Zaqar (tools/zaqar-node: Debian's
zaqar-server on 127.0.0.1 with a private redis) and against
tests/func/http_sink.py, compared with Debian's Ceilometer 19
ZaqarPublisher.

  test_zaqar.py --build BUILD_DIR --src SOURCE_DIR [--keep] [--only a,b]
                [--bench N]

1. same_as_ceilometer: sluiced reads tests/data/corpus.jsonl into sinks
   with a file:// and a zaqar:// publisher aimed at an http_sink. For every
   POST sluiced made, Ceilometer's ZaqarPublisher publishes the same records
   (from what file:// wrote) to a second sink: the same path
   /v2/queues/<queue>/messages, content-type, a Client-ID of 32 hex digits
   (one per publisher instance), and the body identical byte for byte.
2. real_zaqar: the same corpus into a real Zaqar (project_id, ttl=1200;
   samples with max_body_bytes=8192 so that every batch is split into
   several POSTs), then every message read back with another Client-ID:
   each sample and event exactly once, its body equal to Ceilometer's
   as_dict()/serialize() of the record, its ttl 1200.
3. zaqar_down: Zaqar stopped while sluiced publishes, started again (a
   new, empty Zaqar on the same port): policy=default loses nothing.
4. bench (--bench N, not by default): throughput into the real Zaqar.

Servers start on 127.0.0.1 with free ports and stop by PID; one that cannot
start is a failure, never a skip.
"""
import json
import os
import shutil
import sys
import time
import uuid
from urllib import parse as urlparse
from urllib import request as urlrequest

import sluice_functest as sf
import test_http as th
from sluice_functest import check, log


class Zaqar(object):
    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.tmp, 'zaqar')
        self.url = None

    def tool(self, *args):
        import subprocess
        r = subprocess.run([os.path.join(self.env.src, 'tools', 'zaqar-node')] + list(args),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit('test_zaqar: tools/zaqar-node %s failed (exit %d):\n%s%s'
                             % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        out = self.tool('start', self.dir)
        env = dict(line.split('=', 1) for line in out.split() if '=' in line)
        self.url = env['ZAQAR_URL']
        log('zaqar on %s' % self.url)

    def stop(self):
        if os.path.exists(os.path.join(self.dir, 'node.env')):
            self.tool('stop', self.dir)

    def read_all(self, queue, project, client_id=None):
        """Every message of queue (GET with paging), as seen by another
        client."""
        cid = client_id or str(uuid.uuid4())
        msgs, path = [], '/v2/queues/%s/messages?limit=20' % queue
        while path:
            req = urlrequest.Request(self.url + path, headers={
                'Client-ID': cid, 'X-Project-Id': project, 'Accept': 'application/json'})
            with urlrequest.urlopen(req, timeout=30) as r:
                if r.status == 204:
                    break
                page = json.loads(r.read() or b'{}')
            got = page.get('messages', [])
            if not got:
                break
            msgs += got
            nxt = [lk['href'] for lk in page.get('links', []) if lk.get('rel') == 'next']
            path = nxt[0] if nxt else None
        return msgs


def ceilo_zaqar(conf_dir, endpoint, queue, ttl):
    """Ceilometer's ZaqarPublisher with its Keystone session replaced by
    gnocchiclient's keystoneless plugin pointing at endpoint."""
    from ceilometer import service
    from ceilometer.publisher import zaqar as ceilo_zaqar_mod
    cfg = os.path.join(conf_dir, 'ceilometer-zaqar.conf')
    with open(cfg, 'w') as f:
        f.write('[service_credentials]\nauth_type = gnocchi-basic\nuser = admin\n'
                'endpoint = %s\n' % endpoint)
    conf = service.prepare_service(['test_zaqar'], [cfg])
    return ceilo_zaqar_mod.ZaqarPublisher(conf, urlparse.urlparse(
        'zaqar://?queue=%s&ttl=%d' % (queue, ttl)))


def corpus_run(env, name):
    run = os.path.join(env.tmp, name)
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    return run, n


def test_same_as_ceilometer(env, zq):
    run, n_input = corpus_run(env, 'same')
    ours, theirs = th.Sink(env, 'zq-ours', extra=['--status', '201']), \
        th.Sink(env, 'zq-ceilometer', extra=['--status', '201'])
    opts = 'ttl=1200&project_id=p-1&retry_max_ms=500&endpoint=' + ours.url()
    th.write_agent(env, run, '{type: file, path: input.jsonl}',
                   ['file://%s/samples.jsonl' % run, 'zaqar://?queue=ceilo_q&' + opts],
                   ['file://%s/events.jsonl' % run, 'zaqar://?queue=ceilo_e&' + opts])
    agent = th.start_agent(env, run)
    m = th.wait_settled(env, run, n_input, 120, th.all_published)
    env.stop(agent)
    samples = {r['id']: r for r in th.read_lines(os.path.join(run, 'samples.jsonl'))}
    events = {r['message_id']: r for r in th.read_lines(os.path.join(run, 'events.jsonl'))}
    for p in th.pubs_of(m, 'meter_sink', 'zaqar') + th.pubs_of(m, 'event_sink', 'zaqar'):
        check(p['dropped'] == 0 and p['sent'] > 0, 'same-as-ceilometer: %s sent everything'
              % p['publisher'], 'sent > 0, dropped 0', p)
    got = ours.requests()
    for kind, queue, table, build in (('samples', 'ceilo_q', samples, th.ceilo_sample),
                                      ('events', 'ceilo_e', events, th.ceilo_event)):
        path = '/v2/queues/%s/messages' % queue
        mine = [r for r in got if r['path'] == path]
        pub = ceilo_zaqar(env.tmp, theirs.url(), queue, 1200)
        for r in mine:
            key = 'id' if kind == 'samples' else 'message_id'
            objs = [build(table[msg['body'][key]]) for msg in json.loads(r['body'])['messages']]
            if kind == 'samples':
                pub.publish_samples(objs)
            else:
                pub.publish_events(objs)
        ref = [r for r in theirs.requests() if r['path'] == path]
        ok = th.compare_requests('same-as-ceilometer zaqar %s' % kind, mine, ref,
                                 headers=('content-type',))
        cids = {r['headers'].get('Client-ID') for r in mine}
        # one publisher instance per pipeline worker (2), each with its own
        check(1 <= len(cids) <= 2 and all(c and len(c) == 32 and int(c, 16) >= 0
                                          for c in cids),
              'same-as-ceilometer zaqar %s: a Client-ID of 32 hex digits (uuid4().hex) per '
              'publisher instance' % kind, '1 or 2 (pipeline workers)', cids)
        check(all(r['headers'].get('X-Project-Id') == 'p-1' for r in mine),
              'same-as-ceilometer zaqar %s: X-Project-Id from project_id=' % kind, 'p-1',
              {r['headers'].get('X-Project-Id') for r in mine})
        n = sum(len(json.loads(r['body'])['messages']) for r in mine)
        check(n == len(table), 'same-as-ceilometer zaqar %s: every record once' % kind,
              len(table), n)
        if ok:
            log('same-as-ceilometer zaqar %s: %d POSTs (%d records) identical to Ceilometer\'s'
                % (kind, len(mine), n))
    ours.stop()
    theirs.stop()


def check_read_back(zq, what, queue, project, table, build, key, ttl):
    msgs = zq.read_all(queue, project)
    bodies = {}
    dups = 0
    for msg in msgs:
        k = msg['body'].get(key)
        dups += k in bodies
        bodies[k] = msg
    check(set(bodies) == set(table) and dups == 0, '%s: every record read back from Zaqar once'
          % what, '%d records' % len(table), '%d messages (%d duplicates, %d missing)' % (
              len(msgs), dups, len(set(table) - set(bodies))))
    wrong = [k for k, msg in bodies.items() if k in table and
             msg['body'] != json.loads(json.dumps(
                 build(table[k]).as_dict() if key == 'id' else build(table[k]).serialize()))]
    check(not wrong, '%s: each message body is Ceilometer\'s record' % what, 'none differ',
          '%d differ, e.g. %s' % (len(wrong), wrong[:1]))
    bad_ttl = [msg['ttl'] for msg in msgs if msg['ttl'] != ttl]
    check(not bad_ttl, '%s: ttl %d' % (what, ttl), ttl, bad_ttl[:3])
    return len(msgs)


def test_real_zaqar(env, zq):
    run, n_input = corpus_run(env, 'real')
    base = 'zaqar://?project_id=sluice-test&ttl=1200&retry_max_ms=500&endpoint=' + zq.url
    th.write_agent(env, run, '{type: file, path: input.jsonl}',
                   ['file://%s/samples.jsonl' % run, base + '&queue=real_s&max_body_bytes=8192'],
                   ['file://%s/events.jsonl' % run, base + '&queue=real_e'])
    agent = th.start_agent(env, run)
    m = th.wait_settled(env, run, n_input, 120, th.all_published)
    env.stop(agent)
    samples = {r['id']: r for r in th.read_lines(os.path.join(run, 'samples.jsonl'))}
    events = {r['message_id']: r for r in th.read_lines(os.path.join(run, 'events.jsonl'))}
    ps = th.pubs_of(m, 'meter_sink', 'zaqar') + th.pubs_of(m, 'event_sink', 'zaqar')
    check(all(p['dropped'] == 0 and p['retried'] == 0 for p in ps), 'real-zaqar: Zaqar took '
          'every POST at once (201)', 'no retries, nothing dropped', ps)
    ns = check_read_back(zq, 'real-zaqar samples (split into POSTs of <= 8192 bytes)', 'real_s',
                         'sluice-test', samples, th.ceilo_sample, 'id', 1200)
    ne = check_read_back(zq, 'real-zaqar events', 'real_e', 'sluice-test', events,
                         th.ceilo_event, 'message_id', 1200)
    log('real-zaqar: read back %d samples and %d events' % (ns, ne))


def test_zaqar_down(env, zq):
    run = os.path.join(env.tmp, 'down')
    os.makedirs(run)
    n_input = env.generate(os.path.join(run, 'input.jsonl'), 1500, 31)
    base = ('zaqar://?project_id=sluice-test&ttl=1200&retry_initial_ms=50&retry_max_ms=500'
            '&timeout=2&endpoint=' + zq.url)
    th.write_agent(env, run, '{type: file, path: input.jsonl, rate: 300}',
                   ['file://%s/samples.jsonl' % run, base + '&queue=down_s'],
                   ['file://%s/events.jsonl' % run, base + '&queue=down_e'])
    agent = th.start_agent(env, run)
    time.sleep(1.5)
    log('zaqar-down: zaqar-server stopped for 2.5 s (its redis keeps the messages)')
    zq.tool('restart', zq.dir, '--down', '2.5')
    m = th.wait_settled(env, run, n_input, 240)
    env.stop(agent)
    samples = {r['id']: r for r in th.read_lines(os.path.join(run, 'samples.jsonl'))}
    events = {r['message_id']: r for r in th.read_lines(os.path.join(run, 'events.jsonl'))}
    ps = th.pubs_of(m, 'meter_sink', 'zaqar') + th.pubs_of(m, 'event_sink', 'zaqar')
    retried = sum(p['retried'] for p in ps)
    dropped = sum(p['dropped'] for p in ps)
    check(dropped == 0 and retried > 0, 'zaqar-down: the publishers retried while Zaqar was '
          'down and dropped nothing', 'retried > 0, dropped 0', ps)
    got_s = {x['body']['id'] for x in zq.read_all('down_s', 'sluice-test')}
    got_e = {x['body']['message_id'] for x in zq.read_all('down_e', 'sluice-test')}
    check(set(samples) <= got_s and set(events) <= got_e, 'zaqar-down: every sample and event '
          'file:// wrote is in Zaqar', 'none missing', '%d samples, %d events missing' % (
              len(set(samples) - got_s), len(set(events) - got_e)))
    log('zaqar-down: %d samples, %d events, %d retries, nothing lost' % (
        len(samples), len(events), retried))


def test_bench(env, zq, n):
    run = os.path.join(env.tmp, 'bench')
    os.makedirs(run)
    n_input = env.generate(os.path.join(run, 'input.jsonl'), n, 5)
    base = 'zaqar://?project_id=bench&ttl=300&endpoint=' + zq.url
    th.write_agent(env, run, '{type: file, path: input.jsonl}', [base + '&queue=bench_s'],
                   [base + '&queue=bench_e'])
    t0 = time.time()
    agent = th.start_agent(env, run)
    m = th.wait_settled(env, run, n_input, 900, th.all_published)
    dt = time.time() - t0
    env.stop(agent)
    t = m['totals']
    log('bench: %d notifications -> %d samples + %d events into a real Zaqar in %.2f s (start '
        'included): %.0f samples/s, %.0f records/s' % (
            n_input, t['samples_published'], t['events_published'], dt,
            t['samples_published'] / dt,
            (t['samples_published'] + t['events_published']) / dt))


class Env(th.Env):
    """The test's processes and its Zaqar node (stopped at the end)."""

    def __init__(self, a, tmp):
        super().__init__(a, tmp)
        self.zq = Zaqar(self)

    def cleanup(self):
        super().cleanup()
        self.zq.stop()


def _start(env, a):
    env.zq.start()
    return (env.zq,)


def main():
    return sf.main(__doc__, {'same_as_ceilometer': test_same_as_ceilometer,
                             'real_zaqar': test_real_zaqar, 'zaqar_down': test_zaqar_down},
                   'sluice-zq.', env_class=Env, start=_start, bench=test_bench)


if __name__ == '__main__':
    sys.exit(main())

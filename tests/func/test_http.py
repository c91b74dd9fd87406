#!/usr/bin/python3
"""The http:// publisher against tests/func/http_sink.py, compared with
Debian's real Ceilometer 19 HttpPublisher, and through failures.

  test_http.py --build BUILD_DIR --src SOURCE_DIR [--keep] [--only a,b]
               [--bench N]

1. same_as_ceilometer: sluiced reads tests/data/corpus.jsonl into sinks
   with a file:// and two http:// publishers (basic auth from the URL, a
   pass-through query, batch=true and batch=false). For every POST sluiced
   made, Ceilometer's HttpPublisher (python3-ceilometer, this interpreter)
   publishes the same records, taken from what file:// wrote, to a second
   sink: method, path, query, Content-type and Authorization must be equal
   and the body identical byte for byte. batch=false: one POST per record
   whose body is json.dumps of Ceilometer's own as_dict()/serialize()
   (Ceilometer's _individual_post would post the whole list each time).
2. outage: generated notifications at a limited rate while the sink
   answers 503, then hangs past the publisher's timeout, then is stopped
   (connection refused) and started again on the same port. policy=default
   loses nothing (every record file:// wrote reaches the sink with a 2xx),
   policy=drop drops (counted: delivered + dropped = all), policy=queue
   with max_queue_length=2 drops the oldest (counted the same way).
3. rejected: a sink that answers 400: no retries, every record dropped,
   counted and dead-lettered with the reason.
4. tls: https:// with verify_ssl=<CA path> and a client certificate
   (clientcert/clientkey) delivers; verify_ssl=true refuses a CA the system
   does not know; verify_ssl=false delivers.
5. webhook: http:// with forward=<profile> (sluice.yaml forward:) posts
   only the selected meters / event types, without the removed fields.
6. raw_only: with ceilometer.store_raw [info, error], events carry the
   notification; http:// posts them as Ceilometer does, and raw_only=true
   posts only the raw payloads, as Ceilometer does.
7. bench (--bench N, not run by default): N generated notifications, as
   fast as possible, to a sink that answers at once: samples/s.

Every server is started on 127.0.0.1 with a free port and stopped by PID;
one that cannot start is a failure, never a skip. Exit 0 if everything
holds; 1 with what was expected and what came instead.
"""
import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from urllib import parse as urlparse
from urllib import request as urlrequest

from sluice_functest import (FAILURES, PROG, check, log, read_jsonl as read_lines,  # noqa: F401
                             start_agent, tail)
import sluice_functest as sf


class Sink(object):
    """One http_sink.py process."""

    def __init__(self, env, name, port=0, extra=()):
        self.env, self.name, self.extra = env, name, list(extra)
        self.port = port
        self.out = os.path.join(env.tmp, 'sink-%s.jsonl' % name)
        self.extra += ['--out', self.out]
        self.proc = None
        self.start()

    def start(self):
        argv = [sys.executable, os.path.join(self.env.src, 'tests', 'func', 'http_sink.py'),
                '--quiet', '--port', str(self.port)] + self.extra
        self.proc = self.env.spawn(argv, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('PORT='):
            self.env.stop(self.proc)
            raise SystemExit('%s: http_sink.py %s did not start (got %r)' % (PROG, self.name,
                                                                             line))
        self.port = int(line.strip().split('=', 1)[1])

    def stop(self):
        self.env.stop(self.proc)

    def url(self, path=''):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def control(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urlrequest.Request(self.url('/_sink/' + path), data=data,
                                 method='POST' if data is not None else 'GET')
        with urlrequest.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b'null')

    def mode(self, **m):
        self.control('mode', m)

    def requests(self):
        """Every request since the first start (across restarts)."""
        return read_lines(self.out)


Env = sf.Env


def write_agent(env, run, source, sample_pubs, event_pubs, pipeline_workers=2, extra='',
                store_raw=None):
    sf.write_agent(env, run, source, sample_pubs, event_pubs, pipeline_workers, extra,
                   ', store_raw: %s' % json.dumps(store_raw) if store_raw else '')


def settled(m, n_input):
    """Everything received was routed and every publisher finished every
    batch (published or dropped)."""
    t = m['totals'] if m else {}
    if t.get('received', 0) < n_input or t.get('samples_routed', 0) == 0:
        return False
    return all(p.get('queue_depth', 0) == 0 for p in m['publishers'])


def wait_settled(env, run, n_input, timeout, need=None):
    deadline = time.time() + timeout
    m = None
    while time.time() < deadline:
        m = env.monitor(run)
        if settled(m, n_input) and (need is None or need(m)):
            time.sleep(0.5)    # a batch between two monitor reads
            m2 = env.monitor(run)
            if settled(m2, n_input) and (need is None or need(m2)):
                return m2
        time.sleep(0.2)
    raise SystemExit('%s: sluiced did not finish within %d s: totals %s\npublishers %s\n'
                     'log:\n%s' % (PROG, timeout, m and m['totals'], m and m['publishers'],
                                   tail(os.path.join(run, 'sluiced.log'))))


def all_published(m):
    t = m['totals']
    return (t.get('samples_published', 0) == t.get('samples_routed', 0) and
            t.get('events_published', 0) == t.get('events_routed', 0))


def pubs_of(m, sink, prefix):
    """The publishers of a sink (event sinks are reported as events-<name>)."""
    return [p for p in m['publishers'] if p['sink'] in (sink, 'events-' + sink) and
            p['publisher'].startswith(prefix)]


# ---- Ceilometer's own objects from what file:// wrote ---------------------

def ceilo_sample(rec):
    from ceilometer import sample as sample_mod
    return sample_mod.Sample(
        name=rec['name'], type=rec['type'], unit=rec['unit'], volume=rec['volume'],
        user_id=rec['user_id'], project_id=rec['project_id'], resource_id=rec['resource_id'],
        timestamp=rec['timestamp'], resource_metadata=rec['resource_metadata'],
        source=rec['source'], id=rec['id'], monotonic_time=rec.get('monotonic_time'))


def _dt(v):
    try:
        return datetime.datetime.fromisoformat(v)
    except (TypeError, ValueError):
        return v


def ceilo_event(rec):
    """What Ceilometer's event converter holds: datetimes for generated and
    for datetime traits (serialize() writes their isoformat())."""
    from ceilometer.event import models
    traits = [models.Trait(n, t, _dt(v) if t == models.Trait.DATETIME_TYPE else v)
              for n, t, v in rec['traits']]
    return models.Event(rec['message_id'], rec['event_type'], _dt(rec['generated']), traits,
                        rec.get('raw', {}))


_CONF = []


def ceilo_conf():
    if not _CONF:
        from ceilometer import service
        _CONF.append(service.prepare_service(['test_http'], []))
    return _CONF[0]


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return 'at byte %d: ...%r... vs ...%r...' % (i, a[max(0, i - 60):i + 60],
                                                     b[max(0, i - 60):i + 60])
    return 'lengths %d vs %d' % (len(a), len(b))


def compare_requests(what, ours, theirs, headers=('Content-type', 'Authorization')):
    check(len(ours) == len(theirs), '%s: as many POSTs as Ceilometer' % what, len(theirs),
          len(ours))
    bad = 0
    for o, t in zip(ours, theirs):
        for k in ('method', 'path', 'query'):
            if o[k] != t[k]:
                bad += 1
                check(False, '%s: the same %s' % (what, k), t[k], o[k])
        for h in headers:
            if o['headers'].get(h) != t['headers'].get(h):
                bad += 1
                check(False, '%s: the same %s header' % (what, h), t['headers'].get(h),
                      o['headers'].get(h))
        if o['body'] != t['body']:
            bad += 1
            check(False, '%s: body identical to Ceilometer\'s' % what, len(t['body']),
                  first_diff(o['body'], t['body']))
        if bad > 5:
            break
    return bad == 0


# ---- 1. same as Ceilometer ------------------------------------------------

def test_same_as_ceilometer(env):
    from ceilometer.publisher import http as ceilo_http
    run = os.path.join(env.tmp, 'same')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    ours, theirs = Sink(env, 'ours'), Sink(env, 'ceilometer')
    auth = 'admin:s3cret@'
    q = '?timeout=5&verify_ssl=false&q=a+b&q=c&x=%C3%A9'
    sp = '/in/samples' + q
    ep = '/in/events' + q
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run,
                 'http://%s127.0.0.1:%d%s&retry_max_ms=500' % (auth, ours.port, sp),
                 'http://127.0.0.1:%d/one/samples?batch=false&retry_max_ms=500' % ours.port],
                ['file://%s/events.jsonl' % run,
                 'http://%s127.0.0.1:%d%s&retry_max_ms=500' % (auth, ours.port, ep),
                 'http://127.0.0.1:%d/one/events?batch=false&retry_max_ms=500' % ours.port])
    agent = start_agent(env, run)
    m = wait_settled(env, run, n_input, 120, all_published)
    env.stop(agent)
    check(agent.returncode == 0, 'same-as-ceilometer: sluiced stops cleanly', 0, agent.returncode)
    for p in pubs_of(m, 'meter_sink', 'http') + pubs_of(m, 'event_sink', 'http'):
        check(p['dropped'] == 0 and p['retried'] == 0 and p['sent'] > 0,
              'same-as-ceilometer: %s %s sent everything at once' % (p['sink'], p['publisher']),
              'sent > 0, no retry, nothing dropped', p)
    samples = {r['id']: r for r in read_lines(os.path.join(run, 'samples.jsonl'))}
    events = {r['message_id']: r for r in read_lines(os.path.join(run, 'events.jsonl'))}
    check(len(samples) == 128 and len(events) == 120, 'same-as-ceilometer: file:// wrote the '
          'corpus', '128 samples, 120 events', '%d, %d' % (len(samples), len(events)))
    got = ours.requests()
    conf = ceilo_conf()
    for kind, path, table, build, key in (
            ('samples', '/in/samples', samples, ceilo_sample, 'id'),
            ('events', '/in/events', events, ceilo_event, 'message_id')):
        mine = [r for r in got if r['path'] == path]
        pub = ceilo_http.HttpPublisher(conf, urlparse.urlparse(
            'http://%s127.0.0.1:%d%s%s' % (auth, theirs.port, path, q)))
        for r in mine:
            recs = [table[d[key]] for d in json.loads(r['body'])]
            objs = [build(rec) for rec in recs]
            if kind == 'samples':
                pub.publish_samples(objs)
            else:
                pub.publish_events(objs)
        ref = [r for r in theirs.requests() if r['path'] == path]
        ok = compare_requests('same-as-ceilometer %s' % kind, mine, ref)
        n = sum(len(json.loads(r['body'])) for r in mine)
        check(n == len(table), 'same-as-ceilometer %s: every record posted once' % kind,
              len(table), n)
        if ok:
            log('same-as-ceilometer %s: %d POSTs (%d records) identical to Ceilometer\'s'
                % (kind, len(mine), n))
        # batch=false: the record itself, as Ceilometer's as_dict/serialize
        one = [r for r in got if r['path'] == '/one/' + kind]
        want = sorted(json.dumps(build(rec).as_dict() if kind == 'samples'
                                 else build(rec).serialize()) for rec in table.values())
        have = sorted(r['body'] for r in one)
        check(have == want, 'same-as-ceilometer %s batch=false: one POST per record, the '
              'record as json.dumps writes it' % kind, '%d bodies' % len(want),
              '%d bodies; %s' % (len(have), first_diff(''.join(have), ''.join(want))))
    ours.stop()
    theirs.stop()


# ---- 2. outage ------------------------------------------------------------

def delivered(requests, path, key):
    """Record keys of the 2xx-answered POSTs to path."""
    c = collections.Counter()
    for r in requests:
        if r['path'] == path and 200 <= r['status'] < 300:
            for d in json.loads(r['body']):
                c[d[key]] += 1
    return c


def test_outage(env):
    run = os.path.join(env.tmp, 'outage')
    os.makedirs(run)
    n_input = env.generate(os.path.join(run, 'input.jsonl'), 3000, 21)
    sink = Sink(env, 'outage')
    common = 'timeout=1&retry_initial_ms=50&retry_max_ms=400'
    base = 'http://127.0.0.1:%d' % sink.port
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 400}',
                ['file://%s/samples.jsonl' % run,
                 base + '/default/samples?' + common,
                 base + '/drop/samples?policy=drop&' + common,
                 base + '/queue/samples?policy=queue&max_queue_length=2&' + common],
                ['file://%s/events.jsonl' % run, base + '/default/events?' + common])
    agent = start_agent(env, run)
    time.sleep(1.5)
    log('outage: the sink answers 503 for 1.5 s')
    sink.mode(status=503)
    time.sleep(1.5)
    log('outage: the sink hangs (past the publishers\' 1 s timeout) for 2 s')
    sink.mode(hang=True)
    time.sleep(2.0)
    sink.mode()
    time.sleep(0.5)
    log('outage: the sink is stopped (connection refused) for 2 s, then started again')
    sink.stop()
    time.sleep(2.0)
    sink.start()
    m = wait_settled(env, run, n_input, 180)
    env.stop(agent)
    got = sink.requests()
    samples = {r['id'] for r in read_lines(os.path.join(run, 'samples.jsonl'))}
    events = {r['message_id'] for r in read_lines(os.path.join(run, 'events.jsonl'))}
    check(len(samples) > 1000, 'outage: file:// wrote the samples', '> 1000', len(samples))
    pubs = {p['publisher'].split('/')[3]: p for p in pubs_of(m, 'meter_sink', 'http')}
    # default: nothing lost
    d = delivered(got, '/default/samples', 'id')
    e = delivered(got, '/default/events', 'message_id')
    check(samples <= set(d) and events <= set(e), 'outage: policy=default delivered every '
          'sample and event file:// wrote', 'none missing', '%d samples, %d events missing'
          % (len(samples - set(d)), len(events - set(e))))
    p = pubs.get('default', {})
    check(p.get('dropped') == 0 and p.get('retried', 0) > 0, 'outage: policy=default retried '
          'and dropped nothing', 'retried > 0, dropped 0', p)
    log('outage: policy=default: %d samples, %d retries, %d duplicates (timeouts: at least '
        'once)' % (len(samples), p.get('retried', 0), sum(c - 1 for c in d.values())))
    for name in ('drop', 'queue'):
        p = pubs.get(name, {})
        dl = delivered(got, '/%s/samples' % name, 'id')
        check(set(dl) <= samples, 'outage: policy=%s delivered only real samples' % name,
              'subset', len(set(dl) - samples))
        check(p.get('dropped', 0) > 0 and len(set(dl)) + p.get('dropped', 0) >= len(samples),
              'outage: policy=%s dropped during the outage, and delivered + dropped covers '
              'every sample' % name, '> 0 dropped, sum >= %d' % len(samples),
              '%d delivered, %s dropped' % (len(set(dl)), p.get('dropped')))
        log('outage: policy=%s: %d delivered, %d dropped (counted), %d retries'
            % (name, len(set(dl)), p.get('dropped', 0), p.get('retried', 0)))
    check(pubs.get('drop', {}).get('retried', 1) == 0, 'outage: policy=drop never retries', 0,
          pubs.get('drop', {}).get('retried'))
    sink.stop()


# ---- 3. rejected (4xx) -------------------------------------------------------

def test_rejected(env):
    run = os.path.join(env.tmp, 'rejected')
    dl = os.path.join(run, 'dead')
    os.makedirs(dl)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    sink = Sink(env, 'rejected', extra=['--status', '400', '--response', '{"title": "no"}'])
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run,
                 'http://127.0.0.1:%d/s?retry_max_ms=200&dead_letter=%s' % (sink.port, dl)],
                ['file://%s/events.jsonl' % run,
                 'http://127.0.0.1:%d/e?retry_max_ms=200&dead_letter=%s' % (sink.port, dl)])
    agent = start_agent(env, run)
    m = wait_settled(env, run, n_input, 120)
    env.stop(agent)
    got = sink.requests()
    ps = pubs_of(m, 'meter_sink', 'http') + pubs_of(m, 'event_sink', 'http')
    for p in ps:
        check(p['retried'] == 0 and p['sent'] == 0 and p['dropped'] > 0 and
              p['dead_lettered'] == p['dropped'], 'rejected: %s: 400 is not retried; every '
              'record dropped and dead-lettered' % p['publisher'],
              'retried 0, sent 0, dropped = dead_lettered > 0', p)
    attempts = sum(p.get('errors', 0) for p in ps)
    check(len(got) == attempts, 'rejected: one POST per failed publish attempt (no retries)',
          attempts, '%d POSTs; publishers %s' % (len(got), ps))
    dead = read_lines(os.path.join(dl, 'meter_sink.deadletter.jsonl'))
    dead_e = read_lines(os.path.join(dl, 'event_sink.deadletter.jsonl'))
    check(len(dead) == 128 and len(dead_e) == 120, 'rejected: the dead letters hold every record',
          '128 samples, 120 events', '%d, %d' % (len(dead), len(dead_e)))
    check(all('HTTP 400' in d['reason'] for d in dead + dead_e), 'rejected: each dead letter '
          'says HTTP 400', 'HTTP 400 in reason', (dead + dead_e)[:1])
    sink.stop()


# ---- 4. TLS -------------------------------------------------------------------

def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        r = subprocess.run(['openssl'] + list(args), cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit('%s: openssl %s failed:\n%s' % (PROG, ' '.join(args), r.stderr))
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    ossl('req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
         '-subj', '/CN=sluice test CA')
    with open(os.path.join(d, 'san.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    for who in ('server', 'client'):
        ossl('req', *ec, '-keyout', who + '.key', '-out', who + '.csr', '-subj',
             '/CN=sluice test %s' % who)
        ossl('x509', '-req', '-in', who + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
             '-CAcreateserial', '-out', who + '.pem', '-days', '2',
             *(['-extfile', 'san.ext'] if who == 'server' else []))
    return {k: os.path.join(d, k) for k in ('ca.pem', 'server.pem', 'server.key', 'client.pem',
                                            'client.key')}


def test_tls(env):
    """https:// with verify_ssl=<CA path> and a client certificate
    delivers; verify_ssl=true (the system's CAs) refuses the unknown CA and
    says so (policy=drop: dropped, counted); verify_ssl=false with the
    client certificate delivers."""
    run = os.path.join(env.tmp, 'tls')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    c = make_certs(os.path.join(run, 'certs'))
    sink = Sink(env, 'tls', extra=['--cert', c['server.pem'], '--key', c['server.key'],
                                   '--client-ca', c['ca.pem']])
    base = 'https://127.0.0.1:%d' % sink.port
    cert = 'clientcert=%s&clientkey=%s' % (c['client.pem'], c['client.key'])
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run,
                 base + '/ca?verify_ssl=%s&%s&retry_max_ms=500' % (c['ca.pem'], cert),
                 base + '/system?policy=drop&' + cert,
                 base + '/noverify?verify_ssl=false&%s&retry_max_ms=500' % cert],
                ['file://%s/events.jsonl' % run])
    agent = start_agent(env, run)
    m = wait_settled(env, run, n_input, 120)
    env.stop(agent)
    got = sink.requests()
    pubs = {p['publisher'].split('/')[3]: p for p in pubs_of(m, 'meter_sink', 'https')}
    for name in ('ca', 'noverify'):
        d = delivered(got, '/' + name, 'id')
        p = pubs.get(name, {})
        check(len(d) == 128 and p.get('dropped') == 0, 'tls: verify_ssl=%s with a client '
              'certificate delivered every sample' % ('<CA path>' if name == 'ca' else 'false'),
              '128 samples', '%d; %s' % (len(d), p))
    check(all(r.get('client_cert', {}).get('commonName') == 'sluice test client'
              for r in got), 'tls: the sink saw the client certificate on every request',
          'sluice test client', {json.dumps(r.get('client_cert')) for r in got})
    p = pubs.get('system', {})
    check(p.get('sent') == 0 and p.get('dropped') == 128 and
          'certificate' in p.get('last_error', '').lower(),
          'tls: verify_ssl=true (system CAs) refuses the test CA and says why',
          'sent 0, dropped 128, last_error about the certificate', p)
    sink.stop()


# ---- 5. webhooks: forward profiles -------------------------------------------

HOOK_YAML = """forward:
  hook:
    meters: ["cpu*", "memory*", "disk.*"]
    event_types: ["compute.instance.*"]
    drop_fields: [user_id, resource_metadata.host]
    admin_only_fields: ["*password*"]
"""


def _hook_filter(d, events):
    """What the profile hook leaves of a record (common/forward.h)."""
    import fnmatch
    d = json.loads(json.dumps(d))
    d.pop('user_id', None)

    def strip(o):
        if isinstance(o, dict):
            for k in [k for k in o if fnmatch.fnmatchcase(k, '*password*')]:
                del o[k]
            for v in o.values():
                strip(v)
        elif isinstance(o, list):
            for v in o:
                strip(v)
    if events:
        d['traits'] = [t for t in d['traits'] if t[0] != 'user_id' and
                       not fnmatch.fnmatchcase(t[0], '*password*')]
        strip(d['raw'])
    else:
        if isinstance(d.get('resource_metadata'), dict):
            d['resource_metadata'].pop('host', None)
        strip(d)
    return d


def test_webhook(env):
    """http:// with forward=hook: only the selected meters and event types
    are posted, without the fields the profile removes, still in
    Ceilometer's layout (json.dumps of the filtered as_dict/serialize)."""
    import fnmatch
    run = os.path.join(env.tmp, 'hook')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    sink = Sink(env, 'hook')
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run,
                 'http://127.0.0.1:%d/hook/samples?forward=hook' % sink.port],
                ['file://%s/events.jsonl' % run,
                 'http://127.0.0.1:%d/hook/events?forward=hook' % sink.port], extra=HOOK_YAML)
    agent = start_agent(env, run)
    wait_settled(env, run, n_input, 120, all_published)
    env.stop(agent)
    got = sink.requests()
    samples = read_lines(os.path.join(run, 'samples.jsonl'))
    events = read_lines(os.path.join(run, 'events.jsonl'))
    for kind, recs, build, sel, key in (
            ('samples', samples, ceilo_sample, ('cpu*', 'memory*', 'disk.*'), 'name'),
            ('events', events, ceilo_event, ('compute.instance.*',), 'event_type')):
        ev = kind == 'events'
        want = {}
        for r in recs:
            if any(fnmatch.fnmatchcase(r[key], g) for g in sel):
                d = build(r).serialize() if ev else build(r).as_dict()
                want[d['message_id' if ev else 'id']] = _hook_filter(d, ev)
        posts = [r for r in got if r['path'] == '/hook/' + kind]
        have = {}
        layout_ok = True
        for r in posts:
            lst = json.loads(r['body'])
            layout_ok &= json.dumps(lst) == r['body']
            for d in lst:
                have[d['message_id' if ev else 'id']] = d
        check(0 < len(want) < len(recs), 'webhook %s: the profile selects some, not all' % kind,
              '0 < n < %d' % len(recs), len(want))
        check(set(have) == set(want), 'webhook %s: exactly the selected records are posted'
              % kind, sorted(want)[:3], sorted(have)[:3])
        bad = [k for k in want if k in have and have[k] != want[k]]
        check(not bad, 'webhook %s: the profile\'s fields are removed, the rest intact' % kind,
              'none differ', bad[:1] and (want[bad[0]], have[bad[0]]))
        check(layout_ok, 'webhook %s: bodies still in json.dumps layout' % kind, True,
              layout_ok)
    sink.stop()


# ---- 6. [event] store_raw and raw_only -----------------------------------------

def test_raw_only(env):
    """ceilometer.store_raw: [info, error]: events carry the notification
    as raw; http:// posts them (raw included) and, with raw_only=true, only
    the raw payloads, byte for byte as Ceilometer's HttpPublisher does for
    the same events."""
    from ceilometer.publisher import http as ceilo_http
    run = os.path.join(env.tmp, 'raw')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for line in open(os.path.join(run, 'input.jsonl')) if line.strip())
    ours, theirs = Sink(env, 'raw-ours'), Sink(env, 'raw-ceilometer')
    write_agent(env, run, '{type: file, path: input.jsonl}', ['file://%s/samples.jsonl' % run],
                ['file://%s/events.jsonl' % run,
                 'http://127.0.0.1:%d/full' % ours.port,
                 'http://127.0.0.1:%d/raw?raw_only=true' % ours.port],
                store_raw=['info', 'error'])
    agent = start_agent(env, run)
    wait_settled(env, run, n_input, 120, all_published)
    env.stop(agent)
    events = read_lines(os.path.join(run, 'events.jsonl'))
    by_id = {r['message_id']: r for r in events}
    check(events and all(isinstance(r.get('raw'), dict) and r['raw'].get('metadata', {}).get(
        'message_id') == r['message_id'] for r in events), 'raw: every event carries its '
          'notification (store_raw info, error)', 'raw.metadata.message_id = message_id',
          [r.get('raw') for r in events[:1]])
    got = ours.requests()
    full = [r for r in got if r['path'] == '/full']
    conf = ceilo_conf()
    pub = ceilo_http.HttpPublisher(conf, urlparse.urlparse('http://127.0.0.1:%d/full'
                                                           % theirs.port))
    for r in full:
        pub.publish_events([ceilo_event(by_id[d['message_id']]) for d in json.loads(r['body'])])
    compare_requests('raw: events with raw', full, [r for r in theirs.requests()
                                                   if r['path'] == '/full'])
    # raw_only: sluice posts one list per batch; Ceilometer gets the same batches
    pub = ceilo_http.HttpPublisher(conf, urlparse.urlparse(
        'http://127.0.0.1:%d/raw?raw_only=true' % theirs.port))
    for r in full:
        pub.publish_events([ceilo_event(by_id[d['message_id']]) for d in json.loads(r['body'])])
    mine = [r for r in got if r['path'] == '/raw']
    ref = [r for r in theirs.requests() if r['path'] == '/raw']
    n = sum(len(json.loads(r['body'])) for r in mine)
    with_payload = sum(1 for r in events if r['raw'].get('payload'))
    check(n == with_payload and n > 0, 'raw: raw_only posts each event\'s payload (those that '
          'have one)', with_payload, n)
    if len(mine) == len(ref):
        # the two publishers post independently, and each pipeline worker
        # posts its own batches: /raw's order need not follow /full's
        compare_requests('raw: raw_only', sorted(mine, key=lambda r: r['body']),
                         sorted(ref, key=lambda r: r['body']))
    else:
        # batches are cut per pipeline worker: compare the payloads as a set
        a = sorted(json.dumps(x) for r in mine for x in json.loads(r['body']))
        b = sorted(json.dumps(x) for r in ref for x in json.loads(r['body']))
        check(a == b, 'raw: raw_only payloads are Ceilometer\'s', len(b), len(a))
    ours.stop()
    theirs.stop()


# ---- 7. throughput ----------------------------------------------------------

def test_bench(env, n):
    run = os.path.join(env.tmp, 'bench')
    os.makedirs(run)
    n_input = env.generate(os.path.join(run, 'input.jsonl'), n, 5)
    sink = Sink(env, 'bench')
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['http://127.0.0.1:%d/s' % sink.port], ['http://127.0.0.1:%d/e' % sink.port])
    t0 = time.time()
    agent = start_agent(env, run)
    m = wait_settled(env, run, n_input, 600, all_published)
    dt = time.time() - t0
    env.stop(agent)
    t = m['totals']
    posts = sink.control('count')
    log('bench: %d notifications -> %d samples + %d events in %.2f s (start included): '
        '%.0f samples/s, %.0f records/s, %d POSTs' % (
            n_input, t['samples_published'], t['events_published'], dt,
            t['samples_published'] / dt, (t['samples_published'] + t['events_published']) / dt,
            posts['requests']))
    sink.stop()


def main():
    return sf.main(__doc__, {'same_as_ceilometer': test_same_as_ceilometer,
                             'outage': test_outage, 'rejected': test_rejected, 'tls': test_tls,
                             'webhook': test_webhook, 'raw_only': test_raw_only},
                   'sluice-http.', bench=test_bench)


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""The notifier:// publisher against a real RabbitMQ, read back with
oslo.messaging's own notification listener (tests/func/oslo_listen.py).

  test_notifier.py --build BUILD_DIR --src SOURCE_DIR [--keep]

Starts a private broker (tools/rabbitmq-node, 127.0.0.1, free ports; a
broker that cannot start is a failure, never a skip), then:

1. same-as-file: sluiced reads tests/data/corpus.jsonl through a file
   source into sinks that each have a file:// and a notifier:// publisher
   (samples with per_meter_topic=1, events on topic event). Only once
   sluiced has published everything and stopped do the listeners start:
   what they get was kept by the queues the publisher declared. Every
   notification must be what Ceilometer sends (priority sample, event_type
   metering / metering.<meter> / event, publisher_id
   telemetry.publisher.<host>, payload items whose message_signature
   Ceilometer's own verify_signature accepts with its default secret), and
   the payload items must be exactly the records the file:// publisher
   wrote (per meter: each sample once more, under its meter's event_type),
   with the queues empty afterwards (no duplicates, nothing left).
2. broker-restart: generated notifications at a limited rate, durable
   exchange and queues (amqp_durable_queues=true, as the listener), the
   listener reading throughout; the broker is stopped for a few seconds
   mid-run and started again. The publisher must count retries, drop
   nothing, and every record the file:// publisher wrote must come out of
   the broker at least once.

Exit 0 if both hold; 1 with what was expected and what came instead.
"""
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from ceilometer.publisher import utils as ceilo_utils

import sluice_functest as sf
from sluice_functest import (check, log, read_jsonl as read_lines, start_agent,
                             wait_published, write_agent)

SECRET = 'change this for valid signing'   # Ceilometer's default telemetry_secret
HOST = socket.gethostname()


class Env(sf.Env):
    """The test's processes and its RabbitMQ node (stopped at the end)."""

    def __init__(self, a, tmp):
        super().__init__(a, tmp)
        self.node = os.path.join(tmp, 'rabbitmq')
        self.port = None

    def rabbitmq(self, *args, check_rc=True):
        r = subprocess.run([os.path.join(self.src, 'tools', 'rabbitmq-node')] + list(args),
                           capture_output=True, text=True, timeout=180)
        if check_rc and r.returncode != 0:
            raise SystemExit('test_notifier: tools/rabbitmq-node %s failed (exit %d):\n%s%s'
                             % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    def start_broker(self):
        os.makedirs(self.node, exist_ok=True)
        self.rabbitmq('start', self.node, '--tls')
        env = {}
        with open(os.path.join(self.node, 'node.env')) as f:
            for line in f:
                if '=' in line:
                    k, v = line.strip().split('=', 1)
                    env[k] = v.strip('\'"')
        self.port = int(env['AMQP_PORT'])
        self.tls = env
        log('broker on 127.0.0.1:%d' % self.port)

    def url(self, scheme='rabbit'):
        return '%s://guest:guest@127.0.0.1:%d/' % (scheme, self.port)

    def cleanup(self):
        super().cleanup()
        if os.path.exists(os.path.join(self.node, 'node.env')):
            self.rabbitmq('stop', self.node, check_rc=False)


def listen(env, out, topics, exchange='ceilometer', count=0, timeout=120, durable=False,
           ready=None):
    argv = [os.path.join(env.src, 'tests', 'func', 'oslo_listen.py'), '--url', env.url(),
            '--out', out, '--topics', topics, '--exchange', exchange, '--per-item',
            '--count', str(count), '--timeout', str(timeout)]
    if durable:
        argv.append('--durable')
    if ready:
        argv += ['--ready', ready]
    p = env.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ready:
        deadline = time.time() + 60
        while not os.path.exists(ready):
            if p.poll() is not None or time.time() > deadline:
                raise SystemExit('test_notifier: oslo_listen.py did not get ready: %s'
                                 % (p.communicate()[1] if p.poll() is not None else 'timeout'))
            time.sleep(0.1)
    return p


def as_file_sample(item):
    """A meter message as the file:// publisher writes the sample (without
    the notification's message_id, which Ceilometer does not send)."""
    d = {'id': item['message_id'], 'name': item['counter_name'], 'type': item['counter_type'],
         'unit': item['counter_unit'], 'volume': item['counter_volume'],
         'user_id': item['user_id'], 'project_id': item['project_id'],
         'resource_id': item['resource_id'], 'timestamp': item['timestamp'],
         'resource_metadata': item['resource_metadata'], 'source': item['source']}
    if item.get('monotonic_time') is not None:
        d['monotonic_time'] = item['monotonic_time']
    return d


def file_sample(rec):
    d = dict(rec)
    d.pop('message_id', None)
    return d


def as_file_event(item):
    return {'event_type': item['event_type'], 'generated': item['generated'],
            'message_id': item['message_id'], 'traits': item['traits']}


def key(d):
    return json.dumps(d, sort_keys=True)


def check_envelopes(lines, what):
    bad_sig = [l for l in lines if not ceilo_utils.verify_signature(l['payload'], SECRET)]
    check(not bad_sig, '%s: every payload item carries a message_signature Ceilometer accepts'
          % what, 'none rejected', '%d rejected, first: %s' % (len(bad_sig), bad_sig[:1]))
    pubs = collections.Counter(l['publisher_id'] for l in lines)
    check(set(pubs) == {'telemetry.publisher.' + HOST}, '%s: publisher_id' % what,
          'telemetry.publisher.' + HOST, dict(pubs))
    prios = collections.Counter(l['priority'] for l in lines)
    check(set(prios) == {'sample'}, '%s: priority' % what, 'sample', dict(prios))


def queue_depths(env):
    r = env.rabbitmq('ctl', env.node, 'list_queues', 'name', 'messages', check_rc=False)
    depths = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


def test_same_as_file(env):
    run = os.path.join(env.tmp, 'same')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run, 'input.jsonl')) if l.strip())
    base = env.url('notifier')
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run,
                 base + '?topic=metering&per_meter_topic=1&retry_max_ms=1000'],
                ['file://%s/events.jsonl' % run, base + '?topic=event&retry_max_ms=1000'])
    agent = start_agent(env, run)
    m = wait_published(env, run, n_input, 120)
    env.stop(agent)
    check(agent.returncode == 0, 'same-as-file: sluiced stops cleanly', 0, agent.returncode)
    for p in m['publishers']:
        if p['publisher'].startswith('notifier'):
            check(p['dropped'] == 0 and p['sent'] > 0, 'same-as-file: %s sent everything, '
                  'dropped nothing' % p['sink'], 'sent > 0, dropped 0', p)

    file_samples = read_lines(os.path.join(run, 'samples.jsonl'))
    file_events = read_lines(os.path.join(run, 'events.jsonl'))
    check(len(file_samples) == 128 and len(file_events) == 120,
          'same-as-file: the file:// publisher wrote the corpus\'s samples and events',
          '128 samples, 120 events', '%d samples, %d events' % (len(file_samples),
                                                                len(file_events)))
    # The listeners start only now: the queues the publisher declared kept
    # everything (oslo's default-queue semantics).
    got_s, got_e = os.path.join(run, 'got.samples.jsonl'), os.path.join(run, 'got.events.jsonl')
    ls = listen(env, got_s, 'metering', count=2 * len(file_samples), timeout=60)
    le = listen(env, got_e, 'event', count=len(file_events), timeout=60)
    for p, what in ((ls, 'samples'), (le, 'events')):
        out, err = p.communicate(timeout=120)
        env.procs.remove(p)
        check(p.returncode == 0, 'same-as-file: oslo_listen.py got every %s notification item'
              % what, 'exit 0', 'exit %d: %s %s' % (p.returncode, out.strip(), err.strip()[-2000:]))
    samples, events = read_lines(got_s), read_lines(got_e)
    check_envelopes(samples, 'same-as-file samples')
    check_envelopes(events, 'same-as-file events')

    batch = [l for l in samples if l['event_type'] == 'metering']
    per_meter = [l for l in samples if l['event_type'] != 'metering']
    want = sorted(key(file_sample(r)) for r in file_samples)
    got = sorted(key(as_file_sample(l['payload'])) for l in batch)
    check(got == want, 'same-as-file: the samples of event_type metering are the file:// '
          'publisher\'s records', '%d records' % len(want),
          '%d records; first difference: %s' % (len(got), first_diff(want, got)))
    got = sorted(key(as_file_sample(l['payload'])) for l in per_meter)
    check(got == want, 'same-as-file: per_meter_topic sends each sample once more',
          '%d records' % len(want), '%d records; first difference: %s'
          % (len(got), first_diff(want, got)))
    wrong = [l for l in per_meter if l['event_type'] != 'metering.' + l['payload']['counter_name']]
    check(not wrong, 'same-as-file: per-meter notifications have event_type metering.<meter>',
          'none other', wrong[:1])

    check(all(l['event_type'] == 'event' for l in events), 'same-as-file: events have '
          'event_type event', 'event', collections.Counter(l['event_type'] for l in events))
    check(all(l['payload'].get('raw') == {} for l in events), 'same-as-file: events carry '
          'raw {} (store_raw unset)', {}, [l['payload'].get('raw') for l in events][:1])
    want = sorted(key(r) for r in file_events)
    got = sorted(key(as_file_event(l['payload'])) for l in events)
    check(got == want, 'same-as-file: the events are the file:// publisher\'s records',
          '%d records' % len(want), '%d records; first difference: %s'
          % (len(got), first_diff(want, got)))
    depths = queue_depths(env)
    check(depths.get('metering.sample') == 0 and depths.get('event.sample') == 0,
          'same-as-file: the queues metering.sample and event.sample exist and are empty '
          '(nothing sent twice)', {'metering.sample': 0, 'event.sample': 0}, depths)


def first_diff(want, got):
    w, g = collections.Counter(want), collections.Counter(got)
    missing, extra = list((w - g).elements()), list((g - w).elements())
    return 'missing %d (e.g. %s), unexpected %d (e.g. %s)' % (
        len(missing), missing[:1], len(extra), extra[:1])


def test_broker_restart(env):
    run = os.path.join(env.tmp, 'restart')
    os.makedirs(run)
    inp = os.path.join(run, 'input.jsonl')
    # 20 s of input at 400/s: the broker (whose stop alone may take seconds
    # on a loaded machine) is surely down while the agent still publishes
    subprocess.run([os.path.join(env.build, 'tools', 'sluice-inject'), '--generate', '8000',
                    '--seed', '11', '--output', inp], check=True)
    n_input = sum(1 for l in open(inp) if l.strip())
    opts = 'exchange=sluice_durable&amqp_durable_queues=true&retry_max_ms=500&timeout=3s'
    base = env.url('notifier')
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 400}',
                ['file://%s/samples.jsonl' % run, base + '?topic=metering_r&' + opts],
                ['file://%s/events.jsonl' % run, base + '?topic=event_r&' + opts])
    got = os.path.join(run, 'got.jsonl')
    lst = listen(env, got, 'metering_r,event_r', exchange='sluice_durable', timeout=600,
                 durable=True, ready=os.path.join(run, 'ready'))
    agent = start_agent(env, run)
    time.sleep(2.0)
    log('stopping the broker for 4 s mid-run')
    t0 = time.time()
    env.rabbitmq('restart', env.node, '--down', '4')
    log('broker back after %.1f s' % (time.time() - t0))
    m = wait_published(env, run, n_input, 240)
    file_samples = read_lines(os.path.join(run, 'samples.jsonl'))
    file_events = read_lines(os.path.join(run, 'events.jsonl'))
    want_s = {r['id'] for r in file_samples}
    want_e = {r['message_id'] for r in file_events}
    deadline = time.time() + 120
    while time.time() < deadline:
        lines = read_lines(got)
        got_s = {l['payload']['message_id'] for l in lines if l['event_type'] == 'metering'}
        got_e = {l['payload']['message_id'] for l in lines if l['event_type'] == 'event'}
        if want_s <= got_s and want_e <= got_e:
            break
        time.sleep(0.5)
    env.stop(lst)
    env.stop(agent)
    lines = read_lines(got)
    got_s = collections.Counter(l['payload']['message_id'] for l in lines
                                if l['event_type'] == 'metering')
    got_e = collections.Counter(l['payload']['message_id'] for l in lines
                                if l['event_type'] == 'event')
    check(len(want_s) > 1000, 'broker-restart: the file:// publisher wrote the samples',
          '> 1000', len(want_s))
    missing_s, missing_e = want_s - set(got_s), want_e - set(got_e)
    check(not missing_s and not missing_e, 'broker-restart: every sample and event the file:// '
          'publisher wrote came out of the broker', 'none missing',
          '%d of %d samples and %d of %d events missing' % (len(missing_s), len(want_s),
                                                            len(missing_e), len(want_e)))
    check_envelopes(lines, 'broker-restart')
    retried = sum(p['retried'] for p in m['publishers'] if p['publisher'].startswith('notifier'))
    dropped = sum(p['dropped'] for p in m['publishers'] if p['publisher'].startswith('notifier'))
    check(retried > 0, 'broker-restart: the notifier publishers retried while the broker was '
          'down', '> 0 retries', retried)
    check(dropped == 0, 'broker-restart: nothing dropped', 0, dropped)
    dups = sum(c - 1 for c in got_s.values() if c > 1) + sum(c - 1 for c in got_e.values() if c > 1)
    log('broker-restart: %d samples, %d events published, %d retries, %d duplicates '
        '(at least once)' % (len(want_s), len(want_e), retried, dups))


def test_tls(env):
    """TLS with the CA that signed the broker's certificate (and a client
    certificate) delivers; with another CA the handshake is refused and the
    publisher says why (policy=drop: the batches are dropped and counted).
    The host is localhost: rabbitmq-c 0.11 verifies DNS names only, not IP
    addresses in the certificate."""
    run = os.path.join(env.tmp, 'tls')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    t = env.tls
    base = 'notifier://guest:guest@localhost:%s/?ssl=1&retry_max_ms=500&' % t['AMQPS_PORT']
    good = base + 'topic=tls_ok&ssl_ca_file=%s&ssl_cert_file=%s&ssl_key_file=%s' % (
        t['CA_FILE'], t['CLIENT_CERT'], t['CLIENT_KEY'])
    bad = base + 'topic=tls_bad&policy=drop&ssl_ca_file=%s' % t['OTHER_CA_FILE']
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run, good, bad], ['file://%s/events.jsonl' % run])
    agent = start_agent(env, run)
    deadline = time.time() + 120
    pubs = {}
    while time.time() < deadline:
        m = env.monitor(run)
        pubs = {p['index']: p for p in (m or {}).get('publishers', []) if p['sink'] == 'meter_sink'}
        if len(pubs) == 3 and pubs[1]['sent'] >= 128 and pubs[2]['dropped'] >= 128:
            break
        time.sleep(0.2)
    env.stop(agent)
    check(len(pubs) == 3 and pubs[1]['sent'] == 128 and pubs[1]['dropped'] == 0,
          'tls: the publisher with the right CA sent every sample', 'sent 128, dropped 0',
          pubs.get(1))
    check(len(pubs) == 3 and pubs[2]['sent'] == 0 and pubs[2]['dropped'] == 128 and
          'verif' in pubs[2]['last_error'],
          'tls: the publisher with another CA sent nothing and says the certificate was refused',
          'sent 0, dropped 128, last_error about verification', pubs.get(2))
    got = os.path.join(run, 'got.jsonl')
    p = listen(env, got, 'tls_ok', count=128, timeout=60)
    out, err = p.communicate(timeout=120)
    env.procs.remove(p)
    check(p.returncode == 0, 'tls: oslo_listen.py read the 128 samples sent over TLS', 'exit 0',
          'exit %d: %s %s' % (p.returncode, out.strip(), err.strip()[-2000:]))
    depths = queue_depths(env)
    check('tls_bad.sample' not in depths, 'tls: nothing was declared over the refused '
          'connection', 'no queue tls_bad.sample', depths)


def _start(env, a):
    env.start_broker()
    return ()


def main():
    return sf.main(__doc__, {'same_as_file': test_same_as_file, 'tls': test_tls,
                             'broker_restart': test_broker_restart},
                   'sluice-notifier.', env_class=Env, start=_start)


if __name__ == '__main__':
    sys.exit(main())

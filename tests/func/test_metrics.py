#!/usr/bin/python3
"""sluiced's Prometheus endpoint (metrics.listen) scraped by a real
Prometheus server, its exact set of metric names, and /healthz.

  test_metrics.py --build BUILD_DIR --src SOURCE_DIR [--keep]

1. names: the metric families /metrics exports (its # TYPE lines, name and
   kind) are exactly tests/data/metrics-names.txt, so that a change to the
   exported set is a reviewed change; `promtool check metrics` accepts the
   text.
2. scrape: Debian's prometheus, started on 127.0.0.1 with a free port and a
   temporary storage dir, scrapes sluiced every second while sluice-inject
   sends generated notifications at a fixed rate into a zmq source. Its HTTP
   API (/api/v1/query) has the expected series with their labels (worker
   "ingest-0".."pipeline-1", sink, publisher), and
   sum(rate(sluice_worker_received_total[..])) in the middle of the
   injection matches the injected rate (within 35%).
3. monotonic: a SIGHUP reload (every slot zeroed), more load, and a
   kill -9 of a pipeline worker (its publisher counters zeroed by its
   successor) and of an ingest worker: received, routed and publisher sent totals never go
   backwards, on /metrics after each step (exactly equal with no load) and
   in Prometheus (resets() over the whole run is 0 for every series).
4. healthz: 200 "ok" while every worker runs; 503 naming the worker while
   one is stopped (SIGSTOP: its heartbeat goes stale), 200 again after
   SIGCONT.
5. port in use: a second sluiced on the same metrics.listen exits 1 with a
   message naming metrics.listen; `sluiced -t` refuses a malformed value
   (exit 2, naming the setting).

Every process it starts is stopped by PID; a server that cannot start is a
failure, never a skip. Exit 0 if everything holds; 1 with what was expected
and what came instead.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from urllib import error as urlerror
from urllib import parse as urlparse
from urllib import request as urlrequest

import sluice_functest as sf
from sluice_functest import FAILURES, PROG, check, free_port, log, tail

RATE = 200          # notifications per second injected
N_RATE = 5000       # 25 s at RATE


def http_get(url, timeout=10):
    """(status, body) or (None, reason)."""
    try:
        with urlrequest.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urlerror.HTTPError as e:
        return e.code, e.read().decode()
    except (urlerror.URLError, OSError) as e:
        return None, str(e)


def parse_metrics(text):
    """{(name, labels-string): value} of the sample lines."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        key, _, value = line.rpartition(' ')
        name, _, labels = key.partition('{')
        out[(name, labels.rstrip('}'))] = float(value)
    return out


def total(samples, name, must=None):
    return sum(v for (n, labels), v in samples.items()
               if n == name and (must is None or must in labels))


def sluiced_path(env):
    return os.path.join(env.build, 'supervisor', 'sluiced')


def write_agent(env, run, metrics_port):
    with open(os.path.join(run, 'pipeline.yaml'), 'w') as f:
        f.write("sources: [{name: s, meters: ['*'], sinks: [meter_sink]}]\n"
                "sinks: [{name: meter_sink, publishers: ['file://%s/out.jsonl']}]\n" % run)
    with open(os.path.join(run, 'sluice.yaml'), 'w') as f:
        f.write('run_dir: %s\nworkers: {ingest: 2, pipeline: 2}\npartitions: 4\n'
                'shutdown_grace: 20\nworker_timeout: 20\n'
                'sources: [{type: zmq, endpoint: "ipc://%s/notify.sock", mode: connect}]\n'
                'ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n'
                'metrics: {listen: "127.0.0.1:%d"}\n'
                'logging: {level: info, file: %s/sluiced.log}\n'
                % (run, run, env.src, metrics_port, run))


def wait_healthy(base, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = http_get(base + '/healthz', 5)
        if last[0] == 200:
            return True
        time.sleep(0.2)
    log('healthz never 200 within %d s: last %s' % (timeout, last))
    return False


def start_prometheus(env, target_port):
    pdir = os.path.join(env.tmp, 'prometheus')
    os.makedirs(os.path.join(pdir, 'data'))
    port = free_port()
    with open(os.path.join(pdir, 'prometheus.yml'), 'w') as f:
        f.write('global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n'
                'scrape_configs:\n'
                '  - job_name: sluice\n'
                '    static_configs: [{targets: ["127.0.0.1:%d"]}]\n' % target_port)
    logf = open(os.path.join(pdir, 'prometheus.log'), 'w')
    p = env.spawn(['/usr/bin/prometheus', '--config.file', os.path.join(pdir, 'prometheus.yml'),
                   '--storage.tsdb.path', os.path.join(pdir, 'data'),
                   '--web.listen-address', '127.0.0.1:%d' % port],
                  stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    base = 'http://127.0.0.1:%d' % port
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            break
        if http_get(base + '/-/ready', 2)[0] == 200:
            return p, base
        time.sleep(0.3)
    raise SystemExit('%s: FAIL: prometheus did not start on 127.0.0.1:%d within 60 s; its log:\n%s'
                     % (PROG, port, tail(os.path.join(pdir, 'prometheus.log'))))


def prom_query(base, expr, at=None):
    q = {'query': expr}
    if at is not None:
        q['time'] = '%.3f' % at
    status, body = http_get(base + '/api/v1/query?' + urlparse.urlencode(q), 15)
    if status != 200:
        raise SystemExit('%s: FAIL: prometheus query %s: HTTP %s %s' % (PROG, expr, status, body))
    return json.loads(body)['data']['result']


def test_names(env, base):
    status, text = http_get(base + '/metrics')
    check(status == 200, '/metrics answers 200', 200, status)
    got = []
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            got.append('%s %s' % (name, kind))
    path = os.path.join(env.src, 'tests', 'data', 'metrics-names.txt')
    want = [l.strip() for l in open(path) if l.strip() and not l.startswith('#')]
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    check(not missing and not extra and len(got) == len(set(got)),
          'the exported metric families are exactly %s (update it in a reviewed change)'
          % os.path.relpath(path, env.src),
          'no difference', 'missing %s, new %s' % (missing, extra))
    r = subprocess.run(['/usr/bin/promtool', 'check', 'metrics'], input=text,
                       capture_output=True, text=True)
    # promtool lints too (exit 3 on lint problems only); a parse error is exit 1
    check(r.returncode in (0, 3) and 'error while linting' not in r.stderr,
          'promtool check metrics parses the exposition', 'exit 0 or 3 (lint)',
          '%d: %s' % (r.returncode, (r.stdout + r.stderr)[:800]))


def inject(env, run, n, rate=None):
    argv = [os.path.join(env.build, 'tools', 'sluice-inject'), '--endpoint',
            'ipc://%s/notify.sock' % run, '--generate', str(n), '--peers', '2', '--run-dir', run,
            '--linger', '120', '--wait', '120', '--json']
    if rate:
        argv += ['--rate', str(rate)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        why = [l for l in r.stderr.splitlines() if l.startswith('sluice-inject:')] or \
            r.stderr.splitlines()[-5:]
        raise SystemExit('%s: FAIL: sluice-inject exited %d: %s' % (PROG, r.returncode, '\n'.join(why)))
    return json.loads(r.stdout.strip().splitlines()[-1])


def scrape(base):
    status, text = http_get(base + '/metrics')
    if status != 200:
        raise SystemExit('%s: FAIL: /metrics answered %s: %s' % (PROG, status, text[:300]))
    s = parse_metrics(text)
    return {'received': total(s, 'sluice_worker_received_total'),
            'routed': total(s, 'sluice_sink_routed_total'),
            'sent': total(s, 'sluice_publisher_sent_total'),
            'samples_received': total(s, 'sluice_worker_samples_received_total'),
            'generation': total(s, 'sluice_supervisor_generation'),
            'restarts': total(s, 'sluice_worker_restarts_total')}


def not_backwards(before, after, step, exact=('received', 'routed', 'sent')):
    for k in exact:
        check(after[k] >= before[k], '%s: %s total does not go backwards' % (step, k),
              '>= %d' % before[k], after[k])
    check(after['received'] == before['received'],
          '%s: received total unchanged without load' % step, before['received'], after['received'])


def worker_pid(env, run, role, index=0):
    m = env.monitor(run)
    for w in (m or {}).get('workers', []):
        if w['role'] == role and w['index'] == index and w['state'] == 'running':
            return w['pid']
    return None


def wait_until(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return check(False, what, 'within %d s' % timeout, 'timed out')


def wait_published(base, want_sent, timeout=120):
    return wait_until(lambda: scrape(base)['sent'] >= want_sent and
                      scrape(base)['sent'] == scrape(base)['routed'], timeout,
                      'every routed sample published')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True)
    ap.add_argument('--src', required=True)
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    # tests/meson.build turns /metrics off for every test (several agents
    # run at once); the environment would win over metrics.listen here
    os.environ.pop('SLUICE_METRICS_LISTEN', None)
    tmp = tempfile.mkdtemp(prefix='sluice-metrics-')
    env = sf.Env(a, tmp)
    t0 = time.time()
    agent_run = [None]
    try:
        run = os.path.join(tmp, 'run')
        os.makedirs(run)
        mport = free_port()
        write_agent(env, run, mport)
        sluiced = os.path.join(env.build, 'supervisor', 'sluiced')
        agent = env.spawn([sluiced, '-c', os.path.join(run, 'sluice.yaml')],
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        agent_run[0] = run
        base = 'http://127.0.0.1:%d' % mport
        if not wait_healthy(base):
            raise SystemExit('%s: FAIL: sluiced did not become healthy; log:\n%s'
                             % (PROG, tail(os.path.join(run, 'sluiced.log'))))
        status, body = http_get(base + '/healthz')
        check(status == 200 and body == 'ok\n', '/healthz: 200 ok while every worker runs',
              '200 ok', '%s %r' % (status, body))

        # 5. port in use, malformed value
        run2 = os.path.join(tmp, 'run2')
        os.makedirs(run2)
        r = subprocess.run([sluiced, '-c', os.path.join(run, 'sluice.yaml'), '-o',
                            'run_dir=%s' % run2, '-o', 'logging.file=-'],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and 'metrics.listen' in r.stderr and 'in use' in r.stderr,
              'a second sluiced on the same metrics port exits 1 naming metrics.listen',
              'exit 1, "metrics.listen ... in use"', '%d: %s' % (r.returncode, r.stderr[-400:]))
        r = subprocess.run([sluiced, '-t', '-c', os.path.join(run, 'sluice.yaml'), '-o',
                            'metrics.listen=localhost'], capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and 'metrics.listen' in r.stderr,
              'sluiced -t refuses a malformed metrics.listen (exit 2, naming it)',
              'exit 2', '%d: %s' % (r.returncode, r.stderr[-400:]))

        # 1. names
        test_names(env, base)

        # 2. a real Prometheus scrapes while a known load comes in
        prom, pbase = start_prometheus(env, mport)
        check(wait_until(lambda: any(r['value'][1] == '1' for r in prom_query(pbase, 'up{job="sluice"}')),
                         60, 'prometheus scrapes sluiced (up == 1)'), 'prometheus target up')
        rep = inject(env, run, N_RATE, RATE)
        first, last = rep['first_send'], rep['last_send']
        sent_rate = rep['sent'] / max(last - first, 0.001)
        log('injected %d notifications in %.1f s (%.1f/s)' % (rep['sent'], last - first, sent_rate))
        time.sleep(3)                   # a few scrapes after the end
        window = int(min(10, (last - first) / 2))
        mid = (first + last) / 2
        res = prom_query(pbase, 'sum(rate(sluice_worker_received_total[%ds]))' % window, mid + window / 2)
        got = float(res[0]['value'][1]) if res else -1
        log('prometheus: sum(rate(sluice_worker_received_total[%ds])) = %.1f/s' % (window, got))
        check(abs(got - sent_rate) <= 0.35 * sent_rate,
              'prometheus: sum(rate(sluice_worker_received_total[%ds])) mid-injection matches the '
              'injected rate' % window, '%.1f/s +-35%%' % sent_rate, '%.1f/s' % got)
        series = prom_query(pbase, 'sluice_worker_received_total')
        workers = sorted(r['metric'].get('worker', '') for r in series)
        check(workers == ['ingest-0', 'ingest-1', 'pipeline-0', 'pipeline-1'],
              'prometheus has sluice_worker_received_total for every worker (worker label)',
              ['ingest-0', 'ingest-1', 'pipeline-0', 'pipeline-1'], workers)
        ing = sum(float(r['value'][1]) for r in series if r['metric']['worker'].startswith('ingest'))
        check(ing == rep['sent'], 'received over the ingest workers = notifications injected',
              rep['sent'], ing)
        pubs = prom_query(pbase, 'sluice_publisher_sent_total')
        labels = [(r['metric'].get('sink'), r['metric'].get('publisher')) for r in pubs]
        check(labels == [('meter_sink', 'file://%s/out.jsonl' % run)],
              'prometheus has sluice_publisher_sent_total{sink, publisher}',
              [('meter_sink', 'file://%s/out.jsonl' % run)], labels)
        for name in ('sluice_sink_routed_total{sink="meter_sink"}', 'sluice_worker_up',
                     'sluice_supervisor_spawns_total', 'sluice_publisher_queue_depth'):
            check(len(prom_query(pbase, name)) > 0, 'prometheus has %s' % name)
        wait_published(base, 1)

        # 3. never backwards: reload, kill -9 of a pipeline and an ingest worker
        v0 = scrape(base)
        agent.send_signal(signal.SIGHUP)
        wait_until(lambda: scrape(base)['generation'] == 2 and
                   http_get(base + '/healthz')[0] == 200, 90, 'reload done (generation 2, healthy)')
        v1 = scrape(base)
        not_backwards(v0, v1, 'after SIGHUP')
        check(v1['sent'] == v0['sent'] and v1['routed'] == v0['routed'],
              'after SIGHUP: sent and routed totals unchanged (folded, not lost)',
              (v0['sent'], v0['routed']), (v1['sent'], v1['routed']))
        # counts in this generation's slots, which a kill -9 must not lose
        rep_mid = inject(env, run, 500)
        wait_published(base, v1['sent'] + 1)
        v1 = scrape(base)
        check(v1['received'] == v0['received'] + rep_mid['sent'],
              'after the reload: received total grows by exactly what was injected',
              v0['received'] + rep_mid['sent'], v1['received'])
        for role in ('pipeline', 'ingest'):
            pid = worker_pid(env, run, role)
            check(pid is not None, 'a running %s worker to kill' % role)
            if pid:
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: worker_pid(env, run, role) not in (None, pid) and
                       http_get(base + '/healthz')[0] == 200, 90,
                       '%s worker respawned and healthy' % role)
            v2 = scrape(base)
            not_backwards(v1, v2, 'after kill -9 of %s worker #0' % role)
            check(v2['sent'] == v1['sent'], 'after kill -9 of %s worker #0: sent total unchanged'
                  % role, v1['sent'], v2['sent'])
            v1 = v2
        rep2 = inject(env, run, 500)
        wait_published(base, v1['sent'] + 1)
        v3 = scrape(base)
        check(v3['received'] == v1['received'] + rep2['sent'],
              'after the restarts: received total grows by exactly what was injected',
              v1['received'] + rep2['sent'], v3['received'])
        time.sleep(3)
        for name in ('sluice_worker_received_total', 'sluice_publisher_sent_total',
                     'sluice_sink_routed_total', 'sluice_worker_samples_received_total'):
            res = prom_query(pbase, 'resets(%s[10m])' % name)
            bad = [(r['metric'], r['value'][1]) for r in res if float(r['value'][1]) != 0]
            check(res and not bad, 'prometheus: resets(%s[10m]) is 0 for every series across '
                  'the reload and the kills' % name, 0, bad or res)

        # 4. healthz 503 while a worker is stopped
        pid = worker_pid(env, run, 'pipeline', 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            seen = []
            ok = wait_until(lambda: seen.append(http_get(base + '/healthz')) or seen[-1][0] == 503,
                            15, '/healthz turns 503 while pipeline worker #1 is stopped')
            if ok:
                check('pipeline worker #1' in seen[-1][1] and 'heartbeat' in seen[-1][1],
                      '/healthz 503 names the worker and why', 'pipeline worker #1 ... heartbeat',
                      seen[-1][1])
        finally:
            os.kill(pid, signal.SIGCONT)
        check(wait_healthy(base, 30), '/healthz 200 again after SIGCONT')

        env.stop(prom)
        env.stop(agent)
        check(agent.returncode == 0, 'sluiced stops cleanly', 0, agent.returncode)
    finally:
        # a graceful stop first: a SIGKILLed supervisor can leave workers
        # behind; those still alive are killed by the PIDs it reported
        pids = []
        if agent_run[0]:
            m = env.monitor(agent_run[0])
            pids = [w['pid'] for w in (m or {}).get('workers', []) if w.get('pid')]
        for p in list(env.procs):
            env.stop(p, signal.SIGTERM, 30)
        for pid in pids:
            try:   # still one of our sluiced's workers (not a reused pid)?
                if os.readlink('/proc/%d/exe' % pid) == os.path.realpath(sluiced_path(env)):
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        env.cleanup()
        if a.keep:
            log('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log('%d failure(s) in %.0f s' % (len(FAILURES), time.time() - t0))
    return 1 if FAILURES else 0


if __name__ == '__main__':
    sys.exit(main())

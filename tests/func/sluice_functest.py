"""What the publisher func tests (test_http, test_zaqar, test_gnocchi,
test_forward, test_notifier, test_websocket, test_wire_publishers) share:
checks that count failures instead of stopping at the first, the processes
a test started (stopped by PID, killed at the end whatever happened), a
sluiced on a run dir of its own (configuration, start, wait until every
worker runs, until everything is published), and the case runner behind
each script's command line (--build, --src, --keep, --only, --bench).

A server a test needs that does not start raises SystemExit: a failure,
never a skip."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FAILURES = []
PROG = os.path.basename(sys.argv[0]).replace('.py', '')


def log(msg):
    sys.stderr.write('%s: %s\n' % (PROG, msg))
    sys.stderr.flush()


def check(ok, what, expected=None, got=None):
    """Records a failed check (the test goes on) and returns ok."""
    if ok:
        return True
    msg = what
    if expected is not None or got is not None:
        msg += '\n  expected: %s\n  got:      %s' % (str(expected)[:2000], str(got)[:2000])
    log('FAIL: ' + msg)
    FAILURES.append(what)
    return False


def tail(path, n=30):
    try:
        with open(path) as f:
            return ''.join(f.readlines()[-n:])
    except OSError as e:
        return str(e)


def read_jsonl(path):
    """The JSON value of every complete non-empty line ([] if the file is
    missing): a last line without its newline is being written (a listener
    still running) and is left for the next read."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip() and line.endswith('\n'):
                    out.append(json.loads(line))
    return out


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Env(object):
    """The build, the sources, the test's temporary dir and the processes
    it started. Subclasses add their servers (and stop them in cleanup)."""

    def __init__(self, a, tmp):
        self.build, self.src, self.tmp = os.path.abspath(a.build), os.path.abspath(a.src), tmp
        self.procs = []

    def tool(self, name):
        return os.path.join(self.build, 'tools', name)

    def sluiced(self):
        return os.path.join(self.build, 'supervisor', 'sluiced')

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=60):
        """Stops a process this test started, by its PID."""
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stdout:
            p.stdout.close()
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            self.stop(p, signal.SIGKILL, 10)

    def monitor(self, run):
        """sluice-monitor --json of the agent on run, or None."""
        r = subprocess.run([self.tool('sluice-monitor'), '--run-dir', run, '--json'],
                           capture_output=True, text=True)
        try:
            return json.loads(r.stdout) if r.returncode == 0 and r.stdout else None
        except ValueError:
            return None

    def generate(self, path, n, seed):
        """n generated notifications into path; returns how many lines it has."""
        subprocess.run([self.tool('sluice-inject'), '--generate', str(n), '--seed', str(seed),
                        '--output', path], check=True)
        return sum(1 for line in open(path) if line.strip())


def write_agent(env, run, source, sample_pubs, event_pubs, pipeline_workers=2, extra='',
                ceilometer_extra=''):
    """sluice.yaml, pipeline.yaml and event_pipeline.yaml in run: one
    sample sink and one event sink taking everything, with these publisher
    URLs; source: the YAML of one source mapping; extra: more sluice.yaml
    lines; ceilometer_extra: more keys of its ceilometer: mapping."""
    for name, head, pubs in (
            ('pipeline.yaml', "sources: [{name: s, meters: ['*'], sinks: [meter_sink]}]\n"
             "sinks:\n  - name: meter_sink\n", sample_pubs),
            ('event_pipeline.yaml', "sources: [{name: es, events: ['*'], sinks: [event_sink]}]\n"
             "sinks:\n  - name: event_sink\n", event_pubs)):
        # one URL per line (from line 5): errors name the URL's own line
        with open(os.path.join(run, name), 'w') as f:
            f.write(head + ('    publishers:\n' +
                            ''.join('      - %s\n' % json.dumps(u) for u in pubs)
                            if pubs else '    publishers: []\n'))
    with open(os.path.join(run, 'sluice.yaml'), 'w') as f:
        f.write('run_dir: %s\nworkers: {ingest: 1, pipeline: %d}\npartitions: 4\n'
                'shutdown_grace: 20\nsources: [%s]\n'
                'ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml,\n'
                '  event_definitions: %s/conf/event_definitions.yaml,\n'
                '  event_pipeline: event_pipeline.yaml%s}\n'
                'logging: {level: info, file: %s/sluiced.log}\n%s'
                % (run, pipeline_workers, source, env.src, env.src, ceilometer_extra, run,
                   extra))


def start_agent(env, run, prefix=(), timeout=20):
    """Starts sluiced on run/sluice.yaml (under the command prefix, e.g.
    valgrind); returns it once every worker runs."""
    p = env.spawn(list(prefix) + [env.sluiced(), '-c', os.path.join(run, 'sluice.yaml')],
                  stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = env.monitor(run)
        if m and m['workers'] and all(w['state'] == 'running' for w in m['workers']):
            return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit('%s: sluiced did not start; see %s/sluiced.log:\n%s'
                     % (PROG, run, tail(os.path.join(run, 'sluiced.log'))))


def all_published(m, n_input):
    """Every notification read, every sample and event routed published."""
    t = m['totals'] if m else {}
    return (t.get('received', 0) >= n_input and t.get('samples_routed', 0) > 0 and
            t.get('samples_published', 0) == t.get('samples_routed', 0) and
            t.get('events_published', 0) == t.get('events_routed', 0))


def wait_published(env, run, n_input, timeout):
    """The monitor's view once all_published (and every queue empty)."""
    deadline = time.time() + timeout
    m = None
    while time.time() < deadline:
        m = env.monitor(run)
        if all_published(m, n_input) and all(p['queue_depth'] == 0 for p in m['publishers']):
            return m
        time.sleep(0.2)
    raise SystemExit('%s: sluiced did not publish everything within %d s: totals %s\n'
                     'publishers %s\nlog:\n%s' % (PROG, timeout, m and m['totals'],
                                                 m and m['publishers'],
                                                 tail(os.path.join(run, 'sluiced.log'))))


def main(doc, cases, tmp_prefix, env_class=Env, start=None, bench=None, tmp_dir=None,
         add_args=None):
    """The command line of a test script: runs cases (name -> fn(env, *ctx))
    in order, or only those --only names, or bench(env, *ctx, n) with
    --bench N; start(env, a) starts the servers they share and returns ctx
    (a tuple); add_args(ap) adds the script's own options, and cases may
    be a function of the parsed arguments returning the cases. Keeps the
    temporary dir when something failed or --keep. Returns the exit code."""
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    ap.add_argument('--build', required=True)
    ap.add_argument('--src', required=True)
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--only', help='comma-separated case names')
    if bench:
        ap.add_argument('--bench', type=int, default=0,
                        help='only measure throughput with N notifications')
    if add_args:
        add_args(ap)
    a = ap.parse_args()
    if callable(cases):
        cases = cases(a)
    tmp = tempfile.mkdtemp(prefix=tmp_prefix, dir=tmp_dir)
    if tmp_dir:
        os.chmod(tmp, 0o755)   # servers running as another user reach their dirs
    env = env_class(a, tmp)
    finished = False
    try:
        ctx = start(env, a) if start else ()
        if bench and a.bench:
            bench(env, *ctx, a.bench)
        else:
            for name, fn in cases.items():
                if a.only and name not in a.only.split(','):
                    continue
                log('%s ...' % name)
                n = len(FAILURES)
                t0 = time.time()
                fn(env, *ctx)
                log('%s: %s (%.1f s)' % (name, 'ok' if len(FAILURES) == n else 'FAILED',
                                         time.time() - t0))
        finished = True
    finally:
        env.cleanup()
        if a.keep or FAILURES or not finished:
            log('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        log('%d check(s) failed' % len(FAILURES))
        return 1
    log('all checks passed')
    return 0

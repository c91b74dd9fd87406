#!/usr/bin/python3
"""The udp://, tcp://, prometheus:// and opentelemetryhttp:// publishers
against real receivers on 127.0.0.1, compared with what Ceilometer sends.

  test_wire_publishers.py --build BUILD_DIR --src SOURCE_DIR [--keep]
                          [--valgrind] [--bench N]

Receivers (all on 127.0.0.1, free ports, stopped by PID or closed here):
a UDP socket and a TCP listener decoding msgpack (python3-msgpack), a real
Prometheus Pushgateway (Debian's prometheus-pushgateway, started with
--web.listen-address and --persistence.file in the temporary directory; a
Pushgateway that does not start is a failure, never a skip) and a
recording HTTP server of ours for OTLP/HTTP (and for the exact bodies the
prometheus publisher posts).

1. same-as-ceilometer: sluiced reads tests/data/corpus.jsonl through a
   file source into one sink with a file:// publisher and the four
   publishers. Then, for the records the file:// publisher wrote:
   - udp: Debian's Ceilometer 19 UDPPublisher sends the same samples to a
     second socket; the datagrams must be the same bytes (as multisets);
   - tcp: each frame is an 8-byte little-endian length and the msgpack of
     Ceilometer 20's meter message (built here as upstream's
     meter_message_from_counter builds it, signed with Ceilometer 19's
     compute_signature, packed as upstream packs it): the same bytes; a
     receiver that ends the connection mid-run is reconnected to;
   - prometheus: every sample line sluiced posted is a line Debian's
     PrometheusPublisher writes for that sample, each body has Ceilometer's
     "# TYPE" line once per counter/gauge name before its first sample,
     every push was accepted by the Pushgateway, and what the Pushgateway
     serves (/api/v1/metrics) is what the pushes, replayed in order with
     its replace-by-name semantics, leave there;
   - opentelemetryhttp: one POST per sample, each body exactly the JSON
     upstream Ceilometer's OpentelemetryHttpPublisher (2024.1+, not in
     Debian) builds for it: no Debian reference exists, the expected JSON
     is computed here from the record following upstream's code.
2. forward-profile: a profile's meter selection and removed fields give
   the datagrams Debian's UDPPublisher sends for the samples so filtered.
3. http-status: 503 answers are retried until they succeed (nothing lost,
   each OTLP sample posted once); a 400 is dropped, counted, dead-lettered.
4. pushgateway-restart: the Pushgateway stopped for 2 s mid-run and started
   again: pushes retried, none dropped, its final state what the pushes
   leave.
--valgrind runs only 1, with sluiced under valgrind (no error or leak in
any process). --bench N: N generated notifications through file:// (the
pipeline's own ceiling) and each publisher alone, samples/s from starting
sluiced to the last sample published (sluice-monitor), and how many the
receiver got.

Exit 0 if every check holds; 1 with what was expected and what came instead.
"""
import os
import sys


def _debian_python():
    try:
        import ceilometer  # noqa: F401
        import msgpack  # noqa: F401
    except ImportError:
        deb = '/usr/bin/python3'
        if os.path.realpath(sys.executable) != os.path.realpath(deb) and os.path.exists(deb):
            os.execv(deb, [deb] + sys.argv)
        raise


_debian_python()

import collections  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from urllib import parse as urlparse  # noqa: E402

import msgpack  # noqa: E402
from ceilometer import sample as ceilo_sample  # noqa: E402
from ceilometer import service as ceilo_service  # noqa: E402
from ceilometer.publisher import prometheus as ceilo_prometheus  # noqa: E402
from ceilometer.publisher import udp as ceilo_udp  # noqa: E402
from ceilometer.publisher import utils as ceilo_utils  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

import sluice_functest as sf  # noqa: E402
from sluice_functest import check, free_port, log, tail  # noqa: E402

SECRET = 'change this for valid signing'
HOST = socket.gethostname()
# ---- receivers ----------------------------------------------------------------

class UdpReceiver(object):
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.count = 0
        self.keep = True
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                d = self.sock.recv(70000)
            except socket.timeout:
                continue
            except OSError:
                break
            self.count += 1
            if self.keep:
                self.got.append(d)

    def close(self):
        self.stopping = True
        self.t.join(5)
        self.sock.close()


class TcpReceiver(object):
    """Reads length-prefixed frames; drop_after: end the first connection
    (shutdown of our side) once it has carried that many frames, and read
    on until the publisher closes it. Closing outright would lose the
    frames of a batch that crossed the close (as with Ceilometer's
    publisher, TCP has no acknowledgement of ours), which a loaded machine
    made likely; the publisher's reconnection is what this checks."""

    def __init__(self, drop_after=None):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(('127.0.0.1', 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.frames = []
        self.count = 0
        self.keep = True
        self.connections = 0
        self.bad = []
        self.drop_after = drop_after
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.connections += 1
            threading.Thread(target=self.serve, args=(c, self.connections), daemon=True).start()

    def _read(self, c, n):
        buf = b''
        while len(buf) < n:
            try:
                d = c.recv(n - len(buf))
            except socket.timeout:
                if self.stopping:
                    return None
                continue
            if not d:
                return None
            buf += d
        return buf

    def serve(self, c, nth):
        c.settimeout(0.2)
        n_here = 0
        half_closed = False
        while True:
            if nth == 1 and self.drop_after and n_here >= self.drop_after and not half_closed:
                # end our side (the publisher sees it before its next batch and
                # reconnects) but read on until it closes: frames it writes
                # meanwhile are not lost, whatever the timing
                half_closed = True
                try:
                    c.shutdown(socket.SHUT_WR)
                except OSError:
                    break
            h = self._read(c, 8)
            if h is None:
                break
            n = int.from_bytes(h, 'little')
            if n > 1 << 24:
                self.bad.append('frame length %d' % n)
                break
            body = self._read(c, n)
            if body is None:
                self.bad.append('connection %d ended inside a frame' % nth)
                break
            self.count += 1
            if self.keep:
                self.frames.append(body)
            n_here += 1
        c.close()

    def close(self):
        self.stopping = True
        self.t.join(5)
        self.lsock.close()


class Recorder(object):
    """A recording HTTP server: every POST's path, headers and body."""

    def __init__(self, status=None):
        rec = self
        self.posts = []
        self.count = 0
        self.keep = True
        self.status = status or (lambda path, nth: 200)

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                body = self.rfile.read(n)
                rec.count += 1
                code = rec.status(self.path, rec.count)
                if rec.keep and code == 200:
                    rec.posts.append((self.path, dict(self.headers), body))
                reply = b'' if code == 200 else b'no: test says %d' % code
                self.send_response(code)
                self.send_header('Content-Length', str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Pushgateway(object):
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, 'pushgateway')
        os.makedirs(self.dir)
        self.start()

    def start(self):
        self.logf = open(os.path.join(self.dir, 'log'), 'a')
        exe = shutil.which('prometheus-pushgateway') or '/usr/bin/prometheus-pushgateway'
        if not os.path.exists(exe):
            raise SystemExit('test_wire_publishers: prometheus-pushgateway is not installed '
                             '(tools/install-deps installs it)')
        self.p = subprocess.Popen([exe, '--web.listen-address=127.0.0.1:%d' % self.port,
                                   '--persistence.file=%s' % os.path.join(self.dir, 'metrics.db')],
                                  stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.p.poll() is not None:
                break
            try:
                urllib.request.urlopen('http://127.0.0.1:%d/-/ready' % self.port, timeout=1)
                log('pushgateway (pid %d) on 127.0.0.1:%d' % (self.p.pid, self.port))
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        with open(os.path.join(self.dir, 'log')) as f:
            raise SystemExit('test_wire_publishers: prometheus-pushgateway did not start on '
                             '127.0.0.1:%d:\n%s' % (self.port, f.read()[-3000:]))

    def get(self, path):
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.port, path), timeout=10) as r:
            return r.read().decode()

    def stop(self):
        if self.p.poll() is None:
            log('stopping the pushgateway (pid %d)' % self.p.pid)
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.logf.close()


# ---- sluiced ----------------------------------------------------------------------

class Env(sf.Env):
    """The test's processes (sluiced under valgrind with --valgrind) and its
    Pushgateway (stopped at the end)."""

    def __init__(self, a, tmp):
        super().__init__(a, tmp)
        self.valgrind = a.valgrind
        self.pushgateway = None

    def cleanup(self):
        super().cleanup()
        if self.pushgateway:
            self.pushgateway.stop()

    def check_valgrind(self, run):
        """Every process's valgrind report: no error, nothing definitely or
        indirectly lost."""
        bad = []
        reports = [f for f in sorted(os.listdir(run)) if f.startswith('vg.')]
        check(len(reports) >= 3, 'valgrind: a report per process (supervisor, ingest, '
              'pipeline)', '>= 3', reports)
        for f in reports:
            text = open(os.path.join(run, f)).read()
            errs = [l for l in text.splitlines() if 'ERROR SUMMARY:' in l and
                    'ERROR SUMMARY: 0 errors' not in l]
            if errs:
                bad.append('%s: %s' % (f, errs[0]))
        check(not bad, 'valgrind: no memory error or leak in any sluiced process', 'none', bad)

    def start_agent(self, run):
        vg = ['valgrind', '--trace-children=yes', '--leak-check=full',
              '--errors-for-leak-kinds=definite,indirect', '--log-file=%s/vg.%%p' % run]
        return sf.start_agent(self, run, vg if self.valgrind else (),
                              120 if self.valgrind else 20)


def write_agent(env, run, source, pubs, pipeline_workers=1):
    sf.write_agent(env, run, source, pubs, ['file://%s/events.jsonl' % run], pipeline_workers)


def wait_published(env, run, n_input, timeout):
    deadline = time.time() + timeout
    m = None
    while time.time() < deadline:
        m = env.monitor(run)
        t = m['totals'] if m else {}
        if (t.get('received', 0) >= n_input and t.get('samples_routed', 0) > 0 and
                all(p['queue_depth'] == 0 for p in m['publishers']) and
                t.get('samples_published', 0) + t.get('publish_errors', 0) >=
                t.get('samples_routed', 0)):
            return m
        time.sleep(0.2)
    raise SystemExit('test_wire_publishers: sluiced did not publish everything within %d s: '
                     'totals %s\npublishers %s\nlog:\n%s'
                     % (timeout, m and m['totals'], m and m['publishers'],
                        tail(os.path.join(run, 'sluiced.log'))))


def read_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


# ---- references ---------------------------------------------------------------------

def ceilo_samples(records):
    return [ceilo_sample.Sample(name=r['name'], type=r['type'], unit=r['unit'], volume=r['volume'],
                                user_id=r['user_id'], project_id=r['project_id'],
                                resource_id=r['resource_id'], timestamp=r['timestamp'],
                                resource_metadata=r['resource_metadata'], source=r['source'],
                                id=r['id'], monotonic_time=r.get('monotonic_time'))
            for r in records]


def conf():
    return ceilo_service.prepare_service([], [])


def ref_udp(samples):
    """Debian's UDPPublisher, sending to a socket of ours."""
    rx = UdpReceiver()
    pub = ceilo_udp.UDPPublisher(conf(), urlparse.urlparse('udp://127.0.0.1:%d' % rx.port))
    pub.publish_samples(samples)
    deadline = time.time() + 10
    while len(rx.got) < len(samples) and time.time() < deadline:
        time.sleep(0.05)
    rx.close()
    return rx.got


def ref_tcp(s):
    """Ceilometer 20's TCPPublisher frame body for s: upstream's
    meter_message_from_counter(sample, secret, conf.host) (user_name and
    project_name are None for samples built from notifications)."""
    msg = {'source': s.source, 'counter_name': s.name, 'counter_type': s.type,
           'counter_unit': s.unit, 'counter_volume': s.volume, 'user_id': s.user_id,
           'user_name': None, 'project_id': s.project_id, 'project_name': None,
           'resource_id': s.resource_id, 'timestamp': s.timestamp,
           'resource_metadata': s.resource_metadata, 'message_id': s.id,
           'monotonic_time': s.monotonic_time, 'publisher_id': HOST}
    msg['message_signature'] = ceilo_utils.compute_signature(msg, SECRET)
    return msgpack.dumps(msg, use_bin_type=True)


def ref_prometheus_lines(samples):
    """Debian's PrometheusPublisher's body for the samples, one line each."""
    posted = []
    pub = ceilo_prometheus.PrometheusPublisher(
        conf(), urlparse.urlparse('prometheus://127.0.0.1:9/metrics/job/x'))
    pub._do_post = posted.append
    pub.publish_samples(samples)
    return [l for l in posted[0].splitlines() if not l.startswith('#')]


def ref_otlp(s):
    """The body upstream's OpentelemetryHttpPublisher posts for s (its
    get_opentelemetry_model, then json.dumps)."""
    t = int(time.mktime(timeutils.parse_isotime(s.timestamp).timetuple()))
    attrs = [{'key': k, 'value': {'string_value': v}}
             for k, v in (('resource_id', s.resource_id), ('user_id', s.user_id),
                          ('project_id', s.project_id))]
    kind = 'counter' if s.type == 'cumulative' else 'gauge'
    metric = {'name': s.name.replace('.', '_'), 'description': str(s.name) + ' unit:' + s.unit,
              'unit': s.unit,
              kind: {'data_points': [{'attributes': attrs, 'start_time_unix_nano': t,
                                      'time_unix_nano': t, 'as_double': s.volume, 'flags': 0}]}}
    return json.dumps({'resource_metrics': [{'scope_metrics': [{
        'scope': {'name': 'ceilometer', 'version': 'v1'}, 'metrics': [metric]}]}]})


# ---- the tests --------------------------------------------------------------------------

def replay(bodies):
    """What the Pushgateway holds after these pushes to one group: each
    push replaces every series of the metric names it carries."""
    state = {}
    for b in bodies:
        names = {}
        for line in b.splitlines():
            if not line.startswith('#'):
                s, v = line.rsplit(' ', 1)
                names.setdefault(s.split('{', 1)[0], {})[s] = float(v)
        state.update(names)
    out = {}
    for name, ser in state.items():
        for s, v in ser.items():
            labels = dict(kv.split('=', 1) for kv in s.split('{', 1)[1].rstrip('}').split(', '))
            out[(name, labels['resource_id'].strip('"'), labels['project_id'].strip('"'))] = v
    return out


def pushgateway_state(pg, job):
    """(name, resource_id, project_id) -> value of a job's group, as the
    Pushgateway's /api/v1/metrics shows it."""
    api = json.loads(pg.get('/api/v1/metrics'))
    got = {}
    for grp in api.get('data', []):
        if grp['labels'].get('job') != job:
            continue
        for name, fam in grp.items():
            if name in ('labels', 'push_time_seconds', 'push_failure_time_seconds') or \
                    not isinstance(fam, dict):
                continue
            for mt in fam.get('metrics', []):
                got[(name, mt['labels'].get('resource_id'),
                     mt['labels'].get('project_id'))] = float(mt['value'])
    return got


def test_same_as_ceilometer(env):
    run = os.path.join(env.tmp, 'same')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run, 'input.jsonl')) if l.strip())
    udp, tcp, rec, pg = UdpReceiver(), TcpReceiver(drop_after=20), Recorder(), env.pushgateway
    pubs = ['file://%s/samples.jsonl' % run,
            'udp://127.0.0.1:%d' % udp.port,
            'tcp://127.0.0.1:%d?retry_max_ms=500' % tcp.port,
            'prometheus://127.0.0.1:%d/metrics/job/sluice?retry_max_ms=500' % pg.port,
            'prometheus://127.0.0.1:%d/metrics/job/capture' % rec.port,
            'opentelemetryhttp://127.0.0.1:%d/v1/metrics' % rec.port]
    # rate-limited input: batches keep coming after the TCP receiver drops
    # its first connection
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 60}', pubs)
    agent = env.start_agent(run)
    m = wait_published(env, run, n_input, 600 if env.valgrind else 120)
    time.sleep(0.5)
    env.stop(agent, timeout=120)
    check(agent.returncode == 0, 'sluiced stops cleanly', 0, agent.returncode)
    records = read_lines(os.path.join(run, 'samples.jsonl'))
    check(len(records) == 128, 'the file:// publisher wrote the corpus\'s samples', 128,
          len(records))
    for p in m['publishers']:
        if p['sink'] != 'meter_sink':
            continue
        check(p['dropped'] == 0 and p['sent'] == len(records),
              '%s sent every sample and dropped none' % p['publisher'],
              'sent %d, dropped 0' % len(records), p)
    samples = ceilo_samples(records)

    # udp: byte for byte against Debian's UDPPublisher
    want = sorted(ref_udp(samples))
    got = sorted(udp.got)
    check(len(want) == len(records) and got == want,
          'udp: the datagrams are Ceilometer 19\'s, byte for byte', '%d datagrams' % len(want),
          '%d datagrams, %d not Ceilometer\'s (first: %s)' % (
              len(got), len(set(got) - set(want)),
              [msgpack.loads(d) for d in sorted(set(got) - set(want))][:1]))
    bad_sig = [d for d in got if not ceilo_utils.verify_signature(msgpack.loads(d), SECRET)]
    check(not bad_sig, 'udp: Ceilometer\'s verify_signature accepts every message', 0,
          len(bad_sig))

    # tcp: Ceilometer 20's framing and message; one reconnection
    deadline = time.time() + 10
    while len(set(tcp.frames)) < len(records) and time.time() < deadline:
        time.sleep(0.1)
    want = {ref_tcp(s) for s in samples}
    got = collections.Counter(tcp.frames)
    check(set(got) == want, 'tcp: every frame is Ceilometer 20\'s message, each sample at '
          'least once', '%d messages' % len(want),
          '%d distinct (%d missing, %d unexpected; first unexpected: %s)' % (
              len(got), len(want - set(got)), len(set(got) - want),
              [msgpack.loads(d) for d in set(got) - want][:1]))
    check(tcp.connections >= 2 and not tcp.bad, 'tcp: the publisher reconnected after the '
          'receiver ended its first connection, and no frame was cut',
          '>= 2 connections, no bad frames', '%d connections, %s' % (tcp.connections, tcp.bad))
    log('tcp: %d frames over %d connections, %d duplicates' % (
        sum(got.values()), tcp.connections, sum(c - 1 for c in got.values())))

    # prometheus: the lines against Debian's PrometheusPublisher, the
    # Pushgateway's view against the pushes replayed
    want_lines = collections.Counter(ref_prometheus_lines(samples))
    bodies = [b.decode() for path, h, b in rec.posts if path == '/metrics/job/capture']
    heads = [h for path, h, b in rec.posts if path == '/metrics/job/capture']
    check(bodies and all(h.get('Content-type') == 'plain/text' for h in heads),
          'prometheus: POSTs with Ceilometer\'s Content-type', 'plain/text',
          [h.get('Content-type') for h in heads][:3])
    got_lines, type_errors = [], []
    for b in bodies:
        seen_type, seen_name = {}, set()
        for line in b.splitlines():
            if line.startswith('# TYPE '):
                _, _, name, kind = line.split(' ')
                if name in seen_type or name in seen_name:
                    type_errors.append(line)
                seen_type[name] = kind
                continue
            got_lines.append(line)
            seen_name.add(line.split('{', 1)[0])
    check(not type_errors, 'prometheus: one "# TYPE" line per name and body, before its samples',
          'none misplaced', type_errors[:3])
    series = {l.rsplit(' ', 1)[0] for l in got_lines}
    extra = [l for l in got_lines if l not in want_lines]
    missing = [l for l in want_lines if l not in got_lines and l.rsplit(' ', 1)[0] not in series]
    check(not extra and not missing, 'prometheus: every line is Ceilometer 19\'s for its sample',
          '%d lines' % len(want_lines), '%d lines; not Ceilometer\'s: %s; missing: %s' % (
              len(got_lines), extra[:2], missing[:2]))
    # what the Pushgateway holds: the last push of each metric name wins
    want_state = replay(bodies)
    got_state = pushgateway_state(pg, 'sluice')
    check(got_state == want_state, 'prometheus: the Pushgateway holds what the pushes leave '
          '(/api/v1/metrics)', '%d series' % len(want_state),
          '%d series; differing: %s' % (len(got_state), sorted(
              set(got_state.items()) ^ set(want_state.items()))[:4]))
    text = pg.get('/metrics')
    check('job="sluice"' in text, 'prometheus: /metrics shows the job\'s series',
          'job="sluice" in /metrics', text[:200])

    # opentelemetryhttp: upstream's JSON, one POST per sample
    posts = [(h, b.decode()) for path, h, b in rec.posts if path == '/v1/metrics']
    want = collections.Counter(ref_otlp(s) for s in samples)
    got = collections.Counter(b for h, b in posts)
    check(got == want, 'opentelemetryhttp: one POST per sample, each upstream Ceilometer\'s '
          'JSON byte for byte', '%d bodies' % len(records),
          '%d bodies; unexpected: %s' % (len(posts), list(set(got) - set(want))[:1]))
    check(all(h.get('Content-type') == 'application/json' for h, b in posts),
          'opentelemetryhttp: Content-type application/json', 'application/json',
          {h.get('Content-type') for h, b in posts})
    udp.close()
    tcp.close()
    rec.close()


def test_forward_profile(env):
    """A forward profile (sluice.yaml forward:, URL forward=) selects meters
    and removes fields before the message is built: the datagrams are what
    Ceilometer's UDPPublisher sends for the samples so filtered."""
    run = os.path.join(env.tmp, 'forward')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run, 'input.jsonl')) if l.strip())
    udp = UdpReceiver()
    write_agent(env, run, '{type: file, path: input.jsonl}',
                ['file://%s/samples.jsonl' % run, 'udp://127.0.0.1:%d?forward=fw' % udp.port])
    with open(os.path.join(run, 'sluice.yaml'), 'a') as f:
        f.write("forward:\n  fw:\n    meters: ['disk.*', 'cpu*', 'instance']\n"
                "    drop_fields: [user_id, resource_metadata.host]\n")
    agent = env.start_agent(run)
    wait_published(env, run, n_input, 120)
    time.sleep(0.5)
    env.stop(agent)
    records = read_lines(os.path.join(run, 'samples.jsonl'))
    sel = []
    for r in records:
        if not (r['name'].startswith('disk.') or r['name'].startswith('cpu') or
                r['name'] == 'instance'):
            continue
        r = json.loads(json.dumps(r))
        r['user_id'] = None
        if isinstance(r['resource_metadata'], dict):
            r['resource_metadata'].pop('host', None)
        sel.append(r)
    want = sorted(ref_udp(ceilo_samples(sel)))
    got = sorted(udp.got)
    check(sel and got == want, 'forward: the profile\'s meters only, without user_id and '
          'resource_metadata.host, as Ceilometer would send such samples',
          '%d datagrams' % len(want), '%d datagrams, %d differ (first: %s)' % (
              len(got), len(set(got) ^ set(want)),
              [msgpack.loads(d) for d in sorted(set(got) ^ set(want))][:1]))
    udp.close()


def test_http_status(env):
    """prometheus:// and opentelemetryhttp:// map HTTP statuses onto the
    output layer: 503 is retried until it works (nothing lost), 400 (the
    Pushgateway refusing a body) is dropped, counted and dead-lettered."""
    run = os.path.join(env.tmp, 'status')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run, 'input.jsonl')) if l.strip())

    def status(path, nth):
        if path.startswith('/bad'):
            return 400
        return 503 if nth <= 6 else 200
    rec = Recorder(status)
    dl = os.path.join(run, 'dead')
    os.makedirs(dl)
    q = 'retry_initial_ms=10&retry_max_ms=50'
    write_agent(env, run, '{type: file, path: input.jsonl}', [
        'file://%s/samples.jsonl' % run,
        'prometheus://127.0.0.1:%d/metrics/job/flaky?%s' % (rec.port, q),
        'opentelemetryhttp://127.0.0.1:%d/v1/metrics?%s' % (rec.port, q),
        'prometheus://127.0.0.1:%d/bad/metrics/job/x?%s&dead_letter=%s' % (rec.port, q, dl)])
    agent = env.start_agent(run)
    m = wait_published(env, run, n_input, 120)
    env.stop(agent)
    pubs = {p['publisher'].split('://')[0] + ('-bad' if '/bad' in p['publisher'] else ''): p
            for p in m['publishers'] if p['sink'] == 'meter_sink'}
    for k in ('prometheus', 'opentelemetryhttp'):
        p = pubs.get(k, {})
        check(p.get('sent') == 128 and p.get('dropped') == 0,
              '%s: 503 answers are retried until the samples are accepted' % k,
              'sent 128, dropped 0', p)
    check(pubs['prometheus'].get('retried', 0) + pubs['opentelemetryhttp'].get('retried', 0) > 0,
          'http status: the first 503 answers were retried', '> 0 retries',
          [p.get('retried') for p in pubs.values()])
    otlp = collections.Counter(b.decode() for path, h, b in rec.posts if path == '/v1/metrics')
    want = collections.Counter(ref_otlp(s) for s in
                               ceilo_samples(read_lines(os.path.join(run, 'samples.jsonl'))))
    check(otlp == want, 'opentelemetryhttp: a batch retried part way posts each sample once',
          '%d bodies' % sum(want.values()), '%d bodies, %d too many, %d missing' % (
              sum(otlp.values()), sum((otlp - want).values()), sum((want - otlp).values())))
    bad = pubs.get('prometheus-bad', {})
    check(bad.get('sent') == 0 and bad.get('dropped') == 128 and 'HTTP 400' in
          bad.get('last_error', ''), 'prometheus: a 400 is not retried: dropped, counted, '
          'with the reason', 'sent 0, dropped 128, last_error with HTTP 400', bad)
    lines = sum(1 for f in os.listdir(dl) for _ in open(os.path.join(dl, f)))
    check(lines == 128, 'prometheus: the refused samples are in the dead-letter file', 128, lines)
    rec.close()


def test_pushgateway_restart(env):
    """The Pushgateway stopped for 2 s mid-run and started again (same
    port, same persistence file): the pushes that failed meanwhile are
    retried, nothing is dropped, and the Pushgateway ends up holding what
    all the pushes, in order, leave."""
    run = os.path.join(env.tmp, 'pgrestart')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run, 'input.jsonl')) if l.strip())
    rec, pg = Recorder(), env.pushgateway
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 40}', [
        'prometheus://127.0.0.1:%d/metrics/job/restart?retry_initial_ms=50&retry_max_ms=300'
        '&timeout=1' % pg.port,
        'prometheus://127.0.0.1:%d/metrics/job/capture' % rec.port])
    agent = env.start_agent(run)
    time.sleep(1.0)
    pg.stop()
    time.sleep(2.0)
    pg.start()
    m = wait_published(env, run, n_input, 120)
    env.stop(agent)
    p = [x for x in m['publishers'] if x['sink'] == 'meter_sink' and '/job/restart' in
         x['publisher']][0]
    check(p['retried'] > 0 and p['dropped'] == 0 and p['sent'] == 128,
          'pushgateway restart: pushes were retried while it was down, none dropped',
          'retried > 0, dropped 0, sent 128', p)
    bodies = [b.decode() for path, h, b in rec.posts]
    want, got = replay(bodies), pushgateway_state(pg, 'restart')
    check(got == want, 'pushgateway restart: it holds what every push, in order, leaves',
          '%d series' % len(want), '%d series; differing: %s' % (
              len(got), sorted(set(got.items()) ^ set(want.items()))[:4]))
    rec.close()


def bench(env, n):
    run = os.path.join(env.tmp, 'bench')
    os.makedirs(run)
    inp = os.path.join(run, 'input.jsonl')
    subprocess.run([os.path.join(env.build, 'tools', 'sluice-inject'), '--generate', str(n),
                    '--seed', '5', '--output', inp], check=True)
    results = []
    for kind in ('file', 'udp', 'tcp', 'prometheus', 'otlp', 'otlp-batch'):
        d = os.path.join(run, kind)
        os.makedirs(d)
        shutil.copy(inp, os.path.join(d, 'input.jsonl'))
        rx = None
        if kind == 'file':
            url = 'file://%s/out.jsonl' % d
        elif kind == 'udp':
            rx = UdpReceiver()
            url = 'udp://127.0.0.1:%d' % rx.port
        elif kind == 'tcp':
            rx = TcpReceiver()
            url = 'tcp://127.0.0.1:%d' % rx.port
        elif kind == 'prometheus':
            url = 'prometheus://127.0.0.1:%d/metrics/job/bench' % env.pushgateway.port
        else:
            rx = Recorder()
            url = 'opentelemetryhttp://127.0.0.1:%d/v1/metrics%s' % (
                rx.port, '?post=batch' if kind == 'otlp-batch' else '')
        if rx:
            rx.keep = False
        write_agent(env, d, '{type: file, path: input.jsonl}', [url])
        t0 = time.time()
        agent = env.start_agent(d)
        m = wait_published(env, d, n, 900)
        dt = time.time() - t0
        env.stop(agent)
        pub = m['publishers'][0]
        got = rx.count if rx else None
        if rx:
            rx.close()
        rate = pub['sent'] / dt if dt > 0 else 0
        results.append((kind, pub['sent'], dt, rate, got, pub['dropped']))
        log('bench %-10s %7d samples in %6.2f s (start to last published): %8.0f samples/s; '
            'receiver got %s; dropped %d' % (kind, pub['sent'], dt, rate, got, pub['dropped']))
    return results


def _cases(a):
    if a.valgrind:   # the first case only, then every process's report
        return {'same_as_ceilometer': lambda env: (
            test_same_as_ceilometer(env), env.check_valgrind(os.path.join(env.tmp, 'same')))}
    return {'same_as_ceilometer': test_same_as_ceilometer,
            'forward_profile': test_forward_profile, 'http_status': test_http_status,
            'pushgateway_restart': test_pushgateway_restart}


def _start(env, a):
    os.environ['TZ'] = 'UTC'   # time.mktime in the OTLP reference, as on the agent
    time.tzset()
    env.pushgateway = Pushgateway(env.tmp)
    return ()


def main():
    return sf.main(__doc__, _cases, 'sluice-wire.', env_class=Env, start=_start, bench=bench,
                   add_args=lambda ap: ap.add_argument(
                       '--valgrind', action='store_true',
                       help='run sluiced under valgrind (same-as-ceilometer only)'))


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""http_sink.py — a local HTTP(S) test server for sluice's HTTP publishers:
records every request and fails on demand.

  http_sink.py [--host 127.0.0.1] [--port 0] [--out FILE.jsonl]
               [--port-file FILE] [--status 200] [--response BODY]
               [--cert PEM --key PEM [--client-ca PEM]] [--quiet]

On start it prints one line "PORT=<n>" on stdout (and writes the port to
--port-file), then serves until SIGTERM/SIGINT. It only binds loopback
addresses unless --host says otherwise (tests never should). HTTP/1.1 with
keep-alive, a thread per connection.

Every request outside /_sink/ is appended to --out (and kept in memory) as
one JSON line:
  {"t": unix time, "method", "path", "query" (the raw query string),
   "headers": {name as sent: value}, "header_order": [names in order],
   "body": the body as text (UTF-8, undecodable bytes as U+FFFD),
   "status": what was answered (0 = none: the connection was closed)}
Chunked bodies are decoded (and "chunked": true is recorded).

Failing on demand, through the control endpoint (JSON bodies; GET/POST on
the same port, never recorded):
  POST /_sink/mode   {"status": 503, "count": 3}    the next 3 requests get
                     503 (count -1 = until changed; then back to --status)
                     {"delay": 2.5}                  answer each after 2.5 s
                     {"hang": true}                  never answer (until the
                                                     mode changes; the client
                                                     times out)
                     {"close": true, "count": 1}     close the connection
                                                     without an answer
                     {"body": "..."}                 the response body
                     Keys combine; a POST replaces the whole mode.
  POST /_sink/reset  forget the recorded requests and the mode
  GET  /_sink/requests  the recorded requests, a JSON list
  GET  /_sink/count     {"requests": n, "ok": n answered 2xx}
Signals: SIGUSR1 = fail everything with 503 until SIGUSR2 (back to normal).
Connection refused: stop the process (SIGTERM) and start it again with the
same --port (the socket is bound with SO_REUSEADDR).

TLS: --cert/--key serve HTTPS; --client-ca also requires a client
certificate signed by that CA (the subject is recorded as "client_cert").
"""
import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(object):
    def __init__(self, a):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests = []
        self.default_status = a.status
        self.default_body = a.response
        self.mode = {}
        self.generation = 0
        self.out = open(a.out, 'a', buffering=1) if a.out else None
        self.quiet = a.quiet

    def set_mode(self, mode):
        with self.cond:
            self.mode = dict(mode)
            self.generation += 1
            self.cond.notify_all()

    def reset(self):
        with self.cond:
            self.requests = []
            self.mode = {}
            self.generation += 1
            self.cond.notify_all()

    def take(self):
        """The mode that applies to one data request (counting it down)."""
        with self.lock:
            m = dict(self.mode)
            c = self.mode.get('count', -1)
            if m and c is not None and c >= 0:
                if c == 0:
                    self.mode = {}
                    m = {}
                else:
                    self.mode['count'] = c - 1
                    if c - 1 == 0:
                        self.mode = {}
            return m, self.generation

    def wait_change(self, generation, seconds=None):
        with self.cond:
            end = None if seconds is None else time.time() + seconds
            while self.generation == generation:
                left = None if end is None else end - time.time()
                if left is not None and left <= 0:
                    return
                self.cond.wait(left if left is not None else 1.0)

    def record(self, rec):
        line = json.dumps(rec)
        with self.lock:
            self.requests.append(rec)
            if self.out:
                self.out.write(line + '\n')


def make_handler(sink):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        server_version = 'http_sink/1'

        def log_message(self, fmt, *args):
            if not sink.quiet:
                sys.stderr.write('http_sink: %s\n' % (fmt % args))

        def _read_body(self):
            te = self.headers.get('Transfer-Encoding', '')
            if 'chunked' in te.lower():
                data = b''
                while True:
                    line = self.rfile.readline()
                    n = int(line.split(b';')[0].strip() or b'0', 16)
                    if n == 0:
                        while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                            pass
                        return data, True
                    data += self.rfile.read(n)
                    self.rfile.readline()
            n = int(self.headers.get('Content-Length') or 0)
            return (self.rfile.read(n) if n else b''), False

        def _send(self, status, body, ctype='application/json'):
            b = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def _control(self, path, body):
            if path == '/_sink/mode' and self.command == 'POST':
                sink.set_mode(json.loads(body or b'{}'))
                return self._send(200, '{"ok": true}')
            if path == '/_sink/reset':
                sink.reset()
                return self._send(200, '{"ok": true}')
            with sink.lock:
                reqs = list(sink.requests)
            if path == '/_sink/requests':
                return self._send(200, json.dumps(reqs))
            if path == '/_sink/count':
                ok = sum(1 for r in reqs if 200 <= r['status'] < 300)
                return self._send(200, json.dumps({'requests': len(reqs), 'ok': ok}))
            return self._send(404, '{"error": "unknown control path"}')

        def _handle(self):
            body, chunked = self._read_body()
            path, _, query = self.path.partition('?')
            if path.startswith('/_sink/'):
                return self._control(path, body)
            mode, gen = sink.take()
            if sink_signal_fail[0]:
                mode = {'status': 503}
            rec = {'t': time.time(), 'method': self.command, 'path': path, 'query': query,
                   'headers': {k: v for k, v in self.headers.items()},
                   'header_order': list(self.headers.keys()),
                   'body': body.decode('utf-8', 'replace'), 'status': 0}
            if chunked:
                rec['chunked'] = True
            try:
                cert = self.connection.getpeercert() if hasattr(self.connection,
                                                                'getpeercert') else None
                if cert:
                    rec['client_cert'] = dict(x[0] for x in cert.get('subject', ()))
            except (ValueError, ssl.SSLError):
                pass
            if mode.get('hang'):
                sink.record(rec)
                sink.wait_change(gen)
                self.close_connection = True
                return
            if mode.get('delay'):
                sink.wait_change(gen, float(mode['delay']))
            if mode.get('close'):
                sink.record(rec)
                self.close_connection = True
                return
            status = int(mode.get('status', sink.default_status))
            resp = mode.get('body', sink.default_body if status == sink.default_status else
                            json.dumps({'error': 'http_sink fails on demand', 'status': status}))
            rec['status'] = status
            sink.record(rec)
            self._send(status, resp)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


sink_signal_fail = [False]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n', 2)[2])
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0, help='0 = a free port')
    ap.add_argument('--out', help='append each request as a JSON line here')
    ap.add_argument('--port-file', help='write the port here once listening')
    ap.add_argument('--status', type=int, default=200, help='normal answer (default 200)')
    ap.add_argument('--response', default='', help='normal response body (default empty)')
    ap.add_argument('--cert', help='serve HTTPS with this PEM certificate')
    ap.add_argument('--key', help='... and this PEM key')
    ap.add_argument('--client-ca', help='require client certificates signed by this CA')
    ap.add_argument('--quiet', action='store_true', help='no access log on stderr')
    a = ap.parse_args()

    sink = Sink(a)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((a.host, a.port), make_handler(sink))
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.client_ca:
            ctx.load_verify_locations(a.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    def fail_on(signum, frame):
        sink_signal_fail[0] = True

    def fail_off(signum, frame):
        sink_signal_fail[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, fail_on)
    signal.signal(signal.SIGUSR2, fail_off)
    if a.port_file:
        tmp = a.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % port)
        os.rename(tmp, a.port_file)
    sys.stdout.write('PORT=%d\n' % port)
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        sink.set_mode({})   # release hanging handlers
        srv.server_close()
    return 0


if __name__ == '__main__':
    socket.setdefaulttimeout(None)
    sys.exit(main())

#!/usr/bin/python3
"""A recording HTTP reverse proxy for the HTTP publishers' tests (loopback only).

  capture_proxy.py --upstream http://127.0.0.1:8041 --out FILE.jsonl
                   [--port 0] [--add-header 'Name: value' ...]
                   [--drop-header Name ...] [--ready FILE]

Listens on 127.0.0.1:PORT (0 = a free port), prints the chosen port on
stdout as one line (and writes it to --ready FILE once listening), forwards
every request to the upstream URL (its path prefixed to the request's) and
appends one JSON line per exchange to --out:

  {"method", "path", "headers": {name: value}, "body": text,
   "status", "response": text, "t": unix time}

HTTP/1.1 with keep-alive on both sides; request bodies are read by
Content-Length (chunked bodies are decoded too). When the upstream cannot be
reached, the client gets 502 and the line has "status": 502 and "error".
--add-header adds (or replaces) a header on the forwarded request (e.g.
X-Project-Id for Zaqar without Keystone); the recorded headers are the
client's. Runs until SIGTERM/SIGINT.
"""
import argparse
import http.client
import http.server
import json
import signal
import socketserver
import sys
import threading
import time
import urllib.parse


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'capture_proxy'

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            out = b''
            while True:
                n = int(self.rfile.readline().strip().split(b';')[0], 16)
                if n == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def _upstream(self):
        conn = getattr(self, '_conn', None)
        if conn is None:
            u = self.server.upstream
            cls = http.client.HTTPSConnection if u.scheme == 'https' else http.client.HTTPConnection
            conn = cls(u.hostname, u.port, timeout=self.server.timeout_s)
            self._conn = conn
        return conn

    def _handle(self):
        body = self._body()
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ('host', 'transfer-encoding')}
        fwd = {k: v for k, v in headers.items()
               if k.lower() not in self.server.drop and k.lower() != 'content-length'}
        for name, value in self.server.add:
            fwd = {k: v for k, v in fwd.items() if k.lower() != name.lower()}
            fwd[name] = value
        if body or self.command in ('POST', 'PUT', 'PATCH'):
            fwd['Content-Length'] = str(len(body))
        rec = {'method': self.command, 'path': self.path, 'headers': headers,
               'body': body.decode('utf-8', 'replace'), 't': time.time()}
        path = self.server.upstream.path.rstrip('/') + self.path
        status, rbody, rheaders = 502, b'', []
        for attempt in range(2):
            try:
                conn = self._upstream()
                conn.request(self.command, path, body=body or None, headers=fwd)
                r = conn.getresponse()
                status, rbody = r.status, r.read()
                rheaders = [(k, v) for k, v in r.getheaders()
                            if k.lower() not in ('transfer-encoding', 'connection',
                                                 'content-length', 'keep-alive')]
                rec.pop('error', None)
                break
            except (OSError, http.client.HTTPException) as e:
                rec['error'] = str(e)
                try:
                    self._conn.close()
                except Exception:
                    pass
                self._conn = None
                if not isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                      ConnectionResetError)):
                    break   # a stale keep-alive connection gets one more try
        if 'error' in rec:
            status, rbody = 502, json.dumps({'error': rec['error']}).encode()
            rheaders = [('Content-Type', 'application/json')]
        rec['status'] = status
        rec['response'] = rbody.decode('utf-8', 'replace')
        with self.server.lock:
            self.server.out.write(json.dumps(rec) + '\n')
            self.server.out.flush()
        self.send_response(status)
        for k, v in rheaders:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(rbody)))
        self.end_headers()
        self.wfile.write(rbody)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that gave up (its own timeout) while the upstream was slow
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--upstream', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--add-header', action='append', default=[])
    ap.add_argument('--drop-header', action='append', default=[])
    ap.add_argument('--timeout', type=float, default=60.0)
    ap.add_argument('--ready')
    a = ap.parse_args()
    srv = Server(('127.0.0.1', a.port), Proxy)
    srv.upstream = urllib.parse.urlparse(a.upstream)
    if srv.upstream.hostname not in ('127.0.0.1', 'localhost', '::1'):
        sys.exit('capture_proxy: the upstream must be a loopback address')
    srv.out = open(a.out, 'a')
    srv.lock = threading.Lock()
    srv.timeout_s = a.timeout
    srv.add = [tuple(x.strip() for x in h.split(':', 1)) for h in a.add_header]
    srv.drop = {h.lower() for h in a.drop_header}
    port = srv.server_address[1]
    print(port, flush=True)
    if a.ready:
        with open(a.ready, 'w') as f:
            f.write('%d\n' % port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.out.close()


if __name__ == '__main__':
    main()

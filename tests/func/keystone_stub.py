#!/usr/bin/python3
"""A tiny stub of Keystone v3 in front of a basic-auth Gnocchi, for the
gnocchi:// publisher's keystone tests (loopback only).

  keystone_stub.py --gnocchi http://127.0.0.1:PORT --out LOG.jsonl
                   [--user sluice --password-file F --project service]
                   [--ttl SECONDS] [--filter-project-id ID] [--ready FILE]

One port (printed on stdout, and written to --ready) serves:
  POST /v3/auth/tokens   password auth of --user / the password in
                         --password-file, scoped to --project (domain
                         Default); 201 with X-Subject-Token, a body
                         {"token": {"expires_at", "catalog", "project",
                         "id"}} (id: for clients that cannot read headers)
                         whose catalog has service type `metric` with a
                         public and an internal endpoint, both this stub;
                         wrong credentials: 401
  GET /v3/projects?name=[&domain_id=]   {"projects": [...]}, filtered
                         as Keystone does (by name and domain_id; any
                         other parameter, such as keystoneclient's
                         domain=, is ignored): two projects are named
                         "service", id --filter-project-id in domain id
                         "default" and another in domain id "d-other"
  POST /_expire          forgets every token (the next Gnocchi request
                         with one gets 401)
  anything else          Gnocchi: X-Auth-Token must be a live token
                         (else 401), then the request goes to --gnocchi with
                         "Authorization: Basic base64(admin:)"
Tokens expire --ttl seconds after they are issued. Every request is
logged to --out as a JSON line: {"method", "path", "status", "token"
(first 8 characters of X-Auth-Token or null), "t"}.
"""
import argparse
import datetime
import http.client
import http.server
import json
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, obj=None, headers=(), raw=None):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b'')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        tok = self.headers.get('X-Auth-Token')
        with S.lock:
            S.out.write(json.dumps({'method': self.command, 'path': self.path, 'status': status,
                                    'token': tok[:8] if tok else None,
                                    't': time.time()}) + '\n')
            S.out.flush()

    def _body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def _auth(self, body):
        try:
            a = json.loads(body)['auth']
            pw = a['identity']['password']['user']
            proj = a['scope']['project']
            ok = (a['identity']['methods'] == ['password'] and pw['name'] == S.user and
                  pw['password'] == S.password and pw['domain']['name'] == 'Default' and
                  proj['name'] == S.project and proj['domain']['name'] == 'Default')
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            return self._reply(401, {'error': {'code': 401, 'title': 'Unauthorized',
                                               'message': 'The request you have made requires '
                                                          'authentication.'}})
        tok = secrets.token_hex(16)
        exp = datetime.datetime.utcnow() + datetime.timedelta(seconds=S.ttl)
        with S.lock:
            S.tokens[tok] = time.time() + S.ttl
        base = 'http://127.0.0.1:%d' % S.port
        catalog = [{'type': 'identity', 'name': 'keystone', 'endpoints': [
                        {'interface': 'public', 'region_id': 'RegionOne', 'url': base + '/v3'}]},
                   {'type': 'metric', 'name': 'gnocchi', 'endpoints': [
                        {'interface': 'admin', 'region_id': 'RegionOne',
                         'url': 'http://127.0.0.1:9/not-this-one'},
                        {'interface': 'internal', 'region_id': 'RegionOne', 'url': base + '/'},
                        {'interface': 'public', 'region_id': 'RegionOne', 'url': base + '/'}]}]
        return self._reply(201, {'token': {
            'methods': ['password'],   # as Keystone v3: the token itself only in X-Subject-Token
            'expires_at': exp.strftime('%Y-%m-%dT%H:%M:%S.000000Z'),
            'project': {'id': S.filter_id, 'name': S.project, 'domain': {'id': 'default',
                                                                         'name': 'Default'}},
            'user': {'id': 'u-sluice', 'name': S.user}, 'catalog': catalog}},
            headers=[('X-Subject-Token', tok)])

    def _live(self):
        tok = self.headers.get('X-Auth-Token')
        with S.lock:
            exp = S.tokens.get(tok)
        return exp is not None and exp > time.time()

    def _proxy(self, body):
        if not self._live():
            return self._reply(401, {'code': 401, 'title': 'Unauthorized',
                                     'description': 'The request you have made requires '
                                                    'authentication.'})
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ('host', 'x-auth-token', 'content-length', 'connection')}
        headers['Authorization'] = 'Basic YWRtaW46'
        if body or self.command in ('POST', 'PATCH', 'PUT'):
            headers['Content-Length'] = str(len(body))
        try:
            c = http.client.HTTPConnection(S.gnocchi.hostname, S.gnocchi.port, timeout=60)
            c.request(self.command, self.path, body=body or None, headers=headers)
            r = c.getresponse()
            data = r.read()
            c.close()
        except OSError as e:
            return self._reply(502, {'error': str(e)})
        return self._reply(r.status, raw=data)

    def _handle(self):
        body = self._body()
        u = urllib.parse.urlparse(self.path)
        if self.command == 'POST' and u.path == '/v3/auth/tokens':
            return self._auth(body)
        if self.command == 'POST' and u.path == '/_expire':
            with S.lock:
                S.tokens.clear()
            return self._reply(204)
        if self.command == 'GET' and u.path == '/v3/projects':
            if not self._live():
                return self._reply(401, {'error': {'code': 401}})
            q = urllib.parse.parse_qs(u.query)
            projects = [{'id': S.filter_id, 'name': 'service', 'domain_id': 'default'},
                        {'id': 'other-service-project', 'name': 'service', 'domain_id': 'd-other'}]
            found = [p for p in projects if q.get('name', [p['name']])[0] == p['name'] and
                     q.get('domain_id', [p['domain_id']])[0] == p['domain_id']]
            return self._reply(200, {'projects': found})
        return self._proxy(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class S:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--gnocchi', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--user', default='sluice')
    ap.add_argument('--password-file', required=True)
    ap.add_argument('--project', default='service')
    ap.add_argument('--filter-project-id', default='5e7vice0000000000000000000000000')
    ap.add_argument('--ttl', type=float, default=3600)
    ap.add_argument('--ready')
    a = ap.parse_args()
    S.gnocchi = urllib.parse.urlparse(a.gnocchi)
    if S.gnocchi.hostname != '127.0.0.1':
        sys.exit('keystone_stub: Gnocchi must be on 127.0.0.1')
    S.user, S.project, S.ttl, S.filter_id = a.user, a.project, a.ttl, a.filter_project_id
    with open(a.password_file) as f:
        S.password = f.readline().rstrip('\r\n')
    S.tokens, S.lock, S.out = {}, threading.Lock(), open(a.out, 'a')
    srv = Server(('127.0.0.1', 0), Handler)
    S.port = srv.server_address[1]
    print(S.port, flush=True)
    if a.ready:
        with open(a.ready, 'w') as f:
            f.write('%d\n' % S.port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()

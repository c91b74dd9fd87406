#!/usr/bin/env python3
"""Random notifications for the conformance suite, built from the corpus.

Usage: gen.py N --seed S [--corpus tests/data/corpus.jsonl] [--wire-ratio 0.5]

Each output line takes a notification of the corpus (oslo wire form) and
varies it: fresh message ids, timestamps in the shapes OpenStack services
write (and, rarely, malformed ones), ids, numbers and names, then some of
the things real producers get wrong or do differently: a missing or null
field, a number sent as a string, a float for an int, an empty string,
another priority or its case, other request-context keys and types, user
metadata, a payload that is not an object, another event type's body.
About half the lines are wrapped in the oslo v2 envelope. The same
arguments always give the same bytes. Standard library only.
"""
import argparse
import copy
import datetime
import json
import random
import string
import uuid

PRIORITIES = ['INFO'] * 12 + ['info'] * 4 + ['Info', 'ERROR', 'error', 'WARN', 'SAMPLE',
                                              'sample', 'DEBUG', 'critical', 'audit']
CTX_KEYS = ['user_id', 'project_id', 'tenant_id', 'user', 'tenant', 'request_id',
            'user_name', 'project_name', 'roles', 'is_admin', 'domain', 'auth_token']
TS_KEYS = ('created_at', 'launched_at', 'deleted_at', 'terminated_at', 'audit_period_beginning',
           'audit_period_ending', 'updated_at', 'eventTime', 'timestamp', 'reported_at',
           'modify_at')


# Shapes the corpus lacks, for the endpoints besides meters.yaml: the
# polling agent's samples and the HTTP audit middleware.
EXTRA_TEMPLATES = [
    {"message_id": "00000000-0000-4000-8000-000000000001", "publisher_id": "ceilometer.polling",
     "event_type": "telemetry.polling", "priority": "SAMPLE", "timestamp":
     "2023-03-14 10:00:00.000001", "_context_request_id": "req-1", "payload": {"samples": [
         {"counter_name": "cpu", "counter_type": "cumulative", "counter_unit": "ns",
          "counter_volume": 123456789, "user_id": "9b8c7d6e5f40413a92b1c0d9e8f7a6b5",
          "project_id": "f3a1c0b2d4e54f6a8b9c0d1e2f3a4b5c",
          "resource_id": "6c2b1f0e-3d4a-4e5b-9c8d-7a6f5e4d3c2b",
          "timestamp": "2023-03-14T10:00:00.000001+00:00",
          "resource_metadata": {"host": "compute-1", "flavor": {"vcpus": 2}},
          "source": "openstack", "message_id": "00000000-0000-4000-8000-0000000000aa",
          "monotonic_time": None},
         {"counter_name": "disk.device.read.bytes", "counter_type": "cumulative",
          "counter_unit": "B", "counter_volume": 4096.5, "user_id": None,
          "project_id": "f3a1c0b2d4e54f6a8b9c0d1e2f3a4b5c",
          "resource_id": "6c2b1f0e-3d4a-4e5b-9c8d-7a6f5e4d3c2b-vda",
          "timestamp": "2023-03-14T10:00:00", "resource_metadata": {},
          "source": "mysource", "message_id": "00000000-0000-4000-8000-0000000000ab"}]}},
    {"message_id": "00000000-0000-4000-8000-000000000002", "publisher_id": "api.host-1",
     "event_type": "http.request", "priority": "INFO", "timestamp": "2023-03-14 10:00:01.5",
     "payload": {"request": {"HTTP_X_USER_ID": "9b8c7d6e5f40413a92b1c0d9e8f7a6b5",
                             "HTTP_X_PROJECT_ID": "f3a1c0b2d4e54f6a8b9c0d1e2f3a4b5c",
                             "HTTP_X_SERVICE_NAME": "nova", "PATH_INFO": "/v2/servers"}}},
    {"message_id": "00000000-0000-4000-8000-000000000003", "publisher_id": "api.host-1",
     "event_type": "http.response", "priority": "INFO", "timestamp": "2023-03-14 10:00:02",
     "payload": {"request": {"HTTP_X_USER_ID": "9b8c7d6e5f40413a92b1c0d9e8f7a6b5",
                             "HTTP_X_SERVICE_NAME": "glance"},
                 "response": {"status": "200 OK"}}},
]


class Gen(object):
    def __init__(self, seed, templates):
        self.r = random.Random(seed)
        self.templates = templates + EXTRA_TEMPLATES
        self.event_types = sorted({t['event_type'] for t in templates})

    # ---- values ---------------------------------------------------------
    def uuid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def when(self):
        return datetime.datetime(2012, 1, 1) + datetime.timedelta(
            seconds=self.r.randrange(0, 12 * 365 * 86400),
            microseconds=self.r.choice([0, self.r.randrange(0, 1000000)]))

    def timestamp(self, like=None):
        t = self.when()
        c = self.r.random()
        if c < 0.35:
            s = t.strftime('%Y-%m-%d %H:%M:%S.%f')
        elif c < 0.55:
            s = t.isoformat()
        elif c < 0.65:
            s = t.strftime('%Y-%m-%dT%H:%M:%SZ')
        elif c < 0.72:
            s = t.strftime('%Y-%m-%dT%H:%M:%S.%f') + self.r.choice(['+02:00', '-05:30',
                                                                    '+00:00', 'Z'])
        elif c < 0.77:
            s = t.strftime('%Y-%m-%d %H:%M:%S')
        elif c < 0.80:
            s = t.strftime('%Y%m%dT%H%M%S')
        elif c < 0.83:
            s = t.strftime('%Y-%m-%d')
        elif c < 0.86:
            s = self.r.choice(['2014-05-3107: 19: 43.463101', 'not a date', '2013-02-30 10:00:00',
                               '2015-13-01T00:00:00', '', '24:00', '2016-01-01T25:00:00'])
        else:
            s = t.strftime('%Y-%m-%dT%H:%M:%S.%f')
        return s

    def word(self, n=None):
        n = n or self.r.randint(1, 12)
        alphabet = string.ascii_letters + string.digits + '-_. '
        s = ''.join(self.r.choice(alphabet) for _ in range(n))
        if self.r.random() < 0.05:
            s += self.r.choice(['é', 'ü', '中', "'", '"', '\\', '\n', '#', '@'])
        return s

    def number_like(self, v):
        c = self.r.random()
        if isinstance(v, bool):
            return self.r.choice([True, False])
        if isinstance(v, int):
            if c < 0.7:
                return self.r.choice([0, 1, 2, 5, 10, 20, 40, 80, 512, 2048, 4096, 16384,
                                      self.r.randrange(0, 10 ** 6)])
            if c < 0.8:
                return float(self.r.randrange(0, 10 ** 4)) / self.r.choice([1, 2, 4, 10])
            if c < 0.9:
                return str(self.r.randrange(0, 10 ** 4))
            return -self.r.randrange(0, 100)
        c2 = self.r.random()
        if c2 < 0.7:
            return round(self.r.uniform(0, 10 ** self.r.randint(0, 7)), self.r.randint(0, 6))
        if c2 < 0.85:
            return self.r.randrange(0, 10 ** 5)
        return '%.3f' % self.r.uniform(0, 1000)

    # ---- structure ------------------------------------------------------
    def vary(self, v, key, ids):
        """A value like v (same kind, mostly)."""
        if isinstance(v, dict):
            return {k: self.vary(x, k, ids) for k, x in v.items()}
        if isinstance(v, list):
            out = [self.vary(x, key, ids) for x in v]
            if out and self.r.random() < 0.1:
                out = out[:self.r.randint(0, len(out))]
            elif out and self.r.random() < 0.1:
                out.append(copy.deepcopy(self.r.choice(out)))
            return out
        if isinstance(v, str):
            if key in TS_KEYS or (len(v) >= 19 and v[:4].isdigit() and v[4] == '-'):
                return self.timestamp()
            if len(v) == 36 and v.count('-') == 4 or (len(v) == 32 and
                                                      all(c in '0123456789abcdef' for c in v)):
                if v not in ids:
                    ids[v] = self.uuid() if len(v) == 36 else uuid.UUID(
                        int=self.r.getrandbits(128)).hex
                return ids[v]
            if key in ('display_name', 'name', 'hostname', 'description') and \
                    self.r.random() < 0.5:
                return self.word()
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return self.number_like(v) if self.r.random() < 0.6 else v
        return v

    def leaves(self, v, path=()):
        if isinstance(v, dict):
            for k, x in v.items():
                yield from self.leaves(x, path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                yield from self.leaves(x, path + (i,))
        if path:
            yield path

    def mutate(self, payload):
        """One producer quirk applied at a random place of the payload."""
        paths = list(self.leaves(payload))
        if not paths:
            return
        path = self.r.choice(paths)
        parent = payload
        for p in path[:-1]:
            parent = parent[p]
        k = path[-1]
        c = self.r.random()
        old = parent[k]
        if c < 0.25 and isinstance(parent, dict):
            del parent[k]
        elif c < 0.45:
            parent[k] = None
        elif c < 0.55:
            parent[k] = ''
        elif c < 0.75 and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[k] = str(old)
        elif c < 0.85 and isinstance(old, str):
            parent[k] = self.r.choice([0, 1.5, True, [], {}, [old], {'a': old}])
        else:
            parent[k] = self.r.choice([self.word(), 3, 2.25, False, None, self.timestamp()])

    def notification(self):
        t = copy.deepcopy(self.r.choice(self.templates))
        ids = {}
        msg = {}
        for k, v in t.items():
            if k in ('message_id', '_unique_id'):
                msg[k] = uuid.UUID(int=self.r.getrandbits(128)).hex if k == '_unique_id' \
                    else self.uuid()
            elif k == 'timestamp':
                msg[k] = self.when().strftime('%Y-%m-%d %H:%M:%S.%f') if self.r.random() < 0.97 \
                    else self.timestamp()
            elif k == 'priority':
                msg[k] = self.r.choice(PRIORITIES) if self.r.random() < 0.25 else v
            elif k == 'payload':
                msg[k] = self.vary(v, k, ids)
            elif k.startswith('_context_'):
                if self.r.random() < 0.1:
                    continue
                msg[k] = self.vary(v, k[9:], ids)
            else:
                msg[k] = v
        p = msg.get('payload')
        if isinstance(p, dict):
            for _ in range(self.r.choice([0, 0, 1, 1, 2, 3, 5])):
                self.mutate(p)
            if self.r.random() < 0.1 and 'metadata' in p or self.r.random() < 0.03:
                md = p.get('metadata') if isinstance(p.get('metadata'), dict) else {}
                for _ in range(self.r.randint(1, 3)):
                    md['metering.' + self.r.choice(['stack', 'a.b', 'prio', 'x'])] = \
                        self.r.choice([self.word(), 7, 'x' * 300, None])
                p['metadata'] = md
        for _ in range(self.r.choice([0, 0, 0, 1, 2])):
            k = self.r.choice(CTX_KEYS)
            msg['_context_' + k] = self.r.choice([self.uuid(), None, self.word(), 5])
        if self.r.random() < 0.05:
            msg['event_type'] = self.r.choice(self.event_types)
        if self.r.random() < 0.01:
            msg['payload'] = self.r.choice([[], 'x', None, 5, {}, [1, {'a': 2}], True])
        if self.r.random() < 0.02:
            for k in list(msg):
                if k.startswith('_context_'):
                    msg[k] = self.r.choice([{'a': 1}, [1], 2.5, None, 'x'])
        if self.r.random() < 0.02:
            msg['publisher_id'] = self.r.choice(['compute', 'a.b.c', '', None, 5])
        if self.r.random() < 0.02:
            msg['_timeout'] = self.r.choice([None, 30])
        # oslo's dispatcher reads these with dict.get(): absent is None
        if self.r.random() < 0.02:
            msg.pop('payload', None)
        if self.r.random() < 0.02:
            msg.pop('message_id', None)
        return msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('n', type=int)
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--corpus', default='tests/data/corpus.jsonl')
    ap.add_argument('--wire-ratio', type=float, default=0.5)
    a = ap.parse_args()
    with open(a.corpus) as f:
        templates = [json.loads(line) for line in f if line.strip()]
    g = Gen(a.seed, templates)
    for _ in range(a.n):
        msg = g.notification()
        if g.r.random() < a.wire_ratio:
            msg = {'oslo.version': '2.0', 'oslo.message': json.dumps(msg)}
        print(json.dumps(msg))


if __name__ == '__main__':
    main()

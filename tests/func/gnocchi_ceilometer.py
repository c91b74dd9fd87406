#!/usr/bin/python3
"""Debian's real Ceilometer 19 GnocchiPublisher fed with the samples and
events sluice's file:// publisher wrote, so that tests/func/test_gnocchi.py
can compare what ends up in Gnocchi (and what was sent) with sluice's
gnocchi:// publisher.

  gnocchi_ceilometer.py --url http://127.0.0.1:PORT [--samples F.jsonl]
                        [--events F.jsonl] [--batch N] [--query Q]

No Keystone: gnocchiclient's gnocchi-basic keystoneauth plugin
([service_credentials] auth_type = gnocchi-basic, user = admin, endpoint =
URL), as /work/shared/services/README.md describes. Samples are published
N at a time (default: all in one publish_samples call), then the events
one publish_events call per N. Q is the publisher URL's query (e.g.
archive_policy=...). Must run under Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import sys
import tempfile
from urllib import parse as urlparse

from ceilometer import service
from ceilometer import sample as sample_mod
from ceilometer.event import models
from ceilometer.publisher import gnocchi


def read(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--samples')
    ap.add_argument('--events')
    ap.add_argument('--batch', type=int, default=0)
    ap.add_argument('--query', default='')
    a = ap.parse_args()
    cfg = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False)
    cfg.write('[service_credentials]\nauth_type = gnocchi-basic\nuser = admin\n'
              'endpoint = %s\n' % a.url)
    cfg.close()
    conf = service.prepare_service(['gnocchi_ceilometer'], [cfg.name])
    os.unlink(cfg.name)
    pub = gnocchi.GnocchiPublisher(conf, urlparse.urlparse('gnocchi://?' + a.query))
    if a.samples:
        samples = [sample_mod.Sample(
            name=r['name'], type=r['type'], unit=r['unit'], volume=r['volume'],
            user_id=r['user_id'], project_id=r['project_id'], resource_id=r['resource_id'],
            timestamp=r['timestamp'], resource_metadata=r['resource_metadata'],
            source=r.get('source'), id=r['id'], monotonic_time=r.get('monotonic_time'))
            for r in read(a.samples)]
        n = a.batch or len(samples) or 1
        for i in range(0, len(samples), n):
            pub.publish_samples(samples[i:i + n])
    if a.events:
        events = [models.Event(r['message_id'], r['event_type'], r['generated'],
                               [models.Trait(t[0], t[1], t[2]) for t in r['traits']],
                               r.get('raw', {}))
                  for r in read(a.events)]
        n = a.batch or len(events) or 1
        for i in range(0, len(events), n):
            pub.publish_events(events[i:i + n])
    print('done', file=sys.stderr)


if __name__ == '__main__':
    main()

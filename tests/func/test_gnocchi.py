#!/usr/bin/python3
"""The gnocchi:// publisher against real Gnocchi (tools/gnocchi-node:
Debian's gnocchi 4.4, PostgreSQL indexer, file storage, basic auth, all on
127.0.0.1), compared with Debian's real Ceilometer 19 GnocchiPublisher.

  test_gnocchi.py --build BUILD_DIR --src SOURCE_DIR [--keep] [--only T,...]
                  [--bench N]

Two throwaway Gnocchis are started (a node that cannot start is a failure,
never a skip), each behind tests/func/capture_proxy.py, then:

1. same_as_ceilometer: sluiced reads tests/data/corpus.jsonl through a
   file source; samples go to file:// and gnocchi:// (Gnocchi A), then in a
   second run events go to file:// and gnocchi:// (samples first, events
   after, so that both agents see the same order). Ceilometer's
   GnocchiPublisher (tests/func/gnocchi_ceilometer.py) publishes the very
   samples and events the file:// publisher wrote to Gnocchi B. The two
   Gnocchis must hold the same resources (type, id, user, project, every
   attribute; ended_at set on the same ones), the same metrics (resource,
   name, unit, archive policy) and the same measures (read with
   ?refresh=true); the requests must have the same shapes (method, path
   with ids abstracted, Accept / Content-Type / Authorization, JSON bodies
   of archive policies and created resources, the measures posted) and
   the shapes of the recordings in tests/data/reference/gnocchi_*.jsonl.
2. keystone: sluiced with auth=keystone against tests/func/keystone_stub.py
   (tokens of 4 s, the Gnocchi endpoint from its catalog, filter_project
   resolved through it, every token revoked mid-run): everything
   published, tokens renewed, the filtered project's samples never posted.
3. restart: generated notifications at a limited rate; Gnocchi's API is
   stopped for 3 s mid-run (tools/gnocchi-node restart). Every
   (resource, metric, timestamp) the file:// publisher wrote for a meter
   Gnocchi handles is in Gnocchi afterwards (an archive policy with the
   count aggregate and 1 s granularity makes them countable), with retries
   counted and nothing dropped.
--bench N: N generated notifications published as fast as possible to
Gnocchi A; prints samples/s (no checks).

Exit 0 if everything holds; 1 with what was expected and what came instead.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import sluice_functest as sf
from sluice_functest import (check, log, read_jsonl as read_lines, start_agent,
                             wait_published, write_agent)

AUTH = 'Basic YWRtaW46'
DEBIAN_PY = '/usr/bin/python3'


class Env(sf.Env):
    """The test's processes and its Gnocchi nodes (stopped at the end)."""

    def __init__(self, a, tmp):
        super().__init__(a, tmp)
        self.nodes = []

    def node_tool(self, *args):
        return subprocess.run([os.path.join(self.src, 'tools', 'gnocchi-node')] + list(args),
                              capture_output=True, text=True)

    def start_nodes(self, names):
        """Starts the Gnocchi nodes in parallel; a node that does not start fails the test."""
        ps = {}
        for n in names:
            d = os.path.join(self.tmp, n)
            self.nodes.append(d)
            ps[n] = (d, subprocess.Popen([os.path.join(self.src, 'tools', 'gnocchi-node'),
                                          'start', d], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True))
        out = {}
        for n, (d, p) in ps.items():
            so, se = p.communicate(timeout=300)
            if p.returncode != 0:
                raise SystemExit('test_gnocchi: Gnocchi node %s did not start (a failure, not a '
                                 'skip):\n%s' % (n, se))
            log(se.strip())
            env = dict(l.split('=', 1) for l in so.splitlines() if '=' in l)
            out[n] = env['GNOCCHI_URL']
        return out

    def proxy(self, upstream, out):
        p = self.spawn([DEBIAN_PY, os.path.join(self.src, 'tests', 'func', 'capture_proxy.py'),
                        '--upstream', upstream, '--out', out], stdout=subprocess.PIPE,
                       text=True)
        port = int(p.stdout.readline())
        return 'http://127.0.0.1:%d' % port

    def cleanup(self):
        super().cleanup()
        for d in self.nodes:
            if os.path.exists(os.path.join(d, 'node.env')):
                self.node_tool('stop', d)


def http(url, method='GET', body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={'Accept': 'application/json',
                                                         'Content-Type': 'application/json',
                                                         'Authorization': AUTH})
    with urllib.request.urlopen(req, timeout=120) as r:
        data = r.read()
        return json.loads(data) if data else None


def run_agent(env, run, source, sample_pubs, event_pubs, n_input, timeout=180):
    write_agent(env, run, source, sample_pubs, event_pubs)
    agent = start_agent(env, run)
    t0 = time.time()
    m = wait_published(env, run, n_input, timeout)
    dt = time.time() - t0
    env.stop(agent)
    check(agent.returncode == 0, '%s: sluiced stops cleanly' % run, 0, agent.returncode)
    return m, dt


def gnocchi_pubs(m):
    return [p for p in m['publishers'] if p['publisher'].startswith('gnocchi')]


# ---- Gnocchi state ---------------------------------------------------------

VOLATILE = {'started_at', 'revision_start', 'revision_end', 'creator', 'created_by_user_id',
            'created_by_project_id', 'metrics', 'ended_at'}


def state(url):
    """resources {id: {...}}, metrics {(original_resource_id, name): (unit, ap)},
    measures {(original_resource_id, name): [[ts, gran, value], ...]}."""
    res = {}
    marker = None
    while True:
        q = '/v1/resource/generic?details=true&limit=1000&sort=id:asc'
        page = http(url + q + ('&marker=' + marker if marker else ''))
        for r in page:
            res[r['id']] = r
        if len(page) < 1000:
            break
        marker = page[-1]['id']
    by_rid = {r['id']: r['original_resource_id'] for r in res.values()}
    metrics, measures = {}, {}
    for r in res.values():
        for name, mid in sorted(r['metrics'].items()):
            m = http(url + '/v1/metric/' + mid)
            k = (by_rid[r['id']], name)
            metrics[k] = (m.get('unit'), m['archive_policy']['name'])
            meas = http(url + '/v1/metric/%s/measures?refresh=true' % mid)
            measures[k] = meas
    resources = {}
    for r in res.values():
        d = {k: v for k, v in r.items() if k not in VOLATILE}
        d['ended'] = r.get('ended_at') is not None
        resources[r['original_resource_id']] = d
    return resources, metrics, measures


def first_diffs(a, b, n=5):
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            out.append('%s: sluice %s / ceilometer %s' % (k, a.get(k), b.get(k)))
            if len(out) >= n:
                break
    return out


# ---- request shapes --------------------------------------------------------

UUIDISH = re.compile(r'/v1/resource/([^/?]+)/[^/?]+')


def kind(rec):
    """(method, path template): ids abstracted."""
    path = rec['path']
    path = re.sub(r'^(/v1/resource/[^/?]+)/[^?]+', r'\1/ID', path)
    return rec['method'], path


def shape(rec):
    h = {k.lower(): v for k, v in rec['headers'].items()}
    auth = h.get('authorization', '')
    return (kind(rec), h.get('accept'), h.get('content-type'),
            auth.split(' ')[0].lower() if auth else None)


def posted_measures(recs):
    """Every measure of a batch POST Gnocchi acknowledged (202)."""
    out = collections.Counter()
    for r in recs:
        if r['method'] == 'POST' and r['path'].startswith('/v1/batch/resources/metrics/measures') \
                and r['status'] == 202:
            for rid, ms in json.loads(r['body']).items():
                for name, m in ms.items():
                    for x in m['measures']:
                        out[(rid, name, x['timestamp'], float(x['value']),
                             m['archive_policy_name'], m['unit'])] += 1
    return out


def created(recs):
    """{(type, id): body} of the resource creations Gnocchi accepted."""
    out = {}
    for r in recs:
        m = re.match(r'^/v1/resource/([^/?]+)$', r['path'])
        if r['method'] == 'POST' and m and r['status'] == 201:
            b = json.loads(r['body'])
            out[(m.group(1), b['id'])] = b
    return out


def last_patches(recs):
    out = {}
    for r in recs:
        m = re.match(r'^/v1/resource/([^/?]+)/([^?]+)$', r['path'])
        if r['method'] == 'PATCH' and m and r['status'] == 200:
            b = json.loads(r['body'])
            b.pop('ended_at', None)
            if b:
                out.setdefault((m.group(1), m.group(2)), {}).update(b)
    return out


def test_same_as_ceilometer(env, urls):
    run1 = os.path.join(env.tmp, 's1')
    run2 = os.path.join(env.tmp, 's2')
    for r in (run1, run2):
        os.makedirs(r)
        shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                    os.path.join(r, 'input.jsonl'))
    n_input = sum(1 for l in open(os.path.join(run1, 'input.jsonl')) if l.strip())
    cap_s, cap_c = os.path.join(env.tmp, 'cap.sluice.jsonl'), os.path.join(env.tmp, 'cap.ceilo.jsonl')
    pa, pb = env.proxy(urls['a'], cap_s), env.proxy(urls['b'], cap_c)
    # attribute_cache_size=0: PATCH after every batch, as Ceilometer without
    # oslo.cache (what the reference publisher runs with)
    gn = 'gnocchi://?endpoint=%s&retry_max_ms=1000&attribute_cache_size=0' % pa
    m1, _ = run_agent(env, run1, '{type: file, path: input.jsonl}',
                      ['file://%s/samples.jsonl' % run1, gn], ['file://%s/events.jsonl' % run1],
                      n_input)
    m2, _ = run_agent(env, run2, '{type: file, path: input.jsonl}',
                      ['file://%s/samples.jsonl' % run2], ['file://%s/events.jsonl' % run2, gn],
                      n_input)
    for m in (m1, m2):
        for p in gnocchi_pubs(m):
            check(p['dropped'] == 0 and p['errors'] == 0 and p['sent'] > 0,
                  'same_as_ceilometer: %s published everything' % p['sink'],
                  'sent > 0, no errors', p)
    samples = os.path.join(run1, 'samples.jsonl')
    events = os.path.join(run2, 'events.jsonl')
    check(len(read_lines(samples)) == 128 and len(read_lines(events)) == 120,
          'same_as_ceilometer: the file:// publisher wrote the corpus', '128 / 120',
          '%d / %d' % (len(read_lines(samples)), len(read_lines(events))))
    t0 = time.time()
    r = subprocess.run([DEBIAN_PY, os.path.join(env.src, 'tests', 'func', 'gnocchi_ceilometer.py'),
                        '--url', pb, '--samples', samples, '--events', events],
                       capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, 'same_as_ceilometer: Ceilometer\'s publisher ran', 0,
          '%d: %s' % (r.returncode, r.stderr[-2000:]))
    log('ceilometer publisher: %.1f s' % (time.time() - t0))
    res_s, met_s, meas_s = state(urls['a'])
    res_c, met_c, meas_c = state(urls['b'])
    log('sluice: %d resources, %d metrics; ceilometer: %d resources, %d metrics'
        % (len(res_s), len(met_s), len(res_c), len(met_c)))
    check(len(res_c) > 10 and len(met_c) > 20, 'same_as_ceilometer: Ceilometer created '
          'resources and metrics', '> 10 / > 20', '%d / %d' % (len(res_c), len(met_c)))
    check(res_s == res_c, 'same_as_ceilometer: the same resources (type, id, attributes, ended)',
          'no difference', first_diffs(res_s, res_c))
    check(met_s == met_c, 'same_as_ceilometer: the same metrics (unit, archive policy)',
          'no difference', first_diffs(met_s, met_c))
    check(meas_s == meas_c, 'same_as_ceilometer: the same measures', 'no difference',
          first_diffs(meas_s, meas_c))
    # request shapes
    # Ceilometer also asks Keystone for the filtered project: through the
    # gnocchi-basic plugin that GET goes to Gnocchi (404: no filter). sluice
    # makes that lookup only with auth=keystone (see test_keystone).
    rs = read_lines(cap_s)
    rc = [x for x in read_lines(cap_c) if not x['path'].startswith('/projects?')]
    sh_s, sh_c = {shape(x) for x in rs}, {shape(x) for x in rc}
    check(sh_s == sh_c, 'same_as_ceilometer: the same kinds of requests with the same Accept, '
          'Content-Type and auth scheme', sorted(sh_c - sh_s, key=str),
          sorted(sh_s - sh_c, key=str))
    ap_s = {x['body'] for x in rs if x['path'] == '/v1/archive_policy/'}
    ap_c = {x['body'] for x in rc if x['path'] == '/v1/archive_policy/'}
    check(ap_s == ap_c and len(ap_s) == 4, 'same_as_ceilometer: the same archive policy bodies '
          '(byte for byte), once each', sorted(ap_c), sorted(ap_s))
    check(len([x for x in rs if x['path'] == '/v1/archive_policy/']) <= 8,
          'same_as_ceilometer: archive policies created once per publisher instance',
          '<= 8 (2 runs x 4)', len([x for x in rs if x['path'] == '/v1/archive_policy/']))
    pm_s, pm_c = posted_measures(rs), posted_measures(rc)
    check(set(pm_s) == set(pm_c), 'same_as_ceilometer: the same measures acknowledged',
          'no difference', 'only sluice: %s; only ceilometer: %s'
          % (sorted(set(pm_s) - set(pm_c))[:3], sorted(set(pm_c) - set(pm_s))[:3]))
    cr_s, cr_c = created(rs), created(rc)
    check(set(cr_s) == set(cr_c), 'same_as_ceilometer: the same resources created',
          sorted(cr_c), sorted(cr_s))
    diff = [k for k in cr_s if k in cr_c and cr_s[k] != cr_c[k]]
    check(not diff, 'same_as_ceilometer: the same resource creation bodies', 'no difference',
          ['%s: sluice %s ceilometer %s' % (k, cr_s[k], cr_c[k]) for k in diff[:3]])
    # A resource id holding '#' or '?' (volume-01@lvm#lvm): gnocchiclient puts it
    # in the path unencoded, so Ceilometer's PATCH goes to the id cut at the
    # '#' and gets 404; sluice percent-encodes it and the PATCH works.
    lp_s = {k: v for k, v in last_patches(rs).items() if not re.search('%23|%3F', k[1])}
    lp_c = last_patches(rc)
    check(lp_s == lp_c, 'same_as_ceilometer: the same attribute updates (last values per '
          'resource)', 'no difference', first_diffs(lp_s, lp_c))
    # the recordings of Ceilometer's publisher (tests/data/reference)
    ref = []
    for f in ('gnocchi_publisher_capture.jsonl', 'gnocchi_publisher_events_capture.jsonl'):
        ref += read_lines(os.path.join(env.src, 'tests', 'data', 'reference', f))
    sh_ref = {shape(x) for x in ref if x['path'].startswith('/v1/')}
    check(sh_ref <= sh_s, 'same_as_ceilometer: every request shape of the recordings is one '
          'sluice sends', sorted(sh_ref, key=str), sorted(sh_ref - sh_s, key=str))
    ap_ref = {x['body'] for x in ref if x['path'] == '/v1/archive_policy/'}
    check(ap_ref == ap_s, 'same_as_ceilometer: archive policy bodies as recorded',
          sorted(ap_ref), sorted(ap_s))
    log('same_as_ceilometer: %d requests from sluice, %d from ceilometer; %d measures'
        % (len(rs), len(rc), sum(pm_s.values())))


def test_keystone(env, urls):
    run = os.path.join(env.tmp, 'ks')
    os.makedirs(run)
    shutil.copy(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl'),
                os.path.join(run, 'corpus.jsonl'))
    inp = os.path.join(run, 'input.jsonl')
    subprocess.run([os.path.join(env.build, 'tools', 'sluice-inject'), '--generate', '1500',
                    '--seed', '21', '--resources', '300', '--output', inp], check=True)
    with open(inp, 'a') as f:
        f.write(open(os.path.join(run, 'corpus.jsonl')).read())
    n_input = sum(1 for l in open(inp) if l.strip())
    pwf = os.path.join(run, 'password')
    with open(pwf, 'w') as f:
        f.write('s3cret-pw\n')
    os.chmod(pwf, 0o600)
    demo = 'f3a1c0b2d4e54f6a8b9c0d1e2f3a4b5c'   # a project of the corpus: filtered
    kslog = os.path.join(run, 'keystone.jsonl')
    cap = os.path.join(run, 'cap.jsonl')
    pa = env.proxy(urls['a'], cap)
    p = env.spawn([DEBIAN_PY, os.path.join(env.src, 'tests', 'func', 'keystone_stub.py'),
                   '--gnocchi', pa, '--out', kslog, '--password-file', pwf,
                   # 8 s tokens, all revoked at 3 s: a token taken in the first seconds is
                   # still unexpired at 3 s, so its next use gets the 401 (with 4 s, a
                   # loaded machine's slow first batches let it expire first: no 401)
                   '--ttl', '8', '--filter-project-id', demo], stdout=subprocess.PIPE, text=True)
    ks = 'http://127.0.0.1:%d' % int(p.stdout.readline())
    gn = ('gnocchi://?auth=keystone&auth_url=%s/v3&user=sluice&password_file=%s'
          '&project_name=service&interface=internal&retry_max_ms=500' % (ks, pwf))
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 400}',
                ['file://%s/samples.jsonl' % run, gn], ['file://%s/events.jsonl' % run, gn])
    agent = start_agent(env, run)
    time.sleep(3)
    urllib.request.urlopen(urllib.request.Request(ks + '/_expire', method='POST'), timeout=10)
    log('keystone: every token revoked')
    m = wait_published(env, run, n_input, 240)
    env.stop(agent)
    reqs = read_lines(kslog)
    auths = [r for r in reqs if r['path'] == '/v3/auth/tokens']
    lookups = [r for r in reqs if r['path'].startswith('/v3/projects')]
    denied = [r for r in reqs if r['status'] == 401 and not r['path'].startswith('/v3/')]
    check(all(r['status'] == 201 for r in auths) and 3 <= len(auths) <= 200,
          'keystone: tokens issued, cached and renewed (8 s tokens, revoked once)', '3..200 '
          'POST /v3/auth/tokens, all 201', [(r['status']) for r in auths])
    check(len(lookups) >= 1 and all(r['status'] == 200 for r in lookups) and
          all(r['path'] == '/v3/projects?name=service&domain=Default' for r in lookups),
          'keystone: filter_project resolved through Keystone with Ceilometer\'s request (two '
          'projects named service: the one of domain Default is taken)',
          'GET /v3/projects?name=service&domain=Default', [r['path'] for r in lookups])
    check(len(lookups) <= 2, 'keystone: the project is resolved once per publisher instance',
          '<= 2 (samples and events instances need it only for samples: 1 per instance)',
          len(lookups))
    check(len(denied) >= 1, 'keystone: the revoked token got 401 and was renewed', '>= 1',
          len(denied))
    for pp in gnocchi_pubs(m):
        check(pp['dropped'] == 0 and pp['sent'] > 0, 'keystone: %s published everything, '
              'dropped nothing' % pp['sink'], 'sent > 0, dropped 0', pp)
    samples = read_lines(os.path.join(run, 'samples.jsonl'))
    filtered = {s['resource_id'].replace('/', '_') for s in samples if s['project_id'] == demo}
    others = {s['resource_id'].replace('/', '_') for s in samples if s['project_id'] != demo}
    posted = {k[0] for k in posted_measures(read_lines(cap))}
    check(filtered and not (posted & (filtered - others)),
          'keystone: samples of the filtered project (filter_project=service -> %s) are not '
          'posted' % demo, 'none of %d resources' % len(filtered - others),
          sorted(posted & (filtered - others))[:5])
    check(len(posted) > 100, 'keystone: the other samples are posted', '> 100 resources',
          len(posted))
    env.stop(p)
    log('keystone: %d token requests, %d 401s, %d project lookups' % (len(auths), len(denied),
                                                                     len(lookups)))


def test_restart(env, urls, node):
    run = os.path.join(env.tmp, 'rs')
    os.makedirs(run)
    inp = os.path.join(run, 'input.jsonl')
    subprocess.run([os.path.join(env.build, 'tools', 'sluice-inject'), '--generate', '2500',
                    '--seed', '31', '--resources', '300', '--output', inp], check=True)
    n_input = sum(1 for l in open(inp) if l.strip())
    # through the capture proxy (Gnocchi down: it answers 502, like a
    # load balancer in front of a dead API) for the acknowledged batches
    cap = os.path.join(run, 'cap.jsonl')
    pb = env.proxy(urls['b'], cap)
    gn = 'gnocchi://?endpoint=%s&retry_max_ms=500&timeout=3' % pb
    write_agent(env, run, '{type: file, path: input.jsonl, rate: 400}',
                ['file://%s/samples.jsonl' % run, gn], ['file://%s/events.jsonl' % run])
    agent = start_agent(env, run)
    time.sleep(3)
    t0 = time.time()
    r = env.node_tool('restart', node, '--down', '3')
    check(r.returncode == 0, 'restart: the Gnocchi API came back', 0, r.stderr)
    log('restart: Gnocchi API down and back in %.1f s' % (time.time() - t0))
    m = wait_published(env, run, n_input, 300)
    env.stop(agent)
    pubs = gnocchi_pubs(m)
    check(sum(p['retried'] for p in pubs) > 0, 'restart: the publisher retried while Gnocchi '
          'was down', '> 0', [p['retried'] for p in pubs])
    check(sum(p['dropped'] for p in pubs) == 0, 'restart: nothing dropped', 0,
          [p['dropped'] for p in pubs])
    recs = read_lines(cap)
    failed = [x for x in recs if x['status'] >= 500]
    check(failed, 'restart: requests failed while the API was down', '> 0 answered 5xx',
          len(failed))
    handled = set()
    import yaml
    with open(os.path.join(env.src, 'conf', 'gnocchi_resources.yaml')) as f:
        for rd in yaml.safe_load(f)['resources']:
            handled |= set(rd['metrics'])
    # resources Gnocchi refuses to create (e.g. an instance without
    # flavor_id: the generator's compute.instance.exists) lose their
    # measures, as with Ceilometer; those are counted and logged, not lost
    refused = set()
    for x in recs:
        if x['method'] == 'POST' and re.match(r'^/v1/resource/[^/]+$', x['path']) and \
                400 <= x['status'] < 500 and x['status'] != 409:
            refused.add(json.loads(x['body'])['id'])
    want = collections.Counter()
    for s in read_lines(os.path.join(run, 'samples.jsonl')):
        if s['name'] in handled and s['resource_id'].replace('/', '_') not in refused:
            want[(s['resource_id'].replace('/', '_'), s['name'], s['timestamp'])] += 1
    got = collections.Counter()
    for k, n in posted_measures(recs).items():
        got[k[:3]] += n
    missing = [k for k in want if got[k] < want[k]]
    check(sum(want.values()) > 1000, 'restart: the file:// publisher wrote samples Gnocchi '
          'handles', '> 1000', sum(want.values()))
    check(not missing, 'restart: every sample Gnocchi handles was acknowledged by Gnocchi '
          '(202) after the restart', 'none missing', '%d of %d, e.g. %s'
          % (len(missing), len(want), missing[:3]))
    # and Gnocchi holds a metric for each (resource, meter)
    metrics = set()
    marker = None
    while True:
        page = http(urls['b'] + '/v1/metric?limit=1000' + ('&marker=' + marker if marker else ''))
        metrics |= {(x['resource_id'], x['name']) for x in page}
        if len(page) < 1000:
            break
        marker = page[-1]['id']
    rids = {}
    for x in http(urls['b'] + '/v1/resource/generic?limit=1000'):
        rids[x['original_resource_id']] = x['id']
    pairs = {(k[0], k[1]) for k in want}
    absent = [p for p in pairs if (rids.get(p[0]), p[1]) not in metrics]
    check(not absent, 'restart: Gnocchi has a metric for every (resource, meter)', 'none absent',
          absent[:3])
    dups = sum(got.values()) - sum(want.values())
    log('restart: %d measures acknowledged (%d sent twice: at least once), %d retries, '
        '%d requests answered 5xx, %d resources Gnocchi refused (their measures dropped, '
        'counted)' % (sum(want.values()), max(dups, 0), sum(p['retried'] for p in pubs),
                      len(failed), len(refused)))


def bench(env, urls, n):
    """sluiced -> Gnocchi A, then Ceilometer's publisher with the same
    samples in batches of 50 -> Gnocchi B (one process, as one agent's
    pipeline thread), each from nothing."""
    run = os.path.join(env.tmp, 'bench')
    os.makedirs(run)
    inp = os.path.join(run, 'input.jsonl')
    subprocess.run([os.path.join(env.build, 'tools', 'sluice-inject'), '--generate', str(n),
                    '--seed', '41', '--resources', '200', '--output', inp], check=True)
    gn = 'gnocchi://?endpoint=%s' % urls['a']
    m, dt = run_agent(env, run, '{type: file, path: input.jsonl}',
                      ['file://%s/samples.jsonl' % run, gn], ['file:///dev/null'], n,
                      timeout=1800)
    sent = sum(p['sent'] for p in gnocchi_pubs(m))
    lat = sum(p['latency_ms_sum'] for p in gnocchi_pubs(m))
    pubs = sum(p['publishes'] for p in gnocchi_pubs(m))
    log('bench: sluice: %d samples to Gnocchi in %.1f s = %.0f samples/s (%d publishes, mean '
        '%.0f ms per batch)' % (sent, dt, sent / dt, pubs, lat / max(pubs, 1)))
    t0 = time.time()
    subprocess.run([DEBIAN_PY, os.path.join(env.src, 'tests', 'func', 'gnocchi_ceilometer.py'),
                    '--url', urls['b'], '--samples', os.path.join(run, 'samples.jsonl'),
                    '--batch', '50'], check=True, capture_output=True)
    dc = time.time() - t0
    log('bench: ceilometer 19: %d samples to Gnocchi in %.1f s = %.0f samples/s (batches of 50, '
        'one thread, including ~3 s of Python start-up)' % (sent, dc, sent / dc))
    # warm: the same samples again, every resource and metric existing
    run2 = os.path.join(env.tmp, 'bench2')
    os.makedirs(run2)
    shutil.copy(inp, os.path.join(run2, 'input.jsonl'))
    m, dt = run_agent(env, run2, '{type: file, path: input.jsonl}', [gn], ['file:///dev/null'],
                      n, timeout=1800)
    sent = sum(p['sent'] for p in gnocchi_pubs(m))
    log('bench: sluice, resources existing: %d samples in %.1f s = %.0f samples/s'
        % (sent, dt, sent / dt))
    t0 = time.time()
    subprocess.run([DEBIAN_PY, os.path.join(env.src, 'tests', 'func', 'gnocchi_ceilometer.py'),
                    '--url', urls['b'], '--samples', os.path.join(run, 'samples.jsonl'),
                    '--batch', '50'], check=True, capture_output=True)
    dc = time.time() - t0
    log('bench: ceilometer 19, resources existing: %d samples in %.1f s = %.0f samples/s'
        % (sent, dc, sent / dc))


def _start(env, a):
    t0 = time.time()
    urls = env.start_nodes(['a', 'b'])
    log('two Gnocchi nodes up in %.1f s' % (time.time() - t0))
    return (urls,)


def main():
    return sf.main(__doc__, {
        'same_as_ceilometer': test_same_as_ceilometer, 'keystone': test_keystone,
        'restart': lambda env, urls: test_restart(env, urls, os.path.join(env.tmp, 'b'))},
        # PostgreSQL runs as postgres: it must reach its dir
        'sl-gn.', env_class=Env, start=_start, bench=bench, tmp_dir='/tmp')


if __name__ == '__main__':
    sys.exit(main())

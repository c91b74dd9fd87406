#!/usr/bin/python3
"""Forward profiles through a running sluiced, to file:// publishers.

  test_forward.py --build BUILD_DIR --src SOURCE_DIR [--keep]

1. two-profiles: sluiced reads tests/data/corpus.jsonl (file source) into
   a sample sink and an event sink that each have three file://
   publishers: one without a profile (everything, unfiltered), one with
   forward=alpha and one with forward=beta (sluice.yaml `forward:`; alpha
   selects by inclusion globs and uses drop_fields, admin_only_fields and
   drop_regex; beta selects by exclusion globs and uses keep_regex with
   admin: true). Each filtered file must hold exactly the records of the
   unfiltered one that its profile selects, each filtered as this script's
   own reading of common/forward.h says (an independent implementation in
   Python); the per-publisher `sent` counters must equal the lines
   written, nothing dropped, and the sinks must count every batch as
   published.
2. check: `sluiced -t` refuses a publisher naming an undefined profile
   (naming pipeline.yaml:line, the sink, the URL and the profiles there
   are), and a profile with a bad regular expression (sluice.yaml:line);
   `--dump-config` lists the profiles without their tokens.

Exit 0 if all hold; 1 with what was expected and what came instead.
"""
import copy
import fnmatch
import json
import os
import re
import subprocess
import sys
import time

import sluice_functest as sf
from sluice_functest import check, log, read_jsonl as read_lines, start_agent, tail


PROFILES = r"""
forward:
  alpha:
    meters: ['volume.*', 'disk.*', vcpus, memory]
    event_types: ['compute.instance.*', 'volume.*']
    drop_fields: [user_id, message_id, 'resource_metadata.image_meta.*', 'resource_metadata.fl*r']
    admin_only_fields: ['*host*', tenant_id, 'resource_metadata.status']
    drop_regex: '(^|\.)display_name$'
    tokens: [alpha-secret-token]
  beta:
    meters: ['!hardware.*', '!disk.*']
    event_types: ['!compute.*']
    admin_only_fields: [user_id]
    admin: true
    keep_regex: '^(name|volume|unit|resource_id|resource_metadata\.(status|state).*|event_type|generated|project_id|user_id|request_id)$'
"""

PROFILE = {
    'alpha': {
        'meters': ['volume.*', 'disk.*', 'vcpus', 'memory'], 'meters_ex': False,
        'event_types': ['compute.instance.*', 'volume.*'], 'event_types_ex': False,
        'drop_fields': ['user_id', 'message_id', 'resource_metadata.image_meta.*',
                        'resource_metadata.fl*r'],
        'admin_only_fields': ['*host*', 'tenant_id', 'resource_metadata.status'],
        'admin': False,
        'drop_regex': r'(^|\.)display_name$', 'keep_regex': None,
    },
    'beta': {
        'meters': ['hardware.*', 'disk.*'], 'meters_ex': True,
        'event_types': ['compute.*'], 'event_types_ex': True,
        'drop_fields': [], 'admin_only_fields': ['user_id'], 'admin': True,
        'drop_regex': None,
        'keep_regex': r'^(name|volume|unit|resource_id|resource_metadata\.(status|state).*|'
                      r'event_type|generated|project_id|user_id|request_id)$',
    },
}


# ---- the filters, as common/forward.h documents them --------------------

def selects(globs, exclude, name):
    if not globs:
        return True
    hit = name is not None and any(fnmatch.fnmatchcase(name, g) for g in globs)
    return not hit if exclude else hit


def traits_of(rec):
    t = rec.get('traits')
    return t if isinstance(t, list) else None


def trait_name(t):
    if isinstance(t, list) and t and isinstance(t[0], str):
        return t[0]
    return None


def drop_path(v, segs):
    if isinstance(v, list):
        for e in v:
            drop_path(e, segs)
        return
    if not isinstance(v, dict):
        return
    for k in list(v):
        if fnmatch.fnmatchcase(k, segs[0]):
            if len(segs) == 1:
                del v[k]
            else:
                drop_path(v[k], segs[1:])


def drop_traits(rec, pred):
    t = traits_of(rec)
    if t is not None:
        t[:] = [x for x in t if not (trait_name(x) is not None and pred(trait_name(x)))]


def drop_any(v, pred, path, events, top):
    """Removes keys at any depth for which pred(key, dotted_path) holds."""
    if isinstance(v, list):
        for e in v:
            drop_any(e, pred, path, False, False)
        return
    if not isinstance(v, dict):
        return
    for k in list(v):
        p = path + '.' + k if path else k
        if pred(k, p):
            del v[k]
        elif not (events and top and k == 'traits'):
            drop_any(v[k], pred, p, False, False)
    if events and top:
        drop_traits(v, lambda n: pred(n, n))


def keep(v, rx, path, events, top):
    if isinstance(v, list):
        kept = [e for e in v if isinstance(e, (dict, list)) and keep(e, rx, path, False, False)]
        v[:] = kept
        return bool(kept)
    if not isinstance(v, dict):
        return False
    anyk = False
    for k in list(v):
        p = path + '.' + k if path else k
        val = v[k]
        if rx.search(p):
            ok = True
        elif events and top and k == 'traits' and isinstance(val, list):
            val[:] = [t for t in val if trait_name(t) is not None and rx.search(trait_name(t))]
            ok = bool(val)
        else:
            ok = isinstance(val, (dict, list)) and keep(val, rx, p, False, False)
        if ok:
            anyk = True
        else:
            del v[k]
    return anyk


def apply_profile(prof, events, rec):
    rec = copy.deepcopy(rec)
    for p in prof['drop_fields']:
        segs = p.split('.')
        drop_path(rec, segs)
        if events and len(segs) == 1:
            drop_traits(rec, lambda n, g=segs[0]: fnmatch.fnmatchcase(n, g))
    if not prof['admin']:
        for p in prof['admin_only_fields']:
            segs = p.split('.')
            if len(segs) == 1:
                drop_any(rec, lambda k, path, g=p: fnmatch.fnmatchcase(k, g), '', events, True)
            else:
                drop_path(rec, segs)
    if prof['drop_regex']:
        rx = re.compile(prof['drop_regex'])
        drop_any(rec, lambda k, path: rx.search(path) is not None, '', events, True)
    if prof['keep_regex']:
        keep(rec, re.compile(prof['keep_regex']), '', events, True)
    return rec


# ---- the agent -----------------------------------------------------------

def write_agent(env, run, sample_pubs, event_pubs, profiles=PROFILES, source=None,
                pipeline_workers=2):
    sf.write_agent(env, run, '{type: file, path: %s}'
                   % (source or os.path.join(env.src, 'tests', 'data', 'corpus.jsonl')),
                   sample_pubs, event_pubs, pipeline_workers, extra=profiles)


def wait_all_published(env, run, n_input, what):
    deadline = time.time() + 60
    m = None
    while time.time() < deadline:
        m = env.monitor(run)
        t = m['totals'] if m else {}
        if (t.get('received', 0) >= n_input and t.get('samples_routed', 0) > 0 and
                t.get('samples_published', 0) == t.get('samples_routed', 0) and
                t.get('events_routed', 0) > 0 and
                t.get('events_published', 0) == t.get('events_routed', 0)):
            return m
        time.sleep(0.2)
    check(False, '%s: everything published within 60 s' % what, n_input, m and m['totals'])
    return m


def canon(recs):
    return sorted(json.dumps(r, sort_keys=True) for r in recs)


def first_diff(want, got):
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return 'line %d:\n    want %s\n    got  %s' % (i, w[:600], g[:600])
    return 'lengths %d vs %d' % (len(want), len(got))


def test_two_profiles(env):
    run = os.path.join(env.tmp, 'two')
    os.makedirs(run)
    out = lambda n: 'file://%s/%s' % (run, n)  # noqa: E731
    write_agent(env, run,
                [out('s_all.jsonl'), out('s_alpha.jsonl') + '?forward=alpha',
                 out('s_beta.jsonl') + '?forward=beta'],
                [out('e_all.jsonl'), out('e_alpha.jsonl') + '?forward=alpha',
                 out('e_beta.jsonl') + '?forward=beta'])
    t0 = time.time()
    p = start_agent(env, run)
    n_input = sum(1 for _ in open(os.path.join(env.src, 'tests', 'data', 'corpus.jsonl')))
    deadline = time.time() + 60
    m = None
    while time.time() < deadline:
        m = env.monitor(run)
        t = m['totals'] if m else {}
        if (t.get('received', 0) >= n_input and t.get('samples_routed', 0) > 0 and
                t.get('samples_published', 0) == t.get('samples_routed', 0) and
                t.get('events_routed', 0) > 0 and
                t.get('events_published', 0) == t.get('events_routed', 0)):
            break
        time.sleep(0.2)
    else:
        env.stop(p)
        raise SystemExit('test_forward: not everything published within 60 s: %s\n%s'
                         % (m and m['totals'], tail(os.path.join(run, 'sluiced.log'))))
    env.stop(p)
    check(p.returncode == 0, 'sluiced exits 0 after SIGTERM', 0, p.returncode)
    log('two-profiles: %d notifications through 6 publishers in %.1f s'
        % (n_input, time.time() - t0))
    t = m['totals']
    pubs = {(x['sink'], os.path.basename(x['publisher'])): x for x in m['publishers']}
    for kind, events, sink in (('s', False, 'meter_sink'), ('e', True, 'events-event_sink')):
        everything = read_lines(os.path.join(run, '%s_all.jsonl' % kind))
        routed = t['events_routed' if events else 'samples_routed']
        check(len(everything) == routed, '%s: the unfiltered publisher wrote every record'
              % sink, routed, len(everything))
        sent_all = pubs.get((sink, '%s_all.jsonl' % kind), {}).get('sent')
        check(sent_all == routed, '%s: sent of the unfiltered publisher' % sink, routed,
              sent_all)
        for prof in ('alpha', 'beta'):
            pr = PROFILE[prof]
            key = 'event_type' if events else 'name'
            globs = pr['event_types' if events else 'meters']
            ex = pr['event_types_ex' if events else 'meters_ex']
            want = [apply_profile(pr, events, r) for r in everything
                    if selects(globs, ex, r.get(key))]
            got = read_lines(os.path.join(run, '%s_%s.jsonl' % (kind, prof)))
            check(0 < len(want) < len(everything),
                  '%s %s: the profile selects some records, not all' % (sink, prof),
                  '0 < n < %d' % len(everything), len(want))
            cw, cg = canon(want), canon(got)
            check(cw == cg, '%s %s: the file holds the selected records, filtered (%s)'
                  % (sink, prof, first_diff(cw, cg)), len(cw), len(cg))
            c = pubs.get((sink, '%s_%s.jsonl' % (kind, prof)), {})
            check(c.get('sent') == len(want) and c.get('dropped') == 0 and
                  c.get('errors') == 0,
                  '%s %s: sent counts the selected records, nothing dropped or failed'
                  % (sink, prof), {'sent': len(want), 'dropped': 0, 'errors': 0},
                  {k: c.get(k) for k in ('sent', 'dropped', 'errors')})
        sk = m['sinks'].get(sink, {})
        check(sk.get('failed', 0) == 0 and sk.get('published') == routed,
              '%s: the sink counts every record published' % sink,
              {'published': routed, 'failed': 0}, sk)
    # What the filters must have done, spot-checked on the files.
    sa = read_lines(os.path.join(run, 's_alpha.jsonl'))
    check(all('user_id' not in r and 'message_id' not in r and
              'host' not in r['resource_metadata'] and
              'display_name' not in r['resource_metadata'] for r in sa),
          'alpha samples have no user_id, message_id, host or display_name')
    ea = read_lines(os.path.join(run, 'e_alpha.jsonl'))
    check(all(not any(t[0] in ('host', 'tenant_id') or 'host' in t[0]
                      for t in r.get('traits', [])) for r in ea),
          'alpha events have no host or tenant_id traits')
    eb = read_lines(os.path.join(run, 'e_beta.jsonl'))
    check(all(set(r) <= {'event_type', 'generated', 'traits'} for r in eb) and
          any(t[0] == 'user_id' for r in eb for t in r.get('traits', [])),
          'beta events keep only event_type, generated and kept traits (user_id: admin)')


def test_check(env):
    run = os.path.join(env.tmp, 'check')
    os.makedirs(run)
    write_agent(env, run, ['file://%s/a.jsonl?forward=gamma' % run], ['file://%s/e.jsonl' % run])
    r = subprocess.run([env.sluiced(), '-t', '-c', os.path.join(run, 'sluice.yaml')],
                       capture_output=True, text=True, timeout=60)
    msg = r.stderr + r.stdout
    check(r.returncode == 2, 'sluiced -t exits 2 for an undefined profile', 2, r.returncode)
    want = ("pipeline.yaml:5: sink 'meter_sink': file publisher 'file://%s/a.jsonl?forward=gamma'"
            ": forward profile 'gamma' is not defined in %s/sluice.yaml (defined: alpha, beta)"
            % (run, run))
    check(want in msg, 'sluiced -t names the file:line, sink, URL and defined profiles', want,
          msg.strip())
    write_agent(env, run, ['file://%s/a.jsonl?forward=alpha' % run], ['file://%s/e.jsonl' % run],
                profiles="forward:\n  alpha:\n    meters: [cpu]\n    keep_regex: '(unclosed'\n")
    r = subprocess.run([env.sluiced(), '-t', '-c', os.path.join(run, 'sluice.yaml')],
                       capture_output=True, text=True, timeout=60)
    msg = r.stderr + r.stdout
    want = "sluice.yaml:13: forward profile 'alpha': keep_regex: invalid regular expression"
    check(r.returncode == 2 and want in msg, 'sluiced -t refuses a bad keep_regex at its line',
          '2, ' + want, '%d, %s' % (r.returncode, msg.strip()))
    write_agent(env, run, ['file://%s/a.jsonl?forward=alpha' % run], ['file://%s/e.jsonl' % run])
    r = subprocess.run([env.sluiced(), '-t', '-c', os.path.join(run, 'sluice.yaml')],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, 'sluiced -t accepts the two profiles', 0,
          '%d: %s' % (r.returncode, (r.stderr + r.stdout).strip()))
    r = subprocess.run([env.sluiced(), '--dump-config', '-c', os.path.join(run, 'sluice.yaml')],
                       capture_output=True, text=True, timeout=60)
    check('forward:\n  alpha:\n    meters: ["volume.*", "disk.*", "vcpus", "memory"]' in r.stdout
          and '  beta:\n    meters: ["!hardware.*", "!disk.*"]' in r.stdout and
          '1 token(s)' in r.stdout and 'alpha-secret-token' not in r.stdout,
          '--dump-config lists the profiles, counts tokens and never shows them', None,
          r.stdout[r.stdout.find('forward:'):])


def write_odd_input(env, run):
    """run/input.jsonl: the corpus plus notifications whose strings and
    numbers take Python's escaping and number rules. Returns the count."""
    # The corpus plus notifications whose strings and numbers take Python's
    # escaping and number rules: non-ASCII (BMP and beyond), quotes,
    # backslashes, control characters, non-printable spaces and format
    # characters (repr escapes them), floats in odd spellings. Not
    # unassigned code points: repr escapes those, common/pycompat.c's
    # repr (no Unicode database) does not.
    corpus = os.path.join(env.src, 'tests', 'data', 'corpus.jsonl')
    with open(corpus) as f:
        notes = [json.loads(line) for line in f if line.strip()]
    base = next(n for n in notes if n['event_type'] == 'volume.create.end')
    odd = ['caf\u00e9 \u2603 \U0001F600', 'it\'s "quoted" \\ back', 'ctl \n\t\x7f\x01 end',
           "only 'single'", '\u00ff\u0100\u00a0\u200b\u2028 \u00ad']
    sizes = ['1.50', '1e2', '-0', '12345678901234567890', '0.1']
    with open(os.path.join(run, 'input.jsonl'), 'w') as f:
        with open(corpus) as c:
            f.write(c.read())
        for i, (name, size) in enumerate(zip(odd, sizes)):
            n = copy.deepcopy(base)
            n['message_id'] = '00000000-0000-4000-8000-%012d' % i
            n['payload']['display_name'] = name
            n['payload']['extra'] = {'n\u00e9sted': [name, True, None, 2.5e-8]}
            text = json.dumps(n, ensure_ascii=False)
            f.write(text.replace('"size": 1', '"size": ' + size) + '\n')
    return len(notes) + len(odd)


def test_ceilometer_formats(env):
    """file:// format=ceilometer / ceilometer-json against Ceilometer 19's
    own FilePublisher run on the records sluice wrote in its own format."""
    run = os.path.join(env.tmp, 'ceilo')
    os.makedirs(run)
    n_input = write_odd_input(env, run)
    out = lambda n: 'file://%s/%s' % (run, n)  # noqa: E731
    write_agent(env, run,
                [out('s.jsonl'), out('s_repr.log') + '?format=ceilometer',
                 out('s_json.log') + '?format=ceilometer-json&json',
                 out('s_fwd.log') + '?format=ceilometer-json&forward=alpha'],
                [out('e.jsonl'), out('e_repr.log') + '?format=ceilometer',
                 out('e_json.log') + '?format=ceilometer-json'],
                source=os.path.join(run, 'input.jsonl'))
    p = start_agent(env, run)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = env.monitor(run)
        t = m['totals'] if m else {}
        if (t.get('received', 0) >= n_input and t.get('samples_routed', 0) > 0 and
                t.get('samples_published', 0) == t.get('samples_routed', 0) and
                t.get('events_routed', 0) > 0 and
                t.get('events_published', 0) == t.get('events_routed', 0)):
            break
        time.sleep(0.2)
    else:
        check(False, 'ceilometer formats: everything published within 60 s', n_input,
              m and m['totals'])
    env.stop(p)
    ref = os.path.join(run, 'ref')
    os.makedirs(ref)
    script = os.path.join(env.src, 'tests', 'func', 'ceilo_file.py')
    for mode, q in (('repr', ''), ('json', '?json')):
        r = subprocess.run(['/usr/bin/python3', script, '--samples', os.path.join(run, 's.jsonl'),
                            '--events', os.path.join(run, 'e.jsonl'),
                            '--url', 'file://%s/s_%s.log%s' % (ref, mode, q),
                            '--events-url', 'file://%s/e_%s.log%s' % (ref, mode, q),
                            '--serialize-events', os.path.join(ref, 'e_serialize.log')],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, 'ceilo_file.py %s runs' % mode, 0, r.stderr)
        if mode == 'json':
            check('publish_events raised TypeError' in r.stderr,
                  "Ceilometer 19's FilePublisher cannot json.dumps events (as documented)",
                  'TypeError', r.stderr.strip())
    def slurp(path):
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError:
            return b''
    def lines(b):
        return sorted(b.decode('utf-8').splitlines())
    for what, mine, theirs in (
            ('samples, no json', 's_repr.log', 's_repr.log'),
            ('samples, json', 's_json.log', 's_json.log'),
            ('events, no json', 'e_repr.log', 'e_repr.log'),
            ('events, json (Event.serialize)', 'e_json.log', 'e_serialize.log')):
        a, b = lines(slurp(os.path.join(run, mine))), lines(slurp(os.path.join(ref, theirs)))
        check(a == b and len(a) > 0, 'format=ceilometer%s, %s: the bytes Ceilometer 19 writes (%s)'
              % ('-json' if mine.endswith('json.log') else '', what, first_diff(b, a)), len(b),
              len(a))
    # The forward profile applies to the Ceilometer formats too.
    fwd = [json.loads(x) for x in lines(slurp(os.path.join(run, 's_fwd.log')))]
    want = sorted(json.dumps(apply_profile(PROFILE['alpha'], False, json.loads(x)))
                  for x in lines(slurp(os.path.join(ref, 's_json.log')))
                  if selects(PROFILE['alpha']['meters'], False, json.loads(x)['name']))
    check(sorted(json.dumps(x) for x in fwd) == want,
          'format=ceilometer-json with forward=alpha: selected and filtered', len(want), len(fwd))


def test_ceilometer_rotation(env):
    """format=ceilometer[-json] with max_bytes/backup_count rotates where
    Ceilometer 19's RotatingFileHandler does: the same files, the same
    bytes in each, for the same records in the same order (one pipeline
    worker, so that every publisher of a sink sees the batches in one
    order)."""
    run = os.path.join(env.tmp, 'rot')
    os.makedirs(run)
    n_input = write_odd_input(env, run)
    out = lambda n: 'file://%s/%s' % (run, n)  # noqa: E731
    rot = {
        's_json.log': ('?json&max_bytes=6000&backup_count=100', 'ceilometer-json'),
        's_repr.log': ('?max_bytes=5000&backup_count=100', 'ceilometer'),
        's_few.log': ('?json&max_bytes=4000&backup_count=3', 'ceilometer-json'),
        's_big.log': ('?json&max_bytes=300&backup_count=200', 'ceilometer-json'),
        'e_repr.log': ('?max_bytes=7000&backup_count=100', 'ceilometer'),
    }
    def url(name):
        q, fmt = rot[name]
        return out(name) + q + '&format=' + fmt
    write_agent(env, run, [out('s.jsonl')] + [url(n) for n in sorted(rot) if n[0] == 's'],
                [out('e.jsonl')] + [url(n) for n in sorted(rot) if n[0] == 'e'],
                source=os.path.join(run, 'input.jsonl'), pipeline_workers=1)
    p = start_agent(env, run)
    wait_all_published(env, run, n_input, 'rotation')
    env.stop(p)
    ref = os.path.join(run, 'ref')
    os.makedirs(ref)
    script = os.path.join(env.src, 'tests', 'func', 'ceilo_file.py')
    for name, (q, fmt) in sorted(rot.items()):
        kind = 'events' if name[0] == 'e' else 'samples'
        argv = ['/usr/bin/python3', script, '--samples', os.path.join(run, 's.jsonl'),
                '--url', 'file://%s/%s%s' % (ref, name, q)]
        if kind == 'events':
            argv = ['/usr/bin/python3', script, '--samples', os.devnull,
                    '--events', os.path.join(run, 'e.jsonl'),
                    '--url', 'file://%s/%s%s' % (ref, name, q)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0 and not r.stderr, 'ceilo_file.py %s runs' % name, 0, r.stderr)
        theirs = sorted(f for f in os.listdir(ref) if f == name or f.startswith(name + '.'))
        mine = sorted(f for f in os.listdir(run) if f == name or f.startswith(name + '.'))
        check(theirs == mine and len(theirs) > 1, '%s (%s%s): the files Ceilometer 19 leaves'
              % (name, fmt, q), theirs, mine)
        for f in theirs:
            with open(os.path.join(ref, f), 'rb') as a, open(os.path.join(run, f), 'rb') as b:
                ta, tb = a.read(), b.read()
            check(ta == tb, '%s: the bytes Ceilometer 19 writes (%s)'
                  % (f, first_diff(ta.decode().splitlines(), tb.decode().splitlines())),
                  len(ta), len(tb))
    log('rotation: %s' % ', '.join('%s x%d' % (n, len([f for f in os.listdir(run)
                                                        if f.startswith(n)]))
                                   for n in sorted(rot)))


def main():
    return sf.main(__doc__, {'check': test_check, 'two_profiles': test_two_profiles,
                             'ceilometer_formats': test_ceilometer_formats,
                             'ceilometer_rotation': test_ceilometer_rotation},
                   'sluice-forward-')


if __name__ == '__main__':
    sys.exit(main())

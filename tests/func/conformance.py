#!/usr/bin/python3
"""Differential conformance: sluice-convert against the installed Ceilometer.

Usage: conformance.py --sluice-convert PATH [--src DIR] [--n N] [--seed S]
                      [--keep DIR] [--max-diffs K]

Runs tests/oracle/ceilometer_oracle.py (the real Ceilometer 19 code) and
sluice-convert on (a) tests/data/corpus.jsonl and (b) N random
notifications from tests/oracle/gen.py, with a fresh seed each run unless
--seed is given (the seed is printed), both envelope forms mixed, with the
stock meters.yaml and event_definitions.yaml of the installed package.
Samples and events are compared notification by notification, field by
field, JSON types included (an int is not a float, a bool is not an int,
list order counts, object key order does not). Prints the match rate per
event_type and, on any mismatch, a readable diff of the first ones; exits
1 then. The known deviation (sluice evaluates the identity.authenticate
name, see README "Conversion compatibility") is applied to the oracle's
output before comparing. Missing python3-ceilometer is a failure, not a
skip: run `tools/install-deps python3-ceilometer`.
"""
import argparse
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile

PY = '/usr/bin/python3'
IDENTITY_NAME = ("$.payload.outcome - $.payload.outcome + "
                 "'identity.authenticate.' + $.payload.outcome")


def fail(msg):
    sys.stdout.write('conformance: FAIL: %s\n' % msg)
    sys.stdout.flush()
    sys.exit(1)


def stock_files():
    try:
        out = subprocess.run(
            [PY, '-c', 'import ceilometer, os; print(os.path.dirname(ceilometer.__file__))'],
            capture_output=True, text=True, timeout=120)
    except OSError as e:
        fail('cannot run %s: %s' % (PY, e))
    if out.returncode != 0:
        fail('python3-ceilometer is not installed (import ceilometer failed under %s); the '
             'conformance suite needs it: run `tools/install-deps python3-ceilometer`.\n%s'
             % (PY, out.stderr.strip()[-500:]))
    pkg = out.stdout.strip()
    return (os.path.join(pkg, 'data', 'meters.d', 'meters.yaml'),
            os.path.join(pkg, 'pipeline', 'data', 'event_definitions.yaml'))


def inner(line):
    """The wire message of an input line (unwrapping a v2 envelope), or None."""
    try:
        d = json.loads(line)
        if isinstance(d, dict) and 'oslo.message' in d and 'oslo.version' in d:
            d = json.loads(d['oslo.message'])
        return d if isinstance(d, dict) else None
    except (ValueError, TypeError):
        return None


def same(a, b):
    """JSON equality with types: int != float != bool, NaN == NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def show(v):
    s = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return s if len(s) <= 300 else s[:300] + '...'


def field_diff(o, s):
    lines = []
    for k in sorted(set(o) | set(s)):
        if k not in o or k not in s or not same(o[k], s[k]):
            lines.append('      %s: ceilometer %s\n      %s  sluice     %s' % (
                k, show(o.get(k, '<absent>')), ' ' * len(k), show(s.get(k, '<absent>'))))
    return lines


def run(cmd, stdin_path, stdout_path=None):
    with open(stdin_path) as i:
        out = open(stdout_path, 'w') if stdout_path else subprocess.DEVNULL
        p = subprocess.run(cmd, stdin=i, stdout=out, stderr=subprocess.PIPE, text=True,
                           timeout=3600)
        if stdout_path:
            out.close()
    return p


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def compare(name, input_path, work, args, meters, events_defs):
    """Returns (n_notifications, n_mismatching, per-type stats, diff lines)."""
    with open(input_path) as f:
        lines = [line for line in f]
    msgs = {}
    for i, line in enumerate(lines, 1):
        if line.strip():
            msgs[i] = inner(line)

    o_s, o_e = os.path.join(work, name + '.oracle.samples'), os.path.join(work, name + '.oracle.events')
    s_s, s_e = os.path.join(work, name + '.sluice.samples'), os.path.join(work, name + '.sluice.events')
    p = run([PY, os.path.join(args.src, 'tests', 'oracle', 'ceilometer_oracle.py'),
             '--meters', meters, '--event-definitions', events_defs,
             '--samples', o_s, '--events', o_e], input_path)
    if p.returncode != 0:
        fail('the oracle failed (%d):\n%s' % (p.returncode, p.stderr[-2000:]))
    base = [args.sluice_convert, '--line', '--meters', meters, '--event-definitions', events_defs]
    for extra, out in (([], s_s), (['--events'], s_e)):
        p = run(base + extra, input_path, out)
        if p.returncode not in (0, 1):
            fail('sluice-convert %s failed (%d):\n%s' % (' '.join(extra), p.returncode,
                                                       p.stderr[-2000:]))

    want = collections.defaultdict(lambda: {'samples': [], 'events': []})
    got = collections.defaultdict(lambda: {'samples': [], 'events': []})
    for kind, path in (('samples', o_s), ('events', o_e)):
        for rec in load(path):
            line = rec.pop('line')
            if kind == 'samples' and rec.get('name') == IDENTITY_NAME:
                # the documented deviation: sluice evaluates the name
                m = msgs.get(line) or {}
                outcome = (m.get('payload') or {}).get('outcome') \
                    if isinstance(m.get('payload'), dict) else None
                if isinstance(outcome, str):
                    rec['name'] = 'identity.authenticate.' + outcome
            want[line][kind].append(rec)
    stray = 0
    for kind, path in (('samples', s_s), ('events', s_e)):
        for rec in load(path):
            # paired by input line (notifications without a message_id
            # convert too); the message_id must still be the input's
            line = rec.pop('line', None)
            m = msgs.get(line)
            if m is None or rec.get('message_id') != m.get('message_id'):
                stray += 1
                continue
            got[line][kind].append(rec)

    stats = collections.defaultdict(lambda: [0, 0, 0])    # type -> [n, samples ok, events ok]
    diffs = []
    bad = 0
    for line in sorted(msgs):
        m = msgs[line] or {}
        et = m.get('event_type') if isinstance(m.get('event_type'), str) else '(none)'
        st = stats[et]
        st[0] += 1
        ok_all = True
        for kind, col in (('samples', 1), ('events', 2)):
            w, g = want[line][kind], got[line][kind]
            ok = len(w) == len(g) and all(same(x, y) for x, y in zip(w, g))
            if ok:
                st[col] += 1
                continue
            ok_all = False
            d = ['  %s line %d (%s, message_id %s): %d %s from Ceilometer, %d from sluice' % (
                name, line, et, m.get('message_id'), len(w), kind, len(g), )]
            if len(w) != len(g):
                key = 'name' if kind == 'samples' else 'event_type'
                d.append('    ceilometer: %s' % ', '.join(str(x.get(key)) for x in w))
                d.append('    sluice:     %s' % ', '.join(str(x.get(key)) for x in g))
            else:
                for i, (x, y) in enumerate(zip(w, g)):
                    if not same(x, y):
                        d.append('    %s #%d (%s):' % (kind[:-1], i, x.get('name',
                                                                       x.get('event_type'))))
                        d.extend(field_diff(x, y))
            diffs.append('\n'.join(d))
        if not ok_all:
            bad += 1
    if stray:
        diffs.append('  %s: %d sluice outputs not paired with their input line (line or '
                     'message_id wrong)' % (name, stray))
        bad += 1
    return len(msgs), bad, stats, diffs


def report(name, n, bad, stats):
    print('\n%s: %d notifications, %d with a difference' % (name, n, bad))
    print('  %-44s %6s %10s %10s' % ('event_type', 'notifs', 'samples', 'events'))
    for et in sorted(stats):
        c, s, e = stats[et]
        print('  %-44s %6d %9.1f%% %9.1f%%' % (et[:44], c, 100.0 * s / c, 100.0 * e / c))
    tot = [sum(v[i] for v in stats.values()) for i in range(3)]
    if tot[0]:
        print('  %-44s %6d %9.1f%% %9.1f%%' % ('ALL', tot[0], 100.0 * tot[1] / tot[0],
                                              100.0 * tot[2] / tot[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sluice-convert', required=True)
    ap.add_argument('--src', default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    ap.add_argument('--n', type=int, default=int(os.environ.get('SLUICE_CONFORMANCE_N', 3000)))
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--keep', help='keep the inputs and outputs in this directory')
    ap.add_argument('--max-diffs', type=int, default=15)
    args = ap.parse_args()
    if args.seed is None and os.environ.get('SLUICE_CONFORMANCE_SEED'):
        args.seed = int(os.environ['SLUICE_CONFORMANCE_SEED'])
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
    print('conformance: seed %d (rerun with --seed %d or SLUICE_CONFORMANCE_SEED=%d), '
          '%d random notifications' % (seed, seed, seed, args.n))
    sys.stdout.flush()
    meters, event_defs = stock_files()
    tmp = None
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        work = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix='sluice-conformance-')
        work = tmp.name
    gen_path = os.path.join(work, 'random.jsonl')
    with open(gen_path, 'w') as out:
        p = subprocess.run([PY, os.path.join(args.src, 'tests', 'oracle', 'gen.py'),
                            str(args.n), '--seed', str(seed), '--corpus',
                            os.path.join(args.src, 'tests', 'data', 'corpus.jsonl')],
                           stdout=out, stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode != 0:
        fail('the generator failed:\n%s' % p.stderr[-2000:])
    total_bad = 0
    all_diffs = []
    for name, path in (('corpus', os.path.join(args.src, 'tests', 'data', 'corpus.jsonl')),
                       ('random', gen_path)):
        n, bad, stats, diffs = compare(name, path, work, args, meters, event_defs)
        report(name if name == 'corpus' else 'random (seed %d)' % seed, n, bad, stats)
        total_bad += bad
        all_diffs.extend(diffs)
    if total_bad:
        print('\nconformance: %d differences; the first %d:' % (len(all_diffs),
                                                               min(args.max_diffs, len(all_diffs))))
        for d in all_diffs[:args.max_diffs]:
            print(d)
        if args.keep:
            print('inputs and outputs kept in %s' % work)
        fail('sluice differs from Ceilometer 19 (seed %d)' % seed)
    print('\nconformance: OK, sluice matches Ceilometer 19 on every notification (seed %d)' % seed)


if __name__ == '__main__':
    main()

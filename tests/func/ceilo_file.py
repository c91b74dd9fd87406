#!/usr/bin/python3
"""Runs Ceilometer 19's own FilePublisher (Debian's python3-ceilometer) on
the records sluice's file:// publisher wrote, so that the two outputs can
be compared byte for byte.

  ceilo_file.py --samples S.jsonl [--events E.jsonl] --url FILE_URL [--events-url URL]

S.jsonl is what sluice's file publisher wrote for samples (its default
format: one JSON object per line, with sluice's message_id), E.jsonl what
it wrote for events ({"event_type", "generated", "message_id",
"traits": [[name, dtype, value], ...]}, optionally "raw"). Each record is
turned back into the object Ceilometer's pipeline hands its publishers:
ceilometer.sample.Sample (same id, volume as the JSON value, no message_id:
Ceilometer 19's Sample has none) and ceilometer.event.models.Event
(generated and datetime traits as naive UTC datetimes, as the converter's
normalize_time(parse_isotime()) makes them; raw = the record's raw or {}).
Then FilePublisher(url).publish_samples(all samples) and
publish_events(all events) write whatever Ceilometer writes. A publisher
call that raises is reported on stderr as "publish_events raised
TypeError: ..." and the script goes on (exit 0); exit 1 only when the
input cannot be read.
"""
import argparse
import datetime
import json
import sys
from urllib import parse as urlparse

try:
    from ceilometer.event import models
    from ceilometer.publisher import file as ceilo_file
    from ceilometer import sample as ceilo_sample
except ImportError:
    if sys.executable != '/usr/bin/python3':
        import os
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    raise


def naive_utc(text):
    from oslo_utils import timeutils
    return timeutils.normalize_time(timeutils.parse_isotime(text))


def to_sample(d):
    return ceilo_sample.Sample(
        name=d['name'], type=d['type'], unit=d['unit'], volume=d['volume'],
        user_id=d['user_id'], project_id=d['project_id'], resource_id=d['resource_id'],
        timestamp=d['timestamp'], resource_metadata=d['resource_metadata'],
        source=d['source'], id=d['id'], monotonic_time=d.get('monotonic_time'))


def to_event(d):
    traits = []
    for name, dtype, value in d['traits']:
        if dtype == models.Trait.DATETIME_TYPE and isinstance(value, str):
            value = naive_utc(value)
        traits.append(models.Trait(name, dtype, value))
    return models.Event(d['message_id'], d['event_type'], naive_utc(d['generated']), traits,
                        d.get('raw', {}))


def read(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--samples', required=True)
    ap.add_argument('--events')
    ap.add_argument('--url', required=True, help='file:// URL for the samples')
    ap.add_argument('--events-url', help='file:// URL for the events (default: --url)')
    ap.add_argument('--serialize-events', metavar='PATH',
                    help='also write json.dumps(Event.serialize()) per event to PATH (what '
                    "Ceilometer's http/zaqar publishers send; not a FilePublisher output)")
    a = ap.parse_args()
    try:
        samples = [to_sample(d) for d in read(a.samples)]
        events = [to_event(d) for d in read(a.events)] if a.events else []
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write('ceilo_file: cannot read the input: %s\n' % e)
        return 1
    pub = ceilo_file.FilePublisher(None, urlparse.urlparse(a.url))
    try:
        pub.publish_samples(samples)
    except Exception as e:  # what Ceilometer's pipeline would log and go past
        sys.stderr.write('publish_samples raised %s: %s\n' % (type(e).__name__, e))
    if events:
        if a.events_url and a.events_url != a.url:
            pub = ceilo_file.FilePublisher(None, urlparse.urlparse(a.events_url))
        try:
            pub.publish_events(events)
        except Exception as e:
            sys.stderr.write('publish_events raised %s: %s\n' % (type(e).__name__, e))
    if a.serialize_events:
        with open(a.serialize_events, 'w', encoding='utf-8') as f:
            for e in events:
                f.write(json.dumps(e.serialize()) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

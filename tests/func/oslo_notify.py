#!/usr/bin/python3
"""Send notifications with oslo.messaging's own Notifier, as nova, glance or
neutron do (driver messagingv2, envelope 2.0, topic 'notifications').

  oslo_notify.py --url rabbit://guest:guest@127.0.0.1:PORT/ --input FILE.jsonl
      [--exchanges nova,glance,neutron] [--priorities info,sample,error,...]
      [--topics notifications] [--rate N] [--count N] [--ids FILE]
      [--sent FILE] [--durable] [--quorum] [--retry N]
      [--ssl-ca-file F [--ssl-cert-file F --ssl-key-file F]]

Input: one notification per line in oslo's wire form as
/work/shared/ceilometer/gen.py writes it (the inner message: event_type,
payload, publisher_id, priority, message_id, timestamp, _context_*,
_unique_id), or its v2 envelope ({"oslo.version", "oslo.message"}).
Notification i (0-based; with --count larger than the file, the lines are
sent again from the top) goes through the Notifier of exchange
exchanges[i % len] with priority priorities[i % len] (default: the line's
own priority), i.e. the Notifier method info / sample / error / warn /
audit / critical / debug, with the line's event_type, payload and
publisher_id, and a context rebuilt from its _context_* keys.

What is achievable, and what this script does about it:
- The exchange is the transport's control_exchange (oslo's Target of a
  notification never names one): the script makes one transport per
  exchange, each from its own ConfigOpts with control_exchange overridden.
- oslo regenerates message_id (uuid4), timestamp (utcnow) and _unique_id,
  and keeps only the "safe" context keys (_sanitize_context drops
  auth_token, service_catalog, ...). The Notifier hands its message dict to
  transport._send_notification, and the AMQP driver completes that very
  dict in place (_unique_id, _context_*) before serialising it; the script
  wraps _send_notification of each transport, so after each send it has
  exactly the message that went on the wire:
    --ids FILE   one JSON line per sent notification: n (input index),
                 message_id and timestamp (oslo's, as on the wire),
                 unique_id, exchange, priority, event_type, publisher_id,
                 input_message_id (the line's own message_id).
    --sent FILE  the wire messages themselves, one per line, in gen.py's
                 form: replaying this file through any other sluice source
                 gives the same samples as the broker path, message_id and
                 timestamp included.
- The Notifier swallows delivery errors (it only logs them); the wrapper
  sees them first and counts them: exit status 1 if any send failed.
  oslo publishes with publisher confirms (confirm_publish) and persistent
  delivery mode: when a send returned, the broker has the message.
- Queues: oslo declares <topic>.<priority> on first use (durable if
  --durable, i.e. amqp_durable_queues; x-queue-type quorum if --quorum),
  so notifications sent before any consumer wait in the broker. A
  consumer must declare them with the same flags (or the broker refuses
  the second declaration with PRECONDITION_FAILED).
- --retry N: the Notifier's retry (default: oslo's, None = retry for ever:
  during a broker restart a send waits until the broker is back).

Prints one JSON line on stdout at the end: n, failed, t_first, t_last.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_testlog  # noqa: E402
sluice_testlog.debian_python()
import oslo_messaging  # noqa: E402
from oslo_config import cfg
from oslo_messaging import transport as om_transport
from oslo_messaging._drivers import amqp as om_amqp
from oslo_messaging._drivers import impl_rabbit

METHODS = {'info': 'info', 'sample': 'sample', 'error': 'error',
           'warn': 'warn', 'warning': 'warn', 'audit': 'audit',
           'critical': 'critical', 'debug': 'debug'}


def load(fn):
    msgs = []
    with open(fn) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            if 'oslo.message' in d:
                d = json.loads(d['oslo.message'])
            ctxt = dict((k[9:], v) for k, v in d.items()
                        if k.startswith('_context_'))
            msgs.append({'publisher_id': d.get('publisher_id'),
                         'priority': (d.get('priority') or 'info').lower(),
                         'ctxt': ctxt, 'event_type': d['event_type'],
                         'payload': d.get('payload'),
                         'message_id': d.get('message_id')})
    return msgs


class Sender(object):
    """One transport + Notifier for one exchange; records what went on the
    wire and whether it failed."""

    def __init__(self, a, exchange):
        self.exchange = exchange
        conf = cfg.ConfigOpts()
        conf([], project='sluice-oslo-notify')
        conf.register_opts(om_transport._transport_opts)
        conf.set_override('control_exchange', exchange)
        grp = 'oslo_messaging_rabbit'
        conf.register_opts(impl_rabbit.rabbit_opts, group=grp)
        conf.register_opts(om_amqp.amqp_opts, group=grp)
        if a.durable:
            conf.set_override('amqp_durable_queues', True, group=grp)
        if a.quorum:
            conf.set_override('rabbit_quorum_queue', True, group=grp)
        if a.ssl_ca_file or a.url.startswith('amqps://'):
            conf.set_override('ssl', True, group=grp)
            if a.ssl_ca_file:
                conf.set_override('ssl_ca_file', a.ssl_ca_file, group=grp)
            if a.ssl_cert_file:
                conf.set_override('ssl_cert_file', a.ssl_cert_file, group=grp)
            if a.ssl_key_file:
                conf.set_override('ssl_key_file', a.ssl_key_file, group=grp)
        url = a.url
        if url.startswith('amqps://'):
            url = 'rabbit://' + url[len('amqps://'):]
        elif url.startswith('amqp://'):
            url = 'rabbit://' + url[len('amqp://'):]
        self.transport = oslo_messaging.get_notification_transport(conf,
                                                                   url=url)
        self.last = None
        self.error = None
        orig = self.transport._send_notification

        def send(target, ctxt, message, version, retry=None):
            self.last, self.error = None, None
            try:
                r = orig(target, ctxt, message, version, retry=retry)
            except Exception as e:
                self.error = e
                raise
            self.last = message   # completed in place by the driver
            return r
        self.transport._send_notification = send
        self.notifier = oslo_messaging.Notifier(
            self.transport, driver='messagingv2', topics=a.topics,
            retry=a.retry)
        self.subs = {}

    def send(self, m, prio):
        pub = m['publisher_id']
        n = self.subs.get(pub)
        if n is None:
            n = self.subs[pub] = self.notifier.prepare(publisher_id=pub)
        self.last, self.error = None, None
        getattr(n, METHODS[prio])(m['ctxt'], m['event_type'], m['payload'])
        if self.error is not None or self.last is None:
            return None, self.error or 'nothing was sent'
        return self.last, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--url', required=True)
    ap.add_argument('--input', required=True)
    ap.add_argument('--exchanges', default='nova')
    ap.add_argument('--priorities', default='',
                    help='comma list; default: each line\'s own priority')
    ap.add_argument('--topics', default='notifications')
    ap.add_argument('--rate', type=float, default=0,
                    help='notifications per second (0: as fast as possible)')
    ap.add_argument('--count', type=int, default=0,
                    help='how many to send (default: the input\'s lines)')
    ap.add_argument('--ids', help='one JSON line per sent notification')
    ap.add_argument('--sent', help='the wire messages, one per line')
    ap.add_argument('--durable', action='store_true')
    ap.add_argument('--quorum', action='store_true')
    ap.add_argument('--retry', type=int, default=None)
    ap.add_argument('--ssl-ca-file')
    ap.add_argument('--ssl-cert-file')
    ap.add_argument('--ssl-key-file')
    a = ap.parse_args()
    a.topics = [t for t in a.topics.split(',') if t]
    sluice_testlog.setup('oslo_notify')
    msgs = load(a.input)
    if not msgs:
        sys.exit('oslo_notify: %s has no notification' % a.input)
    exchanges = [e for e in a.exchanges.split(',') if e]
    prios = [p.lower() for p in a.priorities.split(',') if p]
    for p in prios:
        if p not in METHODS:
            sys.exit('oslo_notify: unknown priority %r' % p)
    senders = dict((e, Sender(a, e)) for e in exchanges)
    count = a.count or len(msgs)
    ids = open(a.ids, 'w') if a.ids else None
    sent = open(a.sent, 'w') if a.sent else None
    failed = 0
    t_first = time.time()
    t0 = time.monotonic()
    for i in range(count):
        if a.rate > 0:
            delay = t0 + i / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        m = msgs[i % len(msgs)]
        ex = exchanges[i % len(exchanges)]
        prio = prios[i % len(prios)] if prios else m['priority']
        if prio not in METHODS:
            prio = 'info'
        wire, err = senders[ex].send(m, prio)
        if err is not None:
            failed += 1
            sys.stderr.write('oslo_notify: notification %d (%s to %s) '
                             'failed: %s\n' % (i, m['event_type'], ex, err))
            continue
        if ids:
            ids.write(json.dumps({
                'n': i, 'message_id': wire.get('message_id'),
                'timestamp': wire.get('timestamp'),
                'unique_id': wire.get('_unique_id'), 'exchange': ex,
                'priority': wire.get('priority'),
                'event_type': wire.get('event_type'),
                'publisher_id': wire.get('publisher_id'),
                'input_message_id': m['message_id']}) + '\n')
            ids.flush()
        if sent:
            sent.write(json.dumps(wire) + '\n')
            sent.flush()
    t_last = time.time()
    for s in senders.values():
        s.transport.cleanup()
    for f in (ids, sent):
        if f:
            f.close()
    print(json.dumps({'n': count - failed, 'failed': failed,
                      't_first': t_first, 't_last': t_last}))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

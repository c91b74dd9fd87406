#!/usr/bin/python3
"""Read notifications back with oslo.messaging's own notification listener,
as a Ceilometer collector or any OpenStack consumer would.

  oslo_listen.py --url rabbit://guest:guest@127.0.0.1:PORT/ --out FILE
      [--exchange ceilometer] [--topics metering] [--priorities sample]
      [--count N] [--timeout S] [--per-item] [--durable] [--pool NAME]
      [--ready FILE]

Defaults match Ceilometer's notifier:// publisher
(ceilometer/publisher/messaging.py, Zed): control exchange 'ceilometer'
(ceilometer.messaging sets it), topic 'metering' (events: topic 'event'),
sent with Notifier.sample(), so priority 'sample' and queue
'metering.sample'; the notification's event_type is the topic name
('metering' / 'event'), publisher_id 'telemetry.publisher.<host>', and the
payload is a list of samples (meter messages) or events.

Each notification received is written as one JSON line: priority,
publisher_id, event_type, payload, metadata (message_id, timestamp). With
--per-item a notification whose payload is a list gives one line per
element instead (the same keys, payload = the element), and --count counts
those lines. Stops after --count lines (0: only at --timeout) or when
--timeout seconds passed without reaching it; exit 0 if the count was
reached (or none was asked), 1 otherwise. The listener declares its queues
(<topic>.<priority>, bound to the exchange) before --ready FILE is
created: start the publisher after that, or nothing published before is
kept unless the publisher declares the queues itself (oslo's Notifier does).
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_testlog  # noqa: E402
sluice_testlog.debian_python()
import oslo_messaging  # noqa: E402
from oslo_config import cfg
from oslo_messaging import transport as om_transport
from oslo_messaging._drivers import amqp as om_amqp
from oslo_messaging._drivers import impl_rabbit

PRIORITIES = ('audit', 'critical', 'debug', 'error', 'info', 'sample',
              'warn')


class Sink(object):
    def __init__(self, path, per_item, count):
        self.f = open(path, 'w')
        self.per_item = per_item
        self.count = count
        self.n = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def put(self, priority, publisher_id, event_type, payload, metadata):
        items = payload if self.per_item and isinstance(payload, list) \
            else [payload]
        with self.lock:
            for p in items:
                self.f.write(json.dumps({
                    'priority': priority, 'publisher_id': publisher_id,
                    'event_type': event_type, 'payload': p,
                    'metadata': metadata}) + '\n')
                self.n += 1
            self.f.flush()
            if self.count and self.n >= self.count:
                self.done.set()


def endpoint_for(sink, priorities):
    """An endpoint with one method per wanted priority: oslo's dispatcher
    listens to <topic>.<priority> for exactly those methods."""
    ns = {}
    for p in priorities:
        def handler(self, ctxt, publisher_id, event_type, payload, metadata,
                    _p=p):
            sink.put(_p, publisher_id, event_type, payload, metadata)
            return oslo_messaging.NotificationResult.HANDLED
        ns[p] = handler
    return type('Endpoint', (object,), ns)()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--url', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--exchange', default='ceilometer')
    ap.add_argument('--topics', default='metering')
    ap.add_argument('--priorities', default='sample')
    ap.add_argument('--count', type=int, default=0)
    ap.add_argument('--timeout', type=float, default=60)
    ap.add_argument('--per-item', action='store_true')
    ap.add_argument('--durable', action='store_true',
                    help='amqp_durable_queues (must match the publisher)')
    ap.add_argument('--pool', default=None)
    ap.add_argument('--ready', help='file created once the queues exist')
    a = ap.parse_args()
    sluice_testlog.setup('oslo_listen')
    prios = [p.lower() for p in a.priorities.split(',') if p]
    for p in prios:
        if p not in PRIORITIES:
            sys.exit('oslo_listen: unknown priority %r' % p)
    conf = cfg.ConfigOpts()
    conf([], project='sluice-oslo-listen')
    conf.register_opts(om_transport._transport_opts)
    conf.set_override('control_exchange', a.exchange)
    grp = 'oslo_messaging_rabbit'
    conf.register_opts(impl_rabbit.rabbit_opts, group=grp)
    conf.register_opts(om_amqp.amqp_opts, group=grp)
    if a.durable:
        conf.set_override('amqp_durable_queues', True, group=grp)
    transport = oslo_messaging.get_notification_transport(conf, url=a.url)
    sink = Sink(a.out, a.per_item, a.count)
    targets = [oslo_messaging.Target(exchange=a.exchange, topic=t)
               for t in a.topics.split(',') if t]
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [endpoint_for(sink, prios)],
        executor='threading', pool=a.pool)
    listener.start()   # declares and binds the queues before returning
    if a.ready:
        open(a.ready, 'w').close()
    sink.done.wait(a.timeout)
    listener.stop()
    listener.wait()
    transport.cleanup()
    sink.f.close()
    ok = not a.count or sink.n >= a.count
    print(json.dumps({'received': sink.n, 'count': a.count, 'ok': ok}))
    if not ok:
        sys.stderr.write('oslo_listen: %d of %d within %g s\n' % (
            sink.n, a.count, a.timeout))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""Ceilometer 19 as a reference: notifications in, what its pipelines publish out.

Usage (Debian's interpreter, with python3-ceilometer installed):
  ceilometer_oracle.py [--meters FILE] [--event-definitions FILE]
                       [--samples OUT] [--events OUT] < notifications.jsonl

Each input line is one notification: the oslo wire message or its v2
envelope ({"oslo.version": "2.0", "oslo.message": "<json>"}). It goes
through the code the notification agent runs: the rabbit driver's
envelope and context handling (oslo_messaging._drivers.common /
amqp.unpack_context), oslo's BatchNotificationDispatcher with batch size 1
over the endpoints Ceilometer's own pipeline managers build (every
`ceilometer.sample.endpoint` for samples, the EventEndpoint for events), and
pipelines whose single source takes everything and whose sink is the
`test://` publisher. What reaches the publisher is written as JSON Lines:

  samples: message_id (of the input), name, type, unit, volume, user_id,
           project_id, resource_id, timestamp, resource_metadata, source
  events:  event_type, message_id, generated, traits [[name, dtype, value]]

with sorted keys, one object per line, plus "line": the input line number
(1-based), so that a comparer can pair outputs with inputs. A line that is
not JSON is reported on stderr and skipped. Ceilometer's own log goes to
stderr.
"""
import argparse
import json
import logging
import os
import sys
import tempfile

import ceilometer
from ceilometer import service
from ceilometer.pipeline import event as event_pipeline
from ceilometer.pipeline import sample as sample_pipeline
from oslo_messaging._drivers import amqp
from oslo_messaging._drivers import common as driver_common
from oslo_messaging.notify import dispatcher

PKG = os.path.dirname(ceilometer.__file__)


def _pipeline_yaml(kind):
    key = 'meters' if kind == 'sample' else 'events'
    return ('sources:\n  - name: all\n    %s: ["*"]\n    sinks: [out]\n'
            'sinks:\n  - name: out\n    publishers: ["test://"]\n' % key)


class Incoming(object):
    """The two attributes a dispatcher reads from a received message."""

    def __init__(self, ctxt, message):
        self.ctxt = ctxt
        self.message = message


class Agent(object):
    """One pipeline manager (samples or events) and its dispatcher."""

    def __init__(self, conf, kind):
        if kind == 'sample':
            self.manager = sample_pipeline.SamplePipelineManager(conf)
        else:
            self.manager = event_pipeline.EventPipelineManager(conf)
        self.kind = kind
        self.sink = self.manager.pipelines[0].sink.publishers[0]
        self.dispatcher = dispatcher.BatchNotificationDispatcher(
            self.manager.get_main_endpoints(), None)

    def run(self, wire_message):
        msg = dict(wire_message)
        # rabbit driver: unpack the context, drop the unique id
        ctxt = amqp.unpack_context(msg).to_dict()
        msg.pop(amqp.UNIQUE_ID, None)
        self.dispatcher.dispatch([Incoming(ctxt, msg)])
        got = self.sink.samples if self.kind == 'sample' else self.sink.events
        out = list(got)
        del got[:]
        return out


def sample_record(s, message_id):
    return {'message_id': message_id, 'name': s.name, 'type': s.type, 'unit': s.unit,
            'volume': s.volume, 'user_id': s.user_id, 'project_id': s.project_id,
            'resource_id': s.resource_id, 'timestamp': s.timestamp,
            'resource_metadata': s.resource_metadata, 'source': s.source}


def event_record(e):
    d = e.serialize()
    return {'event_type': d['event_type'], 'message_id': d['message_id'],
            'generated': d['generated'], 'traits': [list(t) for t in d['traits']]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--meters', help='a meters.yaml (default: the package\'s)')
    ap.add_argument('--event-definitions', help='an event_definitions.yaml '
                    '(default: the package\'s)')
    ap.add_argument('--samples', help='write samples here')
    ap.add_argument('--events', help='write events here')
    a = ap.parse_args()
    if not a.samples and not a.events:
        ap.error('nothing to do: give --samples and/or --events')
    tmp = tempfile.TemporaryDirectory(prefix='sluice-oracle-')
    meters_dir = os.path.join(PKG, 'data', 'meters.d')
    if a.meters:
        meters_dir = os.path.join(tmp.name, 'meters.d')
        os.mkdir(meters_dir)
        with open(a.meters) as src, open(os.path.join(meters_dir, 'meters.yaml'), 'w') as dst:
            dst.write(src.read())
    event_defs = a.event_definitions or os.path.join(
        PKG, 'pipeline', 'data', 'event_definitions.yaml')
    paths = {}
    for kind in ('sample', 'event'):
        paths[kind] = os.path.join(tmp.name, kind + '_pipeline.yaml')
        with open(paths[kind], 'w') as f:
            f.write(_pipeline_yaml(kind))
    conf_file = os.path.join(tmp.name, 'ceilometer.conf')
    with open(conf_file, 'w') as f:
        f.write('[DEFAULT]\nuse_stderr = true\npipeline_cfg_file = %s\n'
                'event_pipeline_cfg_file = %s\n[meter]\nmeter_definitions_dirs = %s\n'
                '[event]\ndefinitions_cfg_file = %s\n'
                % (paths['sample'], paths['event'], os.path.abspath(meters_dir),
                   os.path.abspath(event_defs)))
    conf = service.prepare_service(argv=['sluice-oracle'], config_files=[conf_file])
    logging.getLogger().setLevel(logging.CRITICAL + 1)
    agents = []
    if a.samples:
        agents.append((Agent(conf, 'sample'), open(a.samples, 'w')))
    if a.events:
        agents.append((Agent(conf, 'event'), open(a.events, 'w')))
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            # the driver's deserialize_msg: unwrap a v2 envelope
            msg = driver_common.deserialize_msg(raw)
            if not isinstance(msg, dict):
                raise ValueError('not an object')
        except Exception as e:
            sys.stderr.write('oracle: line %d: %s\n' % (lineno, e))
            continue
        for agent, out in agents:
            for obj in agent.run(msg):
                rec = (sample_record(obj, msg.get('message_id')) if agent.kind == 'sample'
                       else event_record(obj))
                rec['line'] = lineno
                out.write(json.dumps(rec, sort_keys=True, default=str) + '\n')
    for _, out in agents:
        out.close()


if __name__ == '__main__':
    main()

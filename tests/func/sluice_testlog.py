"""Logging for the oslo.messaging test scripts (oslo_notify.py,
oslo_listen.py): warnings on stderr, one line each, prefixed with the
script's name. oslo logs each failed send with its payload and two
tracebacks: keep the message (cut to 300 characters), drop the
tracebacks."""
import logging
import sys


def _short_records(record):
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    return True


def setup(prog):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=prog + ': %(levelname)s %(name)s: %(message).300s')
    for h in logging.getLogger().handlers:
        h.addFilter(_short_records)

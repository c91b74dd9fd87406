"""What the oslo.messaging test scripts (oslo_notify.py, oslo_listen.py)
share: running under Debian's interpreter, which has oslo.messaging, and
logging (warnings on stderr, one line each, prefixed with the script's
name; oslo logs each failed send with its payload and two tracebacks: keep
the message, cut to 300 characters, drop the tracebacks)."""
import logging
import os
import sys


def debian_python():
    """Re-executes the script under /usr/bin/python3 when the python
    running it (a pyenv shim first on PATH) cannot import oslo.messaging."""
    try:
        import oslo_messaging  # noqa: F401
    except ImportError:
        deb = '/usr/bin/python3'
        if os.path.realpath(sys.executable) != os.path.realpath(deb) and \
                os.path.exists(deb):
            os.execv(deb, [deb] + sys.argv)
        raise


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

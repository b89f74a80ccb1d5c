"""moto_server, handling one request at a time.

Under moto's threaded server, DynamoDB TransactWriteItems is neither atomic
nor isolated: it applies its items one by one while other requests run, and
when a transaction is cancelled it restores a deep copy of the whole table
taken when the transaction began, silently undoing writes that other requests
committed in between. Two racing creates can then both claim one userName, or
a committed write can vanish. Real DynamoDB transactions are serializable.

Connections are still accepted concurrently, but requests are processed under
one lock, so every API call is atomic as it is in AWS (races between the
calls of one SCIM request, which are what the tests exercise, still happen).
moto holds the GIL for nearly all of a request anyway, so this costs little.

Started by scripts/emulator.sh; takes moto_server's arguments.
"""

import sys
import threading

import moto.server

_lock = threading.Lock()
_run_simple = moto.server.run_simple


def _serialized(app):
    def handle(environ, start_response):
        with _lock:
            # Produce the whole response inside the lock: WSGI apps may be lazy.
            return list(app(environ, start_response))

    return handle


def _run_simple_serialized(hostname, port, application, *args, **kwargs):
    return _run_simple(hostname, port, _serialized(application), *args, **kwargs)


moto.server.run_simple = _run_simple_serialized

if __name__ == "__main__":
    sys.exit(moto.server.main())

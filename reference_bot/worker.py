"""gunicorn's threaded worker, its own error answers in JSON like every other answer of the bot.

gunicorn answers by itself what it cannot hand to the app (a request line over 4,094 bytes: 414; more than 100
header fields or one over 8,190 bytes: 431; a request it cannot parse, raw bytes in a path: 400), as an HTML
page. A caller that reads JSON (iAdvize, the harness, a fuzzer checking the OpenAPI) then gets a page it cannot
read: this worker words the same status, reason and message as JSON.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, in JSON: ``{"error": reason, "detail": message}``, the connection closed."""
    body = json.dumps({"error": reason.lower(), "detail": mesg}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorsWorker(ThreadWorker):
    """The ``gthread`` worker whose own errors are JSON."""

    def init_process(self):
        """Makes gunicorn's error writer the JSON one in this worker's process, then runs the worker."""
        # gunicorn words its errors, then writes them with util.write_error: the wording, and which error
        # gets which status, stay gunicorn's
        util.write_error = write_json_error
        super().init_process()

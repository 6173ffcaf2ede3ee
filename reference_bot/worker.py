"""gunicorn's threaded worker, made to face callers the bot does not trust: its own error answers in JSON like
every other answer of the bot, and a request handed to a thread only once its line and headers have arrived.

gunicorn answers by itself what it cannot hand to the app (a request line over 4,094 bytes: 414; more than 100
header fields or one over 8,190 bytes: 431; a request it cannot parse, raw bytes in a path: 400), as an HTML
page. A caller that reads JSON (iAdvize, the harness, a fuzzer checking the OpenAPI) then gets a page it cannot
read: this worker words the same status, reason and message as JSON.

gunicorn's threaded worker gives a new connection a thread at once, which then waits for its headers: a handful
of clients that trickle theirs (one byte a second) hold every thread, and the health check and iAdvize's polls
go unanswered. This worker reads a new connection's headers in its event loop instead, without blocking, and
drops one whose headers have not all arrived within :data:`HEADERS_SECONDS`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import selectors
import time
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

HEADERS_SECONDS = 5.0  # iAdvize sends a request at once: its line and headers arrive in milliseconds
HEADERS_BYTES = 64 * 1024  # past this, the parser decides (a 431 for too many or too long headers)


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, in JSON: ``{"error": reason, "detail": message}``, the connection closed."""
    body = json.dumps({"error": reason.lower(), "detail": mesg}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorsWorker(ThreadWorker):
    """The ``gthread`` worker whose own errors are JSON and whose threads wait for no client's headers."""

    def init_process(self):
        """Makes gunicorn's error writer the JSON one in this worker's process, then runs the worker."""
        # gunicorn words its errors, then writes them with util.write_error: the wording, and which error
        # gets which status, stay gunicorn's
        util.write_error = write_json_error
        self.heading: dict[TConn, list] = {}  # connection -> [deadline, the bytes of its head so far]
        super().init_process()

    def accept(self, listener):
        """Accepts a connection and reads its head in the event loop: no thread yet."""
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client.setblocking(False)
        conn = TConn(self.cfg, client, address, listener.getsockname())
        self.heading[conn] = [time.monotonic() + HEADERS_SECONDS, b""]
        self.poller.register(client, selectors.EVENT_READ, partial(self._head_arrives, conn))

    def _head_arrives(self, conn: TConn, client) -> None:
        """Reads what arrived of a new connection's head; once it is whole, hands the connection to a thread,
        what was read put back for the request parser."""
        state = self.heading.get(conn)
        if state is None:
            return
        try:
            data = client.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client left
            return self._drop(conn)
        state[1] += data
        if b"\r\n\r\n" in state[1] or len(state[1]) > HEADERS_BYTES:
            self.poller.unregister(client)
            del self.heading[conn]
            conn.init()  # the request parser, on the socket made blocking again for the thread
            conn.parser.unreader.unread(state[1])
            self.enqueue_req(conn)

    def murder_keepalived(self, force=False):
        """gunicorn's round of closing idle kept-alive connections, and the connections whose head is late."""
        super().murder_keepalived(force)
        now = time.monotonic()
        for conn, (deadline, _) in list(self.heading.items()):
            if force or deadline < now:
                self._drop(conn)

    def _drop(self, conn: TConn) -> None:
        self.heading.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

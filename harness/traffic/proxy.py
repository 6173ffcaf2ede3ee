"""``iadvize-harness proxy``: a recording reverse proxy to put between iAdvize and a bot in staging.

Each request is forwarded byte for byte (the ``X-iAdvize-Signature`` header included, so
the bot still verifies it) over a kept-alive connection, and the answer returned as it
came. The exchange is handed to a recorder thread through a bounded queue: writing never
delays the answer, and a recorder that fails (a full disk) never breaks the forwarding.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import queue
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from harness.traffic.recordings import endpoint_of
from harness.wire.record_format import VERSION, RecordingWriter, utc_iso
from harness.wire.redact import Redactor

log = logging.getLogger("harness.traffic.proxy")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
TIMEOUT_SECONDS = 30.0  # above iAdvize's 10 s: the proxy never cuts an answer iAdvize would still wait for
MAX_BODY_BYTES = 10 * 1024 * 1024  # iAdvize's calls are small; anything near this is not one of them
# A client that sends nothing for this long (a half-open connection, headers trickled) is dropped: its
# thread is freed. iAdvize sends a whole request at once.
CLIENT_TIMEOUT_SECONDS = 15.0
MAX_CLIENTS = 64  # connections served at once; more are answered 503 at once, not given a thread each
# An answer up to this size is read whole and recorded; a larger one is passed on as it comes, unrecorded
# (its size noted instead): iAdvize reads 5 MB of an answer at most, and the proxy holds no more than this.
RECORDED_ANSWER_BYTES = 5 * 1024 * 1024
STREAM_CHUNK = 64 * 1024
REFUSED = (401, 403, 413)  # the bot refused the call: a bad signature, an address not allowed, a body too large
_CONVERSATION = re.compile(r"^/conversations/([^/?]+)/messages")
_OPERATOR = re.compile(r"^/bots/([^/?]+)")


def _ids(path: str, body: bytes) -> tuple[str | None, str | None]:
    """The conversation and operator of an exchange, from its path or its JSON body."""
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {}
    document = document if isinstance(document, dict) else {}
    conversation = _CONVERSATION.match(path)
    operator = _OPERATOR.match(path)
    query_operator = re.search(r"[?&]idOperator=([^&]+)", path)
    return (
        conversation.group(1) if conversation else document.get("idConversation"),
        operator.group(1)
        if operator
        else document.get("idOperator") or (query_operator.group(1) if query_operator else None),
    )


class Recorder(threading.Thread):
    """Writes what the proxy saw, off the request path."""

    def __init__(self, writer: RecordingWriter, capacity: int = 10_000):
        super().__init__(name="proxy-recorder", daemon=True)
        self.writer, self.queue, self.dropped, self.failed = writer, queue.Queue(capacity), 0, 0
        self._seq: dict[str | None, int] = {}

    def offer(self, item: tuple) -> None:
        """Queues an exchange to record without blocking; with the queue full, it is lost and counted in ``dropped``."""
        try:
            self.queue.put_nowait(item)
        except queue.Full:  # the disk is slower than the traffic: lose a line, not a visitor's answer
            self.dropped += 1

    def run(self) -> None:
        """Writes each queued exchange as a line until ``close``; a failed write is logged and counted in ``failed``."""
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.writer.write(self._line(*item))
            except Exception:
                self.failed += 1
                log.exception("recording an exchange failed; forwarding goes on")
            finally:
                self.queue.task_done()

    def _line(self, method, path, body, status, answer, sent_at, latency_ms, error) -> dict:
        conversation, operator = _ids(path, body)
        seq = self._seq[conversation] = self._seq.get(conversation, -1) + 1
        return {
            "v": VERSION,
            "conversation": conversation,
            "operator": operator,
            "seq": seq,
            "endpoint": endpoint_of(method, path),
            "method": method,
            "path": path,
            "request": _json(body),
            "status": status,
            "response": _json(answer),
            "sent_at": sent_at,
            "latency_ms": latency_ms,
            "error": error,
        }

    def close(self) -> None:
        """Waits until every queued exchange is written, then tells the thread to end."""
        self.queue.join()
        self.queue.put(None)


def _json(data: bytes):
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


class RecordingProxy:
    """The recording reverse proxy in front of the bot at ``upstream``, recording into ``record_dir``.

    ``url`` is where it listens (port 0: a free port). Raises ValueError for an upstream that
    is not an http(s) URL.
    """

    def __init__(
        self,
        upstream: str,
        record_dir: str,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_personal_data: bool = False,
        retention_days: float | None = None,
    ):
        target = urlsplit(upstream.rstrip("/"))
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ValueError(f"--upstream must be an http(s) URL, got {upstream!r}")
        self.target = target
        redactor = None if keep_personal_data else Redactor()
        self.recorder = Recorder(RecordingWriter(record_dir, "proxy", redactor=redactor, retention_days=retention_days))
        self.server = _BoundedServer((host, port), _handler(self))
        self.url = f"http://{host}:{self.server.server_port}"
        self._local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the bot, opened on first use."""
        if getattr(self._local, "connection", None) is None:  # one kept-alive connection per thread
            kind = http.client.HTTPSConnection if self.target.scheme == "https" else http.client.HTTPConnection
            self._local.connection = kind(self.target.hostname, self.target.port, timeout=TIMEOUT_SECONDS)
        return self._local.connection

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes):
        """Send upstream; returns (status, headers, the first :data:`RECORDED_ANSWER_BYTES` + 1 bytes of the
        answer, the response to read the rest from) or raises OSError / http.client errors."""
        target = (self.target.path or "") + path
        for attempt in (1, 2):  # a kept-alive connection the bot closed meanwhile is opened again, once
            connection = self.connection()
            try:
                connection.request(method, target, body=body or None, headers=dict(headers))
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read(RECORDED_ANSWER_BYTES + 1), response
            except (OSError, http.client.HTTPException) as failure:
                # Whatever happened (a timeout leaves it mid-request), this connection is spent.
                connection.close()
                self._local.connection = None
                retry = isinstance(failure, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
                if attempt == 2 or not retry:
                    raise
        raise AssertionError("unreachable")

    def serve_forever(self) -> None:
        """Serves in this thread until interrupted (the recorder writes from its own)."""
        self.recorder.start()
        self.server.serve_forever()

    def start(self) -> RecordingProxy:
        """Serves from a daemon thread and returns at once; ``close`` stops it."""
        self.recorder.start()
        # a short poll: close() waits for the serving loop to notice
        threading.Thread(target=self.server.serve_forever, args=(0.02,), name="proxy", daemon=True).start()
        return self

    def close(self) -> None:
        """Stops serving, writes what is still queued and closes the recording file."""
        self.server.shutdown()
        self.server.server_close()
        self.recorder.close()
        self.recorder.writer.close()


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most :data:`MAX_CLIENTS` at once: one more is answered 503 and closed."""

    daemon_threads = True

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Content-Length: 73\r\n\r\n{"error": "busy", "detail": "the proxy serves 64 connections at once: retry"}'
)


class _Refused(Exception):
    """A request body the proxy does not forward: the status and detail it answers instead."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _read_body(headers, rfile) -> bytes:
    """The request body, chunked or not; :class:`_Refused` when too large or of no length."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(rfile)
    declared = headers.get("Content-Length") or "0"
    if not declared.strip().isdigit():
        raise _Refused(400, f"Content-Length {declared!r} is not a length")
    if int(declared) > MAX_BODY_BYTES:
        raise _Refused(413, f"the body is over {MAX_BODY_BYTES} bytes")
    return rfile.read(int(declared))


def _read_chunked(rfile) -> bytes:
    """A chunked body, trailers skipped; ValueError when a chunk size is not hexadecimal."""
    chunks, size = [], 0
    while (length := int(rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
        size += length
        if size > MAX_BODY_BYTES:
            raise _Refused(413, f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(rfile.read(length))
        rfile.readline()
    while rfile.readline().strip():  # trailers, if any
        pass
    return b"".join(chunks)


def _upstream_headers(received, client: str) -> list[tuple[str, str]]:
    """The headers sent on to the bot: hop-by-hop ones left out, and ``X-Forwarded-For`` the address the proxy
    saw, alone. The proxy stands at the edge (iAdvize calls it): a chain a client sent is its own word, and
    appended to, a bot trusting the proxy's address would believe a local client that claims to be iAdvize."""
    headers = [(k, v) for k, v in received if k.lower() not in HOP_BY_HOP and k.lower() != "x-forwarded-for"]
    return [*headers, ("X-Forwarded-For", client)]


def _answer_headers(received) -> list[tuple[str, str]]:
    """The bot's answer headers passed back to iAdvize: hop-by-hop ones left out, and the proxy's own Server and
    Date (it writes them) not doubled."""
    return [(k, v) for k, v in received if k.lower() not in HOP_BY_HOP | {"server", "date"}]


def _target(path: str) -> str:
    """The request target as received (the handler reads it as Latin-1), with bytes outside printable ASCII
    percent-encoded: sent on as bytes, where http.client would refuse them."""
    raw = path.encode("latin-1", "replace")
    return "".join(chr(b) if 0x21 <= b < 0x7F else f"%{b:02X}" for b in raw)


def _pass_on(start: bytes, response, out) -> int:
    """``start`` then the rest of ``response`` written to ``out`` as it comes; the bytes passed on."""
    size, chunk = 0, start
    try:
        while chunk:
            out.write(chunk)
            size += len(chunk)
            chunk = response.read(STREAM_CHUNK)
    except (OSError, http.client.HTTPException):
        pass  # either side gone: nothing more to pass on
    return size


def _json_error(status: int, detail: str) -> bytes:
    return json.dumps({"error": HTTPStatus(status).phrase.lower(), "detail": detail}).encode()


class _Handler(BaseHTTPRequestHandler):
    """One connection to the proxy: each request forwarded to the bot, the answer passed back and recorded."""

    proxy: RecordingProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    timeout: float  # each read from the client: a silent one is dropped (CLIENT_TIMEOUT_SECONDS)

    def log_message(self, *args):
        pass

    def send_error(self, code, message=None, explain=None):
        """The proxy's own errors (a request line or headers too long, a request it cannot read) in JSON,
        as the bot answers its own."""
        self._refuse(code, str(explain or message or HTTPStatus(code).phrase))

    def _refuse(self, status: int, detail: str) -> None:
        data = _json_error(status, detail)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    def _forward(self):
        try:
            body = _read_body(self.headers, self.rfile)
        except ValueError:
            return self._refuse(400, "the chunked body is malformed")
        except _Refused as refused:
            return self._refuse(refused.status, refused.detail)
        path, headers = _target(self.path), _upstream_headers(self.headers.items(), self.client_address[0])
        sent_at, started = utc_iso(), time.perf_counter()
        response = None
        try:
            status, answer_headers, answer, response = self.proxy.forward(self.command, path, headers, body)
            error = None
        except (OSError, http.client.HTTPException) as failure:
            status, answer_headers, error = 502, [("Content-Type", "application/json")], str(failure)
            answer = _json_error(502, f"the bot did not answer: {error}")
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        answer = self._answer(status, answer_headers, answer, response)
        if status not in REFUSED:  # a call the bot refused (forged, from elsewhere, too large) is no conversation
            self.proxy.recorder.offer(
                (self.command, path, body, None if error else status, answer, sent_at, latency_ms, error)
            )

    def _answer(self, status: int, headers, answer: bytes, response) -> bytes:
        """The bot's answer passed back; what is recorded of it (a note of its size when too large)."""
        self.send_response(status)
        for key, value in _answer_headers(headers):
            self.send_header(key, value)
        if len(answer) <= RECORDED_ANSWER_BYTES:
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return answer
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        size = _pass_on(answer, response, self.wfile)
        self.proxy.connection().close()  # its answer not read to the end: the connection is spent
        self.proxy._local.connection = None
        note = f"an answer of {size} bytes, over the {RECORDED_ANSWER_BYTES} recorded: passed on, not recorded"
        return json.dumps({"not recorded": note}).encode()

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward


def _handler(proxy: RecordingProxy) -> type[_Handler]:
    """The request handler class of ``proxy``'s server."""
    return type("Handler", (_Handler,), {"proxy": proxy, "timeout": CLIENT_TIMEOUT_SECONDS})

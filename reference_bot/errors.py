"""Every error the bot answers is JSON: ``{"error": what, "detail": where and why}``.

A user mistake (bad JSON, a missing field, an unknown operator) is a 4xx naming the
problem; storage trouble is a 503 the caller may retry; anything unexpected is logged
with the request id and answered 500 without internals.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from harness import wire

log = logging.getLogger(__package__)


class ApiError(Exception):
    """An error answered as JSON with ``status``: ``error`` says what went wrong, ``detail`` where and why."""

    def __init__(self, status: int, error: str, detail: str = ""):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


# Error details quote what was sent (a path, a value): HTML's special characters go out as JSON
# escapes, so a detail shown by a careless dashboard or sniffed as HTML runs nothing.
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def error_response(status: int, error: str, detail: str = ""):
    """The JSON error response, with HTML's special characters escaped in its body."""
    body = json.dumps({"error": error, "detail": detail}, ensure_ascii=False).translate(_HTML_SAFE)
    return Response(body, status=status, mimetype="application/json")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \uD800 to \uDFFF: a pair, or a lone surrogate


def request_body() -> bytes:
    """The request's body, read once (cached); a body that cannot be read (a malformed chunked encoding, a
    caller gone halfway) is a 400 naming it, not a 500."""
    try:
        return request.get_data(cache=True)
    except HTTPException:
        raise  # a body over the limit: its 413
    except Exception as error:  # whatever the server raises reading it (gunicorn: InvalidChunkSize,
        # ChunkMissingTerminator, NoMoreData) is a body that could not be read
        raise ApiError(400, "invalid body", f"the body could not be read: {error or type(error).__name__}") from None


def json_body(body_name: str) -> dict:
    """The request's JSON body, checked against the wire model's ``body_name`` schema."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported content type", f"expected application/json, got {request.mimetype or 'no Content-Type'}"
        )
    raw = request_body()
    try:
        # decoded strictly first: json.loads of bytes lets raw surrogate bytes (ED A0 80) through as text
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid JSON", "the body is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, "invalid JSON", f"{error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise ApiError(400, "invalid JSON", "the body is nested too deeply") from None
    except ValueError as error:  # e.g. an integer of thousands of digits
        raise ApiError(400, "invalid JSON", str(error).split(";")[0]) from None
    try:  # "\ud800" parses, but no UTF-8 text (nor SQLite) can hold a lone surrogate; only an escape makes one
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, "invalid JSON", "the body contains an invalid character (a lone UTF-16 surrogate)"
        ) from None
    try:
        wire.validate(body_name, document)
    except wire.WireError as error:
        raise ApiError(400, "invalid body", "; ".join(map(str, error.problems[:5]))) from None
    except RecursionError:
        raise ApiError(400, "invalid body", "the body is nested too deeply") from None
    return document


def register(app: Flask, unavailable: tuple[type[BaseException], ...] = ()) -> None:
    """Installs the JSON error handlers and two after-request hooks.

    ``unavailable`` are the store's errors for a database out of reach for now: answered 503.

    The hooks add ``X-Content-Type-Options: nosniff`` and read a body left unread (within the
    size limit), so that gunicorn keeps the connection the caller was told it may reuse.
    """

    @app.after_request
    def no_sniffing(response):
        response.headers["X-Content-Type-Options"] = "nosniff"  # JSON is JSON, never rendered as a page
        return response

    @app.after_request
    def read_the_unread_body(response):
        # An answer given before the body was read (415, 401, 404...) leaves the body on the
        # connection; gunicorn drains 64 KiB of it, then drops a connection the caller was told
        # to keep, and the caller's next request fails. Bodies within the limit are read here.
        length, limit = request.content_length or 0, app.config["MAX_CONTENT_LENGTH"]
        if length > 0 and (limit is None or length <= limit):
            # cached: the recording hook may still want it; a caller gone or sending less leaves nothing to read
            with contextlib.suppress(OSError, HTTPException):
                request.get_data(cache=True)
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.error, error.detail)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        detail = {
            404: f"no endpoint {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the body is larger than the {app.config['MAX_CONTENT_LENGTH']} bytes this bot accepts",
        }.get(error.code, error.description or "")
        response = error_response(error.code or 500, (error.name or "error").lower(), detail)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110: a 405 says what is allowed
        return response

    def storage_error(error):  # locked, read-only, disk full, server down: conditions that pass
        log.error("storage unavailable: %s", str(error).strip(), extra={"request_id": g.get("request_id")})
        return error_response(503, "storage unavailable", "the bot cannot reach its database; retry later")

    for kind in unavailable:
        app.register_error_handler(kind, storage_error)

    @app.errorhandler(Exception)
    def unexpected(error):
        request_id = g.get("request_id", "-")
        log.exception("unexpected error", extra={"request_id": request_id})
        return error_response(500, "internal error", f"logged as request {request_id}")

"""Structured logs on stderr: one JSON object per line, one line per request.

Only what is useful to operate a bot goes in: method, path, status, duration,
idConversation and a request id. Never headers (the signature) nor config (the secret).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
import uuid

from flask import Flask, g, request

FIELDS = ("request_id", "method", "path", "status", "duration_ms", "idConversation", "idOperator")


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON line, with the request fields of ``FIELDS`` it carries."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON: UTC time, level, logger, message, request fields and any exception."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({f: getattr(record, f) for f in FIELDS if getattr(record, f, None) is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO") -> logging.Logger:
    """The ``reference_bot`` logger, writing JSON lines to stderr (set up once per process)."""
    logger = logging.getLogger(__package__)
    if not any(getattr(h, "_reference_bot", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._reference_bot = True
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


_RUN = uuid.uuid4().hex[:8]  # this start of the bot; with the pid and a counter, unique without a syscall each
_numbers = itertools.count(1)


def _new_request_id() -> str:
    return f"{_RUN}-{os.getpid():x}-{next(_numbers):x}"


def register(app: Flask) -> None:
    """Logs one access line per request, under a request id echoed in the ``X-Request-Id`` response header.

    The id is the caller's ``X-Request-Id`` (cut to 64 characters) or a new one.
    """
    access = logging.getLogger(f"{__package__}.access")

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or _new_request_id()

    @app.after_request
    def log_request(response):
        started = g.get("started", time.perf_counter())
        access.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "idConversation": (request.view_args or {}).get("id_conversation") or g.get("id_conversation"),
                "idOperator": (request.view_args or {}).get("id_operator") or g.get("id_operator"),
            },
        )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

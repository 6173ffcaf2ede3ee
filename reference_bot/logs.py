"""Structured logs on stderr: one JSON object per line, one line per request.

Only what is useful to operate a bot goes in: method, path, status, duration,
idConversation and a request id. Never headers (the signature) nor config (the secret).

Availability polls are the exception: iAdvize polls every operator once a second, so a line each
would be most of the log and a good part of the bot's work. Answered ones (200) are counted per
operator and written as one line per ``AVAILABILITY_LOG_SECONDS`` (per worker process, and at exit);
any other answer to a poll gets its own line. ``AVAILABILITY_LOG_SECONDS=0`` logs every poll.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter

from flask import Flask, g, request

FIELDS = ("request_id", "method", "path", "status", "duration_ms", "idConversation", "idOperator", "polls", "seconds")
AVAILABILITY_ENDPOINT = "admin.availability_strategies"


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


def new_request_id() -> str:
    """A request id for a call that brought none: unique across workers and restarts."""
    return f"{_RUN}-{os.getpid():x}-{next(_numbers):x}"


class PollCounter:
    """Availability polls answered, counted per operator; ``flush`` writes them as one line and starts again."""

    def __init__(self, logger: logging.Logger, seconds: float):
        self.logger, self.seconds = logger, seconds
        self._counts: Counter = Counter()
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def count(self, id_operator: str | None) -> None:
        """One poll of ``id_operator`` answered; writes the line once ``seconds`` have passed since the last."""
        with self._lock:
            self._counts[id_operator or "-"] += 1
            due = time.monotonic() - self._since >= self.seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Writes the polls counted since the last line (nothing when there were none)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            now, since, self._since = time.monotonic(), self._since, time.monotonic()
        if counts:
            self.logger.info("availability polls", extra={"polls": dict(counts), "seconds": round(now - since, 1)})


def _flush_at_exit(polls: PollCounter) -> None:
    logging.raiseExceptions = False  # at exit a stream may be closed already (a test runner's capture): no report
    polls.flush()


def register(app: Flask) -> PollCounter | None:
    """Logs one access line per request, under a request id echoed in the ``X-Request-Id`` response header.

    The id is the caller's ``X-Request-Id`` (cut to 64 characters) or a new one. Availability polls
    answered 200 are counted instead (see the module's docstring): returns their counter (None: a line each).
    """
    access = logging.getLogger(f"{__package__}.access")
    seconds = float(app.config["AVAILABILITY_LOG_SECONDS"])
    polls = PollCounter(access, seconds) if seconds > 0 else None
    if polls is not None:
        atexit.register(_flush_at_exit, polls)  # a worker stopped (SIGTERM) writes what it counted

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or new_request_id()

    @app.after_request
    def log_request(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if polls is not None and response.status_code == 200 and request.endpoint == AVAILABILITY_ENDPOINT:
            polls.count(g.get("id_operator"))
            return response
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
        return response

    return polls

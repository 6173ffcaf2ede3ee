"""The recording format (version 1): one JSON line per HTTP exchange between iAdvize and a bot.

Part of the wire model because both sides write it: the reference bot records what it
serves, the harness's proxy what it forwards. Reading, replaying and building lines from
harness exchanges live in ``harness.traffic.recordings``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.wire.model import DATE_TIME_PATTERN, utc_iso  # noqa: F401 (utc_iso: used by both writers)

VERSION = 1
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "recording.v1",
    "description": "One HTTP exchange between iAdvize and an external bot, as a line of a JSONL recording.",
    "type": "object",
    "required": [
        "v",
        "conversation",
        "operator",
        "seq",
        "endpoint",
        "method",
        "path",
        "request",
        "status",
        "response",
        "sent_at",
        "latency_ms",
    ],
    "properties": {
        "v": {"const": VERSION},
        "conversation": {"type": ["string", "null"], "description": "iAdvize's conversation id, if any"},
        "operator": {"type": ["string", "null"], "description": "the bot operator (idOperator), if any"},
        "seq": {"type": "integer", "minimum": 0, "description": "order of the exchange in its conversation"},
        "endpoint": {"type": "string", "description": "external-bots, bot.save, messages, ..."},
        "method": {"enum": ["GET", "PUT", "POST", "DELETE", "PATCH"]},
        "path": {"type": "string", "description": "path and query string as sent"},
        "request": {"description": "the request body (JSON), null for a GET"},
        "status": {"type": ["integer", "null"], "description": "HTTP status; null when no answer came"},
        "response": {"description": "the response body: JSON, or the text when it was not JSON"},
        "sent_at": {"type": "string", "pattern": DATE_TIME_PATTERN, "description": "when it was sent (UTC)"},
        "latency_ms": {"type": ["number", "null"], "minimum": 0},
        "error": {"type": ["string", "null"], "description": "timeout, connection failure, ..."},
    },
}


# --- writing ----------------------------------------------------------------------------------


class RecordingWriter:
    """Appends lines to ``<directory>/<prefix>-YYYYMMDD-HH.jsonl`` (a new file each hour), thread-safe.

    Files are readable by their owner only (0600). With a ``redactor``, each line's personal data is replaced
    before it is written (:mod:`harness.wire.redact`); with ``retention_days``, recordings of the folder older
    than that are deleted when the writer starts and at each new file.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        prefix: str = "recording",
        rotate_hourly: bool = True,
        clock=time.time,
        redactor=None,
        retention_days: float | None = None,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.rotate_hourly, self.clock = prefix, rotate_hourly, clock
        self.redactor, self.retention_days = redactor, retention_days
        self._lock = threading.Lock()
        self._file = None
        self._name = None
        self.purge()

    def purge(self) -> list[Path]:
        """Deletes the folder's recordings (``*.jsonl``, ``*.jsonl.gz``) last written more than ``retention_days``
        ago."""
        if self.retention_days is None:
            return []
        oldest = self.clock() - self.retention_days * 86_400
        found = [*self.directory.glob("*.jsonl"), *self.directory.glob("*.jsonl.gz")]
        gone = [path for path in found if path.stat().st_mtime < oldest]
        for path in gone:
            path.unlink(missing_ok=True)
        return gone

    def _target(self) -> str:
        if not self.rotate_hourly:
            return f"{self.prefix}.jsonl"
        return f"{self.prefix}-{datetime.fromtimestamp(self.clock(), UTC):%Y%m%d-%H}.jsonl"

    def write(self, line: dict) -> None:
        """Appends ``line`` as one JSON line to the current file (a new one each hour when rotating), flushed."""
        if self.redactor is not None:
            line = self.redactor.line(line)
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            name = self._target()
            if name != self._name:
                if self._file:
                    self._file.close()
                    self.purge()
                # kept open across writes (one file an hour), closed by close() or the next rotation; its
                # owner's only: recordings hold what visitors wrote
                descriptor = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._file = open(descriptor, "a", encoding="utf-8")  # noqa: SIM115
                self._name = name
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        """Closes the open file; a later ``write`` opens one again."""
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

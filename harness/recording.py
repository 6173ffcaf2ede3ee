"""Recordings: one JSON line per HTTP exchange between iAdvize and a bot (format version 1).

Every line carries ``"v": 1``, so a reader can refuse a format it does not know. Files are
read as streams, a line at a time: a recording of months never sits in memory, and a
corrupt line is reported with its file and line number while the rest is read.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jsonschema import Draft202012Validator

from .client import Exchange, route, utc_iso  # noqa: F401 (utc_iso: part of this module's API)
from .wire.model import DATE_TIME_PATTERN

VERSION = 1
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "recording.v1",
    "description": "One HTTP exchange between iAdvize and an external bot, as a line of a JSONL recording.",
    "type": "object",
    "required": ["v", "conversation", "operator", "seq", "endpoint", "method", "path", "request", "status",
                 "response", "sent_at", "latency_ms"],
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
_VALIDATOR = Draft202012Validator(SCHEMA)


def render_schema() -> str:
    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"


def record(exchange: Exchange, conversation: str | None, operator: str | None, seq: int) -> dict:
    """The recording line of one exchange made by ``harness.client``."""
    path = exchange.url.split("//", 1)[-1]
    path = path[path.index("/"):] if "/" in path else "/"
    return {"v": VERSION, "conversation": conversation, "operator": operator, "seq": seq,
            "endpoint": exchange.endpoint, "method": exchange.method, "path": path,
            "request": exchange.request_body, "status": exchange.status, "response": exchange.body,
            "sent_at": exchange.sent_at, "latency_ms": exchange.latency_ms, "error": exchange.error}


def endpoint_of(method: str, path: str) -> str:
    known = route(method, path.split("?", 1)[0])
    return known.endpoint if known else f"{method} {path.split('?', 1)[0]}"


# --- writing ----------------------------------------------------------------------------------

class RecordingWriter:
    """Appends lines to ``<directory>/<prefix>-YYYYMMDD-HH.jsonl`` (a new file each hour), thread-safe."""

    def __init__(self, directory: str | os.PathLike, prefix: str = "recording", rotate_hourly: bool = True,
                 clock=time.time):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.rotate_hourly, self.clock = prefix, rotate_hourly, clock
        self._lock = threading.Lock()
        self._file = None
        self._name = None

    def _target(self) -> str:
        if not self.rotate_hourly:
            return f"{self.prefix}.jsonl"
        return f"{self.prefix}-{datetime.fromtimestamp(self.clock(), UTC):%Y%m%d-%H}.jsonl"

    def write(self, line: dict) -> None:
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            name = self._target()
            if name != self._name:
                if self._file:
                    self._file.close()
                # kept open across writes (one file an hour), closed by close() or the next rotation
                self._file = open(self.directory / name, "a", encoding="utf-8")  # noqa: SIM115
                self._name = name
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Corrupt:
    """A line that could not be read: where, and why."""

    file: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.why}"


def recording_files(paths: list[str | os.PathLike]) -> list[Path]:
    """The recording files named, or found (``*.jsonl``, ``*.jsonl.gz``) in the folders named, in order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted([*path.rglob("*.jsonl"), *path.rglob("*.jsonl.gz")])
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no recording at {path}")
    return found


def read_lines(path: Path) -> Iterator[dict | Corrupt]:
    """Each line of one file as a record, or as a :class:`Corrupt` saying what is wrong with it."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as lines:
            number = 0
            while True:
                try:
                    text = lines.readline()
                except (UnicodeDecodeError, EOFError, OSError) as error:  # truncated gzip, bad bytes
                    yield Corrupt(str(path), number + 1, f"unreadable: {type(error).__name__}")
                    return
                if not text:
                    return
                number += 1
                if text.strip():
                    yield _parse(text, str(path), number)
    except OSError as error:
        yield Corrupt(str(path), 0, f"cannot open: {error.strerror or error}")


def _parse(text: str, file: str, number: int) -> dict | Corrupt:
    try:
        line = json.loads(text)
    except ValueError as error:
        return Corrupt(file, number, f"not JSON ({str(error).split(':')[0]})")
    if isinstance(line, dict) and line.get("v") != VERSION and "v" in line:
        return Corrupt(file, number, f"recording format v{line.get('v')}, this reader knows v{VERSION}")
    problem = next(iter(_VALIDATOR.iter_errors(line)), None)
    if problem is not None:
        where = ".".join(map(str, problem.absolute_path)) or "the line"
        return Corrupt(file, number, f"{where}: {problem.message[:120]}")
    return line


def read(paths: list[str | os.PathLike]) -> Iterator[dict | Corrupt]:
    for path in recording_files(paths):
        yield from read_lines(path)

"""Recordings: one JSON line per HTTP exchange between iAdvize and a bot (format version 1).

Every line carries ``"v": 1``, so a reader can refuse a format it does not know. Files are
read as streams, a line at a time: a recording of months never sits in memory, and a
corrupt line is reported with its file and line number while the rest is read.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fastjsonschema
from jsonschema import Draft202012Validator

from .client import Exchange, route, utc_iso  # noqa: F401 (utc_iso: part of this module's API)
from .wire.recording import SCHEMA, VERSION, RecordingWriter  # noqa: F401 (the format, re-exported)

_VALIDATOR = Draft202012Validator(SCHEMA)
_FAST = fastjsonschema.compile(SCHEMA)  # most lines are valid: checked fast, jsonschema words the rest


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
    """Each line of one file as a record, or as a :class:`Corrupt` saying what is wrong with it.

    Lines are read as bytes and decoded one by one: a bad byte spoils its own line only.
    Each record remembers where it came from (``_source``: file and line), for later reports.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as lines:
            number = 0
            while True:
                try:
                    raw = lines.readline()
                except (EOFError, OSError) as error:  # a gzip cut in the middle
                    yield Corrupt(str(path), number + 1, f"unreadable: {type(error).__name__}")
                    return
                if not raw:
                    return
                number += 1
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield Corrupt(str(path), number, "not UTF-8")
                    continue
                line = _parse(text, str(path), number)
                if isinstance(line, dict):
                    line["_source"] = f"{path}:{number}"
                yield line
    except OSError as error:
        yield Corrupt(str(path), 0, f"cannot open: {error.strerror or error}")


def _parse(text: str, file: str, number: int) -> dict | Corrupt:
    try:
        line = json.loads(text)
    except ValueError as error:
        return Corrupt(file, number, f"not JSON ({str(error).split(':')[0]})")
    if isinstance(line, dict) and line.get("v") != VERSION and "v" in line:
        return Corrupt(file, number, f"recording format v{line.get('v')}, this reader knows v{VERSION}")
    try:
        _FAST(line)
        return line
    except fastjsonschema.JsonSchemaException:
        pass
    problem = next(iter(_VALIDATOR.iter_errors(line)), None)
    if problem is not None:
        where = ".".join(map(str, problem.absolute_path)) or "the line"
        return Corrupt(file, number, f"{where}: {problem.message[:120]}")
    return line


def read(paths: list[str | os.PathLike]) -> Iterator[dict | Corrupt]:
    for path in recording_files(paths):
        yield from read_lines(path)

"""Recordings: one JSON line per HTTP exchange between iAdvize and a bot (format version 1).

Every line carries ``"v": 1``, so a reader can refuse a format it does not know. Files are
read as streams, a line at a time: a recording of months never sits in memory, and a
corrupt line is reported with its file and line number while the rest is read.
"""

from __future__ import annotations

import gzip
import heapq
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import fastjsonschema
from jsonschema import Draft202012Validator

from harness.client import Exchange, route, utc_iso  # noqa: F401 (utc_iso: part of this module's API)
from harness.wire.record_format import SCHEMA, VERSION, RecordingWriter  # noqa: F401 (the format, re-exported)

_VALIDATOR = Draft202012Validator(SCHEMA)
_FAST = fastjsonschema.compile(SCHEMA)  # most lines are valid: checked fast, jsonschema words the rest


def render_schema() -> str:
    """The recording format's JSON Schema, as committed under contracts/schemas/."""
    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"


def record(exchange: Exchange, conversation: str | None, operator: str | None, seq: int) -> dict:
    """The recording line of one exchange made by ``harness.client``."""
    path = exchange.url.split("//", 1)[-1]
    path = path[path.index("/") :] if "/" in path else "/"
    return {
        "v": VERSION,
        "conversation": conversation,
        "operator": operator,
        "seq": seq,
        "endpoint": exchange.endpoint,
        "method": exchange.method,
        "path": path,
        "request": exchange.request_body,
        "status": exchange.status,
        "response": exchange.body,
        "sent_at": exchange.sent_at,
        "latency_ms": exchange.latency_ms,
        "error": exchange.error,
    }


def posted(action: dict, conversation: str, operator: str | None, seq: int, sent_at: str) -> dict:
    """The recording line of what the bot posted through iAdvize's API (a :data:`POSTED` line): ``action`` is
    the reply it amounts to (a message, a close, a transfer)."""
    return {
        "v": VERSION,
        "conversation": conversation,
        "operator": operator,
        "seq": seq,
        "endpoint": POSTED,
        "method": "POST",
        "path": "/graphql",
        "request": {"action": action},
        "status": 200,
        "response": None,
        "sent_at": sent_at,
        "latency_ms": None,  # the bot's call to iAdvize, not iAdvize's to the bot: no latency of the bot's
        "error": None,
    }


def endpoint_of(method: str, path: str) -> str:
    """The spec's name of the endpoint a request is for, or ``METHOD /path`` for a request to none of the seven."""
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
    """Every line of the recordings at ``paths`` (files, or folders to search), file after file: records or Corrupt."""
    for path in recording_files(paths):
        yield from read_lines(path)


# --- the stream of recorded conversations ---------------------------------------------------------

WINDOW_SECONDS = 3600.0  # a conversation silent this long in the recording is complete
# the scenario of an operator whose set-up the recording does not hold (the reference bot's shipped one)
DEFAULT_SCENARIO = "order-assistant"


# The endpoint of a line recording what the bot posted through iAdvize's API (a message, a close, a transfer):
# request {"action": <the reply it amounts to>}. Not a call to the bot: replay leaves it out.
POSTED = "chatbotMessageSend"


@dataclass
class Recorded:
    """One conversation as recorded: its lines in order."""

    id: str
    operator: str | None
    lines: list[dict] = field(default_factory=list)
    last_at: float = 0.0  # send time of its latest line

    def role(self, line: dict) -> str | None:
        """The author role (visitor, operator) of the message a line posts, or None when it posts none."""
        message = (line.get("request") or {}).get("message") if isinstance(line.get("request"), dict) else None
        return ((message or {}).get("author") or {}).get("role") if isinstance(message, dict) else None

    @property
    def visitor_lines(self) -> list[dict]:
        """The lines that post a visitor's message, in order."""
        return [line for line in self.lines if line["endpoint"] == "messages" and self.role(line) == "visitor"]

    @property
    def human_took_it(self) -> bool:
        """A human took the conversation after the bot's transfer (see :attr:`transfer_outcome`)."""
        return self.transfer_outcome == "human"

    @property
    def transfer_outcome(self) -> str | None:
        """What followed the bot's first transfer, from what the recording shows; None without a transfer.

        ``human``: a message the bot did not write came after it (not one of its replies, nor of its posts
        through iAdvize's API, recorded as :data:`POSTED` lines); ``failed``: the replies the bot put after
        the transfer were shown (iAdvize runs them only when no human took it) or closed the conversation,
        or the bot posted through iAdvize's API after it (refused while a human has the conversation);
        ``unknown``: nothing after it tells.
        """
        own = {_text(r) for line in self.lines for r in [*replies_of(line.get("response")), *_posted(line)]}
        for index, line in enumerate(self.lines):
            replies = [*replies_of(line.get("response")), *_posted(line)]
            at = next((i for i, r in enumerate(replies) if r.get("type") == "transfer"), None)
            if at is None:
                continue
            fallback = replies[at + 1 :]
            shown = {_text(r) for r in fallback if r.get("type") == "message"} - {None}
            for later in self.lines[index + 1 :]:
                said = _text((later.get("request") or {}).get("message")) if self.role(later) == "operator" else None
                if said is not None and said not in own:
                    return "human"
                if (said is not None and said in shown) or _posted(later):  # iAdvize takes a post only from a bot
                    return "failed"  # still in charge: a human would have it otherwise
            return "failed" if any(r.get("type") == "close" for r in fallback) else "unknown"
        return None


def _posted(line: dict) -> list[dict]:
    """The message or action a :data:`POSTED` line records the bot sending through iAdvize's API."""
    action = (line.get("request") or {}).get("action") if line.get("endpoint") == POSTED else None
    return [action] if isinstance(action, dict) else []


def _text(message) -> str | None:
    """The text of a reply or a posted message (None for another payload or no message)."""
    payload = message.get("payload") if isinstance(message, dict) else None
    value = payload.get("value") if isinstance(payload, dict) and payload.get("contentType") == "text" else None
    return value if isinstance(value, str) else None


def replies_of(body) -> list[dict]:
    """The replies of a recorded response body (none when it is not an answer)."""
    replies = body.get("replies") if isinstance(body, dict) else None
    return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []


def sent_seconds(iso: str) -> float:
    """A recorded ``sent_at`` as epoch seconds."""
    return datetime.fromisoformat(iso.split("[")[0].replace("Z", "+00:00")).timestamp()


def _timed(lines: Iterator[dict | Corrupt]) -> Iterator[tuple[float, int, dict | Corrupt]]:
    """Lines with their send time (a corrupt line takes the time of the line before it)."""
    last = float("-inf")
    for order, line in enumerate(lines):
        if isinstance(line, dict):
            try:
                last = sent_seconds(line["sent_at"])
            except ValueError:  # a date the schema's pattern lets through but the calendar does not
                file, number = line["_source"].rsplit(":", 1)
                line = Corrupt(file, int(number), f"sent_at: {line['sent_at']!r} is not a date")
        yield last, order, line


def recorded_conversations(
    paths: list,
    skipped: list[Corrupt],
    operators: dict,
    window: float = WINDOW_SECONDS,
    on_skipped: Callable[[Corrupt], None] | None = None,
) -> Iterator[Recorded]:
    """Conversations from the recordings, as a stream.

    Files are merged by send time, so a conversation spread over several files (hourly files,
    one file per bot worker) comes out whole; a conversation is let go once nothing was sent
    in it for ``window`` seconds of recorded time, so memory holds an hour of traffic at most.
    Operator set-ups met on the way are kept in ``operators``; corrupt lines go to ``skipped``
    (and to ``on_skipped``, as they are met).
    """
    streams = [_timed(read_lines(path)) for path in recording_files(paths)]
    open_: OrderedDict[str, Recorded] = OrderedDict()  # least recently active first
    latest = float("-inf")
    for at, _, line in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        if isinstance(line, Corrupt):
            skipped.append(line)
            if on_skipped:
                on_skipped(line)
            continue
        if line["endpoint"] == "bot.save" and isinstance(line.get("request"), dict) and line["operator"]:
            operators[line["operator"]] = line["request"]
        if line["conversation"] is not None:
            latest = max(latest, at)
            conversation = open_.pop(line["conversation"], None) or Recorded(line["conversation"], line["operator"])
            conversation.lines.append(line)
            conversation.last_at = at
            open_[line["conversation"]] = conversation
        while open_ and next(iter(open_.values())).last_at < latest - window:
            yield _ordered(open_.popitem(last=False)[1])
    for conversation in open_.values():
        yield _ordered(conversation)


def _ordered(conversation: Recorded) -> Recorded:
    conversation.lines.sort(key=lambda line: (line["seq"], line["sent_at"]))
    return conversation

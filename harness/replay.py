"""``iadvize-harness replay``: recorded conversations re-sent to a bot through the simulated platform.

Each recorded conversation's visitor side is played again, its recorded gaps kept in
simulated time (a 30-minute conversation replays in milliseconds); the bot's replies go
through the platform as iAdvize would execute them. Two tidy tables come out, written as
they grow so memory does not grow with the recordings:

- ``exchanges.parquet``: one row per replayed exchange, the recorded replies beside the
  replayed ones (``same`` says whether they match);
- ``conversations.parquet``: one row per conversation: outcome, turns, time to first reply,
  time to escalation.

Conversations run concurrently, never the messages of one conversation. A corrupt line is
reported with its file and line and skipped.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import render
from .client import BotClient
from .platform import Conversation, Event, SimulatedPlatform
from .recording import Corrupt, read_lines, recording_files

DEFAULT_SCENARIO = "order-assistant"
BATCH_ROWS = 2_000

EXCHANGE_COLUMNS = pa.schema([
    ("conversation", pa.string()), ("seq", pa.int32()), ("endpoint", pa.string()), ("purpose", pa.string()),
    ("message", pa.string()), ("sent_at", pa.timestamp("ms", tz="UTC")), ("status", pa.int32()), ("error", pa.string()),
    ("latency_ms", pa.float64()), ("recorded_latency_ms", pa.float64()),
    ("replies", pa.string()), ("recorded_replies", pa.string()), ("same", pa.bool_()),
])
CONVERSATION_COLUMNS = pa.schema([
    ("conversation", pa.string()), ("operator", pa.string()), ("started_at", pa.timestamp("ms", tz="UTC")),
    ("first_message", pa.string()), ("turns", pa.int32()), ("outcome", pa.string()),
    ("asked_for_human", pa.bool_()), ("transfer", pa.string()), ("time_to_first_reply_s", pa.float64()),
    ("time_to_escalation_s", pa.float64()), ("escalation_turn", pa.int32()), ("escalation_step", pa.string()),
    ("duration_s", pa.float64()), ("differences", pa.int32()),
])
HUMAN_WORDS = ("human", "person", "agent", "advisor", "someone", "operator")


@dataclass
class Recorded:
    """One conversation as recorded: its lines in order."""

    id: str
    operator: str | None
    lines: list[dict] = field(default_factory=list)

    def role(self, line: dict) -> str | None:
        message = (line.get("request") or {}).get("message") if isinstance(line.get("request"), dict) else None
        return ((message or {}).get("author") or {}).get("role") if isinstance(message, dict) else None

    @property
    def visitor_lines(self) -> list[dict]:
        return [line for line in self.lines if line["endpoint"] == "messages" and self.role(line) == "visitor"]

    @property
    def human_took_it(self) -> bool:
        """A human answered after a transfer: an operator message the bot never sent."""
        sent = {r.get("payload", {}).get("value") for line in self.lines for r in _replies(line.get("response"))}
        return any(self.role(line) == "operator" and (line["request"]["message"].get("payload") or {}).get("value")
                   not in sent for line in self.lines)


@dataclass
class Summary:
    conversations: int = 0
    exchanges: int = 0
    differences: int = 0
    skipped: list[Corrupt] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"replayed {self.conversations} conversations, {self.exchanges} exchanges: "
                f"{self.differences} replies differ from the recording")
        if self.skipped:
            text += f"; {len(self.skipped)} corrupt lines skipped"
        return text


def _replies(body) -> list[dict]:
    replies = body.get("replies") if isinstance(body, dict) else None
    return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.split("[")[0].replace("Z", "+00:00")).timestamp()


def recorded_conversations(paths: list, skipped: list[Corrupt], operators: dict) -> Iterator[Recorded]:
    """Conversations from the recordings, a file at a time (lines of one conversation may interleave
    with others' inside a file, as a proxy writes them). Operator set-ups are kept in ``operators``."""
    for path in recording_files(paths):
        pending: dict[str, Recorded] = {}
        for line in read_lines(path):
            if isinstance(line, Corrupt):
                print(f"skipped {line}", file=sys.stderr)
                skipped.append(line)
                continue
            if line["endpoint"] == "bot.save" and isinstance(line.get("request"), dict):
                operators[line["operator"]] = line["request"]
            if line["conversation"] is None:
                continue
            conversation = pending.setdefault(line["conversation"], Recorded(line["conversation"], line["operator"]))
            conversation.lines.append(line)
        for conversation in pending.values():
            conversation.lines.sort(key=lambda line: line["seq"])
            yield conversation


class Replayer:
    def __init__(self, provider_url: str, secret: str | None = None):
        self.provider_url, self.secret = provider_url, secret
        self._local = threading.local()
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def client(self) -> BotClient:
        if not hasattr(self._local, "client"):  # a requests.Session per thread
            self._local.client = BotClient(self.provider_url, secret=self.secret)
        return self._local.client

    def set_up(self, operator: str, settings: dict | None) -> list[dict]:
        settings = settings or {"name": "replay", "distributionRules": [], "external": {"idBot": DEFAULT_SCENARIO}}
        with self._lock:
            if operator not in self._ready:
                self.client().save_bot(operator, settings)
                self._ready.add(operator)
        return settings.get("distributionRules", [])

    def replay(self, recorded: Recorded, settings: dict | None) -> tuple[list[dict], dict]:
        rules = self.set_up(recorded.operator, settings)
        events: list[tuple[Conversation, Event]] = []
        platform = SimulatedPlatform(self.client(), recorded.operator, rules, rule_available=recorded.human_took_it,
                                     on_event=lambda chat, event: events.append((chat, event)))
        t0 = _seconds(recorded.lines[0]["sent_at"])
        chat = platform.open_chat(recorded.id)
        platform.start(chat)
        for line in recorded.visitor_lines:
            message = line["request"]["message"]
            at = _seconds(line["sent_at"]) - t0
            platform.visitor_says(chat, payload=message["payload"], after=max(0.0, at - chat.now),
                                  id_message=message["idMessage"])
        last = _seconds(recorded.lines[-1]["sent_at"]) - t0
        platform.wait(chat, max(0.0, last - chat.now) + 1)  # what followed the last message plays out too
        return self._rows(recorded, chat, events, t0)

    def _rows(self, recorded: Recorded, chat: Conversation, events, t0: float) -> tuple[list[dict], dict]:
        recorded_by_kind: dict[str, list[dict]] = {}
        for line in recorded.lines:
            recorded_by_kind.setdefault(_kind(line["endpoint"], recorded.role(line)), []).append(line)
        seen: dict[str, int] = {}
        rows = []
        for seq, (_, event) in enumerate(e for e in events if e[1].kind == "call"):
            x = event.exchange
            kind = _kind(x.endpoint, event.purpose)
            index = seen[kind] = seen.get(kind, -1) + 1
            candidates = recorded_by_kind.get(kind, [])
            twin = candidates[index] if index < len(candidates) else None
            replies, recorded_replies = _replies(x.body), _replies(twin["response"]) if twin else None
            sent = (x.request_body or {}).get("message") if isinstance(x.request_body, dict) else None
            rows.append({
                "conversation": recorded.id, "seq": seq, "endpoint": x.endpoint, "purpose": event.purpose,
                "message": render.payload(sent.get("payload") or {}) if isinstance(sent, dict) else None,
                "sent_at": datetime.fromtimestamp(t0 + event.at, UTC), "status": x.status, "error": x.error,
                "latency_ms": x.latency_ms, "recorded_latency_ms": twin["latency_ms"] if twin else None,
                "replies": json.dumps(replies, ensure_ascii=False, sort_keys=True),
                "recorded_replies": json.dumps(recorded_replies, ensure_ascii=False, sort_keys=True)
                if twin else None,
                "same": replies == recorded_replies if twin else None,
            })
        return rows, self._conversation_row(recorded, chat, rows, t0)

    @staticmethod
    def _conversation_row(recorded: Recorded, chat: Conversation, rows: list[dict], t0: float) -> dict:
        visitor = [e for e in chat.events if e.kind == "visitor"]
        shown = [e for e in chat.events if e.kind == "shown" and visitor and e.at >= visitor[0].at]
        transfer = next((e for e in chat.events if e.kind == "transfer"), None)
        # Where in the scenario the visitor was when it escalated: the bot's last message before the
        # visitor message that led to the transfer.
        before = [e for e in visitor if transfer and e.at <= transfer.at]
        step = None
        if before:
            said = [e for e in chat.events if e.kind == "shown" and e.at <= before[-1].at and e is not before[-1]]
            step = said[-1].text if said else "(greeting)"
        asked = any(any(w in e.text.lower() for w in HUMAN_WORDS) for e in visitor)
        if chat.transfer == "succeeded":
            outcome = "escalated"
        elif chat.transfer == "failed":
            outcome = "transfer failed"
        elif chat.closed == "bot":
            outcome = "closed by bot"
        elif len(visitor) <= 1 or (chat.closed == "inactivity" and shown and shown[-1].text.startswith("Are you")):
            outcome = "abandoned"
        else:
            outcome = "resolved"
        return {
            "conversation": recorded.id, "operator": recorded.operator,
            "started_at": datetime.fromtimestamp(t0, UTC),
            "first_message": visitor[0].text if visitor else None, "turns": len(visitor), "outcome": outcome,
            "asked_for_human": asked, "transfer": chat.transfer,
            "time_to_first_reply_s": shown[0].at - visitor[0].at if shown and visitor else None,
            "time_to_escalation_s": transfer.at if transfer else None,
            "escalation_turn": len(before) if transfer else None, "escalation_step": step,
            "duration_s": chat.now, "differences": sum(1 for r in rows if r["same"] is False),
        }


def _kind(endpoint: str, purpose_or_role: str | None) -> str:
    if endpoint != "messages":
        return endpoint
    return "visitor" if purpose_or_role in ("visitor", "retry") else "operator"


class TableWriter:
    """A parquet file written in batches, so rows never pile up in memory."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows, self.writer = path, schema, [], None

    def add(self, rows: list[dict]) -> None:
        self.rows += rows
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema)
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def replay(paths: list, provider_url: str, out: Path, secret: str | None = None, concurrency: int = 4,
           progress=None, limit: int | None = None) -> Summary:
    out.mkdir(parents=True, exist_ok=True)
    summary, operators = Summary(), {}
    replayer = Replayer(provider_url, secret)
    exchanges = TableWriter(out / "exchanges.parquet", EXCHANGE_COLUMNS)
    conversations = TableWriter(out / "conversations.parquet", CONVERSATION_COLUMNS)

    def done(future) -> None:
        rows, conversation = future.result()
        exchanges.add(rows)
        conversations.add([conversation])
        summary.conversations += 1
        summary.exchanges += len(rows)
        summary.differences += conversation["differences"]
        if progress:
            progress(summary)

    with ThreadPoolExecutor(concurrency) as pool:
        running = set()
        for number, recorded in enumerate(recorded_conversations(paths, summary.skipped, operators)):
            if limit is not None and number >= limit:
                break
            if len(running) >= concurrency * 2:  # bounded: recordings are read as fast as they are replayed
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(future)
            running.add(pool.submit(replayer.replay, recorded, operators.get(recorded.operator)))
        for future in running:
            future.result()
            done(future)
    exchanges.close()
    conversations.close()
    return summary

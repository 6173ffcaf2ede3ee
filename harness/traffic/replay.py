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
reported with its file and line and skipped. A conversation that cannot be replayed (its
operator cannot be set up, or not one of its calls gets an answer) is reported as failed and
left out of the tables. The run's clients share one :class:`~harness.client.GiveUp`: an
endpoint (or a bot) that keeps going over budget is given up after two calls in a row, and the
calls not made come back at once as failed exchanges ("not sent: ..."). The tables are written
under temporary names and put in place only when at least one conversation was replayed, so an
earlier run's results are never replaced by empty ones.

Nothing here prints: corrupt lines and failed conversations go to ``on_skipped`` as they come,
progress to ``progress``; the command decides what to show.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from harness import render, wire
from harness.analysis.outcomes import (
    DEFAULT_RULES,
    OutcomeRules,
    ends_on_fallback,
    first_reply_seconds,
    journey,
    outcome,
)
from harness.client import BotClient, BotError, Exchange, GiveUp, excerpt
from harness.conformance.coverage import GIBBERISH, fallback_of
from harness.conformance.phrasings import greeting
from harness.conformance.platform import (
    INACTIVITY_CLOSE_SECONDS,
    Event,
    ProactiveWait,
    SimulatedConversation,
    SimulatedPlatform,
)
from harness.conformance.rules import Observation, judge
from harness.progress import silent
from harness.traffic.recordings import (
    DEFAULT_SCENARIO,
    Corrupt,
    Recorded,
    recorded_conversations,
    replies_of,
    sent_seconds,
)

BATCH_ROWS = 2_000
SHOWN_PER_REASON = 5  # skipped lines or failed conversations reported one by one for one reason; the rest counted

CATEGORY = pa.dictionary(pa.int32(), pa.string())
EXCHANGE_COLUMNS = pa.schema(
    [
        # endpoint and purpose take a handful of values: stored as dictionaries, read back as categoricals
        ("conversation", pa.string()),
        ("seq", pa.int32()),
        ("endpoint", CATEGORY),
        ("purpose", CATEGORY),
        ("message", pa.string()),
        ("sent_at", pa.timestamp("ms", tz="UTC")),
        ("status", pa.int32()),
        ("error", pa.string()),
        ("latency_ms", pa.float64()),
        ("recorded_latency_ms", pa.float64()),
        ("replies", pa.string()),
        ("recorded_replies", pa.string()),
        ("variables", pa.string()),  # JSON {name: value}: the visitor data the answer says the bot holds
        ("same", pa.bool_()),
        ("rules", pa.string()),  # the rules of check the call broke, as replayed: ids joined by ", " (null: none)
        ("asks_for_human", pa.bool_()),  # a visitor message asking for a person, in the outcome rules' words
    ]
)
CONVERSATION_COLUMNS = pa.schema(
    [
        ("conversation", pa.string()),
        ("operator", pa.string()),
        ("scenario", pa.string()),  # the operator's idBot
        ("started_at", pa.timestamp("ms", tz="UTC")),
        ("first_message", pa.string()),
        ("turns", pa.int32()),
        ("outcome", pa.string()),
        ("asked_for_human", pa.bool_()),
        ("transfer", pa.string()),
        ("transfer_rule", pa.string()),  # the distribution rule transferred to, by its label (else its id)
        ("time_to_first_reply_s", pa.float64()),  # with the recorded latency of the first visitor call
        ("replayed_time_to_first_reply_s", pa.float64()),  # with the replayed one (this machine, loopback)
        ("time_to_escalation_s", pa.float64()),
        ("escalation_turn", pa.int32()),
        ("escalation_step", pa.string()),
        ("duration_s", pa.float64()),
        ("last_reply_s", pa.float64()),  # when the bot's last message was shown (s from the chat opening)
        ("differences", pa.int32()),
        ("variables", pa.string()),  # JSON {name: value}: the visitor data the bot held at the end
        ("prequalified", pa.bool_()),  # the transfer came with visitor data (null: no transfer)
        ("transfer_variables", pa.string()),  # JSON {name: value}: the visitor data held at the transfer
        ("last_bot_message", pa.string()),  # the bot's last message the visitor saw (a payload: [its type])
        ("last_menu", pa.string()),  # the last message of the bot that offered quick replies
        ("path", pa.string()),  # the quick replies the visitor chose, in order, joined by " > "
        ("fallback", pa.string()),  # what the bot answers words it does not understand (asked after the replay)
    ]
)
PATH_SEPARATOR = " > "  # between the quick replies of a conversation's path
NOT_SENT = "not sent:"  # how the error of a call given up before it was sent begins (harness.client.GiveUp)


@dataclass(frozen=True)
class NotReplayed(Corrupt):
    """A conversation that could not be replayed: where it starts in the recording, and why.

    ``reason`` is the why without what is particular to this conversation (its id, its
    operator): conversations failed for the same reason are reported together.
    """

    conversation: str = ""
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: conversation {self.conversation} not replayed: {self.why}"


@dataclass
class Summary:
    """What a replay did: conversations and exchanges replayed, replies that differ, failed calls, what was skipped."""

    conversations: int = 0  # replayed: in the tables
    exchanges: int = 0
    differences: int = 0
    failed: int = 0  # calls of replayed conversations that got no proper answer (``error`` and ``status`` say why)
    not_sent: int = 0  # of those, the calls not made: their endpoint (or the bot) had been given up
    skipped: list[Corrupt] = field(default_factory=list)  # corrupt recording lines
    failed_conversations: list[NotReplayed] = field(default_factory=list)  # not replayed, not in the tables
    given_up: list[str] = field(default_factory=list)  # one line per endpoint given up (GiveUp.summary())

    def count(self, rows: list[dict], conversation: dict) -> None:
        """Add one replayed conversation (its exchange rows and its conversation row)."""
        self.conversations += 1
        self.exchanges += len(rows)
        self.differences += conversation["differences"]
        self.failed += sum(1 for row in rows if not _answered(row["status"], row["error"]))
        self.not_sent += sum(1 for row in rows if (row["error"] or "").startswith(NOT_SENT))

    def __str__(self) -> str:
        text = (
            f"replayed {render.count(self.conversations, 'conversation')}, {render.count(self.exchanges, 'exchange')}: "
            f"{render.count(self.differences, 'reply', 'replies')} differ from the recording"
        )
        if self.failed:
            not_sent = f", {self.not_sent} of them not sent" if self.not_sent else ""
            text += f"; {render.count(self.failed, 'call')} failed{not_sent} (see the error and status columns)"
        if self.failed_conversations:
            failed = render.count(len(self.failed_conversations), "conversation")
            text += f"; {failed} failed (not replayed, so not in the tables)"
        if self.skipped:
            text += f"; {render.count(len(self.skipped), 'corrupt line')} skipped"
        return text

    def progress(self) -> str:
        """The run so far, on one line."""
        text = (
            f"replay: {render.count(self.conversations, 'conversation')}, "
            f"{render.count(self.exchanges, 'exchange')}, {self.failed} failed"
        )
        if self.failed_conversations:
            text += f"; {render.count(len(self.failed_conversations), 'conversation')} failed"
        return text


class Grouped:
    """Corrupt lines and failed conversations told as they come, at most ``first`` for one reason.

    ``write`` is given each line to show (the command prints it); ``rest()`` gives, at the end,
    one line per reason met more often than that: "... and N more like it: <reason>".
    """

    def __init__(self, write: Callable[[str], None], first: int = SHOWN_PER_REASON):
        self.write, self.first = write, first
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, item: Corrupt) -> None:
        reason = getattr(item, "reason", "") or item.why
        with self._lock:
            count = self.counts[reason] = self.counts.get(reason, 0) + 1
        if count <= self.first:
            self.write(f"{'failed' if isinstance(item, NotReplayed) else 'skipped'} {item}")

    def rest(self) -> list[str]:
        """One line per reason met more than ``first`` times, saying how many more were not shown."""
        return [
            f"... and {count - self.first} more like it: {reason}"
            for reason, count in self.counts.items()
            if count > self.first
        ]


def _answered(status, error) -> bool:
    """The call got a proper answer: a 2xx status and a readable body."""
    return error is None and status is not None and 200 <= status < 300


def _fault(exchange: Exchange) -> str:
    """What went wrong with one call, in words; what came back shown short (an HTML page: its title)."""
    if exchange.error and exchange.status is not None:  # answered, but unreadable
        return f"{exchange.error} ({excerpt(exchange)})"
    if exchange.error:
        return exchange.error
    if exchange.status is not None and not 200 <= exchange.status < 300:
        return f"answered {exchange.status}: {excerpt(exchange)}"
    return "the answer does not fit the API: " + "; ".join(map(str, exchange.problems[:3]))


def _fault_kind(exchange: Exchange) -> str:
    """The fault without what is particular to the call (an error page names its path): for grouping."""
    kind = exchange.content_type.split(";")[0].strip() or "no content type"
    if exchange.error:
        return exchange.error if exchange.status is None else f"{exchange.error} ({kind})"
    if exchange.status is not None and not 200 <= exchange.status < 300:
        return f"answered {exchange.status} ({kind})"
    return "the answer does not fit the API"


def _call(exchange: Exchange) -> str:
    return f"{exchange.method} {urlsplit(exchange.url).path}"


class Replayer:
    """Replays recorded conversations against one bot from several threads: a client per thread, one GiveUp for all."""

    def __init__(
        self,
        provider_url: str,
        secret: str | None = None,
        give_up: GiveUp | None = None,
        api=None,
        outcome_rules: OutcomeRules = DEFAULT_RULES,
    ):
        self.provider_url, self.secret = provider_url, secret
        self.outcome_rules = outcome_rules  # what "asked for a human" and "resolved" mean for this bot
        self.give_up = give_up or GiveUp()  # shared by every thread's client: who stopped answering is let be
        self.api = api  # the local iAdvize API the bot posts through (IAdvizeAPI), or None
        self.proactive_wait = ProactiveWait()  # shared: a bot that never posts is no longer waited for, anywhere
        self._local = threading.local()
        self._ready: dict[str, list[dict]] = {}  # operator -> its distribution rules
        self.scenarios: dict[str, str] = {}  # operator -> the idBot it is linked to
        self._failed: dict[str, Exchange] = {}  # operator -> the call that could not set it up
        self._locks: dict[str, threading.Lock] = {}  # one per operator: a slow set-up holds up its own only
        self._answered: set[str] = set()  # operators one of whose visitor messages the bot answered
        self._lock = threading.Lock()

    def client(self) -> BotClient:
        """This thread's client of the bot, with its own requests session."""
        if not hasattr(self._local, "client"):  # a requests.Session per thread
            self._local.client = BotClient(self.provider_url, secret=self.secret, give_up=self.give_up)
        return self._local.client

    def set_up(self, operator: str, settings: dict | None) -> list[dict]:
        """The operator's distribution rules: saved as recorded, or as the bot already knows them.

        Without a recorded set-up the bot's own configuration is read, never overwritten; an
        operator the bot does not know is created on the default scenario, without rules.
        A set-up that fails is not tried again: the operator's other conversations are skipped
        with the same reason at once, instead of each waiting out the bot's budget.
        """
        with self._lock:
            lock = self._locks.setdefault(operator, threading.Lock())
        with lock:
            if operator in self._failed:
                raise BotError(self._failed[operator])
            if operator not in self._ready:
                try:
                    self._ready[operator] = self._set_up(operator, settings)
                except BotError as error:
                    self._failed[operator] = error.exchange
                    raise
            return self._ready[operator]

    def fallbacks(self) -> dict[str, str]:
        """Per operator set up, what the bot answers words it does not understand, asked once the replay is
        over as check asks it (a greeting, then gibberish) in a conversation no table shows; not asked of a
        bot that was given up (no call is made to it), nor for an operator none of whose visitors it answered."""
        found: dict[str, str] = {}
        if self.give_up.given_up:  # an endpoint, or the whole bot, stopped answering: it is not called again
            return found
        for operator, rules in self._ready.items():
            if operator not in self._answered:  # a bot that answered none of its visitors: nothing to tell apart
                continue
            platform = SimulatedPlatform(self.client(), operator, rules, proactive_wait=ProactiveWait(0))
            chat = platform.open_chat()
            platform.start(chat)
            for said in (greeting(None), GIBBERISH):
                platform.visitor_says(chat, said, after=5)
            if (fallback := fallback_of(chat)) is not None:
                found[operator] = fallback
        return found

    def _set_up(self, operator: str, settings: dict | None) -> list[dict]:
        if settings is None:
            known = self.client().exchange("bot.read", "GET", f"/bots/{quote(operator, safe='')}", "bot.response")
            if known.ok:
                self.scenarios[operator] = str((known.body.get("external") or {}).get("idBot") or "")
                return known.body.get("distributionRules") or []
            if known.status is None:  # no answer at all (down, hanging): creating the operator would fare no better
                raise BotError(known)
            settings = {"name": "replay", "distributionRules": [], "external": {"idBot": DEFAULT_SCENARIO}}
        self.client().save_bot(operator, settings)
        self.scenarios[operator] = str((settings.get("external") or {}).get("idBot") or "")
        return settings.get("distributionRules") or []

    def replay(self, recorded: Recorded, settings: dict | None) -> tuple[list[dict], dict]:
        """Replays one recorded conversation; returns its exchange rows and its conversation row.

        The operator is set up first (BotError when it cannot be). The visitor's messages go with
        their recorded ids and gaps, then what followed the last one plays out, up to iAdvize's
        inactivity close. Raises NoAnswer when not one call was answered.
        """
        rules = self.set_up(recorded.operator, settings)
        events: list[tuple[SimulatedConversation, Event]] = []
        platform = SimulatedPlatform(
            self.client(),
            recorded.operator,
            rules,
            rule_available=recorded.human_took_it,
            on_event=lambda chat, event: events.append((chat, event)),
            api=self.api,
            proactive_wait=self.proactive_wait,
        )
        t0 = sent_seconds(recorded.lines[0]["sent_at"])
        chat = platform.open_chat(recorded.id)
        platform.start(chat)
        for line in recorded.visitor_lines:
            message = line["request"]["message"]
            at = sent_seconds(line["sent_at"]) - t0
            platform.visitor_says(
                chat, payload=message["payload"], after=max(0.0, at - chat.now), id_message=message["idMessage"]
            )
        last = sent_seconds(recorded.lines[-1]["sent_at"]) - t0
        # What followed the last message plays out: pending replies, a transfer, iAdvize's 5-minute close.
        platform.wait(chat, max(0.0, last - chat.now) + INACTIVITY_CLOSE_SECONDS + 1)
        calls = [event.exchange for _, event in events if event.kind == "call"]
        if calls and not any(_answered(x.status, x.error) for x in calls):
            raise NoAnswer(calls)
        if any(e.kind == "call" and e.purpose == "visitor" and e.exchange.ok for _, e in events):
            self._answered.add(recorded.operator)  # set.add: safe from the replay's threads
        return self._rows(recorded, chat, events, t0)

    def _rows(self, recorded: Recorded, chat: SimulatedConversation, events, t0: float) -> tuple[list[dict], dict]:
        recorded_by_kind: dict[str, list[dict]] = {}
        for line in recorded.lines:
            recorded_by_kind.setdefault(_kind(line["endpoint"], recorded.role(line)), []).append(line)
        seen: dict[str, int] = {}
        rows = []
        rule_ids = [r.get("id") for r in self._ready.get(recorded.operator, [])]
        for seq, (_, event) in enumerate(e for e in events if e[1].kind == "call"):
            x = event.exchange
            kind = _kind(x.endpoint, event.purpose)
            index = seen[kind] = seen.get(kind, -1) + 1
            candidates = recorded_by_kind.get(kind, [])
            twin = candidates[index] if index < len(candidates) else None
            replies, recorded_replies = replies_of(x.body), replies_of(twin["response"]) if twin else None
            sent = (x.request_body or {}).get("message") if isinstance(x.request_body, dict) else None
            message = render.payload(sent.get("payload") or {}) if isinstance(sent, dict) else None
            rows.append(
                {
                    "conversation": recorded.id,
                    "seq": seq,
                    "endpoint": x.endpoint,
                    "purpose": event.purpose,
                    "message": message,
                    "sent_at": datetime.fromtimestamp(t0 + event.at, UTC),
                    "status": x.status,
                    # an answer that could not be read: what it was, short (content type, a line of it)
                    "error": f"{x.error} ({excerpt(x)})" if x.error and x.status is not None else x.error,
                    "latency_ms": x.latency_ms,
                    "recorded_latency_ms": twin["latency_ms"] if twin else None,
                    "replies": json.dumps(replies, ensure_ascii=False, sort_keys=True),
                    "recorded_replies": json.dumps(recorded_replies, ensure_ascii=False, sort_keys=True)
                    if twin
                    else None,
                    "variables": _json(wire.variables_of(x.body)),
                    # a failed call is never the same as an answered one, even when neither has replies;
                    # a call not sent is never the same as anything recorded
                    "same": None
                    if x.skipped or not twin
                    else replies == recorded_replies
                    and _answered(x.status, x.error) == _answered(twin["status"], twin.get("error")),
                    "rules": _broken(x, event.purpose, rule_ids, sent),
                    "asks_for_human": event.purpose == "visitor" and self.outcome_rules.asks_for_human(message or ""),
                }
            )
        return rows, self._conversation_row(recorded, chat, rows, t0)

    def _conversation_row(self, recorded: Recorded, chat: SimulatedConversation, rows: list[dict], t0: float) -> dict:
        events = chat.events
        visitor = [i for i, e in enumerate(events) if e.kind == "visitor"]
        transfer = next((i for i, e in enumerate(events) if e.kind == "transfer"), None)
        shown_after_first = [e for e in events[visitor[0] :] if e.kind == "shown"] if visitor else []
        first_call = next((r for r in rows if r["purpose"] == "visitor"), None)
        recorded_first = first_call["recorded_latency_ms"] if first_call else None
        asked = any(self.outcome_rules.asks_for_human(events[i].text) for i in visitor)
        step = turn = None
        if transfer is not None:
            before = [i for i in visitor if i < transfer]  # by position: replies share their message's time
            turn = len(before)
            if before:
                said = [e.text for e in events[: before[-1]] if e.kind == "shown"]
                step = said[-1] if said else "(nothing yet)"
        labels = {r.get("id"): r.get("label") for r in self._ready.get(recorded.operator, [])}
        went = journey(events)
        shown = [e.at for e in events if e.kind == "shown"]
        return {
            "conversation": recorded.id,
            "operator": recorded.operator,
            "scenario": self.scenarios.get(recorded.operator) or None,
            "started_at": datetime.fromtimestamp(t0, UTC),
            "first_message": events[visitor[0]].text if visitor else None,
            "turns": len(visitor),
            "outcome": outcome(chat, events, visitor, self.outcome_rules),  # "not understood": see replay()
            "asked_for_human": asked,
            "transfer": chat.transfer,
            "transfer_rule": (labels.get(chat.transfer_rule) or chat.transfer_rule) if chat.transfer else None,
            # what visitors lived: the recorded latency of the first visitor call; the replay's beside it
            "time_to_first_reply_s": first_reply_seconds(events, visitor, shown_after_first, recorded_first),
            "replayed_time_to_first_reply_s": first_reply_seconds(events, visitor, shown_after_first),
            "time_to_escalation_s": events[transfer].at if transfer is not None else None,
            "escalation_turn": turn,
            "escalation_step": step,
            "duration_s": chat.now,
            "last_reply_s": shown[-1] if shown else None,
            "differences": sum(1 for r in rows if r["same"] is False),
            "variables": _json(chat.variables),
            "prequalified": None if chat.variables_at_transfer is None else bool(chat.variables_at_transfer),
            "transfer_variables": _json(chat.variables_at_transfer),
            "last_bot_message": went.last_message,
            "last_menu": went.last_menu,
            "path": PATH_SEPARATOR.join(went.path),
            "fallback": None,  # known once the replay is over: see _not_understood
        }


def _broken(exchange: Exchange, purpose: str, rule_ids: list, sent) -> str | None:
    """The rules of check one replayed call broke (the same engine as check's), or None."""
    payload = sent.get("payload") if isinstance(sent, dict) else None
    found = judge(Observation(exchange, purpose, operator_rules=rule_ids, sent_payload=payload))
    # the operator's rules unknown (not recorded, not in GET /bots): a transfer's rule cannot be judged
    broken = [f.rule for f in found if rule_ids or f.rule != "transfer-unknown-rule"]
    return ", ".join(dict.fromkeys(broken)) or None


def _json(variables: dict | None) -> str | None:
    return None if variables is None else json.dumps(variables, ensure_ascii=False)


def _kind(endpoint: str, purpose_or_role: str | None) -> str:
    if endpoint != "messages":
        return endpoint
    return "visitor" if purpose_or_role in ("visitor", "retry") else "operator"


class TableWriter:
    """A parquet file written in batches, so rows never pile up in memory."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows, self.writer = path, schema, [], None

    def add(self, rows: list[dict]) -> None:
        """Adds rows, writing them out once ``BATCH_ROWS`` have piled up."""
        self.rows += rows
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Writes the rows held so far; the file is created on the first flush, even with no rows."""
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema)
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        """Writes what is left and closes the file (a table without rows still has its schema)."""
        self.flush()
        self.writer.close()
        self.writer = None

    def abandon(self) -> None:
        """Close the file, whatever it holds (a run cut short): its rows are not wanted."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def replay(
    paths: list,
    provider_url: str,
    out: Path,
    secret: str | None = None,
    concurrency: int = 4,
    progress=silent,
    limit: int | None = None,
    on_skipped: Callable[[Corrupt], None] | None = None,
    give_up: GiveUp | None = None,
    api=None,
    outcome_rules: OutcomeRules = DEFAULT_RULES,
) -> Summary:
    """Replay the recordings at ``paths`` against the bot at ``provider_url``, tables into ``out``.

    With ``api`` (the local iAdvize API), what the bot posts through it joins the conversations;
    ``outcome_rules`` say what the ``outcome`` and ``asked_for_human`` columns mean.

    ``progress(text, step="replay")`` is called as conversations finish; ``on_skipped`` with each
    corrupt line and each failed conversation (a :class:`NotReplayed`) as they are met; ``give_up``
    is shared with calls made before (a preflight), so their timeouts count. The tables replace
    those already in ``out`` only when at least one conversation was replayed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary, operators = Summary(), {}
    replayer = Replayer(provider_url, secret, give_up, api, outcome_rules)
    staged = {name: _temporary(out, name) for name in ("exchanges.parquet", "conversations.parquet")}
    exchanges = TableWriter(staged["exchanges.parquet"], EXCHANGE_COLUMNS)
    conversations = TableWriter(staged["conversations.parquet"], CONVERSATION_COLUMNS)

    def attempt(recorded: Recorded, settings: dict | None):
        try:
            return replayer.replay(recorded, settings)
        except Exception as error:  # one odd conversation must not end the run: report it, go on
            return _not_replayed(recorded, error)

    def done(future) -> None:
        outcome = future.result()
        if isinstance(outcome, NotReplayed):
            summary.failed_conversations.append(outcome)
            if on_skipped:
                on_skipped(outcome)
        else:
            rows, conversation = outcome
            exchanges.add(rows)
            conversations.add([conversation])
            summary.count(rows, conversation)
        progress(summary.progress(), step="replay")

    try:
        recorded_stream = recorded_conversations(paths, summary.skipped, operators, on_skipped=on_skipped)
        _run_all(islice(recorded_stream, limit), lambda r: (attempt, r, operators.get(r.operator)), done, concurrency)
        exchanges.close()
        conversations.close()
        if summary.conversations:
            _not_understood(staged["conversations.parquet"], replayer.fallbacks())
        if summary.conversations:  # earlier results are replaced by these, never by empty tables
            for name, path in staged.items():
                os.replace(path, out / name)
    finally:
        exchanges.abandon()
        conversations.abandon()
        for path in staged.values():
            path.unlink(missing_ok=True)
    summary.given_up = replayer.give_up.summary()
    return summary


def _not_understood(path: Path, fallbacks: dict[str, str]) -> None:
    """Each conversation gets its operator's fallback, and those that ended on it become "not understood" (a
    transfer's outcome stays): the fallback is known only once the bot was asked, after the replay."""
    if not fallbacks:
        return
    table = pq.read_table(path).to_pylist()
    for row in table:
        row["fallback"] = fallbacks.get(row["operator"])
        if row["outcome"] not in ("escalated", "transfer failed") and ends_on_fallback(
            row["last_bot_message"], row["fallback"]
        ):
            row["outcome"] = "not understood"
    pq.write_table(pa.Table.from_pylist(table, schema=CONVERSATION_COLUMNS), path)


def _run_all(items, task, done, concurrency: int) -> None:
    """``pool.submit(*task(item))`` for each item, ``done(future)`` for each in the items' order.

    What is reported follows the recording's order as far as it can; at most twice ``concurrency``
    items are in flight, so the recordings are read as fast as they are replayed, not faster.
    """
    with ThreadPoolExecutor(concurrency) as pool:
        running = []
        for item in items:
            if len(running) >= concurrency * 2:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in [f for f in running if f in finished]:
                    done(future)
                running = [f for f in running if f not in finished]
            running.append(pool.submit(*task(item)))
        for future in running:
            done(future)


def _temporary(out: Path, name: str) -> Path:
    """A name of its own in ``out`` for a table being written; hidden, so that no glob takes it for a
    result. The file is created by the writer, with the permissions any file of the user gets."""
    return out / f".{name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial"


class NoAnswer(Exception):
    """Not one call of a conversation got an answer: there is nothing of the bot's to compare."""

    def __init__(self, calls: list[Exchange]):
        self.calls = calls
        super().__init__(f"none of its {len(calls)} calls was answered")


def _not_replayed(recorded: Recorded, error: Exception) -> NotReplayed:
    """Why a conversation could not be replayed, in words: with its particulars, and without (to group)."""
    if isinstance(error, NoAnswer):
        made = [x for x in error.calls if not x.skipped]
        if not made:  # every call given up before it was sent
            x = error.calls[0]
            cause = x.error.removeprefix(NOT_SENT).strip()
            why = reason = f"none of its calls was made: {cause}"
        else:
            x = made[0]
            why = f"none of its {len(error.calls)} calls was answered; the first: {_call(x)}: {_fault(x)}"
            reason = f"none of its calls was answered; the first: {x.endpoint}: {_fault_kind(x)}"
    elif isinstance(error, BotError):  # only the operator's set-up raises it
        x = error.exchange
        why = f"operator {recorded.operator} could not be set up: {_call(x)}: {_fault(x)}"
        reason = f"its operator could not be set up: {x.endpoint}: {_fault_kind(x)}"
    else:  # something in the recording this replay cannot play
        why = reason = f"{type(error).__name__}: {error}"
    file, line = recorded.lines[0]["_source"].rsplit(":", 1)
    return NotReplayed(file, int(line), why, conversation=recorded.id, reason=reason)

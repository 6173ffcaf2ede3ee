"""The harness itself holds when the bot is broken: replay, check and verify over real sockets.

Each broken bot runs on 127.0.0.1 in a thread and misbehaves the way real bots do: it hangs,
stalls after its headers, trickles its answer a byte at a time, hangs up in the middle of
the body, answers HTML, invalid JSON or a body larger than the client accepts. Whatever it
does, the command ends within a bound, writes what it can, names the fault in plain words
and prints no traceback. In-process replays lower the client's budget through
``BotClient(budget=...)``; the commands run as a user runs them, with iAdvize's 10 s. The replay
tests assert what was decided (the calls made, those given up, the lines said), not how long it took.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.client import BUDGET_SECONDS, MAX_BODY_BYTES, NO_ANSWER_WITHIN, BotClient
from harness.traffic import replay as replay_module
from harness.traffic.replay import Grouped, replay
from harness.verify.states import PROVIDER

from .conftest import ROOT, LoopbackServer, RecordingBot

SAMPLE = ROOT / "notebooks" / "data" / "sample.jsonl.gz"
PACTS = ROOT / "contracts" / "pacts"
BUDGET = 0.5  # in-process replays: the client's budget, lowered so that hanging bots cost little
HUGE = b"[" + b"1," * (MAX_BODY_BYTES // 2 + 10) + b"1]"

TIMED_OUT = "no complete answer within the {budget:g} s iAdvize waits"
NOT_JSON = "the answer is not JSON"
TOO_LARGE = f"the answer is larger than {MAX_BODY_BYTES} bytes"
HUNG_UP = "connection failed ("
PROGRESS = re.compile(
    r"^replay: \d+ conversations?, \d+ exchanges?, \d+ failed(; \d+ conversations? failed)? \(\d+ s\)$"
)
# what each broken bot does -> the start of the error every call to it must carry
FAULTS = {
    "hang": TIMED_OUT,
    "stall": TIMED_OUT,
    "trickle": TIMED_OUT,
    "close": HUNG_UP,
    "html": NOT_JSON,
    "invalid-json": NOT_JSON,
    "huge": TOO_LARGE,
}


# --- a broken bot ------------------------------------------------------------------------------


class BrokenBot(RecordingBot):
    """Answers every call with ``mode``; with ``set_up_works``, operators are saved and read properly;
    with ``greeting_works``, ``GET /external-bots`` and the greeting are answered properly too."""

    def __init__(self, mode: str, set_up_works: bool = False, greeting_works: bool = False):
        self.mode, self.set_up_works, self.greeting_works = mode, set_up_works, greeting_works
        super().__init__()

    def respond(self, handler, path: str, body: bytes) -> None:
        if self.set_up_works and path.startswith("/bots/") and path.count("/") == 2:
            self.operator(handler, path.rsplit("/", 1)[1], json.loads(body) if body else {})
        elif self.greeting_works and path == "/external-bots":
            self.send(handler, 200, b'[{"idBot": "shop", "name": "Shop"}]')
        elif self.greeting_works and path.endswith("/conversation-first-messages"):
            self.send(handler, 200, b'{"replies": []}')
        else:
            self.misbehave(handler)

    def operator(self, handler, id_operator: str, settings: dict) -> None:
        self.send(
            handler,
            200,
            json.dumps(
                {
                    "idOperator": id_operator,
                    "external": {"idBot": "shop", "editorUrl": "https://bot.example.com/shop"},
                    "distributionRules": settings.get("distributionRules", []),
                    "createdAt": "2026-01-05T09:00:00.000Z",
                    "updatedAt": "2026-01-05T09:00:00.000Z",
                }
            ).encode(),
        )

    def misbehave(self, handler) -> None:
        mode = self.mode
        if mode == "hang":
            self.release.wait(60)
        elif mode == "html":
            self.send(handler, 200, b"<html><body>Bad gateway</body></html>", "text/html")
        elif mode == "invalid-json":
            self.send(handler, 200, b'{"replies": [{"type": "message",')
        elif mode == "huge":
            self.send(handler, 200, HUGE)
        else:  # the answer starts, then stalls, trickles or breaks off
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.write(b'{"replies"')
            handler.wfile.flush()
            if mode == "close":
                handler.close_connection = True
                handler.connection.shutdown(2)
            elif mode == "stall":
                self.release.wait(60)
            elif mode == "trickle":
                while not self.release.wait(0.05):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()


@contextlib.contextmanager
def broken_bot(mode: str, set_up_works: bool = False, greeting_works: bool = False):
    bot = BrokenBot(mode, set_up_works, greeting_works)
    try:
        yield bot
    finally:
        bot.close()


@pytest.fixture
def low_budget(monkeypatch):
    """The replay's clients hold BUDGET instead of iAdvize's 10 s (and 2 s for the greeting)."""
    monkeypatch.setattr(
        replay_module, "BotClient", functools.partial(BotClient, budget=BUDGET, first_messages_budget=BUDGET)
    )


# --- recordings ----------------------------------------------------------------------------------


def line(
    operator: str,
    conversation: str | None,
    seq: int,
    endpoint: str,
    method: str,
    path: str,
    request,
    response,
    sent_at: str,
) -> dict:
    return {
        "v": 1,
        "conversation": conversation,
        "operator": operator,
        "seq": seq,
        "endpoint": endpoint,
        "method": method,
        "path": path,
        "request": request,
        "status": 200,
        "response": response,
        "sent_at": sent_at,
        "latency_ms": 12.5,
        "error": None,
    }


def set_up_line(operator: str, minute: int) -> dict:
    return line(
        operator,
        None,
        0,
        "bot.save",
        "PUT",
        f"/bots/{operator}",
        {"name": "Shop", "distributionRules": [], "external": {"idBot": "shop"}},
        None,
        f"2026-01-05T10:{minute:02d}:00.000Z",
    )


def conversation_lines(operator: str, conversation: str, minute: int) -> list[dict]:
    """A short conversation: the greeting asked for, the chat routed to the bot, one visitor message."""
    at = f"2026-01-05T10:{minute:02d}"
    answer = {
        "idConversation": conversation,
        "idOperator": operator,
        "replies": [],
        "createdAt": f"{at}:01.000Z",
        "updatedAt": f"{at}:01.000Z",
    }
    visitor = {
        "idMessage": f"{conversation}-m1",
        "author": {"role": "visitor"},
        "payload": {"contentType": "text", "value": "Where is my order?"},
        "createdAt": f"{at}:05.000Z",
    }
    return [
        line(
            operator,
            conversation,
            0,
            "first-messages",
            "GET",
            f"/bots/{operator}/conversation-first-messages",
            None,
            {"replies": []},
            f"{at}:00.000Z",
        ),
        line(
            operator,
            conversation,
            1,
            "conversations",
            "POST",
            "/conversations",
            {"idOperator": operator, "idConversation": conversation, "history": []},
            answer,
            f"{at}:01.000Z",
        ),
        line(
            operator,
            conversation,
            2,
            "messages",
            "POST",
            f"/conversations/{conversation}/messages",
            {"idOperator": operator, "message": visitor},
            answer,
            f"{at}:05.000Z",
        ),
    ]


def two_operators(chats: int) -> list[dict]:
    """ha-1, set up in the recording (replay saves it with PUT), and ha-2, not (replay reads it with GET first)."""
    recorded = [set_up_line("ha-1", 0)]
    for n in range(chats):
        recorded += conversation_lines("ha-1", f"one-{n}", 1 + 2 * n)
        recorded += conversation_lines("ha-2", f"two-{n}", 2 + 2 * n)
    return recorded


def write_recording(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def first_lines(lines: list[dict]) -> dict[str, int]:
    """Each conversation's first line number in the file: where a skipped conversation is reported."""
    found: dict[str, int] = {}
    for number, x in enumerate(lines, 1):
        if x["conversation"] is not None:
            found.setdefault(x["conversation"], number)
    return found


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def cli(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "IADVIZE_SECRET"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )
    return result, time.monotonic() - started


# --- replay, the function ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", FAULTS)
def test_replay_against_a_broken_bot_writes_each_failed_call_as_a_row_that_names_the_fault(
    mode, low_budget, tmp_path, capsys
):
    recorded = [set_up_line("ha-100001", 0), *conversation_lines("ha-100001", "conv-a", 1)]
    path = write_recording(tmp_path / "rec.jsonl", recorded)
    out = tmp_path / "out"
    with broken_bot(mode, set_up_works=True, greeting_works=True) as bot:  # the greeting answered: it replays
        summary = replay([path], bot.url, out)

    calls = [x["endpoint"] for x in recorded if x["conversation"]]  # greeting, routing, the visitor's message
    assert bot.requests == [
        ("PUT", "/bots/ha-100001"),
        ("GET", "/bots/ha-100001/conversation-first-messages"),
        ("POST", "/conversations"),
        ("POST", "/conversations/conv-a/messages"),
    ]
    greeting, *broken = rows(out / "exchanges.parquet")
    assert [x["endpoint"] for x in [greeting, *broken]] == calls
    assert (greeting["status"], greeting["error"], greeting["same"]) == (200, None, True)
    expected = FAULTS[mode].format(budget=BUDGET)
    for x in broken:
        assert x["error"].startswith(expected), x
        assert x["same"] is False, "a call that failed cannot match a recorded answer"
        assert x["status"] == (200 if expected == NOT_JSON else None)
    if mode == "close":
        assert all("IncompleteRead" in x["error"] for x in broken)
    if mode == "html":  # what came, short: its content type and its text, not the page
        assert all(x["error"] == f"{NOT_JSON} (text/html: Bad gateway)" for x in broken)
    if mode == "invalid-json":
        assert all(x["error"] == f'{NOT_JSON} (application/json: {{"replies": [{{"type": "message",)' for x in broken)
    assert [(c["conversation"], c["turns"]) for c in rows(out / "conversations.parquet")] == [("conv-a", 1)]
    assert (
        summary.conversations,
        summary.exchanges,
        summary.failed,
        summary.skipped,
        summary.failed_conversations,
    ) == (1, len(calls), len(broken), [], [])
    assert f"{len(broken)} calls failed" in str(summary)
    assert capsys.readouterr() == ("", "")  # library code prints nothing


@pytest.mark.parametrize("mode", ["hang", "trickle", "close", "invalid-json"])
def test_an_operator_the_broken_bot_cannot_set_up_is_tried_once_and_each_conversation_reported(
    mode, low_budget, tmp_path, capsys
):
    recorded = two_operators(3)
    path = write_recording(tmp_path / "rec.jsonl", recorded)
    told: list[str] = []
    grouped = Grouped(told.append)
    with broken_bot(mode) as bot:
        summary = replay([path], bot.url, tmp_path / "out", on_skipped=grouped)

    where = first_lines(recorded)
    assert summary.skipped == []  # the recording is sound: these conversations failed, they are not corrupt
    assert sorted((c.file, c.line) for c in summary.failed_conversations) == sorted(
        (str(path), n) for n in where.values()
    )
    expected = FAULTS[mode].format(budget=BUDGET)
    for failed in summary.failed_conversations:
        assert where[failed.conversation] == failed.line
        method, operator = (
            ("PUT", "ha-1")
            if failed.conversation.startswith("one")
            else ("PUT" if mode == "invalid-json" else "GET", "ha-2")
        )
        assert failed.why.startswith(f"operator {operator} could not be set up: {method} /bots/{operator}: {expected}")
    assert capsys.readouterr() == ("", "")  # library code prints nothing: the lines go to on_skipped
    told_of = [
        c
        for c in where
        if any(
            r.startswith(f"failed {path}:{where[c]}: conversation {c} not replayed: operator ") and expected in r
            for r in told
        )
    ]
    if mode == "invalid-json":  # both set-ups failed alike (PUT, not JSON): one reason, five told
        assert (len(told), told_of, grouped.rest()) == (
            5,
            list(where)[:5],
            [f"... and 1 more like it: its operator could not be set up: bot.save: {NOT_JSON} (application/json)"],
        )
    else:  # one reason per operator (its PUT, its GET), three conversations each: all told
        assert (len(told), told_of, grouped.rest()) == (len(where), list(where), [])
    calls = sorted(bot.requests)
    # one attempt per operator: a failed set-up is not waited out again for each conversation
    if mode == "invalid-json":  # ha-2 answered (not JSON): creating it is worth a try
        assert calls == [("GET", "/bots/ha-2"), ("PUT", "/bots/ha-1"), ("PUT", "/bots/ha-2")]
    else:  # no answer at all
        assert calls == [("GET", "/bots/ha-2"), ("PUT", "/bots/ha-1")]
    assert list((tmp_path / "out").iterdir()) == []  # nothing replayed: no table written, no temporary left
    assert summary.conversations == 0 and f"{len(where)} conversations failed" in str(summary)


# --- replay, the command -------------------------------------------------------------------------


def progress_lines_only(stderr: str) -> bool:
    """Nothing on stderr but progress (plain lines: it is not a terminal), if the run lasted long enough."""
    return "\r" not in stderr and all(PROGRESS.match(line) for line in stderr.splitlines())


@pytest.mark.parametrize("mode", ["close", "html", "invalid-json", "huge"])
def test_the_replay_command_against_a_broken_bot_finishes_writes_both_tables_and_prints_no_traceback(mode, tmp_path):
    recorded = [set_up_line("ha-100001", 0), *conversation_lines("ha-100001", "conv-a", 1)]
    path = write_recording(tmp_path / "rec.jsonl", recorded)
    out = tmp_path / "out"
    with broken_bot(mode, set_up_works=True, greeting_works=True) as bot:
        result, _ = cli("replay", str(path), "--provider-url", bot.url, "--out", str(out))

    broken = len(recorded) - 2  # all but the set-up and the greeting
    assert result.returncode == 0, result.stderr
    assert progress_lines_only(result.stderr), result.stderr  # no traceback, no warning: the faults are in the tables
    assert replaying_line(result.stdout) == bot.url
    assert result.stdout.splitlines()[1:] == [
        f"replayed 1 conversation, {broken + 1} exchanges: {broken} replies differ from the recording; "
        f"{broken} calls failed (see the error and status columns)",
        str(out / "exchanges.parquet"),
        str(out / "conversations.parquet"),
    ]
    errors = [x["error"] for x in rows(out / "exchanges.parquet")]
    assert errors[0] is None
    assert all(e.startswith(FAULTS[mode].format(budget=BUDGET_SECONDS)) for e in errors[1:]), errors
    assert len(rows(out / "conversations.parquet")) == 1
    # each call made once, none given up (one more POST: the preflight's conversation)
    assert [m for m, _ in bot.requests].count("POST") == broken + 1


@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_the_replay_command_gives_a_hanging_bot_up_after_two_calls_over_budget(mode, tmp_path):
    # iAdvize's own 10 s here; one conversation at a time, so that which calls are made is decided in order
    recorded = two_operators(2)  # ha-1 set up in the recording (PUT), ha-2 not (GET first)
    path = write_recording(tmp_path / "rec.jsonl", recorded)
    out = tmp_path / "out"
    out.mkdir()
    (out / "exchanges.parquet").write_bytes(b"an earlier run")
    with broken_bot(mode) as bot:
        result, _ = cli("replay", str(path), "--provider-url", bot.url, "--out", str(out), "--concurrency", "1")

    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    # the preflight's GET /external-bots went over budget, then its POST /conversations: two in a row on
    # different endpoints, one of them a conversation's, so the whole bot was given up: no set-up was sent
    assert bot.requests == [("GET", "/external-bots"), ("POST", "/conversations")]
    reported = result.stderr.splitlines()
    assert (
        f"given up: the bot stopped answering (2 calls in a row on different endpoints with {NO_ANSWER_WITHIN} "
        "the budget): 2 further calls were not made"
    ) in reported
    not_sent = (
        "could not be set up: {call}: not sent: the bot was given up after 2 calls in a row with "
        f"{NO_ANSWER_WITHIN} the budget"
    )
    why = {
        "one": "operator ha-1 " + not_sent.format(call="PUT /bots/ha-1"),
        "two": "operator ha-2 " + not_sent.format(call="GET /bots/ha-2"),
    }
    where = first_lines(recorded)
    assert [r for r in reported if r.startswith("failed ")] == [
        f"failed {path}:{where[c]}: conversation {c} not replayed: {why[c.split('-')[0]]}"
        for c in ("one-0", "two-0", "one-1", "two-1")
    ]
    # progress as it went (stderr is not a terminal: plain lines); the set-up alone outlasts the first seconds
    assert "\r" not in result.stderr and any(PROGRESS.match(r) for r in reported), reported
    assert replaying_line(result.stdout) == bot.url
    assert result.stdout.splitlines()[1:] == [
        "replayed 0 conversations, 0 exchanges: 0 replies differ from the recording; 4 conversations failed "
        "(not replayed, so not in the tables)",
        f"no conversation could be replayed: nothing written, {out} left as it was",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["exchanges.parquet"]
    assert (out / "exchanges.parquet").read_bytes() == b"an earlier run"


def sample_conversations(count: int) -> tuple[list[str], list[list[str]]]:
    """The sample's set-up lines, and its first ``count`` conversations whole (lines in file order)."""
    lines = gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()[:400]
    set_up = [x for x in lines if json.loads(x)["conversation"] is None]
    by_id: dict[str, list[str]] = {}
    for x in lines:
        if (conversation := json.loads(x)["conversation"]) is not None:
            by_id.setdefault(conversation, []).append(x)
    chosen = list(by_id.values())[:count]
    assert len(chosen) == count
    return set_up, chosen


def test_the_replay_command_reports_a_corrupt_line_and_a_cut_gzip_with_file_and_line_and_replays_the_rest(
    make_bot, tmp_path
):
    set_up, (a, b, d, c) = sample_conversations(4)
    folder = tmp_path / "recordings"
    folder.mkdir()
    first = set_up + a[:3] + ["{garbage"] + a[3:]  # a corrupt line in the middle of a conversation
    (folder / "a.jsonl").write_text("\n".join(first) + "\n", encoding="utf-8")
    packed = gzip.compress(("\n".join(b + d) + "\n").encode())
    cut = packed[: len(packed) * 3 // 4]  # a file that was being written when it was copied
    (folder / "b.jsonl.gz").write_bytes(cut)
    (folder / "c.jsonl").write_text("\n".join(c) + "\n", encoding="utf-8")

    readable = zlib.decompressobj(wbits=31).decompress(cut).split(b"\n")[:-1]  # the whole lines before the cut
    assert 0 < len(readable) < len(b + d)
    expected = {json.loads(x)["conversation"] for x in [*a, *c, *readable]}
    out = tmp_path / "out"
    with LoopbackServer(make_bot(PUBLIC_URL="https://bot.example.com")) as server:
        result, _ = cli("replay", str(folder), "--provider-url", server.url, "--out", str(out))

    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    # in recorded-time order: a.jsonl's need not come first; progress lines aside
    reported = sorted(r for r in result.stderr.splitlines() if not PROGRESS.match(r))
    assert len(reported) == 2
    assert reported[0].startswith(f"skipped {folder / 'a.jsonl'}:{len(set_up) + 4}: not JSON")
    assert reported[1].startswith(f"skipped {folder / 'b.jsonl.gz'}:{len(readable) + 1}: unreadable")
    assert replaying_line(result.stdout) == server.url
    assert result.stdout.splitlines()[1].startswith(f"replayed {len(expected)} conversations, ")
    assert "2 corrupt lines skipped" in result.stdout and "conversations failed" not in result.stdout
    assert {x["conversation"] for x in rows(out / "conversations.parquet")} == expected
    assert {x["conversation"] for x in rows(out / "exchanges.parquet")} == expected


def test_the_replay_command_refuses_what_it_cannot_use_in_one_line(tmp_path):
    recording = write_recording(tmp_path / "rec.jsonl", conversation_lines("ha-1", "conv-a", 1))
    in_the_way = tmp_path / "results"
    in_the_way.write_text("not a folder", encoding="utf-8")
    blocked, _ = cli("replay", str(recording), "--provider-url", "http://127.0.0.1:9", "--out", str(in_the_way))
    assert blocked.returncode == 2
    assert blocked.stderr == f"error: cannot write the tables in {in_the_way}: it is a file, not a folder\n"
    missing, _ = cli(
        "replay", str(tmp_path / "none.jsonl"), "--provider-url", "http://127.0.0.1:9", "--out", str(tmp_path / "out")
    )
    assert missing.returncode == 2 and missing.stderr == f"error: no recording at {tmp_path / 'none.jsonl'}\n"


# --- check and verify, the commands ------------------------------------------------------------

# the bot's fault -> check's finding: its message, and the start of its evidence
BROKEN_FOR_CHECK = {
    "close": (f"no answer from the bot: {HUNG_UP}", ""),
    "invalid-json": (NOT_JSON, 'application/json: {"replies": [{"type": "message",'),
}
SEVEN = {
    "external-bots",
    "bot.save",
    "bot.read",
    "availability-strategies",
    "first-messages",
    "conversations",
    "messages",
}


@pytest.mark.parametrize("mode", BROKEN_FOR_CHECK)
def test_the_check_command_reports_a_broken_bot_once_per_endpoint_and_exits_1(mode, tmp_path):
    findings = tmp_path / "findings.json"
    with broken_bot(mode) as bot:
        result, _ = cli("check", "--provider-url", bot.url, "--json", str(findings))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    # three rules broken: http-error (on each endpoint), and the file's and the health check's
    assert lines[0].startswith("3 errors, 0 warnings in ") and lines[0].endswith(f" — {bot.url}")
    assert "iAdvize's API" not in result.stdout  # the bot never called it: no word of it
    note = next(line for line in lines if line.startswith("note: no scenario listed"))
    assert note.startswith(f"note: no scenario listed (GET {bot.url}/external-bots: ")
    assert {"close": HUNG_UP, "invalid-json": NOT_JSON}[mode] in note  # the cause, on the console too
    report = json.loads(findings.read_text(encoding="utf-8"))
    errors = [f for f in report["findings"] if f["rule"] == "http-error"]
    assert {f["endpoint"] for f in errors} == SEVEN and len(errors) == len(SEVEN)  # one per endpoint, not per call
    message, evidence = BROKEN_FOR_CHECK[mode]
    assert all(f["message"].startswith(message) and f["evidence"].startswith(evidence) for f in errors)
    assert {f["rule"] for f in report["findings"]} == {"http-error", "unsupported-payload-crash", "healthcheck"}
    assert {path.split("/")[-1] for _, path in bot.requests} >= {
        "external-bots",
        "conversation-first-messages",
        "conversations",
        "messages",
    }  # all still tried


def test_the_verify_command_reports_a_bot_hanging_up_mid_answer_on_each_interaction():
    with broken_bot("close") as bot:
        result, _ = cli("verify", "--provider-url", bot.url)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    reasons = [line.strip() for line in result.stdout.splitlines() if line.startswith("        - ")]
    assert reasons and all(r.startswith(f"- the bot did not answer properly: {HUNG_UP}IncompleteRead") for r in reasons)
    assert "answered 502" not in result.stdout  # the gateway's stand-in status is not the bot's


def test_the_verify_command_fails_every_interaction_of_a_bot_answering_invalid_json():
    pacts = [json.loads(p.read_text(encoding="utf-8")) for p in PACTS.glob("*.json")]
    interactions = sum(len(pact["interactions"]) for pact in pacts if pact["provider"]["name"] == PROVIDER)
    with broken_bot("invalid-json") as bot:
        result, _ = cli("verify", "--provider-url", bot.url)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.count("  FAIL  ") == interactions
    assert result.stdout.startswith(f"0 passed, {interactions} failed — {bot.url}\n")
    assert f"the bot did not answer properly: {NOT_JSON}" in result.stdout
    assert "Failed to parse the actual body" not in result.stdout  # said once, in our words


def replaying_line(stdout: str) -> str:
    """The bot the replay's first line names; it must also give the local iAdvize API's URL for that bot."""
    found = re.fullmatch(
        r"Replaying against (\S+); iAdvize's API for it to call: http://127\.0\.0\.1:\d+", stdout.splitlines()[0]
    )
    assert found, stdout
    return found.group(1)

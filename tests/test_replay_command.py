"""``iadvize-harness replay`` as a bot provider runs it: said once, bounded, never overwriting results with nothing.

Each bot is a real HTTP server on 127.0.0.1 (the reference bot, or a small one written here).
The command runs in a subprocess with iAdvize's own budgets; the replays in process lower the
budget (the decisions are the same). The tests assert what was decided (the exit code, the
lines said, the calls made or not made, the files left), never how long it took. A hanging bot
through the command: tests/test_harness_faults.py.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.client import NO_ANSWER_WITHIN, BotClient, GiveUp
from harness.traffic import replay as replay_module
from harness.traffic.replay import Grouped, replay

from .conftest import ROOT, LoopbackServer, RecordingBot
from .test_harness_faults import conversation_lines, set_up_line, write_recording

PUBLIC_URL = "https://bot.example.com"
ERROR_PAGE = (
    b"<!doctype html><html><head><title>500 Internal Server Error</title></head><body><h1>Internal "
    b"Server Error</h1><p>The server encountered an internal error.</p></body></html>"
)
SCENARIOS = json.dumps([{"idBot": "shop", "name": "Shop"}]).encode()


# --- small bots -------------------------------------------------------------------------------

HANG = "hang"


class Bot(RecordingBot):
    """A connector on loopback: ``answer(method, path)`` gives (status, body, content type), or HANG (no answer)."""

    def __init__(self, answer):
        self.answer = answer
        super().__init__()

    def respond(self, handler, path: str, body: bytes) -> None:
        answered = self.answer(handler.command, path)
        if answered == HANG:
            self.release.wait(60)
        else:
            self.send(handler, answered[0], answered[1], answered[2])


def operator_body(path: str) -> bytes:
    return json.dumps(
        {
            "idOperator": path.rsplit("/", 1)[1],
            "external": {"idBot": "shop", "editorUrl": PUBLIC_URL},
            "distributionRules": [],
            "createdAt": "2026-01-05T09:00:00.000Z",
            "updatedAt": "2026-01-05T09:00:00.000Z",
        }
    ).encode()


def lists_scenarios_then_errs(method: str, path: str):
    """The preflight passes (its scenarios are listed); every other call answers an HTML error page."""
    if path == "/external-bots":
        return 200, SCENARIOS, "application/json"
    return 500, ERROR_PAGE, "text/html; charset=utf-8"


def sets_up_then_errs(method: str, path: str):
    """Scenarios listed and operators saved and read, but every conversation call answers an HTML error page."""
    if path == "/external-bots":
        return 200, SCENARIOS, "application/json"
    if path.startswith("/bots/") and path.count("/") == 2:
        return 200, operator_body(path), "application/json"
    return 500, ERROR_PAGE, "text/html; charset=utf-8"


def hangs_on_starting_conversations(method: str, path: str):
    """Everything answers but ``POST /conversations``, which never does."""
    if method == "POST" and path == "/conversations":
        return HANG
    if path.endswith("/conversation-first-messages"):
        return 200, b'{"replies": []}', "application/json"
    if path.endswith("/messages"):
        return (
            200,
            json.dumps(
                {
                    "idConversation": path.split("/")[2],
                    "idOperator": "ha-1",
                    "replies": [],
                    "createdAt": "2026-01-05T10:00:00.000Z",
                    "updatedAt": "2026-01-05T10:00:00.000Z",
                }
            ).encode(),
            "application/json",
        )
    return sets_up_then_errs(method, path)


def sets_up_then_hangs(method: str, path: str):
    """Scenarios and operators answer; the conversation endpoints never do."""
    if path == "/external-bots" or (path.startswith("/bots/") and path.count("/") == 2):
        return sets_up_then_errs(method, path)
    return HANG


# --- helpers ----------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "IADVIZE_SECRET"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


def earlier_results(folder: Path) -> dict[str, bytes]:
    """A results folder as an earlier run left it; returns what it holds, to compare with afterwards."""
    folder.mkdir(parents=True)
    (folder / "exchanges.parquet").write_bytes(b"the exchanges of an earlier run")
    (folder / "conversations.parquet").write_bytes(b"the conversations of an earlier run")
    return contents(folder)


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def one_operator(chats: int, operator: str = "ha-1") -> list[dict]:
    recorded = [set_up_line(operator, 0)]
    for n in range(chats):
        recorded += conversation_lines(operator, f"chat-{n}", 1 + n)
    return recorded


def many_operators(count: int) -> list[dict]:
    """One conversation each for ``count`` operators, none of them set up in the recording."""
    return [x for n in range(count) for x in conversation_lines(f"ha-{n + 1}", f"chat-{n}", 1 + n)]


# --- said once ----------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["not-the-secret", None])
def test_a_refused_signature_is_one_error_line_exit_2_and_earlier_results_untouched(secret, make_bot, tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", one_operator(3))
    out = tmp_path / "results"
    before = earlier_results(out)
    with LoopbackServer(make_bot(PUBLIC_URL=PUBLIC_URL, IADVIZE_SECRET="the-app-secret")) as server:
        result = run(
            "replay",
            str(path),
            "--provider-url",
            server.url,
            "--out",
            str(out),
            *(["--secret", secret] if secret else []),
        )

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == result.stderr.splitlines()  # nothing else said: not one line per conversation
    if secret:
        assert errors == [
            "error: the bot refuses this secret (GET /external-bots answered 401): check --secret "
            "or IADVIZE_SECRET against the secret of the bot's iAdvize app"
        ]
    else:
        assert errors == [
            "error: the bot refuses unsigned calls (GET /external-bots answered 401): pass --secret "
            "or set IADVIZE_SECRET"
        ]
    assert contents(out) == before


def test_a_bot_that_cannot_be_reached_is_one_error_line_and_out_is_not_created(tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", one_operator(1))
    with Bot(lambda method, path: HANG) as bot:
        url = bot.url
    result = run("replay", str(path), "--provider-url", url, "--out", str(tmp_path / "results"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot reach the bot at {url}: connection failed (")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "results").exists()


# --- no conversation replayed: exit 1, nothing replaced ------------------------------------------


def test_a_bot_that_fails_every_set_up_exits_1_says_failed_and_leaves_earlier_results(tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", many_operators(8))
    out = tmp_path / "results"
    before = earlier_results(out)
    with Bot(lists_scenarios_then_errs) as bot:
        result = run("replay", str(path), "--provider-url", bot.url, "--out", str(out))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith(f"Replaying against {bot.url}; iAdvize's API for it to call: http://127.0.0.1:")
    assert result.stdout.splitlines()[1:] == [
        "replayed 0 conversations, 0 exchanges: 0 replies differ from the recording; "
        "8 conversations failed (not replayed, so not in the tables)",
        f"no conversation could be replayed: nothing written, {out} left as it was",
    ]
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    page = "text/html: 500 Internal Server Error / Internal Server Error"  # the page's title and first line
    assert len(failed) == 5  # the first five for this reason...
    for n, line in enumerate(failed):
        assert line == (
            f"failed {path}:{3 * n + 1}: conversation chat-{n} not replayed: operator ha-{n + 1} could "
            f"not be set up: PUT /bots/ha-{n + 1}: answered 500: {page}"
        )
    # ...then one line for the rest
    assert (
        "... and 3 more like it: its operator could not be set up: bot.save: answered 500 (text/html)"
        in result.stderr.splitlines()
    )
    assert "<html" not in result.stderr and "<title" not in result.stderr
    assert contents(out) == before  # no temporary left behind either


def test_a_bot_that_answers_no_conversation_call_exits_1_and_leaves_earlier_results(tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", one_operator(3))
    out = tmp_path / "results"
    before = earlier_results(out)
    with Bot(sets_up_then_errs) as bot:
        result = run("replay", str(path), "--provider-url", bot.url, "--out", str(out))

    assert result.returncode == 1, result.stderr
    assert "3 conversations failed" in result.stdout
    failed = sorted(line for line in result.stderr.splitlines() if line.startswith("failed "))
    assert len(failed) == 3
    assert all(
        " not replayed: none of its 3 calls was answered; the first: GET /bots/ha-1/conversation-first-"
        "messages: answered 500: text/html: 500 Internal Server Error" in line
        for line in failed
    ), failed
    assert contents(out) == before


# --- given up -------------------------------------------------------------------------------------

# --- given up, in process (a lowered budget; the decisions are the same) ------------------------------

BUDGET = 0.5


@pytest.fixture
def low_budget(monkeypatch):
    monkeypatch.setattr(
        replay_module, "BotClient", functools.partial(BotClient, budget=BUDGET, first_messages_budget=BUDGET)
    )


def test_once_the_bot_is_given_up_no_call_is_made_and_each_conversation_fails_at_once(low_budget, tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", one_operator(8))
    told: list[str] = []
    grouped, give_up = Grouped(told.append), GiveUp()
    with Bot(sets_up_then_hangs) as bot:
        summary = replay([path], bot.url, tmp_path / "out", concurrency=1, on_skipped=grouped, give_up=give_up)

    # the set-up answered; chat-0's greeting and start went over budget, one endpoint after the other
    assert bot.requests == [
        ("PUT", "/bots/ha-1"),
        ("GET", "/bots/ha-1/conversation-first-messages"),
        ("POST", "/conversations"),
    ]
    assert give_up.timeouts == {"first-messages": 1, "conversations": 1}
    assert give_up.given_up == {"*": 1 + 7 * 3}  # chat-0's message, then every call of the seven others
    assert summary.given_up == [
        f"the bot stopped answering (2 calls in a row on different endpoints with "
        f"{NO_ANSWER_WITHIN} the budget): 22 further calls were not made"
    ]
    assert (summary.conversations, summary.exchanges, len(summary.failed_conversations)) == (0, 0, 8)
    first, *others = summary.failed_conversations
    assert first.why == (
        f"none of its 3 calls was answered; the first: GET /bots/ha-1/conversation-first-messages: "
        f"{NO_ANSWER_WITHIN} the 0.5 s iAdvize waits"
    )
    given_up = (
        f"none of its calls was made: the bot was given up after 2 calls in a row with {NO_ANSWER_WITHIN} the budget"
    )
    assert {o.why for o in others} == {given_up} and [o.conversation for o in others] == [
        f"chat-{n}" for n in range(1, 8)
    ]
    assert told == [
        f"failed {path}:2: conversation chat-0 not replayed: {first.why}",
        *(f"failed {path}:{3 * n + 2}: conversation chat-{n} not replayed: {given_up}" for n in range(1, 6)),
    ]
    assert grouped.rest() == [f"... and 2 more like it: {given_up}"]
    assert list((tmp_path / "out").iterdir()) == []  # nothing replayed: no table, no temporary


def test_calls_not_sent_are_rows_counted_failed_and_never_compared(low_budget, tmp_path):
    path = write_recording(tmp_path / "rec.jsonl", one_operator(4))
    with Bot(hangs_on_starting_conversations) as bot:
        summary = replay([path], bot.url, tmp_path / "out", concurrency=1)

    assert bot.requests.count(("POST", "/conversations")) == 2  # given up after two in a row
    exchanges = pq.read_table(tmp_path / "out" / "exchanges.parquet").to_pylist()
    starts = [x for x in exchanges if x["endpoint"] == "conversations"]
    timed_out = f"{NO_ANSWER_WITHIN} the {BUDGET:g} s iAdvize waits"
    not_sent = f"not sent: conversations was given up after 2 calls in a row with {NO_ANSWER_WITHIN} the budget"
    assert [(x["conversation"], x["error"], x["same"]) for x in starts] == [
        ("chat-0", timed_out, False),
        ("chat-1", timed_out, False),
        ("chat-2", not_sent, None),
        ("chat-3", not_sent, None),
    ]  # a call not made is neither the same as its recording nor different
    assert all(x["same"] for x in exchanges if x["endpoint"] != "conversations")  # the rest answered as recorded
    assert (summary.conversations, summary.exchanges, summary.failed, summary.not_sent) == (4, 12, 4, 2)
    assert summary.given_up == [
        f"conversations: 2 calls with {NO_ANSWER_WITHIN} the {BUDGET:g} s budget: given up "
        "after 2 in a row, 2 further calls not made"
    ]
    assert "4 calls failed, 2 of them not sent" in str(summary)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["conversations.parquet", "exchanges.parquet"]


def test_outcome_rules_of_the_team_decide_what_asked_for_a_human_and_resolved_mean(tmp_path):
    import pandas as pd

    from tests.test_notebooks import SAMPLE

    rules = tmp_path / "outcomes.yaml"
    rules.write_text('asked_for_human: [agent]\nresolved: ["Glad I could help"]\n', encoding="utf-8")
    out = tmp_path / "results"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "replay",
            str(SAMPLE),
            "--limit",
            "60",
            "--outcomes",
            str(rules),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    conversations = pd.read_parquet(out / "conversations.parquet")
    said = conversations.set_index("conversation")
    # resolved: only where the bot said its goodbye (closed or not); the others unresolved
    assert {"unresolved", "resolved"} <= set(said["outcome"]) and "closed by bot" not in set(said["outcome"])
    exchanges = pd.read_parquet(out / "exchanges.parquet")
    visitor = exchanges[exchanges["purpose"] == "visitor"].groupby("conversation")["message"].agg(" ".join)
    agent = visitor.str.contains(r"\bagent\b", case=False)
    assert agent.any() and said.loc[visitor.index, "asked_for_human"].tolist() == agent.tolist()  # "person" no more
    bad = tmp_path / "bad.yaml"
    bad.write_text("asked_for_human: yes\n", encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "harness.cli", "replay", str(SAMPLE), "--outcomes", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == f"error: {bad}: asked_for_human must be a list of non-empty strings (quote yes and no)"
    )


@pytest.mark.parametrize("faults", [frozenset(), frozenset({"message_600"})], ids=["correct", "message-600"])
def test_each_replayed_call_names_the_rules_of_check_it_broke_and_the_explorer_finds_them(faults, tmp_path):
    from harness.analysis import explorer

    from . import third_party_bot

    recording = write_recording(tmp_path / "r.jsonl", [set_up_line("ha-1", 0), *conversation_lines("ha-1", "c-1", 1)])
    with LoopbackServer(third_party_bot.make_app(None, faults)) as server:
        summary = replay([recording], server.url, tmp_path / "out")
    assert summary.conversations == 1
    exchanges = pq.read_table(tmp_path / "out" / "exchanges.parquet").to_pandas()
    visitor = exchanges[exchanges["purpose"] == "visitor"]
    broken = {r for cell in exchanges["rules"].dropna() for r in cell.split(", ")}
    # the 600 characters, counted here from the answer itself
    too_long = [
        len(r["payload"]["value"])
        for cell in visitor["replies"]
        for r in json.loads(cell)
        if r.get("type") == "message" and len(r["payload"]["value"]) > 450
    ]
    assert broken == ({"message-too-long"} if too_long else set())
    assert too_long == ([600] if faults else [])
    conversations = pq.read_table(tmp_path / "out" / "conversations.parquet").to_pandas()
    found = explorer.find(exchanges, conversations, rule="message-too-long")["conversation"].tolist()
    assert found == (["c-1"] if faults else [])

"""``iadvize-harness load``: Locust really runs, headless, against bots on loopback.

No assertion here counts what happened in so many seconds (a loaded machine makes fewer calls in
the same wall time): the tests check what the load test decided (its plan, each process's share
of the operators and the phases it drew, as the summary records them), and the calls the bot
received, as its JSON log lines show them (path, idOperator, and the ``X-Request-Id`` naming the
load process that made each call). Lower bounds are "at least one", and bounds between two
counts hold whatever the speed: Locust records a call only once the bot has answered it, and the
bot logs a call before answering, so Locust's count never exceeds the bot's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.bots import EmbeddedBot
from harness.cli import main
from harness.load import run
from harness.load.plan import Plan, think_time

from . import third_party_bot
from .conftest import LoopbackServer

SECRET = "load-test-secret"
SECONDS = 6
FAST_VISITORS = ["--think-time", "0.2-0.5", "--messages", "3", "--conversations-per-minute", "120"]
FAST = {"conversations_per_minute": 120, "think_time": (0.2, 0.5), "messages": 3}  # the same, for run()
# The plan these give, worked out by hand: a chat lasts at most 3 x (0.5 s + 1 s) = 4.5 s, and 2 chats
# start a second, so ceil(2 x 4.5) + 1 = 10 visitors, each opening a chat every 10 x 60 / 120 = 5 s.
FAST_VISITOR_USERS, FAST_PACING = 10, 5.0


def stats(prefix: Path) -> dict[str, dict]:
    """Locust's CSV statistics by request name."""
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as table:
        return {row["Name"]: row for row in csv.DictReader(table)}


def requests_of(log: str) -> list[dict]:
    """The bot's access log lines, in the order it answered them."""
    return [line for line in map(json.loads, log.splitlines()) if line.get("logger") == "reference_bot.access"]


def saved_operators(calls: list[dict]) -> list[str]:
    """The operators the load test saved, in order (PUT /bots/:idOperator)."""
    return [call["idOperator"] for call in calls if call["method"] == "PUT" and call["path"].startswith("/bots/")]


def endpoint(call: dict) -> str | None:
    """The load report's name for a call the bot received (None for the set-up calls, the preflight's among
    them: only the load processes' calls carry a load-w... request id)."""
    path, method = call["path"], call["method"]
    if not call.get("request_id", "").startswith("load-w"):
        return None
    if path == "/availability-strategies":
        return "availability-strategies"
    if path.endswith("/conversation-first-messages"):
        return "first-messages"
    if method == "POST" and path == "/conversations":
        return "conversations"
    if method == "POST" and path.endswith("/messages"):
        return "messages"  # the visitor's and the echoes: the bot cannot tell them apart by path
    return None


def load_process(call: dict) -> int:
    """The index of the load process that made a call, from its X-Request-Id (load-w<index>-<n>)."""
    match = re.fullmatch(r"load-w(\d+)-\d+", call.get("request_id", ""))
    assert match, f"a load call without the load test's request id: {call}"
    return int(match[1])


def assert_the_bot_answered_at_least_what_locust_counted(rows: dict[str, dict], load_calls: list[dict]) -> None:
    received = Counter(endpoint(call) for call in load_calls)
    counted = {name: int(row["Request Count"]) for name, row in rows.items() if name != "Aggregated"}
    counted["messages"] = counted.pop("messages (visitor)", 0) + counted.pop("messages (echo)", 0)
    for name, count in counted.items():
        assert count <= received[name], (name, count, received)


@pytest.mark.slow
def test_load_on_the_embedded_bot_is_signed_shaped_like_iadvize_and_within_budget(tmp_path):
    out = io.StringIO()
    with EmbeddedBot(secret=SECRET, workers=2) as bot:
        outcome = run(
            bot.url,
            operators=3,
            duration=SECONDS,
            secret=SECRET,
            csv_prefix=str(tmp_path / "run"),
            say=lambda line: print(line, file=out),
            **FAST,
        )
        log = bot.log_path.read_text(encoding="utf-8")
    report = outcome.report()
    assert outcome.passed, report
    assert report.endswith("within budget, no error")
    calls = requests_of(log)
    operators = saved_operators(calls)
    assert len(operators) == 3 and len(set(operators)) == 3
    assert (
        f"3 operators polled every second, 120 conversations per minute ({FAST_VISITOR_USERS} visitors)"
        in out.getvalue()
    )

    # what Locust was given and decided: the plan, one process polling all the operators
    assert outcome.plan == {
        "operators": operators,
        "workers": 1,
        "conversations_per_minute": 120,
        "think_time": [0.2, 0.5],
        "messages": 3,
        "visitors": FAST_VISITOR_USERS,
        "pacing": FAST_PACING,
    }
    [process] = outcome.processes
    assert process["worker"] == 0 and process["operators"] == operators
    assert len(process["poll_phases"]) == 3 and all(0 <= phase < 1 for phase in process["poll_phases"])
    assert 1 <= len(process["visitor_phases"]) <= FAST_VISITOR_USERS
    assert all(0 <= phase <= FAST_PACING for phase in process["visitor_phases"])

    # what the bot received: every call signed (the bot checks: a bad signature is a 401), the load's
    # answered, from this process (the preflight's conversation, for an operator not saved yet, is a 404)
    load_calls = [call for call in calls if endpoint(call)]
    assert all(call["status"] not in (401, 403) for call in calls), [c for c in calls if c["status"] in (401, 403)]
    assert load_calls and all(call["status"] == 200 for call in load_calls), [
        c for c in load_calls if c["status"] != 200
    ]
    assert {load_process(call) for call in load_calls} == {0}
    # every saved operator polled, none other
    assert {call["idOperator"] for call in load_calls if endpoint(call) == "availability-strategies"} == set(operators)
    # each chat as iAdvize opens it: the greeting of the operator, then POST /conversations, then its messages
    greeted, opened, chats = Counter(), Counter(), {}
    for call in load_calls:
        kind, id_operator = endpoint(call), call.get("idOperator")
        if kind != "availability-strategies":
            assert id_operator in operators, call
        if kind == "first-messages":
            greeted[id_operator] += 1
        elif kind == "conversations":
            opened[id_operator] += 1
            assert opened[id_operator] <= greeted[id_operator], f"a chat opened without its greeting: {call}"
            chats[call["idConversation"]] = id_operator
        elif kind == "messages":
            assert chats.get(call["idConversation"]) == id_operator, f"a message outside an opened chat: {call}"
    assert chats, "no chat was opened"

    rows = stats(tmp_path / "run")
    assert all(row["Failure Count"] == "0" for row in rows.values())
    assert_the_bot_answered_at_least_what_locust_counted(rows, load_calls)
    conversations = int(rows["conversations"]["Request Count"])
    assert int(rows["first-messages"]["Request Count"]) >= conversations  # each chat asks for its greeting first
    assert int(rows["messages (visitor)"]["Request Count"]) <= 3 * conversations  # --messages 3: at most 3 a chat
    # the reference bot's scenarios answer with messages: each one is echoed back, as iAdvize does
    assert int(rows["messages (echo)"]["Request Count"]) >= 1
    assert SECRET not in out.getvalue() and SECRET not in report and SECRET not in log


class Recorder:
    """A progress callback that keeps what it is told (and when it is told it is done)."""

    def __init__(self):
        self.calls: list = []

    def __call__(self, text: str, step: str | None = None) -> None:
        self.calls.append((text, step))

    def done(self) -> None:
        self.calls.append("done")


@pytest.mark.slow
def test_load_reports_its_progress_while_locust_runs():
    progress = Recorder()
    with LoopbackServer(third_party_bot.make_app(SECRET)) as server:
        outcome = run(server.url, operators=1, duration=2, secret=SECRET, progress=progress, **FAST)
    assert outcome.passed, outcome.report()
    *updates, last = progress.calls
    assert last == "done" and "done" not in updates  # once, after the last update
    # Locust runs for at least its 2 s, and the command reports before each wait of at most 1 s:
    # at least two updates, whatever the speed of the machine
    assert len(updates) >= 2, updates
    assert {step for _text, step in updates} == {"load"}
    seconds = [int(re.fullmatch(r"load: (\d+) of 2 s", text)[1]) for text, _step in updates]
    assert seconds == sorted(seconds) and seconds[-1] >= 1, seconds


@pytest.mark.slow
def test_errors_and_broken_budgets_are_reported_and_fail_the_run(tmp_path, capsys):
    app = third_party_bot.make_app(SECRET, frozenset({"greeting_2500ms", "errors_on_text"}))
    with LoopbackServer(app) as server:
        # one message a chat: 4 visitors opening a chat every 2 s, so that every visitor's first chat
        # starts early in the run, and reaches its message after its greeting timed out
        code = main(
            [
                "load",
                "--provider-url",
                server.url,
                "--secret",
                SECRET,
                "--operators",
                "1",
                "--duration",
                str(SECONDS),
                "--csv",
                str(tmp_path / "run"),
                "--think-time",
                "0.2-0.5",
                "--messages",
                "1",
                "--conversations-per-minute",
                "120",
            ]
        )
    out = capsys.readouterr().out
    assert code == 1
    rows = stats(tmp_path / "run")
    greetings = int(rows["first-messages"]["Request Count"])
    assert greetings >= 1 and int(rows["first-messages"]["Failure Count"]) == greetings  # timed out at 2 s
    assert int(rows["messages (visitor)"]["Failure Count"]) >= 1
    assert "error: messages (visitor): answered 500" in out
    first_messages = next(line for line in out.splitlines() if line.startswith("first-messages"))
    assert first_messages.split()[-2:] == ["s", str(greetings)]  # budget "2 s", every call over it
    assert "FAILED:" in out and "over their budget" in out


def test_a_refused_secret_is_one_line(capsys):
    app = third_party_bot.make_app(SECRET)
    with LoopbackServer(app) as server:
        code = main(["load", "--provider-url", server.url, "--secret", "not-the-secret", "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "error: the bot refuses this secret (GET /external-bots answered 403): check "
        "--secret or IADVIZE_SECRET against the secret of the bot's iAdvize app"
    ]


def test_a_bot_that_cannot_be_set_up_is_a_clear_error(capsys):
    app = third_party_bot.make_app(None, frozenset({"html_errors"}))
    app.view_functions["save"] = lambda id_operator: ("<html><title>Oops</title></html>", 500)
    with LoopbackServer(app) as server:
        code = main(["load", "--provider-url", server.url, "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: could not save the load test's operators: PUT ")
    assert err.rstrip().endswith("answered 500: text/html: Oops")


@pytest.mark.parametrize("think", ["slow", "9-3"])
def test_a_bad_think_time_is_named(think, capsys):
    assert main(["load", "--provider-url", "http://127.0.0.1:9", "--think-time", think]) == 2
    assert capsys.readouterr().err.startswith(f"error: think time {think!r}")


def test_a_rate_of_zero_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["load", "--provider-url", "http://127.0.0.1:9", "--conversations-per-minute", "0"])
    assert exit_.value.code == 2 and "must be a number above 0, got '0'" in capsys.readouterr().err


def test_the_plan_sizes_visitors_to_hold_the_chat_rate():
    plan = Plan(("ha-1",), conversations_per_minute=60, think_time=(5, 20), messages=4)
    # a chat lasts at most 4 x (20 s + 1 s): 84 chats may overlap at one a second
    assert plan.visitors == 85
    assert plan.pacing == pytest.approx(85.0)  # each visitor opens a chat every 85 s: 1 a second in all
    assert think_time("3") == (3.0, 3.0)
    fast = Plan(("ha-1",), **FAST)
    assert (fast.visitors, fast.pacing) == (FAST_VISITOR_USERS, FAST_PACING)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_distributed_each_worker_polls_its_own_share_of_the_operators(tmp_path):
    port = _free_port()
    env = {**os.environ, "IADVIZE_SECRET": SECRET}
    out = io.StringIO()
    with EmbeddedBot(secret=SECRET, workers=1) as bot, ThreadPoolExecutor(1) as pool:
        master = pool.submit(
            run,
            bot.url,
            operators=5,
            duration=SECONDS,
            secret=SECRET,
            csv_prefix=str(tmp_path / "run"),
            expect_workers=2,
            master_port=port,
            say=lambda line: print(line, file=out),
            **FAST,
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "harness.cli", "load", "--worker", "--master-port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            for _ in range(2)
        ]
        try:
            outcome = master.result(timeout=300)  # a hang guard only: run() gives up on its own long before
            for worker in workers:
                worker.wait(timeout=60)
        finally:
            for worker in workers:
                worker.kill()
        log = bot.log_path.read_text(encoding="utf-8")
    assert outcome.passed, outcome.report()
    assert "waiting for 2 workers" in out.getvalue()
    calls = requests_of(log)
    operators = saved_operators(calls)
    assert len(operators) == 5 and len(set(operators)) == 5
    # what the master planned and what each worker took: worker i of 2 polls operators[i::2]
    assert outcome.plan["operators"] == operators and outcome.plan["workers"] == 2
    assert [process["worker"] for process in outcome.processes] == [0, 1]
    shares = {0: operators[0::2], 1: operators[1::2]}  # 3 and 2 operators
    for process in outcome.processes:
        share = shares[process["worker"]]
        assert process["operators"] == share
        assert len(process["poll_phases"]) == len(share) and all(0 <= p < 1 for p in process["poll_phases"])
    # what the bot received: each worker polled every operator of its share at least once, and no other
    polled = defaultdict(set)
    for call in calls:
        if endpoint(call) == "availability-strategies":
            polled[load_process(call)].add(call["idOperator"])
    assert dict(polled) == {index: set(share) for index, share in shares.items()}
    load_calls = [call for call in calls if endpoint(call)]
    assert all(call["status"] not in (401, 403) for call in calls)  # every call signed with the workers' secret
    assert all(call["status"] == 200 for call in load_calls)
    rows = stats(tmp_path / "run")
    assert_the_bot_answered_at_least_what_locust_counted(rows, load_calls)
    assert int(rows["availability-strategies"]["Request Count"]) >= 1  # the workers' statistics reached the master
    assert int(rows["conversations"]["Request Count"]) >= 1

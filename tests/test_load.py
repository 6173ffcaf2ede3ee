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
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import request

from harness.bots import EmbeddedBot
from harness.cli import main
from harness.load import LoadError, LoadResult, run
from harness.load.plan import ENDPOINTS, Plan, think_time
from harness.load.ramp import Ramp, RampResult, Step, judge

from . import third_party_bot
from .conftest import LoopbackServer

SECRET = "load-test-secret"
SECONDS = 6
FAST_VISITORS = ["--think-time", "0.2-0.5", "--messages", "3", "--conversations-per-minute", "120"]
FAST = {"conversations_per_minute": 120, "think_time": (0.2, 0.5), "messages": 3}  # the same, for run()
# The plan these give, worked out by hand: a chat lasts at most 3 x (0.5 s + 1 s) = 4.5 s, and 2 chats
# start a second, so ceil(2 x 4.5) + 1 = 10 visitors, each opening a chat every 10 x 60 / 120 = 5 s.
FAST_VISITOR_USERS, FAST_PACING = 10, 5.0


# The bot counts availability polls per operator (one line a minute); these tests read every call from its log.
EVERY_POLL_LOGGED = {"REFERENCE_BOT_AVAILABILITY_LOG_SECONDS": "0"}


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
    with EmbeddedBot(secret=SECRET, workers=2, env=EVERY_POLL_LOGGED) as bot:
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
                "--json",
                str(tmp_path / "run.json"),
            ]
        )
    out = capsys.readouterr().out
    assert code == 1
    written = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert written["passed"] is False and {row["endpoint"] for row in written["endpoints"]} >= {"first-messages"}
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
    with EmbeddedBot(secret=SECRET, workers=1, env=EVERY_POLL_LOGGED) as bot, ThreadPoolExecutor(1) as pool:
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


# --- load --ramp: one load test per step, stepped up until a step breaks its budget ----------------------------
#
# Each step is a Locust run of --step-duration seconds, and a step with no call at all is not within budget:
# 3 s leaves room for a loaded machine, which may lose a second or more of a run before its first call, to
# poll every operator (each is polled within its first second). A step that breaks on a slow greeting needs
# a time-out recorded: the greeting's budget (2 s) must fit in the step after the chat started, hence 5 s
# there and chats that start early (11 visitors, each chat one message without pause: a chat every 1.1 s
# per visitor at 600 a minute).
STEP_SECONDS, SLOW_STEP_SECONDS = "3", "5"
RAMP_VISITORS = ["--think-time", "0.2-0.5", "--messages", "1"]
EARLY_CHATS = ["--think-time", "0", "--messages", "1", "--conversations-per-minute", "600"]


def counting_saves(app) -> list[str]:
    """The operators a Flask bot is asked to save (PUT /bots/:idOperator), in order, as the bot sees them."""
    saved: list[str] = []

    @app.before_request
    def count():
        if request.method == "PUT" and request.path.startswith("/bots/"):
            saved.append(request.path.rsplit("/", 1)[-1])

    return saved


def slow_greetings_beyond(operators: int):
    """The third-party bot, whose greeting takes longer than its budget once more than ``operators`` operators
    were saved on it: the load decides, by the saves the bot counted (never by time)."""
    app = third_party_bot.make_app(SECRET)
    saved = counting_saves(app)
    greeting = app.view_functions["greeting"]

    def slow_when_loaded(id_operator):
        if len(set(saved)) > operators:
            time.sleep(ENDPOINTS["first-messages"] + 0.5)  # past the budget: the load test gives up at it
        return greeting(id_operator)

    app.view_functions["greeting"] = slow_when_loaded
    return app, saved


def ramp_command(url: str, tmp_path: Path, *options: str) -> list[str]:
    return [
        "load",
        "--provider-url",
        url,
        "--secret",
        SECRET,
        "--ramp",
        "--json",
        str(tmp_path / "ramp.json"),
        *options,
    ]


def levels(document: dict) -> list[tuple[int, float, bool]]:
    return [(s["operators"], s["conversations_per_minute"], s["within_budget"]) for s in document["steps"]]


@pytest.mark.slow
def test_the_ramp_steps_operators_and_rate_up_to_the_limit_and_reports_the_last_step(tmp_path, capsys):
    app = third_party_bot.make_app(SECRET)
    saved = counting_saves(app)
    with LoopbackServer(app) as server:
        code = main(
            ramp_command(
                server.url,
                tmp_path,
                *("--operators", "1", "--step-operators", "1", "--limit-operators", "2"),
                *("--conversations-per-minute", "60", "--step-rate", "60", "--step-duration", STEP_SECONDS),
                *RAMP_VISITORS,
            )
        )
    captured = capsys.readouterr()
    document = json.loads((tmp_path / "ramp.json").read_text(encoding="utf-8"))
    assert code == 0, captured
    assert levels(document) == [(1, 60, True), (2, 120, True)]  # the limit reached at step 2: no step 3
    assert (document["stopped"], document["why"]) == ("limit", "--limit-operators 2 reached")
    assert document["last_within_budget"]["step"] == 2
    # the second step polled the first step's operator again, and one more: the bot saved 2 operators, not 3
    first, second = (step["result"]["plan"]["operators"] for step in document["steps"])
    assert len(first) == 1 and len(second) == 2 and second[0] == first[0]
    assert saved == second
    out = captured.out.splitlines()
    assert [line.split()[0] for line in out if re.match(r"\d+ ", line)] == ["1", "2"]  # one table row per step
    assert out[-2] == "stopped: --limit-operators 2 reached"
    calls = document["last_within_budget"]["calls_per_second"]
    assert out[-1] == f"last step within budget: 2 operators, 120 conversations/min ({calls:g} calls/s)"
    # each step's plan and verdict on stderr, as it goes
    assert "step 1: 1 operators polled every second, 60 conversations per minute" in captured.err
    assert "step 2: within budget, " in captured.err
    assert SECRET not in captured.out + captured.err


@pytest.mark.slow
def test_a_step_over_its_budget_stops_the_ramp_and_the_step_before_is_the_last_within_budget(tmp_path, capsys):
    app, saved = slow_greetings_beyond(1)  # one operator: fast; a second saved: every greeting too slow
    with LoopbackServer(app) as server:
        code = main(
            ramp_command(
                server.url,
                tmp_path,
                *("--operators", "1", "--step-operators", "1", "--step-rate", "0", "--limit-operators", "3"),
                *("--step-duration", SLOW_STEP_SECONDS, *EARLY_CHATS),
            )
        )
    captured = capsys.readouterr()
    document = json.loads((tmp_path / "ramp.json").read_text(encoding="utf-8"))
    assert code == 0, captured  # a step was within budget
    assert levels(document) == [(1, 600, True), (2, 600, False)]  # step 3 (the limit) never ran
    assert (document["stopped"], document["why"]) == ("budget", "step 2 broke its budget")
    assert document["last_within_budget"] == {
        "step": 1,
        "operators": 1,
        "conversations_per_minute": 600,
        "calls_per_second": document["steps"][0]["calls_per_second"],
    }
    assert len(set(saved)) == 2
    broken = {row["endpoint"]: row for row in document["steps"][1]["result"]["endpoints"]}["first-messages"]
    assert broken["timeouts"] >= 1 and broken["over_budget"] >= broken["timeouts"]  # given up at the budget
    assert broken["errors"] == broken["timeouts"]  # the greetings only failed by their time-outs
    assert document["steps"][1]["problems"] == [
        f"first-messages: {broken['over_budget']} of {broken['requests']} calls over its 2 s budget "
        "(p99 over it: more than 1% of the calls)"
    ]
    out = captured.out.splitlines()
    assert "step 2: first-messages: " in captured.out
    assert out[-2:] == [
        "stopped: step 2 broke its budget",
        f"last step within budget: 1 operator, 600 conversations/min ({document['steps'][0]['calls_per_second']:g}"
        " calls/s)",
    ]


@pytest.mark.slow
def test_when_the_first_step_already_breaks_the_ramp_says_what_to_lower_and_exits_1(tmp_path, capsys):
    app = third_party_bot.make_app(SECRET)
    app.view_functions["availability"] = lambda: ({"message": "overloaded"}, 500)
    with LoopbackServer(app) as server:
        code = main(
            ramp_command(server.url, tmp_path, "--operators", "2", "--step-duration", STEP_SECONDS, *RAMP_VISITORS)
        )
    captured = capsys.readouterr()
    document = json.loads((tmp_path / "ramp.json").read_text(encoding="utf-8"))
    assert code == 1
    assert levels(document) == [(2, 10, False)]
    assert document["stopped"] == "budget" and document["last_within_budget"] is None
    [problem] = document["steps"][0]["problems"]
    assert re.fullmatch(r"availability-strategies: \d+ failed calls?", problem), problem
    out = captured.out.splitlines()
    assert "step 1 error: availability-strategies: answered 500 (" in captured.out
    assert out[-1] == (
        "no step within budget: the first, 2 operators, 10 conversations/min, already breaks it; "
        "lower --operators (now 2)"
    )


@pytest.mark.parametrize(
    "options, said",
    [
        (["--step-operators", "2"], "--step-operators only applies with --ramp: add --ramp to step the load up"),
        (
            ["--limit-rate", "30", "--max-steps", "3"],
            "--limit-rate and --max-steps only apply with --ramp: add --ramp to step the load up",
        ),
        (
            ["--ramp", "--operators", "5", "--limit-operators", "3"],
            "--limit-operators 3 is below --operators 5, the first step: raise it, or lower --operators",
        ),
        (
            ["--ramp", "--step-rate", "0", "--limit-rate", "30"],
            "--limit-rate 30 is never reached: --step-rate is 0, so --conversations-per-minute stays 10",
        ),
        (
            ["--ramp", "--step-operators", "0", "--step-rate", "0"],
            "nothing to step up: --step-operators and --step-rate are both 0",
        ),
        (
            ["--ramp", "--duration", "5"],
            "--duration is the length of one load test: with --ramp, give each step's as --step-duration",
        ),
        (
            ["--ramp", "--expect-workers", "2"],
            "--ramp runs every step from this machine: it does not take --worker or --expect-workers "
            "(workers leave when their master's run ends)",
        ),
    ],
)
def test_ramp_options_that_do_not_go_together_are_one_line_and_exit_2(options, said, capsys):
    # said before any bot is reached: nothing listens on port 9
    assert main(["load", "--provider-url", "http://127.0.0.1:9", *options]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {said}"]


def test_the_ramp_steps_both_and_runs_the_step_that_would_pass_a_limit_at_the_limit():
    steps = Ramp(5, 10, step_operators=5, step_rate=10, limit_operators=12)
    assert list(steps.levels()) == [(5, 10, None), (10, 20, None), (12, 30, "--limit-operators 12")]
    both = Ramp(1, 0.1, step_operators=0, step_rate=0.1, limit_rate=0.3, max_steps=5)
    assert list(both.levels()) == [(1, 0.1, None), (1, 0.2, None), (1, 0.3, "--limit-rate 0.3")]
    assert len(list(Ramp(1, 1, 1, 0, max_steps=3).levels())) == 3  # no limit: --max-steps steps
    assert Ramp(5, 10, 5, 10, limit_operators=5).problem() is None  # a limit at the first step: one step
    assert len(list(Ramp(5, 10, 5, 10, limit_operators=5).levels())) == 1


def summary_row(endpoint: str, requests: int, over_budget: int = 0, errors: int = 0, timeouts: int = 0) -> dict:
    return {
        "endpoint": endpoint,
        "requests": requests,
        "errors": errors,
        "rps": 1.0,
        "p50_ms": 5,
        "p95_ms": 9,
        "p99_ms": 12,
        "max_ms": 20,
        "budget_s": ENDPOINTS[endpoint],
        "over_budget": over_budget,
        "timeouts": timeouts,
    }


def test_a_step_is_within_budget_when_each_endpoints_p99_is_and_no_call_failed_but_by_a_time_out():
    within = LoadResult([summary_row("first-messages", 100, over_budget=1, errors=1, timeouts=1)], [])
    assert judge(within) == []  # 1 greeting in 100 given up at its budget: the p99 is within it
    assert not within.passed  # where a normal run fails on any call over its budget
    over = LoadResult([summary_row("first-messages", 100, over_budget=2), summary_row("conversations", 50)], [])
    assert [p["endpoint"] for p in judge(over)] == ["first-messages"]
    failed = LoadResult([summary_row("messages (visitor)", 1000, errors=1)], [])
    assert [p["problem"] for p in judge(failed)] == ["messages (visitor): 1 failed call"]
    assert judge(LoadResult([], []))[0]["endpoint"] is None  # no call at all: not within budget either


def test_the_verdict_names_what_to_lower_from_what_broke_the_first_step():
    def first_step_breaking(*endpoints: str) -> RampResult:
        result = LoadResult([summary_row(name, 10, errors=1) for name in endpoints], [])
        step = Step(1, 5, 10, 60, result, judge(result))
        return RampResult(Ramp(5, 10, 5, 10), [step], "budget", "step 1 broke its budget")

    assert (
        first_step_breaking("conversations", "first-messages")
        .verdict()
        .endswith("; lower --conversations-per-minute (now 10)")
    )
    assert (
        first_step_breaking("availability-strategies", "conversations")
        .verdict()
        .endswith("; lower --operators (now 5) and --conversations-per-minute (now 10)")
    )


def test_a_step_that_cannot_run_stops_the_ramp_with_the_steps_before_reported_and_exit_2(monkeypatch, capsys):
    asked = []

    def fake_run(url, operators, rate, *args, saved=(), **kwargs):  # Locust's part, stood in for
        asked.append((operators, rate, saved))
        if len(asked) == 2:
            raise LoadError("could not save the load test's operators: PUT /bots/ha-2 answered 503")
        return LoadResult([summary_row("availability-strategies", 10)], [], plan={"operators": ["ha-1"]})

    monkeypatch.setattr("harness.load.ramp.run", fake_run)
    code = main(["load", "--provider-url", "http://127.0.0.1:9", "--ramp", "--operators", "1", "--step-duration", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert asked == [(1, 10, ()), (2, 20, ("ha-1",))]  # step 2 was to poll step 1's operator again
    assert captured.out.splitlines()[-2:] == [
        "stopped: step 2 could not run",
        "last step within budget: 1 operator, 10 conversations/min (1 calls/s)",
    ]
    assert captured.err.splitlines()[-1] == (
        "error: step 2 could not run: could not save the load test's operators: PUT /bots/ha-2 answered 503"
    )

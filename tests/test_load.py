"""``iadvize-harness load``: Locust really runs, headless, against bots on loopback."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.embedded import EmbeddedBot
from harness.load.plan import Plan, think_time

from . import third_party_bot
from .conftest import LoopbackServer

SECRET = "load-test-secret"
SECONDS = 6
FAST_VISITORS = ["--think-time", "0.2-0.5", "--messages", "3", "--conversations-per-minute", "120"]


def stats(prefix: Path) -> dict[str, dict]:
    """Locust's CSV statistics by request name."""
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as table:
        return {row["Name"]: row for row in csv.DictReader(table)}


@pytest.mark.slow
def test_load_on_the_embedded_bot_is_signed_shaped_like_iadvize_and_within_budget(tmp_path, capsys):
    with EmbeddedBot(secret=SECRET, workers=2) as bot:
        code = main(["load", "--provider-url", bot.url, "--secret", SECRET, "--operators", "3",
                     "--duration", str(SECONDS), "--csv", str(tmp_path / "run"), *FAST_VISITORS])
        log = bot.log_path.read_text(encoding="utf-8")
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith("within budget, no error")
    rows = stats(tmp_path / "run")
    # every operator polled about once a second (pollers start within their first second)
    assert 3 * (SECONDS - 2) <= int(rows["availability-strategies"]["Request Count"]) <= 3 * (SECONDS + 1)
    chats = int(rows["conversations"]["Request Count"])
    assert chats >= 4  # 2 a second planned; arrivals are spread over the first pacing period
    assert int(rows["first-messages"]["Request Count"]) >= chats
    assert int(rows["messages (visitor)"]["Request Count"]) >= chats - 1  # the last ones may be cut by the end
    # the reference bot's scenarios answer with messages: each one is echoed back, as iAdvize does
    assert int(rows["messages (echo)"]["Request Count"]) >= 1
    assert all(row["Failure Count"] == "0" for row in rows.values())
    assert SECRET not in out and SECRET not in log


@pytest.mark.slow
def test_errors_and_broken_budgets_are_reported_and_fail_the_run(tmp_path, capsys):
    app = third_party_bot.make_app(SECRET, frozenset({"greeting_2500ms", "errors_on_text"}))
    with LoopbackServer(app) as server:
        code = main(["load", "--provider-url", server.url, "--secret", SECRET, "--operators", "1",
                     "--duration", str(SECONDS), "--csv", str(tmp_path / "run"), *FAST_VISITORS])
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


def test_a_bot_that_cannot_be_set_up_is_a_clear_error(capsys):
    app = third_party_bot.make_app(SECRET)
    with LoopbackServer(app) as server:
        code = main(["load", "--provider-url", server.url, "--secret", "not-the-secret", "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: could not save the load test's operators: GET " in err
    assert 'answered 403: {"message": "bad signature"}' in err


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_distributed_two_workers_poll_every_operator_between_them(tmp_path):
    port = _free_port()
    env = {**os.environ, "IADVIZE_SECRET": SECRET}
    with EmbeddedBot(secret=SECRET, workers=1) as bot:
        master = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "load", "--provider-url", bot.url, "--operators", "5",
             "--duration", str(SECONDS), "--expect-workers", "2", "--master-port", str(port),
             "--csv", str(tmp_path / "run"), *FAST_VISITORS],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        workers = [subprocess.Popen([sys.executable, "-m", "harness.cli", "load", "--worker", "--master-port",
                                     str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                   for _ in range(2)]
        try:
            out, _ = master.communicate(timeout=120)
            for worker in workers:
                worker.wait(timeout=30)
        finally:
            for process in (master, *workers):
                process.kill()
        polled = Counter(line["idOperator"] for line in map(json.loads, bot.log_path.read_text().splitlines())
                         if line.get("path") == "/availability-strategies")
    assert master.returncode == 0, out
    assert "waiting for 2 workers" in out
    # five operators saved, each polled about once a second whichever worker polls it
    assert len(polled) == 5 and all(SECONDS - 2 <= count <= SECONDS + 1 for count in polled.values()), polled
    rows = stats(tmp_path / "run")
    assert int(rows["availability-strategies"]["Request Count"]) == sum(polled.values())
    assert int(rows["conversations"]["Request Count"]) >= 4

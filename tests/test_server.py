"""The reference bot as it runs in production: gunicorn, several workers, one SQLite file, real sockets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.bots import EmbeddedBot
from harness.client import BotClient, BotError, visitor_text

from .conftest import RULES, assert_fits, texts

pytestmark = pytest.mark.slow
SECRET = "kill-nine-secret-4242"
OPERATOR = "ha-777"


def set_up(client: BotClient, id_operator=OPERATOR) -> None:
    client.save_bot(id_operator, {"name": "Bot", "distributionRules": RULES, "external": {"idBot": "order-assistant"}})


def test_sigkill_and_restart_lose_nothing(tmp_path):
    database = tmp_path / "bot.sqlite3"
    conversation = str(uuid.uuid4())
    with EmbeddedBot(database=database, secret=SECRET, workers=3) as bot:
        client = BotClient(bot.url, secret=SECRET)
        set_up(client)
        client.start_conversation(OPERATOR, conversation)
        client.send_message(conversation, OPERATOR, visitor_text("Hi", id_message="m-1"))
        asked = client.send_message(conversation, OPERATOR, visitor_text("Track my order", id_message="m-2"))
        assert texts(asked["replies"])[0].startswith("Sure. What is your order number?")

        bot.kill()
        assert bot.process.returncode == -signal.SIGKILL

        bot.start()  # same database file, new processes, new port
        client = BotClient(bot.url, secret=SECRET)
        # the operator is back in memory: greeting and availability answer at once
        assert client.first_messages(OPERATOR)["replies"]
        assert client.availability_strategies(OPERATOR)[0]["strategy"] == "atLeastOne"
        # iAdvize retries the call that may have been lost: same answer, no second advance
        retried = client.send_message(conversation, OPERATOR, visitor_text("Track my order", id_message="m-2"))
        assert retried["replies"] == asked["replies"]
        # and the scenario goes on from where it was
        after = client.send_message(conversation, OPERATOR, visitor_text("123456", id_message="m-3"))
        assert texts(after["replies"])[0].startswith("Thanks! Let me look order 123456 up")
        assert after["createdAt"] == asked["createdAt"]


def conversation_path(client: BotClient, n: int) -> list[str]:
    """One whole conversation; returns the first text of each answer."""
    conversation = f"conv-{n}-{uuid.uuid4()}"
    client.start_conversation(OPERATOR, conversation)
    firsts = []
    for text in ("Hi", "Return an item", "Show return options", "menu", "Today's offers"):
        answer = client.send_message(conversation, OPERATOR, visitor_text(text))
        assert_fits("message.response", answer)
        for reply in answer["replies"]:
            if reply["type"] == "message":
                echo = {
                    "idMessage": str(uuid.uuid4()),
                    "author": {"role": "operator"},
                    "payload": reply["payload"],
                    "createdAt": "2026-11-24T10:00:00.000Z",
                }
                assert client.send_message(conversation, OPERATOR, echo)["replies"] == []
        firsts.append(answer["replies"][0]["payload"].get("value") or answer["replies"][0]["payload"]["contentType"])
    return firsts


def test_concurrent_conversations_across_workers_share_one_file(tmp_path):
    with EmbeddedBot(database=tmp_path / "bot.sqlite3", secret=SECRET, workers=3) as bot:
        set_up(BotClient(bot.url, secret=SECRET))
        with ThreadPoolExecutor(8) as pool:
            paths = list(pool.map(lambda n: conversation_path(BotClient(bot.url, secret=SECRET), n), range(24)))
    expected = [
        "What can I do for you?",
        "card/content",
        "bundle/card",
        "What can I do for you?",
        "Here are today's offers:",
    ]
    assert paths == [expected] * 24


def test_one_message_delivered_twice_at_once_is_answered_once(tmp_path):
    with EmbeddedBot(database=tmp_path / "bot.sqlite3", workers=3) as bot:
        client = BotClient(bot.url)
        set_up(client)
        conversation = str(uuid.uuid4())
        client.send_message(conversation, OPERATOR, visitor_text("Hi"))
        message = visitor_text("Track my order")
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(lambda _: client.send_message(conversation, OPERATOR, message)["replies"], range(6))
            )
        assert all(a == answers[0] for a in answers)
        # advanced once: the next message is read as the order number, not as a menu choice
        after = client.send_message(conversation, OPERATOR, visitor_text("123456"))
        assert texts(after["replies"])[0].startswith("Thanks! Let me look")


def test_an_operator_saved_by_one_worker_is_known_at_once_by_every_worker(tmp_path):
    with EmbeddedBot(database=tmp_path / "bot.sqlite3", workers=3) as bot:
        client = BotClient(bot.url)
        set_up(client, "ha-31337")
        # fresh connections, so the calls spread over the workers
        statuses = [
            BotClient(bot.url)
            .exchange(
                "conversations",
                "POST",
                "/conversations",
                None,
                body={"idOperator": "ha-31337", "idConversation": f"c-{n}"},
            )
            .status
            for n in range(30)
        ]
        warnings = bot.log_tail(200).count("X-iAdvize-Signature is NOT checked")
    assert statuses == [200] * 30
    assert warnings == 1  # said once by the server, not once per worker


def access_log(bot: EmbeddedBot) -> tuple[str, list[dict]]:
    """The bot's log as it is now, and its access lines (a line still being written is left out)."""
    logged = bot.log_path.read_text()
    complete = logged[: logged.rfind("\n") + 1]
    entries = [json.loads(line) for line in complete.splitlines() if line.startswith("{")]
    return logged, [e for e in entries if e["logger"] == "reference_bot.access"]


def logged_until(bot: EmbeddedBot, condition, seconds: float = 30) -> tuple[str, list[dict]]:
    """Read the log again until ``condition(access lines)`` holds. A worker logs a call before it
    answers it, so this is normally true at the first read: the deadline is a hang guard, not a check."""
    deadline = time.monotonic() + seconds
    while True:
        logged, access = access_log(bot)
        if condition(access) or time.monotonic() > deadline:
            return logged, access
        time.sleep(0.05)


def test_requests_are_logged_as_json_lines_without_the_secret(tmp_path):
    with EmbeddedBot(database=tmp_path / "bot.sqlite3", secret=SECRET, workers=2) as bot:
        client = BotClient(bot.url, secret=SECRET)
        set_up(client)
        client.send_message("conv-log", OPERATOR, visitor_text("Hi"))
        refused = BotClient(bot.url, secret="wrong").exchange("external-bots", "GET", "/external-bots", None)
        logged, access = logged_until(
            bot, lambda access: {"/conversations/conv-log/messages", "/external-bots"} <= {e["path"] for e in access}
        )
    message = next(e for e in access if e["path"] == "/conversations/conv-log/messages")
    assert message["status"] == 200 and message["method"] == "POST" and message["idConversation"] == "conv-log"
    assert message["duration_ms"] >= 0 and message["request_id"]
    assert refused.status == 401 and [e["status"] for e in access if e["path"] == "/external-bots"] == [401]
    assert SECRET not in logged


def test_availability_polls_are_counted_per_operator_and_other_answers_logged_each(tmp_path):
    with EmbeddedBot(database=tmp_path / "bot.sqlite3", secret=SECRET, workers=2) as bot:
        client = BotClient(bot.url, secret=SECRET)
        set_up(client)
        for _ in range(7):
            client.availability_strategies(OPERATOR)
        with pytest.raises(BotError) as unknown:
            client.availability_strategies("ha-0")
        bot.stop()  # each worker writes what it counted as it exits
        _, access = access_log(bot)
    counted = [e for e in access if e["message"] == "availability polls"]
    assert sum(e["polls"].get(OPERATOR, 0) for e in counted) == 7 and 1 <= len(counted) <= 2  # a line per worker
    assert all(set(e["polls"]) == {OPERATOR} and e["seconds"] >= 0 for e in counted)
    assert unknown.value.status == 404
    assert [e["status"] for e in access if e.get("path") == "/availability-strategies"] == [404]  # a line of its own


def test_serve_prints_its_url_and_answers(tmp_path):
    bot = EmbeddedBot(database=tmp_path / "bot.sqlite3", workers=2)
    with bot:
        assert bot.url.startswith("http://127.0.0.1:")
        assert BotClient(bot.url).healthcheck()


def test_make_demo_shows_a_whole_conversation_with_its_transfer_then_verifies_the_bot(tmp_path):
    report = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "demo", "--limit", "60", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "the same call unsigned is refused: 401" in out
    assert "visitor     Hi" in out and "What can I do for you?" in out
    assert "[file] invoice.pdf" in out
    # the slow order lookup answered through the local iAdvize API, then the data prequalified for the transfer
    assert "should arrive within 2 working\n            days.  (posted later through iAdvize's GraphQL API)" in out
    assert "iAdvize     the bot's answer holds order_number=123456, email=ada@example.com" in out
    assert "Here is what I'll pass on to our team: order number: 123456; email: ada@example.com" in out
    assert "(transfers to distribution rule 'Customer service'" in out and "timeout 30 s" in out
    assert "bot         [] [] []  (the echo rule" in out  # the three messages shown after "invoice", echoed
    assert "15 passed, 0 failed" in out  # the same bot verified against the pacts...
    # ...and checked: no finding (notes, advice rather than findings, may come before that line)...
    checked = out.split("iadvize-harness check:", 1)[1].split("\n---", 1)[0].splitlines()
    assert checked[1].startswith("0 errors, 0 warnings in ") and "— the embedded reference bot at http" in checked[1]
    assert any(line.startswith("probed: ") and line.endswith("; no finding") for line in checked)
    assert "replayed 60 conversations" in out and "0 replies differ from the recording" in out  # ...replayed...
    assert out.rstrip().endswith(f"report written to {report} (open it in a browser)")  # ...and reported
    # every chart but the per-day one: the sample's first 60 conversations are of one day, and a line says so
    page = report.read_text()
    assert page.count('src="data:image/png;base64,') == 7 and "one day (Nov 16, 60 conversations)" in page

"""What a visitor can do to the template: long messages must not freeze it (its patterns run in time linear in
the text, on a bounded prefix), and a visitor who asks for a person is never trapped in a question."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.bots import bot
from harness.client import BotClient, visitor_text

pytestmark = pytest.mark.slow

ASKING_EMAIL = """
idBot: asking
name: Asks an email first
start: ask_email
states:
  ask_email:
    ask: {variable: email, kind: email, then: thanks, otherwise: thanks}
    replies:
      - text: "What email address can we write back to?"
  thanks:
    replies:
      - text: "Thanks!"
"""


def test_a_flood_of_long_messages_leaves_the_availability_polls_answered(tmp_path):
    # 100 messages of 200,000 characters without an "@", each answering the email question: with a pattern that
    # backtracks (quadratic in the text), each held a worker for seconds and iAdvize's polls timed out
    (tmp_path / "asking.yaml").write_text(ASKING_EMAIL, encoding="utf-8")
    flood = "a." * 100_000
    polls: list[int | None] = []
    with bot(env={"REFERENCE_BOT_SCENARIOS": str(tmp_path)}, workers=2) as url:
        client = BotClient(url)
        client.save_bot("ha-1", {"name": "x", "distributionRules": [], "external": {"idBot": "asking"}})
        for n in range(100):  # each conversation at the email question
            client.send_message(f"conv-{n}", "ha-1", visitor_text("Hello"))
        done = threading.Event()

        def poll() -> None:
            while True:  # at least one poll while the flood is on, then until it is over
                answer = BotClient(url).exchange(
                    "availability-strategies", "GET", "/availability-strategies", None, params={"idOperator": "ha-1"}
                )
                polls.append(answer.status)
                if done.is_set():
                    return

        poller = threading.Thread(target=poll)
        poller.start()
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda n: BotClient(url).send_message(f"conv-{n}", "ha-1", visitor_text(flood)), range(100))
            )
        done.set()
        poller.join(timeout=60)
    assert polls and polls.count(200) == len(polls), polls  # every poll answered within iAdvize's budget
    asked_again = "What email address can we write back to?"
    assert all(a["replies"][0]["payload"]["value"] == asked_again for a in answers)  # no email in it: asked again

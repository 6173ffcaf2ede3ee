"""Several instances of the bot on one PostgreSQL server, as behind a load balancer.

Real parts only: each instance is ``python -m reference_bot.serve --db postgresql://...`` under gunicorn
(``EmbeddedBot``, two workers), the server is a real PostgreSQL started by the tests (tests/postgres.py),
and iAdvize is played by this file: each visitor message goes to the instances in turn, and a delivery
that gets no answer (connection refused or reset, or a 503) is sent again, unchanged (same ``idMessage``),
to the next instance. iAdvize's GraphQL API is the fake of tests/test_faults.py, on 127.0.0.1.

Most tests use a counting scenario: every visitor message moves the conversation one state on and
answers "step N". Two messages applied from the same state would both answer the same N, a message
applied twice would move the conversation twice: the answers and the stored versions tell both apart.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from harness.bots import EmbeddedBot
from harness.client import BotClient, visitor_text
from reference_bot.store.schema import VERSION

from .conftest import texts
from .test_faults import (
    FOUND,
    NEXT,
    OPERATOR,
    iadvize,
    more_rounds_on_every_worker,
    proactive_env,
    reach_the_slow_step,
    until,
)

__all__ = ["iadvize"]  # the fake iAdvize API's fixture, used here too

pytestmark = pytest.mark.slow

STEPS = 200
DELIVERY_SECONDS = 60  # how long one message is sent again before the test gives up on it (a hang guard)


def counting_scenarios(folder: Path, steps: int = STEPS) -> Path:
    """A scenario whose every visitor message answers "step N", N its position in the conversation."""
    lines = ["idBot: counter", "name: Counter", "start: s0", "availability: always", "states:"]
    for n in range(steps + 1):
        lines += [f"  s{n}:", "    replies:", f'      - text: "step {n}"']
        if n < steps:
            lines += ["    transitions:", '      - pattern: ".*"', f"        goto: s{n + 1}"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "counter.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


class Balancer:
    """iAdvize behind a load balancer: deliveries go to the instances in turn; one not answered goes again to
    the next instance, unchanged, until answered (for ``DELIVERY_SECONDS`` at most)."""

    def __init__(self, instances: list[EmbeddedBot]):
        self.instances = instances
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.unanswered: list[str] = []  # why each delivery sent again got no answer

    def deliver(self, id_conversation: str, message: dict) -> list[dict]:
        """The replies to ``message``, delivered until one instance answers it."""
        with self._lock:
            turn = next(self._turn)
        for attempt in range(200):
            instance = self.instances[(turn + attempt) % len(self.instances)]
            try:
                response = requests.post(
                    f"{instance.url}/conversations/{id_conversation}/messages",
                    json={"idOperator": OPERATOR, "message": message},
                    timeout=10,
                )
            except requests.RequestException as error:
                self._note(type(error).__name__)
                continue
            if response.status_code == 200:
                return response.json()["replies"]
            assert response.status_code == 503, response.text  # anything else is a bug, not an outage
            self._note(f"503 {response.json()['error']}")
        raise AssertionError(f"message {message['idMessage']} never answered: {self.unanswered[-3:]}")

    def _note(self, why: str) -> None:
        with self._lock:
            self.unanswered.append(why)


@pytest.fixture
def shared(postgres_server, tmp_path):
    """A new database on the real server, and a way to start instances of the bot on it."""
    url = postgres_server.new_database()
    started: list[EmbeddedBot] = []

    def instance(scenarios: Path | None = None, env: dict | None = None) -> EmbeddedBot:
        bot = EmbeddedBot(database=url, scenarios=scenarios, workers=2, env=env)
        started.append(bot)
        return bot

    yield url, instance
    for n, bot in enumerate(started):
        print(f"--- instance {n}: the end of its log\n{bot.log_tail(400)}")  # shown when the test fails
        bot.close()


def start_together(*instances: EmbeddedBot) -> None:
    with ThreadPoolExecutor(len(instances)) as pool:
        for future in [pool.submit(bot.start) for bot in instances]:
            future.result(timeout=90)


def save_counter_operator(url: str) -> None:
    BotClient(url).save_bot(OPERATOR, {"name": "Counter", "external": {"idBot": "counter"}})


def counting_pair(instance, folder: Path) -> tuple[EmbeddedBot, EmbeddedBot, Balancer]:
    """Two instances on the counting scenario, started together, the operator saved, a balancer in front."""
    scenarios = counting_scenarios(folder / "scenarios")
    first, second = instance(scenarios), instance(scenarios)
    start_together(first, second)
    save_counter_operator(first.url)
    return first, second, Balancer([first, second])


def talk(balancer: Balancer, id_conversation: str, messages: int, on_answer=lambda: None) -> list[str]:
    """A visitor sending ``messages`` messages, one after the other: the texts answered."""
    said = []
    for n in range(messages):
        replies = balancer.deliver(id_conversation, visitor_text(f"message {n}", id_message=f"{id_conversation}-{n}"))
        said += texts(replies)
        on_answer()
    return said


def under_load(balancer: Balancer, conversations: int, messages: int, after: int, then) -> dict[str, list[str]]:
    """``conversations`` visitors talking at once, ``messages`` each; once ``after`` messages are answered,
    ``then()`` runs while they go on. The texts each conversation was answered."""
    answered, lock, reached = [0], threading.Lock(), threading.Event()

    def count():
        with lock:
            answered[0] += 1
            if answered[0] == after:
                reached.set()

    with ThreadPoolExecutor(min(conversations, 8)) as pool:
        talks = {f"conv-{n}": pool.submit(talk, balancer, f"conv-{n}", messages, count) for n in range(conversations)}
        assert reached.wait(120), f"the load never reached {after} answers"
        then()
        return {conversation: future.result(timeout=180) for conversation, future in talks.items()}


def stored(postgres_server, url: str) -> tuple[dict[str, int], int]:
    """Each conversation's version, and how many messages were answered, as the database holds them."""
    versions = postgres_server.query(url, "SELECT id_conversation, version FROM conversations")
    [count] = postgres_server.query(url, "SELECT count(*) AS n FROM messages")
    return {row["id_conversation"]: row["version"] for row in versions}, count["n"]


def test_instances_starting_together_migrate_once_and_share_operators_and_conversations(
    shared, postgres_server, tmp_path
):
    url, instance = shared
    scenarios = counting_scenarios(tmp_path / "scenarios")
    first, second = instance(scenarios), instance(scenarios)
    start_together(first, second)
    assert postgres_server.query(url, "SELECT version FROM schema_version") == [{"version": VERSION}]
    save_counter_operator(first.url)
    saved = requests.get(f"{second.url}/bots/{OPERATOR}", timeout=10).json()  # saved on the other instance
    assert saved["external"]["idBot"] == "counter"
    balancer = Balancer([first, second])
    assert talk(balancer, "conv-shared", 4) == ["step 1", "step 2", "step 3", "step 4"]
    # iAdvize retrying message 1 on the other instance: the same answer, and nothing moves
    retried = requests.post(
        f"{second.url}/conversations/conv-shared/messages",
        json={"idOperator": OPERATOR, "message": visitor_text("message 1", id_message="conv-shared-1")},
        timeout=10,
    )
    assert texts(retried.json()["replies"]) == ["step 2"]
    assert stored(postgres_server, url) == ({"conv-shared": 4}, 4)


def test_messages_of_one_conversation_on_two_instances_at_once_apply_one_after_the_other(
    shared, postgres_server, tmp_path
):
    url, instance = shared
    *_, balancer = counting_pair(instance, tmp_path)
    messages = [visitor_text(f"burst {n}", id_message=f"burst-{n}") for n in range(30)]
    with ThreadPoolExecutor(10) as pool:  # 30 messages of one conversation, 10 in flight, on both instances
        answers = list(pool.map(lambda m: texts(balancer.deliver("conv-burst", m)), messages, timeout=120))
    # each applied on the state the previous one left: every step once, none twice, none skipped
    assert sorted(answer for [answer] in answers) == sorted(f"step {n}" for n in range(1, 31))
    assert stored(postgres_server, url) == ({"conv-burst": 30}, 30)


def test_an_instance_killed_under_load_loses_nothing_and_answers_nothing_twice(shared, postgres_server, tmp_path):
    url, instance = shared
    doomed, _, balancer = counting_pair(instance, tmp_path)
    conversations, messages = 16, 8
    said = under_load(balancer, conversations, messages, conversations * messages // 3, doomed.kill)  # SIGKILL
    expected = [f"step {n}" for n in range(1, messages + 1)]
    assert all(answers == expected for answers in said.values()), said  # every message answered, in order, once
    assert stored(postgres_server, url) == ({c: messages for c in said}, conversations * messages)
    assert any(why in ("ConnectionError", "ChunkedEncodingError") for why in balancer.unanswered)  # the kill was felt


def test_postgresql_restarted_under_load_gets_503s_then_answers_on_the_first_call_after(
    shared, postgres_server, tmp_path
):
    url, instance = shared
    first, second, balancer = counting_pair(instance, tmp_path)
    conversations, messages = 8, 10

    def restart():
        postgres_server.stop()
        down = requests.post(
            f"{first.url}/conversations/conv-probe/messages",
            json={"idOperator": OPERATOR, "message": visitor_text("anyone?", id_message="probe-down")},
            timeout=10,
        )
        assert down.status_code == 503
        assert down.json() == {
            "error": "storage unavailable",
            "detail": "the bot cannot reach its database; retry later",
        }
        postgres_server.start()
        for bot in (first, second):  # the first call after the restart, on each instance, is answered
            back = requests.post(
                f"{bot.url}/conversations/conv-probe-{bot.url[-5:]}/messages",
                json={"idOperator": OPERATOR, "message": visitor_text("back?", id_message="probe-up")},
                timeout=10,
            )
            assert (back.status_code, texts(back.json().get("replies", []))) == (200, ["step 1"]), back.text

    said = under_load(balancer, conversations, messages, conversations * 2, restart)
    expected = [f"step {n}" for n in range(1, messages + 1)]
    assert all(answers == expected for answers in said.values()), said
    versions, count = stored(postgres_server, url)
    assert {c: versions[c] for c in said} == {c: messages for c in said}
    assert count == conversations * messages + 2  # and the two probes after the restart; nothing doubled


def test_two_instances_post_each_proactive_message_once(shared, iadvize):
    fake = iadvize("up")
    _, instance = shared
    env = proactive_env(fake)
    first, second = instance(env=env), instance(env=env)
    start_together(first, second)
    conversations = [f"conv-slow-{n}" for n in range(6)]
    for n, conversation in enumerate(conversations):  # half reach the slow step on each instance
        reach_the_slow_step(BotClient((first, second)[n % 2].url), conversation)
    expected = sorted((c, text) for c in conversations for text in (FOUND, NEXT))

    def all_posted():
        return len(fake.posted) >= len(expected)

    deadline = threading.Event()
    for _ in range(600):  # both outboxes poll every 0.5 s: wait for the posts, as events, 60 s at most
        if all_posted() or deadline.wait(0.1):
            break
    assert all_posted(), fake.posted
    for bot in (first, second):  # rounds on every worker of both instances since: none may post again
        more_rounds_on_every_worker(bot, workers=2)
    assert sorted(fake.posted) == expected  # each once
    for conversation in conversations:  # and in order within its conversation
        assert [t for c, t in fake.posted if c == conversation] == [FOUND, NEXT]


def test_a_worker_restarted_while_postgresql_is_down_boots_and_serves_once_it_is_back(
    shared, postgres_server, tmp_path
):
    """gunicorn shuts the whole instance down when a worker fails to boot: a worker must boot without the
    database (``serve`` migrated it before forking), answer 503 meanwhile, and use the server once back."""
    _, instance = shared
    bot = instance(counting_scenarios(tmp_path / "scenarios"))
    bot.start()
    save_counter_operator(bot.url)
    workers = children(bot.process.pid)
    ready = bot.log_path.read_text().count('"bot ready"')
    postgres_server.stop()
    os.kill(workers[0], signal.SIGKILL)  # a worker lost while the database is down: gunicorn starts another
    until(lambda: bot.log_path.read_text().count('"bot ready"') > ready, 30, "the new worker booted")
    assert bot.process.poll() is None  # the instance is still up
    for n in range(3):  # whichever worker takes it: 503 with the JSON error, nothing else
        down = requests.post(
            f"{bot.url}/conversations/conv-w/messages",
            json={"idOperator": OPERATOR, "message": visitor_text("hello?", id_message=f"w-{n}")},
            timeout=10,
        )
        assert (down.status_code, down.json()["error"]) == (503, "storage unavailable")
    postgres_server.start()
    for n in range(4):  # both workers, the new one too, answer from the first call after
        back = requests.post(
            f"{bot.url}/conversations/conv-back-{n}/messages",
            json={"idOperator": OPERATOR, "message": visitor_text("hello", id_message="m-1")},
            timeout=10,
        )
        assert (back.status_code, texts(back.json()["replies"])) == (200, ["step 1"]), back.text


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (gunicorn's workers)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10).stdout.split()
    return [int(p) for p in found]

"""Several deliveries at once, over real HTTP: conversations never wait on each other's brain,
and two messages of one conversation are applied one after the other (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from harness.client import BotClient, visitor_text
from reference_bot.dialogue import Answer

from .conftest import RULES, LoopbackServer, texts


def said(value: str) -> dict:
    return {"type": "message", "payload": {"contentType": "text", "value": value}}


def set_up(url: str) -> None:
    BotClient(url).save_bot("ha-1", {"distributionRules": RULES, "external": {"idBot": "hello"}})


def test_a_slow_dialogue_holds_no_lock_on_other_conversations(make_bot, database):
    lock, active, peak = threading.Lock(), [0], [0]
    # Each brain waits until all four are thinking at once: if one conversation's brain held a lock the
    # others need, the barrier would never fill and break after its timeout (a hang guard: then the
    # dialogue raises, the bot answers 500 and the test fails), whatever the speed of the machine.
    all_thinking = threading.Barrier(4, timeout=8)

    def slow(turn):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        all_thinking.wait()
        with lock:
            active[0] -= 1
        return Answer([said("done")], state="answered")

    with LoopbackServer(make_bot(DATABASE=database, DIALOGUE=slow)) as server:
        set_up(server.url)
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda n: BotClient(server.url).send_message(f"conv-{n}", "ha-1", visitor_text("Hi")), range(4)
                )
            )
    assert [texts(a["replies"]) for a in answers] == [["done"]] * 4
    assert peak[0] == 4  # the four brains ran side by side


def test_two_messages_of_one_conversation_at_once_apply_one_after_the_other(make_bot, database):
    calls = []
    # The first two brains (one per delivery) wait for each other: both have read the same state
    # before either stores its answer, whatever the speed of the machine (the timeout is a hang guard).
    both_read = threading.Barrier(2, timeout=8)

    def counting(turn):
        calls.append(turn.message["payload"]["value"])
        if len(calls) <= 2:
            both_read.wait()
        count = int(turn.conversation.state or 0) + 1
        return Answer([said(f"message number {count}")], state=str(count))

    with LoopbackServer(make_bot(DATABASE=database, DIALOGUE=counting)) as server:
        set_up(server.url)
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda text: BotClient(server.url).send_message("conv-x", "ha-1", visitor_text(text)), ["a", "b"]
                )
            )
        third = BotClient(server.url).send_message("conv-x", "ha-1", visitor_text("c"))
    assert sorted(texts(a["replies"])[0] for a in answers) == ["message number 1", "message number 2"]
    assert texts(third["replies"]) == ["message number 3"]
    assert len(calls) == 4  # one of the first two was answered again from the newer state


def test_a_human_taking_over_while_the_bot_thinks_wins(make_bot, database):
    """The bot's answer, worked out before a human took the conversation, is not sent after it."""
    thinking, human_in = threading.Event(), threading.Event()

    def slow_then_transfer(turn):
        if turn.message["payload"]["value"] == "agent please":
            return Answer([{"type": "transfer", "distributionRule": RULES[0]["id"]}], state="transferred")
        thinking.set()
        # the human's first message lands while this answer is being worked out (30 s: a hang guard;
        # if it ever ran out, the dialogue fails and so does the test, with the reason)
        assert human_in.wait(30), "the human's message never came"
        return Answer([said("a bot answer")], state="answered")

    with LoopbackServer(make_bot(DATABASE=database, DIALOGUE=slow_then_transfer)) as server:
        set_up(server.url)
        client = BotClient(server.url, budget=60)  # the bot thinks until the test lets it go
        client.send_message("conv-h", "ha-1", visitor_text("agent please"))
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.send_message, "conv-h", "ha-1", visitor_text("hello?"))
            assert thinking.wait(30)
            human = {**visitor_text("Hi, Paul here, how can I help?"), "author": {"role": "operator"}}
            BotClient(server.url).send_message("conv-h", "ha-1", human)
            human_in.set()
            answer = pending.result(timeout=90)
    assert answer["replies"] == []  # the human has it: the bot keeps quiet


def test_a_message_answered_between_the_two_reads_of_its_second_delivery_is_answered_once(make_bot, database):
    """iAdvize delivering one message twice at once: the first delivery commits its answer just after the
    second read that the message was not answered yet. The second must answer from what was stored, not
    answer again from the moved conversation (which stored the message twice: a 500, seen on a loaded
    machine about once in a hundred such races)."""

    def counting(turn):
        count = int(turn.conversation.state or 0) + 1
        return Answer([said(f"message number {count}")], state=str(count))

    app = make_bot(DATABASE=database, DIALOGUE=counting)
    store = app.extensions["reference_bot"].store
    message = visitor_text("Track my order")
    first: list[dict] = []
    real_answered = store.answered

    def answered_then_the_first_delivery_commits(tx, id_conversation, id_message):
        replies = real_answered(tx, id_conversation, id_message)  # read before the first delivery's commit
        if id_message == message["idMessage"] and store.answered is not real_answered:
            store.answered = real_answered  # the first delivery reads as usual
            with ThreadPoolExecutor(1) as pool:  # and is answered and committed meanwhile
                first.append(pool.submit(BotClient(server.url).send_message, "conv-d", "ha-1", message).result())
        return replies

    with LoopbackServer(app) as server:
        set_up(server.url)
        BotClient(server.url).send_message("conv-d", "ha-1", visitor_text("Hi"))
        store.answered = answered_then_the_first_delivery_commits
        second = BotClient(server.url).send_message("conv-d", "ha-1", message)
        after = BotClient(server.url).send_message("conv-d", "ha-1", visitor_text("and then?"))
    assert texts(first[0]["replies"]) == texts(second["replies"]) == ["message number 2"]
    assert texts(after["replies"]) == ["message number 3"]  # the message moved the conversation once

"""Each mistake seen in connectors others wrote, made by a small connector: ``check`` reports it with exactly
its rule (and ``verify`` fails exactly where its interactions see it); and, as carefully, a correct connector
that looks like each mistake gets no error from ``check`` and passes ``verify``.

The connectors are in :mod:`tests.connectors` (a bare HTTP handler, state in dictionaries, a signature check
of its own), one keyword per mistake.
"""

from __future__ import annotations

import pytest

from harness.client import BotClient
from harness.conformance.probes import Exploration, check
from harness.verify import verify

from . import connectors

SECRET = "real-connectors-secret"
EXPLORATION = Exploration(depth=2, conversations=4)
ANNOUNCED = "Please wait, I'm transferring you to an advisor."
APOLOGY = "Sorry, an error occurred on our side: please send it again."

# the mistake -> (the connector's options, the rules check reports, the interactions verify fails)
MISTAKES = {
    "a malformed signature crashes it": (
        {"signature": "split"},
        {"signature-check-crash"},
        set(),  # verify signs every call right
    ),
    "an error shown to the visitor": (
        {"errors_shown": True},
        {"error-shown-to-visitor"},
        {"a visitor sends a file"},
    ),
    "conversations share one assistant session": ({"assistant": "last-opened"}, {"conversation-crosstalk"}, set()),
    "a transfer announced and never sent": (
        {"announcement": ANNOUNCED, "transfers": False},
        {"transfer-announced-not-done"},
        set(),
    ),
    "no health check": ({"health_path": None}, {"healthcheck"}, {"the developer platform checks the bot's health"}),
    "no configuration endpoints": (
        {"configuration": False},
        {"http-error", "transfer-unknown-rule"},  # never told the operator's rules, it transfers to its own
        {
            "a request for the bot's scenarios",
            "an admin creates an operator",
            "an admin updates an operator",
            "an admin opens an operator",
            "an admin opens an operator the bot does not know",  # its 404 says nothing: it has no GET /bots/:id
        },
    ),
}

# the look-alike -> its options: each looks like a mistake above and is correct
LOOK_ALIKES = {
    "a signature check that refuses malformed headers": {"signature": "hmac"},
    "an apology that mentions an error": {"file_answer": APOLOGY},
    "a stateful bot that keeps conversations apart": {"assistant": "sessions", "tickets": True},
    "'please wait', then a transfer": {"announcement": ANNOUNCED},
    "a health check at /health": {"health_path": "/health"},
    "a 200 for an operator it does not know": {"unknown_operator": 200},
    "'Talk to a mechanic', which transfers": {"menu": ("Track my order", "Talk to a mechanic"), "escalation_words": ()},
    "answers that change by themselves, not with another visitor": {"rotating": True},
}


def checked(options: dict):
    with connectors.serve(secret=SECRET, **options) as bot:
        return check(BotClient(bot.url, secret=SECRET), SECRET, exploration=EXPLORATION)


def verified(options: dict):
    with connectors.serve(secret=SECRET, **options) as bot:
        return verify(bot.url, secret=SECRET)


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_reported_by_exactly_its_rule_and_verify_fails_where_it_sees_it(mistake):
    options, rules, interactions = MISTAKES[mistake]
    report = checked(options)
    assert {f.rule for f in report.findings} == rules, [(f.rule, f.message) for f in report.findings]
    result = verified(options)
    assert result.error is None
    assert {o.description for o in result.outcomes if not o.passed} == interactions
    assert result.passed == (not interactions)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_each_correct_look_alike_gets_no_error_from_check_and_passes_verify(look_alike):
    report = checked(LOOK_ALIKES[look_alike])
    assert report.errors == [], [(f.rule, f.message) for f in report.errors]
    assert not any(d.kind == "no way to a human" for c in report.coverage for d in c.dead_ends)
    result = verified(LOOK_ALIKES[look_alike])
    assert result.passed, [(o.description, o.reasons) for o in result.outcomes if not o.passed]


def test_a_menu_whose_way_to_a_person_does_not_transfer_is_a_dead_end_whatever_its_words():
    report = checked({"menu": ("Track my order", "Talk to a person"), "menu_transfers": False, "escalation_words": ()})
    dead = [(d.kind, d.where) for c in report.coverage for d in c.dead_ends]
    assert ("no way to a human", "How can we help?") in dead


def test_a_changed_answer_is_crosstalk_only_when_more_runs_alone_agree_and_the_other_had_spoken():
    from harness.conformance.probes import Checker

    checker = Checker(BotClient("http://127.0.0.1:9"))
    words = {"A": ["Hi", "Where is my order?"], "B": ["xq", "Bye"]}
    alone = {
        "A": [["Hello", "It ships today. Ticket 1."], ["Hello", "It ships today. Ticket 2."]],
        "B": [["?", "Bye"]] * 2,
    }

    def interleaved(a: list[str], b: list[str] = ("?", "Bye")) -> dict:
        return {"A": ("a", a, ["", "xq"]), "B": ("b", list(b), ["Hi", "Where is my order?"])}

    leaked = interleaved(["Hello", "About xq: it ships today. Ticket 3."])
    assert checker._changed(words, alone, [leaked]) == (1, "A")  # the ticket aside, A's answer changed
    assert checker._changed(words, alone, [interleaved(["Hello", "It ships today. Ticket 9."])]) is None
    # the first answer of A came before B spoke: whatever it is, B cannot have caused it
    assert checker._changed(words, alone, [interleaved(["Howdy", "It ships today. Ticket 3."])]) is None
    # more runs alone vary in length at that step: it varies by itself, and is not judged
    varied = {
        **alone,
        "A": [*alone["A"], ["Hello", "Shipping today, ticket 4."], ["Hello", "It ships today. Ticket 5."]],
    }
    assert checker._changed(words, varied, [leaked, leaked]) is None
    # confirmed: still changed, in as many words, in the second interleaved run
    again = interleaved(["Hello", "About xq: it ships today. Ticket 7."])
    assert checker._changed(words, {**alone, "A": alone["A"] * 3}, [leaked, again]) == (1, "A")


def test_an_error_in_every_answer_does_not_stop_the_escalation_probe_and_a_long_transfer_is_a_transfer():
    # "undefined" in the answer to hello too: not a sign that the words for a human reached failing code
    report = checked({"answer_text": "Hello undefined, how can I help?", "escalation_words": ("agent",),
                      "transfer_timeout": 300})  # fmt: skip
    assert {f.rule for f in report.findings} == {"error-shown-to-visitor", "transfer-timeout-range"}
    assert not any("never transferred" in note for note in report.notes)


MENU = ("Opening hours", "Talk to a person")


def replayed_outcomes(options: dict, tmp_path) -> dict[str, tuple[str, str | None]]:
    """Two recorded conversations replayed against a connector: one ends on words the bot does not know, one
    on a choice of its menu; each conversation's (outcome, fallback)."""
    import json

    import pyarrow.parquet as pq

    from harness.traffic.replay import replay

    def line(conversation, seq, endpoint, method, path, request, response):
        return {"v": 1, "conversation": conversation, "operator": "ha-1", "seq": seq, "endpoint": endpoint,
                "method": method, "path": path, "request": request, "status": 200, "response": response,
                "sent_at": f"2026-01-05T10:00:{seq:02d}.000Z", "latency_ms": 12.5, "error": None}  # fmt: skip

    recorded = [line(None, 0, "bot.save", "PUT", "/bots/ha-1",
                     {"name": "Shop", "distributionRules": [], "external": {"idBot": "shop"}}, None)]  # fmt: skip
    for conversation, words in (("lost", ["Hello", "blorp wibble"]), ("chose", ["Hello", MENU[0]])):
        answer = {"idConversation": conversation, "idOperator": "ha-1", "replies": [],
                  "createdAt": "2026-01-05T10:00:00.000Z", "updatedAt": "2026-01-05T10:00:00.000Z"}  # fmt: skip
        recorded += [
            line(conversation, 0, "first-messages", "GET", "/bots/ha-1/conversation-first-messages", None,
                 {"replies": []}),
            line(conversation, 1, "conversations", "POST", "/conversations",
                 {"idOperator": "ha-1", "idConversation": conversation, "history": []}, answer),
        ]  # fmt: skip
        for n, text in enumerate(words, 2):
            message = {
                "idMessage": f"{conversation}-{n}",
                "author": {"role": "visitor"},
                "payload": {"contentType": "text", "value": text},
                "createdAt": "2026-01-05T10:00:05.000Z",
            }
            recorded.append(line(conversation, n, "messages", "POST", f"/conversations/{conversation}/messages",
                                 {"idOperator": "ha-1", "message": message}, answer))  # fmt: skip
    path = tmp_path / "recorded.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in recorded), encoding="utf-8")
    with connectors.serve(menu=MENU, escalation_words=("person",), **options) as bot:
        summary = replay([path], bot.url, tmp_path / "out")
    assert summary.conversations == 2
    rows = pq.read_table(tmp_path / "out" / "conversations.parquet").to_pylist()
    return {r["conversation"]: (r["outcome"], r["fallback"]) for r in rows}


def test_a_fallback_of_its_own_makes_a_conversation_ending_on_it_not_understood(tmp_path):
    fallback = "Sorry, I didn't get that."
    assert replayed_outcomes({"unknown": fallback}, tmp_path) == {
        "lost": ("not understood", fallback),
        "chose": ("closed by bot", fallback),
    }


def test_a_menu_shown_again_to_words_it_does_not_know_is_no_fallback_in_replay_nor_in_check(tmp_path):
    # the look-alike: its answer to gibberish is its menu, also its answer to a hello: nothing tells apart a
    # conversation that ends on the menu because the bot did not understand
    assert replayed_outcomes({"unknown": "menu"}, tmp_path) == {
        "lost": ("abandoned", None),  # it left at the menu: a question left unanswered
        "chose": ("closed by bot", None),
    }
    report = checked({"menu": MENU, "escalation_words": ("person",), "unknown": "menu"})
    assert report.errors == [], [(f.rule, f.message) for f in report.errors]
    assert [d for c in report.coverage for d in c.dead_ends if d.kind == "fallback"] == []

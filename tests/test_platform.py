"""The simulated platform reproduces the spec's example conversation, in simulated time."""

from __future__ import annotations

import time

import pytest
from flask import Flask, jsonify, request

from harness.client import BotClient
from harness.conformance.platform import SimulatedPlatform

from .conftest import LoopbackServer

RULE = "9a8b7c6d-0000-4000-8000-00000000abcd"


def text(value, **extra):
    return {"type": "message", "payload": {"contentType": "text", "value": value}, **extra}


def wait(unit, value):
    return {"type": "await", "duration": {"unit": unit, "value": value}}


def spec_bot() -> Flask:
    """The bot of the spec's "A full conversation, as iAdvize drives it"."""
    app = Flask("spec_bot")
    received = []
    app.config["received"] = received

    def envelope(replies):
        return jsonify(
            idConversation=request.view_args.get("cid", request.get_json().get("idConversation")),
            idOperator="ha-1",
            replies=replies,
            createdAt="2026-11-24T10:00:00Z",
            updatedAt="2026-11-24T10:00:00Z",
        )

    @app.get("/bots/<op>/conversation-first-messages")
    def greeting(op):
        return jsonify(replies=[text("Hello, I'm the shop's bot.")])

    @app.post("/conversations")
    def start():
        return envelope([])

    @app.post("/conversations/<cid>/messages")
    def messages(cid):
        message = request.get_json()["message"]
        received.append((message["author"]["role"], message["payload"].get("value")))
        if message["author"]["role"] == "operator" or message["payload"]["value"] == "Hello?":
            return envelope([])
        if message["payload"]["value"] == "Hi":
            return envelope(
                [
                    wait("seconds", 1),
                    text(
                        "How are you?",
                        quickReplies=[
                            {"contentType": "text/quick-reply", "value": "Fine"},
                            {"contentType": "text/quick-reply", "value": "Bad"},
                        ],
                    ),
                    wait("minutes", 3),
                    text("Are you there?"),
                ]
            )
        return envelope(
            [
                wait("seconds", 1),
                text("Transferring you"),
                {
                    "type": "transfer",
                    "distributionRule": RULE,
                    "transferOptions": {"timeout": {"unit": "seconds", "value": 20}},
                },
                text("Nobody is free, sorry"),
                {"type": "close"},
            ]
        )

    return app


@pytest.fixture
def bot():
    app = spec_bot()
    with LoopbackServer(app) as server:
        yield server, app.config["received"]


def platform(url, available):
    return SimulatedPlatform(BotClient(url), "ha-1", [{"id": RULE, "label": "Support"}], rule_available=available)


def run_example(url, available):
    simulated = platform(url, available)
    chat = simulated.open_chat("conv-1")  # 1. the visitor opens the chat: greeting
    simulated.start(chat)  # 2. "Hi" -> POST /conversations, then 7.
    simulated.visitor_says(chat, "Hi")  # 3. await 1 s, "How are you?", await 3 min...
    simulated.visitor_says(chat, "Fine", after=30)  # 5. within 3 min: "Are you there?" dropped
    simulated.wait(chat, 120)  # 7. the transfer's outcome plays out
    return chat


def test_the_example_with_a_successful_transfer(bot):
    server, received = bot
    chat = run_example(server.url, available=True)
    assert chat.shown == [
        "Hello, I'm the shop's bot.",
        "How are you?  [Fine] [Bad]",
        "Transferring you",
        "Hello, this is Sam from the support team. How can I help?",
    ]
    dropped = [e.text for e in chat.events if e.kind == "dropped"]
    assert dropped == [
        "Are you there? (the visitor wrote first)",
        "Nobody is free, sorry (the transfer succeeded)",
        "(closes the conversation) (the transfer succeeded)",
    ]
    assert chat.transfer == "succeeded" and chat.closed is None
    # 4. every message the bot posted came back to it as an operator message, and so did the human's
    assert received == [
        ("visitor", "Hi"),
        ("operator", "How are you?"),
        ("visitor", "Fine"),
        ("operator", "Transferring you"),
        ("operator", "Hello, this is Sam from the support team. How can I help?"),
    ]
    times = {e.text: e.at for e in chat.events if e.kind in ("shown", "visitor")}
    assert times["How are you?  [Fine] [Bad]"] == 1.0 and times["Fine"] == 30.0
    assert times["Transferring you"] == 31.0


def test_the_example_with_a_failed_transfer(bot):
    server, received = bot
    chat = run_example(server.url, available=False)
    assert chat.shown[-2:] == ["Transferring you", "Nobody is free, sorry"]
    assert chat.transfer == "failed" and chat.closed == "bot"
    apology = next(e for e in chat.events if e.text == "Nobody is free, sorry")
    assert apology.at == 31.0 + 20  # after the transfer's 20 s timeout
    assert [e.text for e in chat.events if e.kind == "closed"] == ["closed by the bot"]
    assert received[-1] == ("operator", "Nobody is free, sorry")


def test_silence_plays_out_the_nudge_then_iadvize_closes_after_5_minutes(bot):
    server, _ = bot
    simulated = platform(server.url, available=False)
    chat = simulated.open_chat()
    simulated.start(chat)
    simulated.visitor_says(chat, "Hi")
    simulated.wait(chat, 3600)
    assert chat.shown[-1] == "Are you there?"
    nudge = next(e for e in chat.events if e.text == "Are you there?")
    closed = next(e for e in chat.events if e.kind == "closed")
    assert nudge.at == 181.0 and closed.at == 181.0 + 300
    assert closed.text == "closed by iAdvize after 5 minutes without a message"


def test_simulated_time_is_not_slept_and_latency_is_measured(bot, monkeypatch):
    server, _ = bot
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)  # any sleep, in this process, is recorded instead
    chat = run_example(server.url, available=False)
    assert chat.now >= 150 and slept == []  # minutes simulated, not waited
    assert all(e.exchange.latency_ms > 0 for e in chat.calls)
    assert "POST 127.0.0.1" in chat.transcript() and "visitor  Fine" in chat.transcript()


def test_a_visitor_writing_during_a_failing_transfer_does_not_cancel_what_follows_it(bot):
    server, _ = bot
    simulated = platform(server.url, available=False)
    chat = simulated.open_chat("conv-2")
    simulated.start(chat)
    simulated.visitor_says(chat, "Hi")
    simulated.visitor_says(chat, "Fine", after=30)  # transfer asked at 31 s, 20 s to find a human
    simulated.visitor_says(chat, "Hello?", after=8)  # at 38 s: the transfer is not an await
    simulated.wait(chat, 60)
    failed = next(e for e in chat.events if e.kind == "transfer" and "failed" in e.text)
    apology = next(e for e in chat.events if e.text == "Nobody is free, sorry")
    assert failed.at == apology.at == 51.0
    assert chat.closed == "bot"


def test_a_connector_s_own_conversation_id_is_used_and_encoded_in_the_path(bot):
    server, _ = bot
    simulated = platform(server.url, available=False)
    chat = simulated.open_chat("conv 42?x#1")
    simulated.start(chat)
    answer = simulated.visitor_says(chat, "Hi")
    assert answer.ok and "/conversations/conv%2042%3Fx%231/messages?idConnectorVersion=" in answer.url
    assert answer.body["idConversation"] == "conv 42?x#1"

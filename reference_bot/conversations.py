"""What iAdvize calls during a conversation: first messages, conversation start, every message."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .dialogue import Turn
from .errors import json_body
from .runtime import Runtime, now, runtime
from .scenario import greeting
from .store import Conversation, Store

blueprint = Blueprint("conversations", __name__)


@blueprint.get("/bots/<id_operator>/conversation-first-messages")
def first_messages(id_operator: str):
    # Memory only: iAdvize waits 2 s for this, then shows nothing.
    bot = runtime()
    return jsonify(replies=greeting(bot.scenario_of(bot.operator(id_operator))))


def envelope(conversation: Conversation, replies: list[dict]):
    return jsonify(
        idConversation=conversation.id_conversation,
        idOperator=conversation.id_operator,
        replies=replies,
        createdAt=conversation.created_at,
        updatedAt=conversation.updated_at,
    )


@blueprint.post("/conversations")
def start_conversation():
    body = json_body("conversation.request")
    g.id_conversation, g.id_operator = body["idConversation"], body["idOperator"]
    bot = runtime()
    bot.scenario_of(bot.operator(body["idOperator"]))
    with bot.store.transaction() as tx:
        conversation = Store.start_conversation(tx, body["idConversation"], body["idOperator"], now())
    # Empty on purpose: iAdvize calls POST …/messages at once with the visitor's first message.
    return envelope(conversation, [])


@blueprint.post("/conversations/<id_conversation>/messages")
def receive_message(id_conversation: str):
    body = json_body("message.request")
    g.id_operator = body["idOperator"]
    bot = runtime()
    operator = bot.operator(body["idOperator"])
    message = body["message"]

    if message["author"]["role"] == "operator":
        # The echo rule: iAdvize posts back every message the bot (or, after a transfer, a
        # human) sent. Answering anything here makes the bot talk to itself forever.
        conversation = Store.conversation(bot.store.connection, id_conversation)
        return envelope(conversation or _unknown(id_conversation, operator.id_operator), [])

    scenario = bot.scenario_of(operator)
    with bot.store.transaction() as tx:
        stamp = now()
        # Unknown conversation (its start was never received): start it rather than leave the visitor unanswered.
        conversation = Store.start_conversation(tx, id_conversation, operator.id_operator, stamp)
        replies = Store.answered(tx, id_conversation, message["idMessage"])
        if replies is None:  # not a retry of a message already answered
            replies = _answer(bot, tx, Turn(operator, scenario, conversation, message), stamp)
            conversation = Store.conversation(tx, id_conversation)
    return envelope(conversation, replies)


def _answer(bot: Runtime, tx, turn: Turn, stamp: str) -> list[dict]:
    answer = bot.dialogue(turn)
    replies = list(answer.replies)
    if answer.proactive and bot.outbox is not None:
        texts = [r["payload"]["value"] for r in answer.proactive if r["type"] == "message"]
        Store.enqueue(tx, turn.conversation.id_conversation, turn.operator.id_operator, texts)
    else:  # no iAdvize API credentials: deliver it late in the HTTP answer rather than never
        replies += answer.proactive
    Store.move_conversation(tx, turn.conversation.id_conversation, answer.state, stamp)
    Store.remember(tx, turn.conversation.id_conversation, turn.message["idMessage"], replies)
    return replies


def _unknown(id_conversation: str, id_operator: str) -> Conversation:
    stamp = now()
    return Conversation(id_conversation, id_operator, None, stamp, stamp)

"""What iAdvize calls during a conversation: first messages, conversation start, every message."""

from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify

from harness import wire

from .dialogue import Answer, Turn
from .dialogue import answer as scenario_answer
from .errors import ApiError, json_body
from .proactive import action_of
from .runtime import Runtime, now, runtime
from .scenario import MAX_MESSAGE_CHARS, greeting
from .store import Conversation

blueprint = Blueprint("conversations", __name__)
log = logging.getLogger(__package__)


@blueprint.get("/bots/<id_operator>/conversation-first-messages")
def first_messages(id_operator: str):
    """``GET /bots/:idOperator/conversation-first-messages``: the scenario's greeting, from memory only."""
    # Memory only: iAdvize waits 2 s for this, then shows nothing.
    bot = runtime()
    return jsonify(replies=greeting(bot.scenario_of(bot.operator(id_operator))))


def envelope(conversation: Conversation, replies: list[dict]):
    """The answer to ``POST /conversations`` and ``…/messages``: the conversation's ids, timestamps, ``replies``,
    and the visitor data it holds in ``variables`` (how iAdvize's API carried prequalified data)."""
    return jsonify(
        idConversation=conversation.id_conversation,
        idOperator=conversation.id_operator,
        replies=replies,
        variables=[{"key": key, "value": value} for key, value in conversation.variables.items()],
        createdAt=conversation.created_at,
        updatedAt=conversation.updated_at,
    )


@blueprint.post("/conversations")
def start_conversation():
    """``POST /conversations``: stores the conversation (one sent again is left as it is) and answers no replies."""
    body = json_body("conversation.request")
    g.id_conversation, g.id_operator = body["idConversation"], body["idOperator"]
    bot = runtime()
    bot.scenario_of(bot.operator(body["idOperator"]))
    with bot.store.transaction() as tx:
        conversation = bot.store.start_conversation(tx, body["idConversation"], body["idOperator"], now())
    # Empty on purpose: iAdvize calls POST …/messages at once with the visitor's first message.
    return envelope(conversation, [])


@blueprint.post("/conversations/<id_conversation>/messages")
def receive_message(id_conversation: str):
    """``POST /conversations/:idConversation/messages``: the bot's replies to a visitor message.

    An operator's message is an echo and gets no replies; it only notes a human taking over
    after a transfer. A message answered before (iAdvize retrying) gets the same replies again;
    a conversation whose start never arrived is started. The answer is stored only if the
    conversation has not moved since it was read; after ``ANSWER_ATTEMPTS`` tries, 503, which
    iAdvize retries.
    """
    body = json_body("message.request")
    g.id_operator = body["idOperator"]
    bot = runtime()
    operator = bot.operator(body["idOperator"])
    message = body["message"]
    if message["author"]["role"] == "operator":
        return envelope(_echo(bot, id_conversation, operator, message), [])
    scenario, store = bot.scenario_of(operator), bot.store
    for _ in range(ANSWER_ATTEMPTS):
        # Plain reads, no lock: a retry is answered from what was stored, and the usual message (of a
        # started conversation) writes only once, below. The version check there catches whatever
        # changes in between. Each read sees the last commit, so the conversation is read first: an answer
        # to this message committed after it moved the version past the one read (the write below fails and
        # reads again); read second, the conversation could already hold that answer, not yet seen.
        with store.reading() as reads:
            conversation = store.conversation(reads, id_conversation)
            replies = store.answered(reads, id_conversation, message["idMessage"])
        if conversation is None:  # its start was never received: start it rather than leave the visitor alone
            with store.transaction() as tx:
                conversation = store.start_conversation(tx, id_conversation, operator.id_operator, now())
        if replies is not None:  # iAdvize retrying a message already answered: the same answer again
            return envelope(conversation, replies)
        # The brain runs outside any transaction: a slow NLU or LLM holds no lock on other conversations.
        answer = _answer(bot, Turn(operator, scenario, conversation, message))
        with store.transaction() as tx:
            # The conversation's row locked first: a delivery of it on another instance waits here until
            # this one commits (on SQLite the transaction holds the file's lock).
            store.lock_conversation(tx, id_conversation)
            moved = store.move_conversation(tx, conversation, answer.state, now(), answer.variables)
            if moved is None:
                # Another answer moved the conversation since it was read: another message, or this same one
                # delivered twice at once (every answer moves the version). Read again: the stored answer, or
                # an answer from where the conversation is now.
                continue
            replies = _record(bot, tx, moved, message, answer)
        if answer.proactive and bot.outbox is not None:  # committed: the outbox may send it now
            bot.outbox.wake()
        return envelope(moved, replies)
    raise ApiError(503, "conversation busy", "too many messages at once in this conversation; retry")


ANSWER_ATTEMPTS = 5
INLINE_PAUSE = {"type": "await", "duration": {"unit": "seconds", "value": 1}}  # between holding and real answer


def _answer(bot: Runtime, turn: Turn) -> Answer:
    if turn.conversation.handed_over or turn.conversation.closed:
        return Answer([], turn.conversation.state)  # a human has the conversation, or it closed: quiet
    answer = bot.dialogue(turn)
    if bot.dialogue is scenario_answer:  # the scenario engine's replies were checked when its files loaded
        return answer
    found = wire.problems("first-messages.response", {"replies": [*answer.replies, *answer.proactive]})
    for reply in answer.proactive:
        if reply.get("type") != "await":
            try:
                action_of(reply)
            except ValueError as error:
                found.append(f"Answer.proactive: {error}")
    variables = answer.variables
    if variables is not None and not (
        isinstance(variables, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items())
    ):
        found.append("variables must map names to strings")
    if found or not (answer.state is None or isinstance(answer.state, str)):
        # A bug in the dialogue function: say exactly what, in the log, rather than send it to iAdvize.
        raise TypeError(
            "the dialogue answered what the API cannot carry: " + "; ".join(map(str, found[:5]))
            if found
            else f"state {answer.state!r} is not a string"
        )
    for reply in answer.replies:
        value = reply.get("payload", {}).get("value")
        if isinstance(value, str) and len(value) > MAX_MESSAGE_CHARS:
            log.warning(
                "a message of %d characters will be cut by iAdvize at %d",
                len(value),
                MAX_MESSAGE_CHARS,
                extra={"idConversation": turn.conversation.id_conversation},
            )
    return answer


def _record(bot: Runtime, tx, conversation: Conversation, message: dict, answer: Answer) -> list[dict]:
    """Store what was answered (for retries) and queue the slow part; returns the HTTP replies."""
    replies = list(answer.replies)
    if answer.proactive and bot.outbox is not None:
        # one message or action per API call; an await has no API form (each post is shown as it comes)
        posts = [r for r in answer.proactive if r["type"] != "await"]
        bot.store.enqueue(tx, conversation.id_conversation, conversation.id_operator, posts)
    elif answer.proactive:  # no iAdvize API credentials: deliver it late in the HTTP answer rather than never
        replies += [INLINE_PAUSE, *answer.proactive] if replies else answer.proactive
    bot.store.remember(tx, conversation.id_conversation, message["idMessage"], replies)
    return replies


def _echo(bot: Runtime, id_conversation: str, operator, message: dict) -> Conversation:
    """Note a human taking over; never answer. The echo rule: answering makes the bot talk to itself."""
    store = bot.store
    with store.reading() as reads:
        conversation = store.conversation(reads, id_conversation)
    if conversation is None:
        return _unknown(id_conversation, operator.id_operator)
    payload = message["payload"]
    if not conversation.handed_over and payload.get("contentType") == "text":
        with store.transaction() as tx:
            texts, transferred = store.sent(tx, id_conversation)
            # After a transfer, an operator message the bot never wrote is a human's.
            if transferred and payload.get("value") not in texts:
                store.hand_over(tx, id_conversation, now())
                log.info("a human took the conversation over", extra={"idConversation": id_conversation})
            conversation = store.conversation(tx, id_conversation)
    return conversation


def _unknown(id_conversation: str, id_operator: str) -> Conversation:  # an echo of a conversation never started
    stamp = now()
    return Conversation(id_conversation, id_operator, None, stamp, stamp)

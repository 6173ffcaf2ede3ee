"""How a replayed conversation ended, and how long its first reply took: the definitions the tables carry.

Pure Python over the simulated platform's events (no pandas): the replay calls it for every conversation.
"""

from __future__ import annotations

from harness.conformance.platform import Event, SimulatedConversation

# a visitor message with one of these words asks for a human
HUMAN_WORDS = ("human", "person", "agent", "advisor", "someone", "operator")


def first_reply_seconds(events: list[Event], visitor: list[int], shown: list[Event]) -> float | None:
    """Seconds from the visitor's first message to the first message shown after it, the bot's
    HTTP latency included (simulated time runs apart from it)."""
    if not visitor or not shown:
        return None
    first = events[visitor[0]]
    call = next((e for e in events[visitor[0] :] if e.kind == "call" and e.purpose == "visitor"), None)
    latency = (call.exchange.latency_ms or 0) / 1000 if call else 0.0
    return round(shown[0].at - first.at + latency, 3)


def outcome(chat: SimulatedConversation, events: list[Event], visitor: list[int]) -> str:
    """resolved / escalated / transfer failed / abandoned / closed by bot.

    Abandoned: the visitor wrote at most once, or left (iAdvize closed the chat after 5 minutes)
    while the bot waited for an answer: its last message asked a question or offered quick replies.
    """
    if chat.transfer == "succeeded":
        return "escalated"
    if chat.transfer == "failed":
        return "transfer failed"
    if chat.closed == "bot":
        return "closed by bot"
    last_bot = next((e for e in reversed(events) if e.kind == "shown"), None)
    waiting = (
        last_bot is not None
        and last_bot.reply is not None
        and (bool(last_bot.reply.get("quickReplies")) or last_bot.text.rstrip().endswith("?"))
    )
    if len(visitor) <= 1 or (
        chat.closed == "inactivity" and waiting and (not visitor or events.index(last_bot) > visitor[-1])
    ):
        return "abandoned"
    return "resolved"

"""How a replayed conversation ended, and how long its first reply took: the definitions the tables carry.

Pure Python over the simulated platform's events (no pandas): the replay calls it for every conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.conformance.platform import Event, SimulatedConversation

# a visitor message with one of these words asks for a human
HUMAN_WORDS = ("human", "person", "agent", "advisor", "someone", "operator")


@dataclass(frozen=True)
class OutcomeRules:
    """What a team's bot means by its outcomes: the words of a visitor asking for a human (whole words,
    any case), and, when given, the bot texts that mean a conversation was resolved (a conversation
    without one is then ``unresolved``). The default is the harness's own."""

    asked_for_human: tuple[str, ...] = HUMAN_WORDS
    resolved: tuple[str, ...] = ()  # substrings of a bot message, any case; none: resolved as by default

    def asks_for_human(self, text: str) -> bool:
        """Whether a visitor message (or quick-reply value) asks for a human."""
        return bool(self._human.search(text)) if self.asked_for_human else False

    @property
    def _human(self) -> re.Pattern:
        return re.compile(r"\b(" + "|".join(map(re.escape, self.asked_for_human)) + r")\b", re.IGNORECASE)


DEFAULT_RULES = OutcomeRules()


class OutcomeRulesError(ValueError):
    """An outcome rules file that cannot be used: which file, which key, what is wrong."""


def load_rules(path: str | Path) -> OutcomeRules:
    """The outcome rules of a YAML file (``asked_for_human: [...]``, ``resolved: [...]``, both optional)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise OutcomeRulesError(f"{path}: cannot read the file ({error})") from None
    except yaml.YAMLError as error:
        raise OutcomeRulesError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict) or set(data) - {"asked_for_human", "resolved"}:
        raise OutcomeRulesError(f"{path}: give a mapping with asked_for_human and/or resolved, each a list of words")
    found = {}
    for key in ("asked_for_human", "resolved"):
        if key in data:
            words = data[key]
            if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
                raise OutcomeRulesError(f"{path}: {key} must be a list of non-empty strings (quote yes and no)")
            found[key] = tuple(w.strip() for w in words)
    return OutcomeRules(**found)


def first_reply_seconds(
    events: list[Event], visitor: list[int], shown: list[Event], latency_ms: float | None = None
) -> float | None:
    """Seconds from the visitor's first message to the first message shown after it: the awaits before it,
    in simulated time, plus the bot's latency on that call (``latency_ms``: the recorded one; None: the
    replayed one)."""
    if not visitor or not shown:
        return None
    first = events[visitor[0]]
    call = next((e for e in events[visitor[0] :] if e.kind == "call" and e.purpose == "visitor"), None)
    if latency_ms is None:
        latency_ms = (call.exchange.latency_ms or 0) if call else 0.0
    return round(shown[0].at - first.at + latency_ms / 1000, 3)


def ends_on_fallback(last_message: str | None, fallback: str | None) -> bool:
    """The bot's last message is its fallback (what it answers words it does not understand)."""
    return last_message is not None and fallback is not None and last_message.strip() == fallback.strip()


def outcome(
    chat: SimulatedConversation,
    events: list[Event],
    visitor: list[int],
    rules: OutcomeRules = DEFAULT_RULES,
) -> str:
    """escalated / transfer failed / abandoned / closed by bot / resolved (/ unresolved, with ``rules.resolved``).

    A conversation that ended on the bot's fallback is then "not understood" (:func:`ends_on_fallback`),
    once the fallback is known: never contained, nor resolved. Abandoned: the visitor never wrote, or left
    (iAdvize closed the chat after 5 minutes) while the bot waited for an answer: its last message, after the
    visitor's last, asked a question or offered quick replies. A visitor who got an answer and left is not
    abandoned. With ``rules.resolved``, a conversation is resolved only when the bot said one of those texts.
    """
    if chat.transfer == "succeeded":
        return "escalated"
    if chat.transfer == "failed":
        return "transfer failed"
    last_bot = next((e for e in reversed(events) if e.kind == "shown"), None)
    # the bot waited for an answer: its last message offered quick replies or asked something
    waiting = (
        last_bot is not None
        and last_bot.reply is not None
        and (bool(last_bot.reply.get("quickReplies")) or "?" in last_bot.text)
    )
    if chat.closed != "bot" and (
        not visitor or (chat.closed == "inactivity" and waiting and events.index(last_bot) > visitor[-1])
    ):
        return "abandoned"
    if rules.resolved:  # the team's texts decide, a goodbye included
        said = [e.text.casefold() for e in events if e.kind == "shown"]
        return "resolved" if any(w.casefold() in t for w in rules.resolved for t in said) else "unresolved"
    return "closed by bot" if chat.closed == "bot" else "resolved"


@dataclass(frozen=True)
class Journey:
    """Where a conversation went: the bot's last message seen, its last quick-reply menu, and the quick
    replies the visitor chose, in order (typed messages left out)."""

    last_message: str | None
    last_menu: str | None
    path: tuple[str, ...]


def journey(events: list[Event]) -> Journey:
    """The conversation's journey, from its events (what was shown, what the visitor wrote)."""
    last_message = last_menu = None
    offered: list[str] = []
    path = []
    for event in events:
        if event.kind == "shown" and isinstance(event.reply, dict):
            payload = event.reply.get("payload") or {}
            text = payload.get("value") if payload.get("contentType") == "text" else f"[{payload.get('contentType')}]"
            last_message = str(text)
            choices = [q.get("value") for q in event.reply.get("quickReplies") or [] if isinstance(q, dict)]
            if choices:
                last_menu, offered = last_message, [str(c) for c in choices]
        elif event.kind == "visitor":
            chosen = next((c for c in offered if c.casefold() == event.text.strip().casefold()), None)
            if chosen is not None:
                path.append(chosen)
            offered = []  # a menu is answered once: what follows is a new message
    return Journey(last_message, last_menu, tuple(path))

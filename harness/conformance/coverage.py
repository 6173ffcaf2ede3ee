"""What ``check`` reached of a bot, as the probes discovered it: the bot's conversation graph (nodes: the
bot's messages that offer quick replies, and where each choice led) and its dead ends.

Dead ends, each with where it is:

- ``fallback``: a quick reply the bot offered and then did not understand (answered with the
  message it gives to gibberish, learnt by the probe "a message it cannot understand");
- ``loop``: a menu whose every quick reply leads back to itself, with no way out;
- ``no way to a human``: a menu from which no quick reply, nor any menu it leads to, reaches a
  transfer or offers one that looks like a way to a human.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from dataclasses import dataclass, field

from harness.conformance.phrasings import looks_like_escalation
from harness.conformance.platform import SimulatedConversation
from harness.wire import text_of

TRANSFER, CLOSE, NOTHING = "[transfer]", "[close]", "[nothing]"
GIBBERISH = "xq zvbk qwpl?"  # what the probe "a message it cannot understand" says


@dataclass(frozen=True)
class Edge:
    """A quick reply followed: offered by ``source`` (a bot message), it led to ``target``."""

    source: str
    choice: str
    target: str
    transferred: bool = False  # a transfer followed before the visitor chose another quick reply


@dataclass(frozen=True)
class DeadEnd:
    """A place of the graph a visitor cannot get on from, and why."""

    kind: str  # fallback | loop | no way to a human
    where: str
    why: str


@dataclass
class Coverage:
    """One scenario's graph as the probes found it: its menus (and their quick replies), edges, dead ends."""

    scenario: str
    menus: dict[str, list[str]] = field(default_factory=dict)  # bot message -> the quick replies it offers
    edges: list[Edge] = field(default_factory=list)
    dead_ends: list[DeadEnd] = field(default_factory=list)
    # for a scenario whose file is known: its states reached and not, with where each is ({state, file, line})
    states: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def followed(self) -> int:
        """Quick replies followed at least once."""
        return len({(e.source, e.choice) for e in self.edges})

    @property
    def offered(self) -> int:
        """Quick replies offered by the menus found."""
        return sum(len(choices) for choices in self.menus.values())

    def as_dict(self) -> dict:
        """The graph as JSON: menus, edges, dead ends, and how much of it the probes followed."""
        return {
            "scenario": self.scenario,
            "menus": self.menus,
            "edges": [e.__dict__ for e in self.edges],
            "dead_ends": [d.__dict__ for d in self.dead_ends],
            "quick_replies_offered": self.offered,
            "quick_replies_followed": self.followed,
            **({"states": self.states} if self.states else {}),
        }


def coverage(scenario: str, conversations: list[SimulatedConversation], fallback: str | None) -> Coverage:
    """The graph of ``scenario`` from its probe conversations; ``fallback``: what the bot answers to gibberish."""
    found = Coverage(scenario)
    for chat in conversations:
        _walk(chat, found)
    found.edges = list(dict.fromkeys(found.edges))
    found.dead_ends = _dead_ends(found, fallback)
    return found


def mark_states(
    found: Coverage, conversations: list[SimulatedConversation], states: dict[str, tuple[str, int, list[dict]]]
) -> None:
    """Which of a scenario's ``states`` (name -> file, line, the payloads it sends) its conversations reached.

    A state is reached when one of its payloads was shown: a text with ``{variable}`` matching any value.
    """
    shown = [e.reply.get("payload") for c in conversations for e in c.events if e.kind == "shown" and e.reply]
    texts = {p["value"] for p in shown if isinstance(p, dict) and p.get("contentType") == "text"}
    others = {_key(p) for p in shown if isinstance(p, dict) and p.get("contentType") != "text"}
    reached, missed = [], []
    for name, (source, line, payloads) in states.items():
        where = {"state": name, "file": source, "line": line}
        (reached if any(_seen(p, texts, others) for p in payloads) else missed).append(where)
    found.states = {"reached": reached, "not_reached": missed}


def mark_transitions(
    found: Coverage,
    conversations: list[SimulatedConversation],
    states: dict[str, tuple[str, int, list[dict]]],
    transitions: list[dict],
) -> None:
    """Which declared ``transitions`` ({from, to, line}; from ``anywhere``: any state) the conversations took.

    A conversation enters a state when the state's first message is shown; a transition is taken
    when one state follows another so (a state asked again, or the fallback, is no transition).
    """
    first = {name: payloads[0] for name, (_, _, payloads) in states.items() if payloads}
    taken = set()
    for chat in conversations:
        entered = []
        for event in chat.events:
            payload = (event.reply or {}).get("payload") if event.kind == "shown" else None
            if not isinstance(payload, dict):
                continue
            texts, others = (
                ({payload.get("value")}, set()) if payload.get("contentType") == "text" else (set(), {_key(payload)})
            )
            name = next((n for n, p in first.items() if _seen(p, texts, others)), None)
            if name and (not entered or entered[-1] != name):
                entered.append(name)
        taken |= set(itertools.pairwise(entered))
    own = {(t["from"], t["to"]) for t in transitions if t["from"] != "anywhere"}
    source = next(iter(states.values()))[0] if states else ""
    reached, missed = [], []
    for t in transitions:
        hit = (
            (t["from"], t["to"]) in taken
            if t["from"] != "anywhere"
            else any(b == t["to"] and (a, b) not in own for a, b in taken)
        )
        (reached if hit else missed).append({**t, "file": source})
    found.states.update({"transitions reached": reached, "transitions not reached": missed})


def _seen(payload: dict, texts: set[str], others: set[str]) -> bool:
    if payload.get("contentType") != "text":
        return _key(payload) in others
    pattern = re.compile(re.sub(r"\\\{[a-z_][a-z0-9_]*\\\}", ".*", re.escape(payload["value"])))
    return any(pattern.fullmatch(text) for text in texts)


def _key(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def fallback_of(chat: SimulatedConversation) -> str | None:
    """The bot's first text after the gibberish in the probe conversation that said it; None when the bot
    showed that text before as its menu (with quick replies) or its greeting: a bot that shows its menu to
    anything it does not understand has no fallback of its own, and a conversation ending on its menu is not
    one it failed to understand. (A bot that did not understand the hello either keeps its fallback.)"""
    said, spoke, menus = False, False, set()
    for event in chat.events:
        if event.kind == "visitor":
            said, spoke = event.text == GIBBERISH, True
        elif event.kind == "shown" and text_of(event.reply) is not None:
            if said:
                return None if text_of(event.reply) in menus else text_of(event.reply)
            if not spoke or (isinstance(event.reply, dict) and event.reply.get("quickReplies")):
                menus.add(text_of(event.reply))  # the greeting, or a menu
    return None


def _walk(chat: SimulatedConversation, found: Coverage) -> None:
    menu, choices, chosen_last = None, [], None
    for event in chat.events:
        if event.kind == "visitor":
            chosen = next((c for c in choices if c.casefold() == event.text.strip().casefold()), None)
            source, menu, choices = menu, None, []
            if chosen is None:  # typed, not chosen (an answer to the bot's question): the last choice leads on
                continue
            found.edges.append(Edge(source, chosen, _next(chat, event)))
            chosen_last = len(found.edges) - 1
        elif event.kind == "transfer" and chosen_last is not None:
            # "Talk to a person", the bot's questions answered, then the transfer: that choice leads to a human
            found.edges[chosen_last] = dataclasses.replace(found.edges[chosen_last], transferred=True)
        elif event.kind == "shown" and isinstance(event.reply, dict) and event.reply.get("quickReplies"):
            menu = text_of(event.reply) or "[a payload]"
            choices = [str(q.get("value")) for q in event.reply["quickReplies"] if isinstance(q, dict)]
            found.menus.setdefault(menu, choices)


def _next(chat: SimulatedConversation, visitor_event) -> str:
    """What the bot did after the visitor's choice: its first message, a transfer or a close."""
    after = chat.events[chat.events.index(visitor_event) + 1 :]
    for event in after:
        if event.kind == "visitor":
            break
        if event.kind == "shown" and isinstance(event.reply, dict):
            return text_of(event.reply) or f"[{(event.reply.get('payload') or {}).get('contentType')}]"
        if event.kind == "transfer":
            return TRANSFER
        if event.kind == "closed":
            return CLOSE
    return NOTHING


def _dead_ends(found: Coverage, fallback: str | None) -> list[DeadEnd]:
    dead = []
    if fallback:
        for edge in found.edges:
            if edge.target == fallback:
                dead.append(
                    DeadEnd("fallback", edge.source, f"the quick reply {edge.choice!r} is answered with the fallback")
                )
    out_of: dict[str, set[str]] = {}
    for edge in found.edges:
        out_of.setdefault(edge.source, set()).add(edge.target)
    for menu, targets in out_of.items():
        followed = {e.choice for e in found.edges if e.source == menu}
        if targets == {menu} and followed >= set(found.menus.get(menu, [])):
            dead.append(DeadEnd("loop", menu, "every quick reply leads back to this message: no way out"))
    for menu in found.menus:
        if not _reaches_a_human(menu, found, out_of):
            dead.append(DeadEnd("no way to a human", menu, "no quick reply from here leads to a person"))
    return dead


def _reaches_a_human(menu: str, found: Coverage, out_of: dict[str, set[str]]) -> bool:
    """Whether a quick reply from ``menu`` leads to a transfer, directly or through the menus it leads to.

    A choice the probes followed counts by what it led to, whatever its words ("Talk to a mechanic" that
    transfers is a way to a human; "Talk to a person" that does not, is not); one they did not follow
    counts by its words only, the one thing known of it.
    """
    transferring = {e.source for e in found.edges if e.transferred}
    followed = {(e.source, e.choice) for e in found.edges}
    seen, todo = set(), [menu]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        unfollowed = [c for c in found.menus.get(node, []) if (node, c) not in followed]
        if node == TRANSFER or node in transferring or any(looks_like_escalation(c) for c in unfollowed):
            return True
        todo.extend(out_of.get(node, ()))
    return False

"""A replayed conversation drawn as a chat: visitor and bot bubbles, quick replies as chips,
cards and offers as cards, awaits and transfers as markers. For notebooks and the report."""

from __future__ import annotations

import json
from html import escape

import pandas as pd

from harness import render, wire

STYLE = """<style>
.chat{font-family:sans-serif;max-width:640px;border:1px solid #ccc;padding:8px;background:#fafafa}
.row{display:flex;margin:4px 0}.row.visitor{justify-content:flex-end}
.bubble{max-width:75%;padding:6px 10px;border-radius:12px;background:#fff;border:1px solid #bbb}
.visitor .bubble{background:#e8eef9;border-color:#7a93c6}.human .bubble{border-style:dashed}
.who{font-size:11px;color:#555}.chip{display:inline-block;border:1px solid #777;border-radius:10px;
padding:1px 8px;margin:2px;font-size:12px}.card{border:1px solid #999;border-radius:6px;padding:4px 8px;
margin:3px 0;background:#fff}.marker{text-align:center;font-size:12px;color:#444;margin:4px 0}
</style>"""


def _card(payload: dict) -> str:
    title = payload.get("title") or payload.get("name") or ""
    price = payload.get("offerPrice") or payload.get("price") or ""
    lines = [f"<b>{escape(str(title))}</b>"]
    if price:
        lines.append(escape(str(price)))
    if payload.get("text") or payload.get("description"):
        lines.append(escape(str(payload.get("text") or payload.get("description"))))
    lines += [f"<u>{escape(str(a.get('name', '')))}</u>" for a in payload.get("actions") or [] if isinstance(a, dict)]
    return f"<div class='card'>{'<br>'.join(lines)}</div>"


def _payload(payload: dict) -> str:
    kind = payload.get("contentType")
    if kind == "text":
        return escape(str(payload.get("value", "")))
    if kind in ("card/content", "product-offer"):
        return _card(payload)
    if kind in ("bundle/card", "bundle/product-offer"):
        items = payload.get("cards") or payload.get("offers") or []
        return "".join(_card(item) for item in items if isinstance(item, dict))
    return escape(render.payload(payload))


def _bubble(side: str, who: str, body: str) -> str:
    return f"<div class='row {side}'><div class='bubble'><div class='who'>{who}</div>{body}</div></div>"


def _reply(reply, rules: dict) -> str:
    """One reply drawn; a reply the bot got wrong is shown as such rather than breaking the view."""
    try:
        return _drawn(reply, rules)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
        return f"<div class='marker'>[a reply iAdvize could not read: {escape(str(reply)[:120])}]</div>"


def _drawn(reply: dict, rules: dict) -> str:
    kind = reply.get("type")
    if kind == "message":
        chips = "".join(
            f"<span class='chip'>{escape(str(q.get('value', '')))}</span>"
            for q in reply.get("quickReplies") or []
            if isinstance(q, dict)
        )
        return _bubble("bot", "bot", _payload(reply["payload"]) + (f"<div>{chips}</div>" if chips else ""))
    if kind == "await":
        return f"<div class='marker'>[waits {escape(render.duration(reply['duration']))}]</div>"
    if kind == "transfer":
        timeout = (reply.get("transferOptions") or {}).get("timeout")
        wait = f", {wire.seconds(timeout):g} s" if timeout else ", 60 s by default"
        rule = str(reply.get("distributionRule"))
        named = f"{rules[rule]!r} ({rule})" if rules.get(rule, rule) != rule else rule
        return f"<div class='marker'>[transfer to rule {escape(named)}{wait}]</div>"
    if kind == "close":
        return "<div class='marker'>[the bot closes the conversation]</div>"
    return ""


def conversation_html(exchanges: pd.DataFrame, conversation: str, rules: dict[str, str] | None = None) -> str:
    """The conversation as the visitor would read it, from the replayed exchanges.

    ``rules`` names distribution rules by id (transfers show the label). A message the bot posted
    through iAdvize's API is known by its echo: an operator message the bot's answers did not carry.
    """
    rows = exchanges[exchanges["conversation"] == conversation].sort_values("seq")
    human = rows["purpose"].eq("human").any()  # the transfer succeeded: what followed it was dropped
    rules, answered = rules or {}, set()
    echoed = _echoed_after(rows)
    parts = [STYLE, "<div class='chat'>"]
    for row in rows.itertuples():  # one conversation: a few dozen rows at most
        replies = json.loads(row.replies) if row.replies else []
        if row.purpose == "visitor":
            parts.append(_bubble("visitor", "visitor", escape(str(row.message))))
        elif row.purpose == "human":
            parts.append(_bubble("human", "human operator", escape(str(row.message))))
        elif row.purpose == "echo" and row.message not in answered:
            parts.append(_bubble("bot", "bot, through iAdvize's API", escape(str(row.message))))
        if row.purpose in ("greeting", "visitor"):
            parts += _answer(replies, echoed.get(row.seq), answered, rules, human)
    parts.append("</div>")
    return "".join(parts)


def _echoed_after(rows: pd.DataFrame) -> dict[int, set[str]]:
    """Per visitor message (its seq), the messages iAdvize echoed before the next one: what was shown."""
    shown, current = {}, None
    for row in rows.itertuples():
        if row.purpose == "visitor":
            current = shown.setdefault(row.seq, set())
        elif row.purpose == "echo" and current is not None:
            current.add(row.message)
    return shown


def _answer(replies: list, echoed: set[str] | None, answered: set, rules: dict, human: bool) -> list[str]:
    """One answer drawn as the visitor saw it: what waited behind an await the visitor's next message
    cancelled is said so, not drawn as shown (``echoed``: what was shown; None: unknown, all drawn)."""
    parts, waiting = [], []
    for index, reply in enumerate(replies):
        payload = reply.get("payload") if isinstance(reply, dict) else None
        if isinstance(payload, dict):
            answered.add(render.payload(payload))
            if echoed is not None and render.payload(payload) not in echoed:
                left = sum(1 for r in replies[index:] if isinstance(r, dict) and r.get("type") == "message")
                parts.append(f"<div class='marker'>[{left} more not shown: the visitor wrote first]</div>")
                return parts
        if isinstance(reply, dict) and reply.get("type") == "await":
            waiting.append(_reply(reply, rules))  # drawn once what it held back is shown
            continue
        parts += [*waiting, _reply(reply, rules)]
        waiting = []
        if isinstance(reply, dict) and reply.get("type") == "transfer" and human:
            parts.append("<div class='marker'>[a human took the conversation]</div>")
            break
    return parts


def rule_labels(exchanges: pd.DataFrame, conversations: pd.DataFrame) -> dict[str, str]:
    """Distribution rule ids and their labels, as the replay met them: each conversation's transfer, by id
    in its replies, by label in its ``transfer_rule`` (results without that column: none)."""
    if "transfer_rule" not in conversations:
        return {}
    labels = conversations.dropna(subset=["transfer_rule"]).set_index("conversation")["transfer_rule"]
    transfers = exchanges[
        exchanges["conversation"].isin(labels.index) & exchanges["replies"].str.contains('"transfer"', na=False)
    ]
    found = {}
    for row in transfers.itertuples():  # the transfers only: a few per cent of the rows
        for reply in json.loads(row.replies):
            if isinstance(reply, dict) and reply.get("type") == "transfer":
                found[str(reply.get("distributionRule"))] = labels[row.conversation]
    return found

"""Finding conversations and reading them as chats: filters over the replay's tables, pages of chats,
and a conversation index for the HTML report (each row opens its chat, no server needed).

What the visitor and the bot said are read from the exchanges once per call (:func:`said`): the
visitor's messages, and the bot's as iAdvize echoed them (every message shown is echoed, those
posted through iAdvize's API included).
"""

from __future__ import annotations

from html import escape

import pandas as pd

from harness import render
from harness.analysis.chat import conversation_html, rule_labels
from harness.analysis.metrics import budget_ms, latency

PER_PAGE = 4
INDEX_LIMIT = 300  # conversations the report's index opens as chats: the page stays a few megabytes


def said(exchanges: pd.DataFrame) -> pd.DataFrame:
    """Per conversation, what the visitor said and what the bot showed, each joined by " / "."""
    spoken = exchanges[exchanges["purpose"].isin(["visitor", "echo"])].sort_values(["conversation", "seq"])
    grouped = spoken.groupby(["conversation", "purpose"], observed=True)["message"].agg(
        lambda m: " / ".join(map(str, m))
    )
    table = grouped.unstack("purpose").reindex(columns=["visitor", "echo"])
    return table.rename(columns={"visitor": "visitor said", "echo": "bot said"}).fillna("")


def find(
    exchanges: pd.DataFrame,
    conversations: pd.DataFrame,
    outcome: str | None = None,
    scenario: str | None = None,
    visitor_said: str | None = None,
    bot_said: str | None = None,
    over_budget: bool | str = False,
    differing: bool = False,
    rule: str | None = None,
) -> pd.DataFrame:
    """The conversations matching every filter given, as an index: outcome, scenario, turns, first message.

    ``visitor_said`` and ``bot_said`` are looked for in what was said, any case; ``over_budget``
    keeps conversations with a call over its budget as recorded (True or ``"recorded"``: what visitors
    lived) or as replayed (``"replayed"``), ``differing`` those whose replayed
    replies differ from the recording; ``rule`` those with a call that broke that rule of check's (the
    ``rules`` column replay writes).
    """
    table = conversations.set_index("conversation").join(said(exchanges))
    keep = pd.Series(True, index=table.index)
    if outcome:
        keep &= table["outcome"].eq(outcome)
    if scenario and "scenario" in table:
        keep &= table["scenario"].eq(scenario)
    for column, text in (("visitor said", visitor_said), ("bot said", bot_said)):
        if text:
            keep &= table[column].str.contains(text, case=False, regex=False)
    if over_budget:  # True or "recorded": what visitors lived; "replayed": the bot under test now
        source = "replayed" if over_budget == "replayed" else "recorded"
        slow = exchanges.loc[latency(exchanges, source) > _budget(exchanges), "conversation"]
        keep &= table.index.isin(set(slow))
    if differing:
        keep &= table.index.isin(set(exchanges.loc[exchanges["same"].eq(False), "conversation"]))
    if rule:
        if "rules" not in exchanges:
            raise ValueError("these tables do not say which rules each call broke: replay the recordings again")
        broke = exchanges["rules"].fillna("").str.split(", ").map(lambda ids: rule in ids)
        keep &= table.index.isin(set(exchanges.loc[broke, "conversation"]))
    columns = [c for c in ("outcome", "scenario", "turns", "first_message", "visitor said", "bot said") if c in table]
    return table.loc[keep, columns].reset_index()


def _budget(exchanges: pd.DataFrame) -> pd.Series:
    return exchanges["endpoint"].map(budget_ms).astype(float)


def chats(exchanges: pd.DataFrame, conversations: pd.DataFrame, ids, page: int = 0, per_page: int = PER_PAGE) -> str:
    """One page of the conversations ``ids`` drawn as chats side by side, with where the page is."""
    ids = list(ids)
    pages = max(1, -(-len(ids) // per_page))
    page = min(max(page, 0), pages - 1)
    shown = ids[page * per_page : (page + 1) * per_page]
    rules = rule_labels(exchanges, conversations)
    outcome = conversations.set_index("conversation")["outcome"]
    cells = "".join(
        f"<div style='flex:1 1 300px;min-width:300px'><b>{escape(str(c))}</b> ({escape(str(outcome.get(c, '')))})"
        f"{conversation_html(exchanges, c, rules)}</div>"
        for c in shown
    )
    first = page * per_page + 1
    where = f"<p>page {page + 1} of {pages}: conversations {first}-{first + len(shown) - 1} of {len(ids)}</p>"
    return (
        where + f"<div style='display:flex;flex-wrap:wrap;gap:8px'>{cells}</div>"
        if shown
        else "<p>no conversation matches</p>"
    )


def index_html(exchanges: pd.DataFrame, conversations: pd.DataFrame, limit: int = INDEX_LIMIT) -> str:
    """The conversation index of the report: a row per conversation (outcome, scenario, turns, first
    visitor message) that opens its chat drawing; the first ``limit`` conversations."""
    rules = rule_labels(exchanges, conversations)
    rows = []
    for row in conversations.head(limit).itertuples():
        summary = " | ".join(
            escape(str(v))
            for v in (
                str(row.conversation)[:8],
                row.outcome,
                getattr(row, "scenario", "") or "-",
                render.count(int(row.turns), "turn"),
                row.first_message or "",
            )
        )
        chat = conversation_html(exchanges, row.conversation, rules)
        anchor = escape(f"conversation-{row.conversation}")
        rows.append(f"<details class='conversation' id='{anchor}'><summary>{summary}</summary>{chat}</details>")
    more = f"<p>the first {limit} of {len(conversations)} conversations</p>" if len(conversations) > limit else ""
    return f"<div class='conversation-index'>{''.join(rows)}</div>{more}{OPEN_FROM_LINK}"


# A link to ``page.html#conversation-ID`` opens that conversation's row (no server: the browser does it).
OPEN_FROM_LINK = (
    "<script>const opened = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));"
    "if (opened && opened.tagName === 'DETAILS') { opened.open = true; opened.scrollIntoView(); }</script>"
)

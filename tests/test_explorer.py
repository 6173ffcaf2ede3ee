"""Finding conversations in hand-made tables and reading them as chats, a page at a time."""

from __future__ import annotations

import json

import pandas as pd

from harness.analysis import explorer

TEXT = lambda value: {"type": "message", "payload": {"contentType": "text", "value": value}}  # noqa: E731
ROWS = [  # conversation, seq, endpoint, purpose, message, replies, latency, same
    ("c-1", 0, "messages", "visitor", "Where is my parcel?", [TEXT("Your order number?")], 120.0, True),
    ("c-1", 1, "messages", "echo", "Your order number?", [], 5.0, True),
    ("c-2", 0, "messages", "visitor", "Deals?", [TEXT("Deal of the day!")], 12_500.0, True),
    ("c-2", 1, "messages", "echo", "Deal of the day!", [], 5.0, False),
    ("c-3", 0, "messages", "visitor", "A PERSON please", [TEXT("Passing you on")], 80.0, True),
    ("c-3", 1, "messages", "echo", "Passing you on", [], 5.0, True),
]
EXCHANGES = pd.DataFrame(
    [
        dict(
            zip(
                ["conversation", "seq", "endpoint", "purpose", "message", "replies", "latency_ms", "same"],
                r,
                strict=True,
            )
        )
        for r in ROWS
    ]
).assign(
    replies=lambda t: t["replies"].map(json.dumps),
    error=[None, None, None, None, "no answer within 10 s", None],
    rules=[None, None, "latency-budget", None, "http-error", "echo-loop, message-long"],  # as replay judged them
)
CONVERSATIONS = pd.DataFrame(
    {
        "conversation": ["c-1", "c-2", "c-3"],
        "scenario": ["shop", "shop", "faq"],
        "outcome": ["abandoned", "resolved", "escalated"],
        "turns": [1, 1, 1],
        "first_message": ["Where is my parcel?", "Deals?", "A PERSON please"],
    }
)


def found(**filters) -> list[str]:
    return explorer.find(EXCHANGES, CONVERSATIONS, **filters)["conversation"].tolist()


def test_each_filter_keeps_exactly_its_conversations():
    assert found(outcome="abandoned") == ["c-1"]
    assert found(scenario="shop") == ["c-1", "c-2"]
    assert found(visitor_said="person") == ["c-3"]  # any case
    assert found(bot_said="deal of the day") == ["c-2"]
    assert found(over_budget=True) == ["c-2"]  # 12.5 s: over the 10 s budget
    assert found(differing=True) == ["c-2"]
    assert found(scenario="shop", outcome="escalated") == []  # every filter at once
    assert found(rule="latency-budget") == ["c-2"] and found(rule="echo") == []  # a rule by its whole id
    assert found(rule="http-error") == ["c-3"] and found(rule="message-long") == ["c-3"]


def test_what_was_said_is_read_into_columns():
    table = explorer.said(EXCHANGES)
    assert (
        table.loc["c-1", "visitor said"] == "Where is my parcel?"
        and table.loc["c-1", "bot said"] == "Your order number?"
    )


def test_chats_come_a_page_at_a_time_and_the_index_opens_each():
    ids = ["c-1", "c-2", "c-3"]
    first, last = (explorer.chats(EXCHANGES, CONVERSATIONS, ids, page=p, per_page=2) for p in (0, 1))
    assert (
        first.startswith("<p>page 1 of 2: conversations 1-2 of 3</p>") and "Deals?" in first and "PERSON" not in first
    )
    assert last.startswith("<p>page 2 of 2: conversations 3-3 of 3</p>") and "A PERSON please" in last
    assert explorer.chats(EXCHANGES, CONVERSATIONS, []) == "<p>no conversation matches</p>"
    index = explorer.index_html(EXCHANGES, CONVERSATIONS, limit=2)
    assert index.count("<details class='conversation' id='conversation-") == 2
    assert "<summary>c-1 | abandoned | shop | 1 turn | Where is my parcel?</summary>" in index
    assert "<p>the first 2 of 3 conversations</p>" in index and "location.hash" in index

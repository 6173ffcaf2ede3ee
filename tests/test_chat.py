"""A replayed conversation drawn as a chat: what the visitor saw, posted messages and rule labels included."""

from __future__ import annotations

import json

import pandas as pd

from harness import render
from harness.analysis.chat import conversation_html

HOLDING = {"type": "message", "payload": {"contentType": "text", "value": "One moment, I'm checking."}}
TRANSFER = {
    "type": "transfer",
    "distributionRule": "r-1",
    "transferOptions": {"timeout": {"unit": "seconds", "value": 30}},
}
ROWS = [
    ("visitor", "Where is order 123456?", [HOLDING]),
    ("echo", "One moment, I'm checking.", []),
    ("echo", "Found it: it ships today.", []),  # posted through iAdvize's API: no answer carried it
    ("visitor", "A person please", [TRANSFER]),
    ("human", "Hello, Sam here.", []),
]
EXCHANGES = pd.DataFrame(
    [
        {"conversation": "c-1", "seq": seq, "purpose": purpose, "message": message, "replies": json.dumps(replies)}
        for seq, (purpose, message, replies) in enumerate(ROWS)
    ]
)


def test_a_posted_message_is_drawn_once_as_the_bot_s_and_a_transfer_names_its_rule():
    page = conversation_html(EXCHANGES, "c-1", rules={"r-1": "Customer service"})
    assert page.count("One moment, I&#x27;m checking.") == 1  # its echo is not drawn again
    assert "<div class='who'>bot, through iAdvize's API</div>Found it: it ships today." in page
    assert "[transfer to rule &#x27;Customer service&#x27; (r-1), 30 s]" in page
    assert page.index("Found it") < page.index("A person please") < page.index("a human took the conversation")


def test_what_the_visitor_s_next_message_cancelled_is_said_so_not_drawn_as_shown():
    menu = {"type": "message", "payload": {"contentType": "text", "value": "Pick one"}}
    wait = {"type": "await", "duration": {"unit": "minutes", "value": 3}}
    nudge = {"type": "message", "payload": {"contentType": "text", "value": "Still there?"}}
    rows = [("visitor", "Hi", [menu, wait, nudge]), ("echo", "Pick one", []), ("visitor", "Offers", [])]
    exchanges = pd.DataFrame(
        [
            {"conversation": "c", "seq": n, "purpose": p, "message": m, "replies": json.dumps(r)}
            for n, (p, m, r) in enumerate(rows)
        ]
    )
    page = conversation_html(exchanges, "c")
    assert "Pick one" in page and "Still there?" not in page and "waits 3 min" not in page
    assert "[1 more not shown: the visitor wrote first]" in page


ATTACK = "<img src=x onerror=alert(1)>"


def test_a_hostile_bot_s_markup_in_every_field_is_drawn_as_text():
    card = {"contentType": "card/content", "title": ATTACK, "text": ATTACK, "image": {"url": "javascript:alert(1)"},
            "actions": [{"type": "LINK", "name": ATTACK, "url": "javascript:alert(1)"}]}  # fmt: skip
    replies = [
        {"type": "message", "payload": {"contentType": "text", "value": ATTACK},
         "quickReplies": [{"contentType": "text/quick-reply", "value": ATTACK, "idQuickReply": "q"}]},
        {"type": "message", "payload": card},
        {"type": "message", "payload": {"contentType": "bundle/card", "cards": [card]}},
        {"type": "await", "duration": {"unit": ATTACK, "value": 1}},  # the unit was written as it came
        {"type": "transfer", "distributionRule": ATTACK},
        {"type": "message", "payload": {"contentType": ATTACK}},
    ]  # fmt: skip
    shown = [render.payload(r["payload"]) for r in replies if r["type"] == "message"]  # iAdvize echoes each
    rows = pd.DataFrame(
        [{"conversation": "c-1", "seq": 0, "purpose": "visitor", "message": ATTACK, "replies": json.dumps(replies)}]
        + [{"conversation": "c-1", "seq": n, "purpose": "echo", "message": text, "replies": "[]"}
           for n, text in enumerate(shown, 1)]
    )  # fmt: skip
    page = conversation_html(rows, "c-1", rules={ATTACK: ATTACK})
    assert "<img" not in page and "javascript:" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "more not shown" not in page  # every reply drawn
    assert "[waits 1 &lt;img" in page
    assert "href" not in page  # no link drawn at all, so none to a javascript: address

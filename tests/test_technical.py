"""Technical errors in texts shown to visitors: found in what only code writes, not in a bot's own words."""

from __future__ import annotations

import gzip
import json

import pytest

from harness.conformance import phrasings
from harness.conformance.technical import SCANNED_CHARS, technical_error

from .conftest import ROOT

SHOWN = {  # text -> the kind of sign, the words that show it
    '{"error":"TypeError: x is undefined","stack":"at handle (/app/src/bot.js:42:17)"}': (
        "a stack frame",
        "at handle (/app/src/bot.js:42:17)",
    ),
    "Something went wrong during the transfer : Error: getaddrinfo ENOTFOUND api.example.com": (
        "a network error code",
        "ENOTFOUND",
    ),
    'Traceback (most recent call last):\n  File "/srv/bot/app.py", line 12': (
        "a Python traceback",
        "Traceback (most recent call last)",
    ),
    'File "/srv/bot/app.py", line 12, in answer': ("a Python traceback", 'File "/srv/bot/app.py", line 12'),
    "at com.shop.Bot.answer(Bot.java:88)": ("a stack frame", "at com.shop.Bot.answer(Bot.java:88)"),
    "java.lang.NullPointerException": ("an exception", "NullPointerException"),
    "TypeError: Cannot read properties of null": ("an exception", "TypeError"),
    "Hello undefined, how can I help?": ("a value the code never filled in", "undefined"),
    "[object Object]": ("a value the code never filled in", "[object Object]"),
    " null ": ("a value the code never filled in", " null "),
    "Total: NaN €": ("a value the code never filled in", "NaN"),
    "Could not open /home/bot/orders.csv": ("a server path", "/home/bot/orders.csv"),
    "Cannot find module in node_modules/express": ("a server path", "node_modules/"),
    r"see C:\inetpub\wwwroot\bot": ("a server path", r"C:\inetpub\wwwroot\bot"),
}
ORDINARY = [  # a bot's own words, some about errors, paths and numbers
    "Sorry, an error occurred on our side: I can only read text.",
    "Error: please type the 6 digits of your order number.",
    "Oops, something went wrong. Type menu to start again.",
    "See https://shop.example.com/home/offers or https://help.example.com/app/returns",
    "Ihre Bestellung hat null Artikel.",  # German: null is zero
    "Our stores open at 10:30 (Paris) and close at 19:00.",
    "A terror of a price? Not here.",
    "Je vous mets en relation avec un conseiller.",
    "Undefined? No: your order is on its way.",
]


@pytest.mark.parametrize("text", SHOWN, ids=range(len(SHOWN)))
def test_what_only_code_writes_is_found_with_its_words(text):
    assert technical_error(text) == SHOWN[text]


@pytest.mark.parametrize("text", ORDINARY)
def test_a_bot_s_own_words_about_errors_are_not_a_technical_error(text):
    assert technical_error(text) is None


def test_no_text_of_the_committed_sample_shows_a_technical_error():
    texts = []

    def collect(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                texts.append(inner) if key == "value" and isinstance(inner, str) else collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    with gzip.open(ROOT / "notebooks" / "data" / "sample.jsonl.gz", "rt", encoding="utf-8") as recorded:
        for line in recorded:
            collect(json.loads(line))
    assert len(texts) > 30_000  # every payload value, the visitors' and the bot's
    assert [t for t in texts if technical_error(t)] == []


def test_only_the_head_of_a_huge_text_is_read():
    padding = " " * (SCANNED_CHARS - len("ENOTFOUND"))
    assert technical_error(padding + "ENOTFOUND") == ("a network error code", "ENOTFOUND")
    assert technical_error(padding + "!ENOTFOUND") is None  # one character past what is read
    assert technical_error("a" * 1_000_000) is None  # a megabyte of one word: one bounded scan


ANNOUNCEMENTS = [  # a person is coming, in the 7 languages of the probes
    "Please wait, I'm transferring you to an advisor.",
    "I'll put you through to a colleague.",
    "Je vous mets en relation avec un conseiller.",
    "Ich verbinde Sie mit einem Mitarbeiter.",
    "Te paso con un agente.",
    "Ti passo un operatore.",
    "Ik verbind je door met een medewerker.",
    "Vou transferir para um atendente.",
]
NOT_ANNOUNCEMENTS = [  # about people, transfers and waiting, but nobody announced as coming
    "Do you want to talk to a human?",
    "Bank transfer is accepted at checkout.",
    "One moment please, let me check.",
    "Nobody from our team is free right now.",
    "Souhaitez-vous parler à un conseiller ?",
]


@pytest.mark.parametrize("text", ANNOUNCEMENTS)
def test_a_transfer_announced_is_recognised_in_every_language(text):
    assert phrasings.looks_like_transfer_announcement(text)


@pytest.mark.parametrize("text", NOT_ANNOUNCEMENTS)
def test_an_offer_or_a_wait_is_no_transfer_announced(text):
    assert not phrasings.looks_like_transfer_announcement(text)

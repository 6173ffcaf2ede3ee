"""``iadvize-harness sample``: a realistic synthetic recording, deterministic for a seed.

Synthetic visitors with several intents (tracking an order, browsing offers, returning an
item, asking for a person, sending a file, leaving without a word) talk to the reference
bot through the simulated platform; every exchange is recorded. The replies are the bot's
own, so replaying the sample against the reference bot reproduces them. What a local bot
cannot give is synthesised from the seed: conversations spread over a week with a daily
rhythm, human think times, a heavy-tailed latency per call, and whether a human is free
when a transfer is asked for.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.client import BotClient
from harness.conformance.platform import Event, SimulatedConversation, SimulatedPlatform
from harness.progress import silent
from harness.traffic.recordings import posted, record, utc_iso

OPERATOR = "ha-424242"
RULES = [
    {"id": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607", "label": "Customer service"},
    {"id": "c4d5e6f7-0a1b-4c2d-9e3f-a4b5c6d7e8f9", "label": "Returns desk"},
]
FILE = {
    "contentType": "file",
    "fileName": "photo.jpg",
    "mimeType": "image/jpeg",
    "url": "https://files.example.com/visitor/photo.jpg",
}
START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday: the sample covers the week after it
HUMAN_AVAILABLE = 0.6  # share of transfers a human takes

# intent -> (weight, the visitor's messages; None is a file, "..." a long silence)
INTENTS = {
    "track-order": (
        30,
        [
            ["Hi", "Track my order", "123456", "invoice", "No thanks"],
            ["where is my parcel?", "I don't know", "654321"],
            ["Hi", "Track my order", "987654", "thanks"],
            ["Hi", "Track my order", "987654", "I'd like to talk to a person", "lea.martin@example.com"],
        ],
    ),
    "offers": (22, [["Hi", "Today's offers", "Deal of the day"], ["any deals today?", "No thanks"]]),
    "returns": (15, [["I want to return an item", "Show return options"], ["Hi", "Return an item", "No thanks"]]),
    # the bot asks for the order number and an email before it transfers: some give both, some neither
    "escalation": (
        15,
        [
            ["Hi", "I want to talk to a person", "It's 246810", "sam.durand@example.com"],
            ["refund", "this is useless, agent please", "none", "no"],
            ["Hi", "Talk to a person", "none", "jo@example.org"],
            ["Hi", "Talk to a person", "..."],
        ],
    ),
    "file": (6, [[None, "Track my order", "123456"], [None, "human", "none", "kim@example.net"]]),
    "abandoned": (12, [["Hi", "..."], ["Today's offers", "..."]]),
}


class Synthesis:
    """The sample's randomness, drawn from one seed: ids, start times, think times and latencies."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def new_id(self) -> str:
        """A version 4 UUID drawn from the seed."""
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def start_time(self) -> float:
        """When a conversation starts (epoch seconds): a day of the week, at an hour weighted like a shop's day."""
        day = self.random.randrange(7)
        hour = self.random.choices(
            range(24), weights=[1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 12, 11, 10, 10, 10, 11, 12, 12, 10, 7, 4, 2]
        )[0]
        moment = START + timedelta(days=day, hours=hour, seconds=self.random.uniform(0, 3600))
        return moment.timestamp()

    def think_seconds(self) -> float:
        """How long a visitor takes to write: log-normal around 9 s, at most 4 minutes."""
        return min(self.random.lognormvariate(math.log(9), 0.7), 240)

    def latency_ms(self, endpoint: str) -> float:
        """Mostly fast, with a heavy tail: one call in fifty is slow, a few beyond the budgets."""
        typical = 45 if endpoint == "first-messages" else 140
        value = self.random.lognormvariate(math.log(typical), 0.55)
        if self.random.random() < 0.02:
            value *= self.random.paretovariate(1.3) * 8
        return round(min(value, 14_000), 1)


def generate(client: BotClient, conversations: int, seed: int, out: Path, progress=silent, api=None) -> Path:
    """Record ``conversations`` synthetic conversations with the bot behind ``client`` into ``out``.

    With ``api`` (the local iAdvize API the bot is pointed at), what the bot posts through it is
    shown and echoed as iAdvize does, and the echoes are recorded like any call.
    """
    synthesis = Synthesis(seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sample.jsonl.gz"
    names, weights = zip(*((name, weight) for name, (weight, _) in INTENTS.items()), strict=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:

        def write(line: dict) -> None:
            zipped.write((json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode())

        set_up = START.timestamp() - 3_600  # the admin set the bot up before the week began
        for seq, exchange in enumerate(
            [
                client.exchange("external-bots", "GET", "/external-bots", "external-bots.response"),
                client.exchange(
                    "bot.save",
                    "PUT",
                    f"/bots/{OPERATOR}",
                    "bot.response",
                    body={
                        "name": "Shop assistant",
                        "pseudo": "Ada",
                        "language": "en",
                        "distributionRules": RULES,
                        "external": {"idBot": "order-assistant"},
                    },
                ),
            ]
        ):
            write(_synthetic(record(exchange, None, OPERATOR, seq), set_up + seq, synthesis))
        starts = sorted(synthesis.start_time() for _ in range(conversations))
        for done, start in enumerate(starts):
            progress(f"sample: {done} of {conversations} conversations recorded", step="sample")
            intent = synthesis.random.choices(names, weights=weights)[0]
            script = synthesis.random.choice(INTENTS[intent][1])
            for line in _conversation(client, synthesis, start, script, api):
                write(line)
    return path


def _conversation(client: BotClient, synthesis: Synthesis, start: float, script: list, api=None) -> list[dict]:
    lines: list[dict] = []
    available = synthesis.random.random() < HUMAN_AVAILABLE

    def keep(conversation: SimulatedConversation, event: Event) -> None:
        if event.kind == "call":
            line = record(event.exchange, conversation.id, OPERATOR, len(lines))
            lines.append(_synthetic(line, start + event.at, synthesis))
        elif event.purpose == "proactive" and event.reply is not None and event.kind in ("shown", "transfer", "closed"):
            # what the bot posted through iAdvize's API, as iAdvize saw it: no random draw, so the rest of the
            # sample is the same with these lines as without
            lines.append(posted(event.reply, conversation.id, OPERATOR, len(lines), utc_iso(start + event.at)))

    platform = SimulatedPlatform(
        client, OPERATOR, RULES, rule_available=available, on_event=keep, new_id=synthesis.new_id, epoch=start, api=api
    )
    chat = platform.open_chat()
    platform.start(chat)
    for said in script:
        if said == "...":
            platform.wait(chat, 15 * 60)  # the visitor left: nudges, then iAdvize closes the chat
            break
        if chat.closed:
            break
        if said is None:
            platform.visitor_says(chat, payload=FILE, after=synthesis.think_seconds())
        else:
            platform.visitor_says(chat, said, after=synthesis.think_seconds())
    platform.wait(chat, 120)  # let the last replies (and a transfer's outcome) play out
    return lines


def _synthetic(line: dict, sent_at: float, synthesis: Synthesis) -> dict:
    """The line as if recorded live: a synthetic clock and latency, the bot's own dates aligned to it."""
    when = utc_iso(sent_at)
    line["sent_at"], line["latency_ms"] = when, synthesis.latency_ms(line["endpoint"])
    if isinstance(line["response"], dict):
        for key in ("createdAt", "updatedAt"):
            if key in line["response"]:
                line["response"][key] = when
    return line

"""Harness overhead: replaying conversations through the harness vs the same HTTP calls in a bare loop."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import requests

from harness.recording import Corrupt, read
from harness.replay import replay

from .common import Ratio, alternate
from .virtual_time import SAMPLE


def recorded_calls(limit: int) -> list[dict]:
    """The calls the harness makes when replaying ``limit`` conversations (it echoes, the bare loop too)."""
    calls, seen = [], set()
    for line in read([SAMPLE]):
        if isinstance(line, Corrupt) or line["conversation"] is None:
            continue
        seen.add(line["conversation"])
        if len(seen) > limit:
            break
        calls.append(line)
    return calls


def run(bot_url: str, conversations: int = 100, rounds: int = 5) -> Ratio:
    calls = recorded_calls(conversations)
    session = requests.Session()

    def bare() -> None:
        for call in calls:  # the same calls, one session, no simulation, no validation, no recording
            data = json.dumps(call["request"]).encode() if call["request"] is not None else None
            answer = session.request(call["method"], bot_url + call["path"], data=data, timeout=10,
                                     headers={"Content-Type": "application/json"} if data else {})
            answer.json()

    def harness() -> None:
        with tempfile.TemporaryDirectory() as out:
            replay([SAMPLE], bot_url, Path(out), concurrency=1, limit=conversations)

    bare_seconds, harness_seconds = alternate(bare, harness, rounds)
    return Ratio("harness overhead", bare_seconds / harness_seconds, ">= 0.9",
                 f"{conversations} conversations ({len(calls)} calls): harness {harness_seconds:.2f} s, "
                 f"bare loop {bare_seconds:.2f} s; ratio = harness throughput / bare throughput")

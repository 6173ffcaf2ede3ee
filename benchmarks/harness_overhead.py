"""Harness overhead: replaying conversations through the harness vs the same HTTP calls in a bare loop."""

from __future__ import annotations

import tempfile
from pathlib import Path

import requests

from harness.client import BotClient, environment_session
from harness.traffic.replay import replay

from .common import Ratio, alternate
from .virtual_time import SAMPLE


def calls_made_by_replay(bot_url: str, conversations: int) -> list[tuple[str, str, bytes, dict]]:
    """Every HTTP call one replay makes (method, path and query, body, headers), captured as sent."""
    captured = []
    original = BotClient.transmit

    def capture(self, endpoint, method, path, query, data, headers, *args, **kwargs):
        captured.append((method, path + (f"?{query}" if query else ""), data, dict(headers)))
        return original(self, endpoint, method, path, query, data, headers, *args, **kwargs)

    BotClient.transmit = capture
    try:
        with tempfile.TemporaryDirectory() as out:
            replay([SAMPLE], bot_url, Path(out), concurrency=1, limit=conversations)
    finally:
        BotClient.transmit = original
    return captured


def run(bot_url: str, conversations: int = 100, rounds: int = 5) -> list[Ratio]:
    calls = calls_made_by_replay(bot_url, conversations)  # also warms the bot up: both sides hit the same state
    plain = requests.Session()  # the loop the target is set against: one requests.Session, as it comes
    tuned = environment_session(bot_url)  # the same loop without requests' per-call environment lookups

    def bare(session: requests.Session) -> None:
        for method, target, data, headers in calls:  # the same calls, one session, nothing else
            session.request(method, bot_url + target, data=data or None, headers=headers, timeout=10).json()

    def harness() -> None:
        with tempfile.TemporaryDirectory() as out:
            replay([SAMPLE], bot_url, Path(out), concurrency=1, limit=conversations)

    bare_seconds, harness_seconds = alternate(lambda: bare(plain), harness, rounds)
    tuned_seconds, harness_again = alternate(lambda: bare(tuned), harness, rounds)
    detail = f"{conversations} conversations ({len(calls)} calls): harness {harness_seconds:.2f} s"
    return [
        Ratio(
            "harness overhead",
            bare_seconds / harness_seconds,
            ">= 0.9",
            f"{detail}, bare loop of the same calls on a plain requests.Session {bare_seconds:.2f} s; "
            "ratio = harness throughput / bare throughput",
        ),
        Ratio(
            "harness overhead, tuned floor",
            tuned_seconds / harness_again,
            "n/a",
            f"the bare loop on a session that reads proxies once, as the harness does: {tuned_seconds:.2f} s "
            f"vs harness {harness_again:.2f} s: the harness's own work (validation, platform, parquet)",
        ),
    ]

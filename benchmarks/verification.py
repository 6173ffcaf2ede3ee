"""Verification: `verify` on the embedded bot, time per interaction vs one direct HTTP call each."""

from __future__ import annotations

import requests

from harness.verify import verify

from .common import Ratio, alternate


def run(bot_url: str, rounds: int = 3) -> Ratio:
    interactions = [len(verify(bot_url).outcomes)]  # warm-up, and how many interactions a run has
    session = requests.Session()

    def direct() -> None:  # the floor: one plain call per interaction
        for _ in range(interactions[0]):
            session.get(f"{bot_url}/external-bots", timeout=10).json()

    def verification() -> None:
        verify(bot_url)

    floor, ours = alternate(direct, verification, rounds)
    per_interaction, per_call = ours / interactions[0] * 1000, floor / interactions[0] * 1000
    return Ratio(
        "verification",
        per_interaction / per_call,
        "n/a",
        f"{per_interaction:.1f} ms per interaction (state set-up through the bot's API, the signing "
        f"gateway, Pact's matching) vs {per_call:.2f} ms per direct call; {interactions[0]} interactions",
    )

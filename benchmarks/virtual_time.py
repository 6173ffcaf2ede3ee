"""Virtual time: simulated seconds per wall second when replaying the committed sample."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from harness.traffic.replay import replay

from .common import Ratio

SAMPLE = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "sample.jsonl.gz"


def run(bot_url: str, limit: int | None = None) -> Ratio:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = replay([SAMPLE], bot_url, Path(out), concurrency=2, limit=limit)
        wall = time.perf_counter() - started
        simulated = pd.read_parquet(Path(out) / "conversations.parquet")["duration_s"].sum()
    return Ratio(
        "virtual time",
        simulated / wall,
        ">= 1000",
        f"{summary.conversations} conversations: {simulated:,.0f} simulated s in {wall:.1f} wall s",
    )

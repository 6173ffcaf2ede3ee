"""Metrics at scale: the notebook metrics over 1,000,000 exchange rows vs a bare read and groupby."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import metrics

from .common import Ratio, alternate

ENDPOINTS = ["messages"] * 6 + ["first-messages", "conversations", "availability-strategies", "bot.save"]


def write_rows(path: Path, rows: int, seed: int = 1) -> None:
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "conversation": generator.integers(0, rows // 10, rows).astype(str),
            "endpoint": pd.Categorical(generator.choice(ENDPOINTS, rows)),  # as replay stores it: a dictionary
            "sent_at": pd.Timestamp("2026-11-16", tz="UTC")
            + pd.to_timedelta(generator.integers(0, 7 * 86400, rows), unit="s"),
            "latency_ms": generator.lognormal(np.log(120), 0.6, rows),
            "recorded_latency_ms": generator.lognormal(np.log(140), 0.7, rows),
            "same": generator.random(rows) > 0.01,
        }
    )
    frame.to_parquet(path)


def exchange_metrics(frame: pd.DataFrame) -> None:
    """What the notebooks compute on the exchanges table."""
    metrics.latency_percentiles(frame)
    metrics.over_budget(frame)
    metrics.latency_over_time(frame)


def run(rows: int = 1_000_000, rounds: int = 5, name: str = "metrics at scale") -> Ratio:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exchanges.parquet"
        write_rows(path, rows)

        def bare() -> None:  # the floor: read, then one groupby
            frame = pd.read_parquet(path)
            frame.groupby("endpoint")["latency_ms"].quantile(0.95)

        def harness_metrics() -> None:  # what the notebook computes on exchanges
            exchange_metrics(pd.read_parquet(path))

        bare(), harness_metrics()  # warm: the first read of a file and first calls pay one-off costs
        floor, ours = alternate(bare, harness_metrics, rounds)  # ~0.1 s a side: many rounds steady the median
    return Ratio(
        name,
        ours / floor,
        "<= 1.5",
        f"{rows:,} rows: metrics {ours:.2f} s vs bare read+groupby {floor:.2f} s (median of {rounds})",
    )

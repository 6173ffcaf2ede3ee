"""The report's conversation tables at scale: KPIs (all, per scenario, per operator, per day), the
funnel, drop-off and paths over the conversations of 1 and 10 million exchanges, against a bare
pandas pass over the same table (one groupby per table the report draws), and peak memory at the
largest size, measured in a process of its own.

A conversation is about ten exchanges, so 10 million exchanges are a million conversations.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import journeys, kpis, metrics

from .common import Ratio, alternate

EXCHANGES_PER_CONVERSATION = 10
OUTCOMES = ["resolved", "closed by bot", "escalated", "transfer failed", "abandoned"]
MESSAGES = [f"bot message {n}" for n in range(40)]
PATHS = ["", "Track my order", "Today's offers > Deal of the day", "Return an item > No thanks", "Talk to a person"]


def write_conversations(path: Path, conversations: int, seed: int = 1) -> None:
    """A conversations table as replay writes it, with the columns the report's tables read."""
    generator = np.random.default_rng(seed)
    outcome = generator.choice(OUTCOMES, conversations, p=[0.35, 0.2, 0.2, 0.1, 0.15])
    transfer = np.where(outcome == "escalated", "succeeded", np.where(outcome == "transfer failed", "failed", None))
    transferred = np.isin(outcome, ["escalated", "transfer failed"])
    frame = pd.DataFrame(
        {
            "conversation": np.arange(conversations).astype(str),
            "operator": pd.Categorical(generator.choice([f"ha-{n}" for n in range(50)], conversations)),
            "scenario": pd.Categorical(generator.choice(["order-assistant", "faq", "returns"], conversations)),
            "started_at": pd.Timestamp("2026-11-16", tz="UTC")
            + pd.to_timedelta(generator.integers(0, 7 * 86400, conversations), unit="s"),
            "outcome": pd.Categorical(outcome),
            "asked_for_human": generator.random(conversations) < 0.3,
            "transfer": transfer,
            "prequalified": pd.array(np.where(transferred, generator.random(conversations) < 0.6, None), "boolean"),
            "time_to_first_reply_s": generator.lognormal(0, 0.5, conversations),
            "last_reply_s": generator.lognormal(4, 0.8, conversations),
            "last_bot_message": pd.Categorical(generator.choice(MESSAGES, conversations)),
            "last_menu": pd.Categorical(generator.choice(MESSAGES[:10], conversations)),
            "path": pd.Categorical(generator.choice(PATHS, conversations)),
        }
    )
    frame.to_parquet(path)


def _tables(frame: pd.DataFrame) -> None:
    """What the report computes on conversations."""
    kpis.kpis(frame)
    kpis.kpis(frame, by="scenario")
    kpis.kpis(frame, by="operator")
    kpis.kpis_over_time(frame, "1D")
    metrics.escalation_funnel(frame)
    journeys.drop_off(frame)
    journeys.drop_off(frame, by="last_menu")
    journeys.paths(frame)


def _bare(frame: pd.DataFrame) -> None:
    """The floor: the same tables written directly in pandas, one expression per figure, without our
    definitions' care (no missing columns, no formatting, no ranking)."""
    contained = frame["outcome"].isin(["resolved", "closed by bot"])
    transferred = frame["transfer"].notna()
    for key in (None, frame["scenario"], frame["operator"], frame["started_at"].dt.floor("1D")):
        keys = np.zeros(len(frame)) if key is None else key
        grouped = pd.DataFrame(
            {
                "contained": contained,
                "transferred": transferred,
                "succeeded": frame["transfer"].eq("succeeded"),
                "abandoned": frame["outcome"].eq("abandoned"),
                "prequalified": frame["prequalified"].fillna(False),
            }
        ).groupby(keys, observed=True)
        grouped.mean()
        frame["time_to_first_reply_s"].groupby(keys, observed=True).median()
        frame["last_reply_s"].where(contained).groupby(keys, observed=True).median()
    frame["transfer"].value_counts()
    for columns in (["scenario", "last_bot_message"], ["scenario", "last_menu"], ["path"]):
        frame.groupby([*columns, "outcome"], observed=True).size().unstack(fill_value=0)


def run(exchanges: int = 1_000_000, rounds: int = 5) -> Ratio:
    """The report's tables against the bare pass, at ``exchanges`` exchanges (their conversations)."""
    conversations = exchanges // EXCHANGES_PER_CONVERSATION
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conversations.parquet"
        write_conversations(path, conversations)

        def bare() -> None:
            _bare(pd.read_parquet(path))

        def ours() -> None:
            _tables(pd.read_parquet(path))

        bare(), ours()  # warm
        floor, spent = alternate(bare, ours, rounds)
    return Ratio(
        f"report tables at {exchanges / 1e6:g} M exchanges",
        spent / floor,
        "<= 1.5",
        f"{conversations:,} conversations: KPIs (all, per scenario, operator, day), funnel, drop-off, paths "
        f"{spent:.2f} s vs the same tables in bare pandas {floor:.2f} s (median of {rounds})",
    )


def peak_memory(exchanges: int = 10_000_000) -> Ratio:
    """Peak memory of the report's tables at ``exchanges`` exchanges, in a fresh process (its own peak)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.tables_scale", str(exchanges)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_gib"]
    return Ratio(
        f"report tables peak memory at {exchanges / 1e6:g} M exchanges",
        peak,
        "<= 8",
        f"peak RSS {peak:.2f} GiB for {exchanges:,} exchanges and {exchanges // EXCHANGES_PER_CONVERSATION:,} "
        "conversations, written, read and tabled as the report does (GiB, not a ratio)",
    )


if __name__ == "__main__":  # the process peak_memory measures: both tables, as the report loads them
    from .metrics_scale import exchange_metrics, write_rows

    size = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as folder:
        table, rows = Path(folder) / "conversations.parquet", Path(folder) / "exchanges.parquet"
        write_conversations(table, size // EXCHANGES_PER_CONVERSATION)
        write_rows(rows, size)
        exchanges, conversations = pd.read_parquet(rows), pd.read_parquet(table)
        exchange_metrics(exchanges)
        _tables(conversations)
    print(json.dumps({"peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))

"""``make bench``: every benchmark, a table on the terminal, and benchmarks/RESULTS.md."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.bots import EmbeddedBot

from . import (
    bot_overhead,
    concurrent,
    harness_overhead,
    metrics_scale,
    replay_memory,
    tables_scale,
    verification,
    virtual_time,
)
from .common import machine, results_table

RESULTS = Path(__file__).parent / "RESULTS.md"
NOTES = Path(__file__).parent / "NOTES.md"  # the profiles behind missed targets, written by hand
COMMAND = "make bench   (.venv/bin/python -m benchmarks.run)"


def main(smoke: bool = False) -> int:
    concurrent.require_wrk()  # before anything runs: one line saying `make wrk`, not a traceback minutes later
    with EmbeddedBot(workers=2, env={"REFERENCE_BOT_PUBLIC_URL": "https://bot.example.com"}) as bot:
        ratios = [
            *harness_overhead.run(bot.url, conversations=5 if smoke else 100, rounds=1 if smoke else 5),
            virtual_time.run(bot.url, limit=20 if smoke else None),
            *bot_overhead.run(bot.url, requests_=20 if smoke else 300, rounds=1 if smoke else 5),
            replay_memory.run(bot.url, conversations=5 if smoke else 200),
            verification.run(bot.url, rounds=1 if smoke else 3),
        ]
    # 16 connections with wrk, on a bot and a floor of their own (the default workers and threads)
    ratios += concurrent.run(
        seconds=1 if smoke else 3, rounds=1 if smoke else 7, messages=20_000 if smoke else 300_000, warm_up=not smoke
    )
    ratios.append(metrics_scale.run(rows=20_000 if smoke else 1_000_000, rounds=1 if smoke else 11))
    # at scale: the exchanges' metrics at 10 M rows, the conversations' tables at 1 and 10 M exchanges, peak memory
    large = 40_000 if smoke else 10_000_000
    ratios.append(
        metrics_scale.run(rows=large, rounds=1 if smoke else 3, name=f"metrics at {large / 1e6:g} M exchanges")
    )
    ratios.append(tables_scale.run(exchanges=20_000 if smoke else 1_000_000, rounds=1 if smoke else 7))
    ratios.append(tables_scale.run(exchanges=large, rounds=1 if smoke else 3))
    ratios.append(tables_scale.peak_memory(large))
    table = results_table(ratios)
    print(table)
    if not smoke:
        RESULTS.write_text(
            f"# Benchmark results\n\nMachine: {machine()}\n\nCommand: `{COMMAND}`\n\n"
            "Each figure is a ratio of two things measured side by side in one run, "
            "alternating, median of the rounds.\n\n" + table + "\n\n" + NOTES.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(smoke="--smoke" in sys.argv))
    except concurrent.WrkMissing as error:
        sys.exit(f"error: {error}")

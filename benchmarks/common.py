"""What every benchmark shares: alternating rounds, medians, the machine, the results table."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Ratio:
    name: str
    value: float
    target: str  # e.g. ">= 0.9"
    detail: str  # what was measured, in one line

    @property
    def met(self) -> bool | None:
        if self.target == "n/a":  # reported, with no target to meet
            return None
        operator, bound = self.target.split()
        return self.value >= float(bound) if operator == ">=" else self.value <= float(bound)


def alternate(a: Callable[[], float | None], b: Callable[[], float | None], rounds: int) -> tuple[float, float]:
    """Run ``a`` and ``b`` in turn, ``rounds`` times each; the median of what each returns (or of its
    wall time when it returns None). Alternating spreads the machine's noise over both sides."""
    first, second = [], []
    for _ in range(rounds):
        for side, results in ((a, first), (b, second)):
            started = time.perf_counter()
            value = side()
            results.append(time.perf_counter() - started if value is None else value)
    return statistics.median(first), statistics.median(second)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}, Python {platform.python_version()}"


def results_table(ratios: list[Ratio]) -> str:
    lines = ["| benchmark | ratio | target | met | measured |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.name} | {r.value:,.2f} | {r.target} | {'-' if r.met is None else 'yes' if r.met else 'NO'} "
        f"| {r.detail} |"
        for r in ratios
    ]
    return "\n".join(lines)

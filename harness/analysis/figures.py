"""Every figure the report shows, as one JSON document: ``report --json FILE``.

The same functions the notebooks call (:mod:`.kpis`, :mod:`.metrics`, :mod:`.journeys`), over the same two
tables ``replay`` writes, so a figure read here is the figure on the page: for a CI to track, or a test to
recompute. Shares are fractions (0..1), times in seconds, latencies in ms; a figure that cannot be computed
(no transfer, say) is null.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.analysis import journeys, kpis, metrics


def figures(exchanges: pd.DataFrame, conversations: pd.DataFrame) -> dict:
    """The report's figures: KPIs overall and per scenario, operator, day and topic; outcomes with counts and
    shares; latency per endpoint (percentiles, calls over budget as recorded and as replayed); the escalation
    funnel; what was not understood; who asked for a human; every slow call."""
    outcomes = conversations["outcome"].value_counts()
    with_topic = conversations.assign(topic=journeys.topics(conversations))
    return {
        "kpis": {
            "all": _rows(kpis.kpis(conversations))["all"],
            "per scenario": _rows(kpis.kpis(conversations, by="scenario")),
            "per operator": _rows(kpis.kpis(conversations, by="operator")),
            "per day": _rows(kpis.kpis_over_time(conversations, "1D")),
            "per topic": _rows(kpis.kpis(with_topic, by="topic")),
        },
        "outcomes": {name: {"conversations": int(n), "share": n / len(conversations)} for name, n in outcomes.items()},
        "latency per endpoint": _rows(metrics.latency_percentiles(exchanges)),
        "calls over budget": {
            "recorded": _plain(metrics.over_budget(exchanges, "recorded")),
            "replayed": _plain(metrics.over_budget(exchanges, "replayed")),
        },
        "escalation funnel": _plain(metrics.escalation_funnel(conversations)),
        "not understood": _rows(journeys.not_understood(exchanges, conversations)),
        "asked for a human": _rows(journeys.asked_for_human(exchanges, conversations)),
        "slow calls": json.loads(metrics.slow_calls(exchanges).to_json(orient="records")),
    }


def write(exchanges: pd.DataFrame, conversations: pd.DataFrame, path: str | Path) -> None:
    """The figures of the two tables, as indented JSON at ``path``."""
    text = json.dumps(figures(exchanges, conversations), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_bytes(text.encode("utf-8", "backslashreplace"))


def _rows(table: pd.DataFrame) -> dict:
    """A table as {row: {column: value}}: dates in ISO 8601, NaN as null."""
    return json.loads(table.to_json(orient="index", date_format="iso"))


def _plain(series: pd.Series) -> dict:
    return json.loads(series.to_json(date_format="iso"))

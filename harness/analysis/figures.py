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

from harness.analysis import comparison, journeys, kpis, metrics


def figures(
    exchanges: pd.DataFrame, conversations: pd.DataFrame, baseline: comparison.Run | None = None, names: str = ""
) -> dict:
    """The report's figures: KPIs overall and per scenario, operator, day and topic; outcomes with counts and
    shares; latency per endpoint (percentiles, calls over budget as recorded and as replayed); the escalation
    funnel; what was not understood (by text and by state); who asked for a human; where conversations end;
    the paths through quick replies; every slow call; the visitor data handed to humans. With ``baseline``
    (the run compared with, named second in ``names``), the comparison: this run minus the baseline."""
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
        "latency per endpoint": _rows(metrics.latency_percentiles(exchanges)),  # recorded (what visitors lived)
        "latency recorded and replayed": _rows(metrics.recorded_vs_replayed(exchanges)),
        "calls over budget": {
            "recorded": _plain(metrics.over_budget(exchanges, "recorded")),
            "replayed": _plain(metrics.over_budget(exchanges, "replayed")),
        },
        "escalation funnel": _plain(metrics.escalation_funnel(conversations)),
        "time to escalation": _plain(metrics.time_to_escalation(conversations)),
        "transfers per rule": _plain(conversations["transfer_rule"].value_counts())
        if "transfer_rule" in conversations
        else {},
        "first messages leading to a human": _rows(
            metrics.first_messages_leading_to_escalation(conversations, top=len(conversations))
        ),
        "escalation by step": _rows(metrics.escalation_by_step(conversations, top=len(conversations))),
        "not understood": _rows(journeys.not_understood(exchanges, conversations)),
        "not understood by state": _rows(journeys.not_understood(exchanges, conversations, by="state")),
        "asked for a human": _rows(journeys.asked_for_human(exchanges, conversations)),
        "asked for a human, never handed over": _plain(journeys.never_handed_over(conversations)),
        "where conversations end": _nested(journeys.drop_off(conversations, top=len(conversations))),
        "where conversations end, by last menu": _nested(
            journeys.drop_off(conversations, by="last_menu", top=len(conversations))
        ),
        "paths": _rows(journeys.paths(conversations, top=len(conversations))),
        "slow calls": _records(metrics.slow_calls(exchanges)),
        "visitor data handed to a human": _plain(metrics.handed_over(conversations)),
        **({"comparison": _compared(baseline, (exchanges, conversations), names)} if baseline else {}),
    }


def _compared(baseline: comparison.Run, run: comparison.Run, names: str) -> dict:
    """The comparison the report shows: the baseline first, changes as this run minus it."""
    this, other = comparison.run_names(names)
    pair = (other, this)
    return {
        "baseline": other,
        "run": this,
        "figures": _rows(comparison.compare(baseline, run, pair)),
        "outcome changes": _records(comparison.outcome_changes(baseline, run, pair)),
        "reply differences": _records(comparison.reply_differences(baseline, run, pair)),
        "visitor data handed to a human": {
            other: _plain(metrics.handed_over(baseline[1])),
            this: _plain(metrics.handed_over(run[1])),
        },
    }


def write(
    exchanges: pd.DataFrame,
    conversations: pd.DataFrame,
    path: str | Path,
    baseline: comparison.Run | None = None,
    names: str = "",
) -> None:
    """The figures of the two tables (and of the comparison with ``baseline``), as indented JSON at ``path``."""
    text = json.dumps(figures(exchanges, conversations, baseline, names), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_bytes(text.encode("utf-8", "backslashreplace"))


def _rows(table: pd.DataFrame) -> dict:
    """A table as {row: {column: value}}: dates in ISO 8601, NaN as null."""
    return json.loads(table.to_json(orient="index", date_format="iso"))


def _nested(table: pd.DataFrame) -> dict:
    """A table of two index levels as {first: {second: {column: value}}}."""
    nested: dict = {}
    for (first, second), row in zip(table.index, _records(table.reset_index(drop=True)), strict=True):
        nested.setdefault(str(first), {})[str(second)] = row
    return nested


def _records(table: pd.DataFrame) -> list:
    return json.loads(table.to_json(orient="records", date_format="iso"))


def _plain(series: pd.Series) -> dict:
    return json.loads(series.to_json(date_format="iso"))

"""The KPIs on a small hand-made table, each worked out by hand, and their formatting for people."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.analysis import kpis

# Ten conversations of two scenarios: four contained, two abandoned, four transfers (three taken, two prequalified).
CONVERSATIONS = pd.DataFrame(
    {
        "scenario": ["shop"] * 6 + ["faq"] * 4,
        "operator": ["ha-1", "ha-1", "ha-2", "ha-2", "ha-1", "ha-2", "ha-3", "ha-3", "ha-3", "ha-3"],
        "started_at": pd.to_datetime(["2026-11-16 10:00"] * 5 + ["2026-11-17 09:00"] * 5, utc=True),
        "outcome": [
            "resolved", "closed by bot", "escalated", "transfer failed", "abandoned",
            "escalated", "resolved", "closed by bot", "abandoned", "escalated",
        ],
        "transfer": [None, None, "succeeded", "failed", None, "succeeded", None, None, None, "succeeded"],
        "prequalified": [None, None, True, False, None, True, None, None, None, False],
        "time_to_first_reply_s": [1.0, 2.0, 3.0, 4.0, None, 5.0, 6.0, 7.0, 8.0, 9.0],
        "last_reply_s": [30.0, 50.0, 70.0, 80.0, 5.0, 60.0, 10.0, 40.0, 3.0, 90.0],
    }
)  # fmt: skip


def test_every_kpi_of_all_the_conversations_worked_out_by_hand():
    row = kpis.kpis(CONVERSATIONS).loc["all"]
    assert row["conversations"] == 10
    assert row["containment"] == pytest.approx(4 / 10)  # resolved, closed by bot (x2 each)
    assert row["escalation"] == pytest.approx(4 / 10)  # four transfers asked
    assert row["transfer success"] == pytest.approx(3 / 4)  # one failed
    assert row["abandonment"] == pytest.approx(2 / 10)
    assert row["prequalified before transfer"] == pytest.approx(2 / 4)
    assert row["time to first reply"] == pytest.approx(5.0)  # median of 1..9
    assert row["time to resolution"] == pytest.approx(35.0)  # median of 30, 50, 10, 40


def test_kpis_per_scenario_and_per_period():
    shop, faq = (kpis.kpis(CONVERSATIONS, by="scenario").loc[name] for name in ("shop", "faq"))
    assert (shop["conversations"], shop["containment"], shop["escalation"]) == (
        6,
        pytest.approx(2 / 6),
        pytest.approx(3 / 6),
    )
    assert shop["transfer success"] == pytest.approx(2 / 3) and faq["transfer success"] == 1.0
    assert faq["prequalified before transfer"] == 0.0 and faq["time to resolution"] == pytest.approx(25.0)
    days = kpis.kpis_over_time(CONVERSATIONS, "1D")
    assert list(days["conversations"]) == [5, 5]
    assert days["abandonment"].tolist() == [pytest.approx(1 / 5), pytest.approx(1 / 5)]


def test_a_figure_without_data_is_not_a_number_and_shown_as_a_dash():
    none_transferred = CONVERSATIONS[CONVERSATIONS["transfer"].isna()]
    row = kpis.kpis(none_transferred).loc["all"]
    assert math.isnan(row["transfer success"]) and math.isnan(row["prequalified before transfer"])
    assert kpis.formatted(kpis.kpis(none_transferred)).loc["all", "transfer success"] == "-"
    older = CONVERSATIONS.drop(columns=["prequalified", "last_reply_s"])  # results replayed before the columns
    assert math.isnan(kpis.kpis(older).loc["all", "time to resolution"])


def test_figures_are_written_for_people():
    shown = kpis.formatted(kpis.kpis(CONVERSATIONS)).loc["all"]
    assert shown["conversations"] == "10"
    assert shown["containment"] == "40.0 %" and shown["transfer success"] == "75.0 %"
    assert shown["time to first reply"] == "5.0 s"
    assert kpis.format_value(1027.0, "count") == "1 027" and kpis.format_value(145.4, "ms") == "145 ms"


def test_the_glossary_defines_every_kpi_and_outcome():
    glossary = kpis.glossary()
    assert set(kpis.KPIS) | set(kpis.OUTCOMES) <= set(glossary.index)
    assert (
        glossary.loc["containment", "kind"] == "KPI" and "without a human" in glossary.loc["containment", "definition"]
    )


def test_the_readme_defines_every_kpi_as_the_code_does():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name, kpi in kpis.KPIS.items():
        assert f"| {name} | {kpi.definition} |" in readme


def test_every_outcome_has_its_own_colour_and_hatch_in_the_charts():
    from harness.analysis import style

    assert set(style.STYLES) == set(kpis.OUTCOMES)
    colours, hatches = zip(*style.STYLES.values(), strict=True)
    assert len(set(colours)) == len(set(hatches)) == len(kpis.OUTCOMES)

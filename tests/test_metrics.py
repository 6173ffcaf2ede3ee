"""harness.analysis.metrics, checked against values worked out by hand on a tiny fixture."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harness.analysis import comparison, kpis, metrics


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def exchanges():
    # first-messages: 100, 300, 2500 ms   messages: 200, 400, 600, 12000 ms (one recorded latency missing)
    return pd.DataFrame(
        {
            "endpoint": ["first-messages"] * 3 + ["messages"] * 4,
            "sent_at": [
                at("2026-11-16 10:00"),
                at("2026-11-16 11:00"),
                at("2026-11-17 10:00"),
                at("2026-11-16 10:00"),
                at("2026-11-16 10:30"),
                at("2026-11-17 09:00"),
                at("2026-11-17 10:00"),
            ],
            "latency_ms": [1.0, 1.0, 1.0, 1.0, 400.0, 1.0, 1.0],
            "recorded_latency_ms": [100.0, 300.0, 2500.0, 200.0, None, 600.0, 12000.0],
            "same": [True, True, True, True, False, True, None],
        }
    )


@pytest.fixture
def conversations():
    return pd.DataFrame(
        {
            "started_at": [
                at("2026-11-16 10:00"),
                at("2026-11-16 12:00"),
                at("2026-11-17 10:00"),
                at("2026-11-17 11:00"),
            ],
            "first_message": ["Hi", "agent please", "Hi", "agent please"],
            "outcome": ["resolved", "escalated", "transfer failed", "escalated"],
            "asked_for_human": [False, True, True, True],
            "transfer": [None, "succeeded", "failed", "succeeded"],
            "time_to_escalation_s": [None, 12.0, 30.0, 6.0],
            "escalation_turn": [None, 1, 2, 1],
            "escalation_step": [None, "(greeting)", "What can I do for you?", "(greeting)"],
        }
    )


def test_latency_percentiles_per_endpoint(exchanges):
    table = metrics.latency_percentiles(exchanges)
    first = table.loc["first-messages"]
    assert first["calls"] == 3 and first["p50"] == 300 and first["max"] == 2500
    assert first["p90"] == pytest.approx(300 + 0.8 * 2200)  # linear between the 2nd and 3rd of three
    assert first["over its budget"] == pytest.approx(1 / 3)  # 2500 ms, over the greeting's 2 s
    messages = table.loc["messages"]  # 200, 400 (replayed, none recorded), 600, 12000
    assert messages["p50"] == 500 and messages["over its budget"] == 0.25  # 12 s of four, over 10 s (not 600 ms)


def test_over_budget_uses_each_endpoint_s_budget(exchanges):
    assert metrics.over_budget(exchanges).to_dict() == {"first-messages": 1, "messages": 1}


def test_latency_over_time(exchanges):
    table = metrics.latency_over_time(exchanges, "1D")
    assert table["calls"].tolist() == [4, 3]
    assert table["p50"].tolist() == [250.0, 2500.0]  # day 1: 100, 300, 200, 400; day 2: 2500, 600, 12000


def test_escalations(conversations):
    assert metrics.escalation_funnel(conversations).tolist() == [4, 3, 3, 2, 1]
    rates = metrics.escalation_rate_over_time(conversations, "1D")
    assert rates["transfer rate"].tolist() == [0.5, 1.0] and rates["escalation rate"].tolist() == [0.5, 0.5]
    assert metrics.time_to_escalation(conversations)["mean"] == 16.0
    top = metrics.first_messages_leading_to_escalation(conversations)
    assert top.index.tolist() == ["agent please", "Hi"] and top["transfers"].tolist() == [2, 1]
    assert top.loc["Hi", "rate"] == 0.5
    assert metrics.outcomes(conversations).to_dict() == {"escalated": 0.5, "resolved": 0.25, "transfer failed": 0.25}


def test_two_runs_compared(exchanges, conversations):
    later = exchanges.assign(recorded_latency_ms=exchanges["recorded_latency_ms"] * 2)
    table = comparison.compare((exchanges, conversations), (later, conversations), source="recorded")
    # before: 100 200 300 [400] 600 2500 12000; after, recorded doubled (the replayed 400 stays):
    # 200 400 400 [600] 1200 5000 24000
    p50 = "recorded latency p50"  # which latency, in the row's name; ms, its unit, in the formatted value
    assert table.loc[p50, "before"] == 400 and table.loc[p50, "after"] == 600
    assert table.loc[p50, "change"] == 200
    assert table.loc["replies differing from the recording", "before"] == 1
    assert table.loc["escalation", "change"] == 0
    shown = kpis.formatted_change(table)
    assert shown.loc[p50].tolist() == ["400 ms", "600 ms", "+200 ms"]
    assert shown.loc["escalation"].tolist() == ["75.0 %", "75.0 %", "0 pts"]


def text_replies(*texts: str) -> str:
    return json.dumps([{"type": "message", "payload": {"contentType": "text", "value": v}} for v in texts])


def test_the_conversations_whose_outcome_changed_come_with_their_first_difference_as_text(exchanges, conversations):
    ids = ["c-1", "c-2", "c-3", "c-4"]
    before = conversations.assign(conversation=ids)
    after = before.assign(outcome=["resolved", "transfer failed", "transfer failed", "escalated"])
    rows = pd.DataFrame(
        {
            "conversation": ["c-2", "c-2", "c-1"],
            "seq": [0, 1, 0],
            "purpose": "visitor",
            "message": ["agent please", "ok", "Hi"],
        }
    )
    a = rows.assign(replies=[text_replies("a"), text_replies("x", "more"), text_replies("h")])
    b = rows.assign(replies=[text_replies("a"), text_replies("y", "more"), text_replies("h")])
    changed = comparison.outcome_changes((a, before), (b, after), names=("v1", "v2"))
    assert changed["conversation"].tolist() == ["c-2"]  # the only one whose outcome differs
    row = changed.iloc[0]
    assert (row["outcome (v1)"], row["outcome (v2)"]) == ("escalated", "transfer failed")
    assert (row["seq"], row["visitor said"], row["v1 said"], row["v2 said"]) == (1, "ok", "x / more", "y / more")


def test_transfer_success_and_where_escalations_happen(conversations):
    assert metrics.transfer_success_rate(conversations) == pytest.approx(2 / 3)
    steps = metrics.escalation_by_step(conversations)
    assert steps.index.tolist() == ["(greeting)", "What can I do for you?"]
    assert steps["transfers"].tolist() == [2, 1] and steps["mean turn"].tolist() == [1.0, 2.0]


def test_recorded_and_replayed_latency_side_by_side(exchanges):
    table = metrics.recorded_vs_replayed(exchanges)
    assert table.loc["first-messages", "recorded p50"] == 300 and table.loc["first-messages", "replayed p50"] == 1
    assert table.loc["messages", "recorded p50"] == 600  # 200, 600, 12000: the missing one is not counted


def test_two_bots_compare_on_what_the_replayed_bot_took(exchanges, conversations):
    slower = exchanges.assign(latency_ms=exchanges["latency_ms"] * 10)
    table = comparison.compare((exchanges, conversations), (slower, conversations))
    p50 = "replayed latency p50"
    assert table.loc[p50, "before"] == 1 and table.loc[p50, "after"] == 10


def test_the_fast_percentiles_agree_with_a_pandas_groupby_on_random_data():
    """The metrics select per group instead of sorting everything: same numbers as pandas' groupby."""
    generator = np.random.default_rng(3)
    rows = 5_000
    frame = pd.DataFrame(
        {
            "endpoint": generator.choice(["messages", "first-messages", "conversations"], rows),
            "sent_at": at("2026-11-16") + pd.to_timedelta(generator.integers(0, 3 * 86400, rows), unit="s"),
            "latency_ms": generator.lognormal(5, 1, rows),
            "recorded_latency_ms": np.where(generator.random(rows) < 0.1, np.nan, generator.lognormal(5, 1, rows)),
        }
    )
    frame.loc[frame.sample(50, random_state=1).index, "latency_ms"] = np.nan  # a replay without an answer
    frame.loc[frame.sample(20, random_state=2).index, "sent_at"] = pd.NaT
    ms = frame["recorded_latency_ms"].fillna(frame["latency_ms"])
    by_endpoint = ms.groupby(frame["endpoint"])
    table = metrics.latency_percentiles(frame)
    for name, q in metrics.PERCENTILES.items():
        pd.testing.assert_series_equal(table[name], by_endpoint.quantile(q), check_names=False)
    pd.testing.assert_series_equal(table["max"], by_endpoint.max(), check_names=False)
    assert table["calls"].to_dict() == frame["endpoint"].value_counts().to_dict()
    over_time = metrics.latency_over_time(frame, "6h")
    by_period = ms.groupby(frame["sent_at"].dt.floor("6h"))
    pd.testing.assert_series_equal(
        over_time["p95"], by_period.quantile(0.95), check_names=False, check_index_type=False
    )  # nanoseconds or microseconds: same instants
    assert over_time["calls"].tolist() == by_period.size().tolist() and len(over_time) == 12


def test_rows_without_an_endpoint_are_left_out_as_pandas_does(exchanges):
    unnamed = pd.concat([exchanges, exchanges.iloc[:1].assign(endpoint=None, recorded_latency_ms=99_999.0)])
    assert metrics.latency_percentiles(unnamed).equals(metrics.latency_percentiles(exchanges))
    assert metrics.over_budget(unnamed).to_dict() == {"first-messages": 1, "messages": 1}


def test_the_prequalified_share_counts_transferred_conversations_only():
    frame = pd.DataFrame({"prequalified": [True, False, True, None, None]})  # None: no transfer
    assert metrics.prequalified_share(frame) == pytest.approx(2 / 3)
    assert np.isnan(metrics.prequalified_share(pd.DataFrame({"prequalified": [None, None]})))
    assert np.isnan(metrics.prequalified_share(pd.DataFrame({"outcome": ["resolved"]})))  # replayed before the column


def test_replies_that_differ_are_grouped_by_state_with_counts_and_shown_side_by_side_escaped():
    def run(answers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = []
        for n, conversation in enumerate(["c-1", "c-2", "c-3"]):
            rows += [
                {"conversation": conversation, "seq": 0, "purpose": "greeting", "message": None,
                 "replies": text_replies("Hello!")},
                {"conversation": conversation, "seq": 1, "purpose": "echo", "message": "Hello!", "replies": None},
                {"conversation": conversation, "seq": 2, "purpose": "visitor", "message": f"agent {n}",
                 "replies": text_replies(answers[n])},
            ]  # fmt: skip
        return pd.DataFrame(rows), pd.DataFrame({"conversation": ["c-1", "c-2", "c-3"]})

    ask = "What is your order number?"
    a = run([ask, ask, "<b>same</b>"])
    b = run(["I'm passing you on.", "I'm passing you on.", "<b>same</b>"])
    table = comparison.reply_differences(a, b, names=("v1", "v2"))
    assert table.to_dict("records") == [
        {"state": "Hello!", "visitor said": "agent 0", "times": 2, "v1 said": ask, "v2 said": "I'm passing you on."}
    ]
    assert comparison.reply_differences(a, a).empty
    html = comparison.diff_html(table, names=("v1", "v2"))
    assert "<del>What is your order number?</del>" in html and "<ins>I&#x27;m passing you on.</ins>" in html
    hostile = run(["<script>alert(1)</script> x", ask, ask])
    html = comparison.diff_html(comparison.reply_differences(a, hostile), names=("<i>", "b"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<th>&lt;i&gt;</th>" in html
    assert comparison.diff_html(comparison.reply_differences(a, a)).startswith("<p>none")


def test_answers_too_long_to_diff_are_marked_on_their_first_words_only():
    from harness.analysis.comparison import DIFFED_WORDS, _marked

    # repeated words make a word diff quadratic: 1,000 of them against 1,000 others
    old, new = _marked("a " * 1000, "a b " * 500)
    for marked in (old, new):
        compared, rest = marked.split("<i>[not compared:]</i>")
        words = compared.replace("<del>", "").replace("</del>", "").replace("<ins>", "").replace("</ins>", "").split()
        assert len(words) == DIFFED_WORDS and rest.strip()  # the rest is shown, unmarked
    assert _marked("same words", "same words") == ("same words", "same words")

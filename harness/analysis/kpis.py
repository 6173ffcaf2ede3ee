"""The figures a bot team acts on, each with its definition: one source for the report, its glossary
and the README.

Computed over the ``conversations`` table ``replay`` writes (one row per conversation), for all
of them, per scenario or operator (``by``), or per period (:func:`kpis_over_time`). Shares are
fractions (0..1) here; :func:`formatted` writes them as percentages for people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Kpi:
    """One figure: its unit (``count``, ``share``, ``seconds``) and what it means, in a sentence."""

    unit: str
    definition: str


KPIS = {
    "conversations": Kpi("count", "conversations replayed"),
    "containment": Kpi(
        "share",
        "conversations the bot ended without a human: no transfer asked, and not abandoned "
        "(outcome resolved or closed by bot)",
    ),
    "escalation": Kpi("share", "conversations in which the bot asked iAdvize to transfer the visitor to a human"),
    "transfer success": Kpi("share", "of the transfers the bot asked, the share a human took before the timeout"),
    "abandonment": Kpi(
        "share",
        "conversations the visitor left while the bot waited for an answer (its last message asked a question "
        "or offered quick replies, and iAdvize closed the chat 5 minutes later), or without a word",
    ),
    "not understood rate": Kpi(
        "share", "conversations that ended on the bot's fallback (its answer to words it does not understand)"
    ),
    "prequalified before transfer": Kpi(
        "share", "of the transfers, the share that came with visitor data the bot held (its answer's variables)"
    ),
    "time to first reply": Kpi(
        "seconds",
        "median time from the visitor's first message to the first message the bot showed after it: the "
        "awaits before it plus the bot's recorded latency on that call (what visitors lived)",
    ),
    "replayed time to first reply": Kpi(
        "seconds", "the same with the latency of the replay (the bot under test, on this machine, over loopback)"
    ),
    "time to resolution": Kpi(
        "seconds", "median seconds from the chat opening to the bot's last message, in contained conversations"
    ),
}

# How a conversation ended (the ``outcome`` column), as harness.analysis.outcomes decides it.
OUTCOMES = {
    "resolved": "the visitor wrote and the bot answered, neither with its fallback nor with a question left "
    "unanswered; no transfer, no close",
    "closed by bot": "the bot closed the conversation (a goodbye), without a transfer",
    "escalated": "the bot transferred the conversation and a human took it",
    "transfer failed": "the bot asked for a transfer and nobody took it within its timeout",
    "abandoned": "the visitor left while the bot waited for an answer (a question, quick replies), or never wrote",
    "not understood": "the conversation ended on the bot's fallback: what it answers words it does not understand",
    "unresolved": "with outcome rules naming what resolves a conversation: none of those texts was said",
}

# Words of the report that are not KPIs.
TERMS = {
    "recorded latency": "how long the bot took when the conversation was recorded: what visitors lived",
    "replayed latency": "how long the bot under test took during this replay (on this machine, over loopback)",
    "budget": "how long iAdvize waits for an answer: 2 s for the greeting (first messages), 10 s for every other call",
    "asked for a human": "a visitor message has one of the words that ask for a person (outcome rules)",
    "transfer rule": "the operator's distribution rule the bot transferred to, by its label",
    "transfer timeout": "how long iAdvize looks for a human after a transfer ([transfer to rule ..., 30 s])",
    "p50, p90, p95, p99": "the latency half of the calls, and 90, 95 and 99 % of them, stayed under",
    "pts": "percentage points: the change of a share (47.5 % to 50.0 % is +2.5 pts)",
    "state": "where a conversation is: the bot's message the visitor saw last",
    "topic": "a conversation's first quick-reply choice; (no quick reply chosen) when the visitor only typed",
    "fallback": "what the bot answers words it does not understand (asked of it after the replay)",
    "handed over": "asked for a human, and a human took the transfer",
    "re-asked": "asked for a human, got no transfer, and the bot then showed a message twice or asked two "
    "questions: the visitor kept answering instead of reaching a person",
    "left": "asked for a human, got no transfer, and left while the bot waited for an answer",
    "never offered": "asked for a human, and the bot went on without a transfer",
    "not shown": "replies the bot sent that the visitor's next message cancelled: iAdvize never showed them",
    "first message": "the visitor's first message of the conversation",
    "turns": "the visitor's messages in the conversation",
    "rate": "a share of the conversations of its row",
    "escalation step": "the bot's last message before the visitor asked for the transfer; mean turn: at which of "
    "the visitor's messages, on average",
    "last bot message": "the bot's last message the visitor saw before the conversation ended (drop-off)",
    "path": "the quick replies the visitor chose, in order; a typed message is not a choice",
}


def kpis(conversations: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Every KPI, one row for all the conversations (``by=None``) or one per ``scenario``/``operator``."""
    if by is None:
        everyone = pd.Categorical.from_codes(np.zeros(len(conversations), dtype=np.int8), ["all"])
        return _table(conversations, pd.Series(everyone, index=conversations.index, name="conversations"))
    return _table(conversations, conversations[by])


def kpis_over_time(conversations: pd.DataFrame, freq: str = "1D") -> pd.DataFrame:
    """Every KPI per period of ``freq`` (by the conversations' start), periods without one left out."""
    return _table(conversations, conversations["started_at"].dt.floor(freq).rename("period"))


def _table(conversations: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Every KPI per value of ``key``, in one vectorised pass (a groupby per figure, no Python per group)."""
    outcome, transfer = conversations["outcome"], conversations["transfer"]
    contained, transferred = outcome.isin(["resolved", "closed by bot"]), transfer.notna()
    # results replayed before these columns existed have neither: no figure rather than a wrong one
    prequalified = _column(conversations, "prequalified")
    known = transferred & prequalified.notna()
    flags = pd.DataFrame(
        {
            "contained": contained,
            "transferred": transferred,
            "succeeded": transfer.eq("succeeded"),
            "abandoned": outcome.eq("abandoned"),
            "not understood": outcome.eq("not understood"),
            "known": known,
            "prequalified": known & prequalified.fillna(False).astype(bool),
        }
    ).groupby(key, sort=True, observed=True)
    counts = flags.sum()
    size = flags.size()
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "conversations": size,
                "containment": counts["contained"] / size,
                "escalation": counts["transferred"] / size,
                "transfer success": counts["succeeded"] / counts["transferred"].replace(0, np.nan),
                "abandonment": counts["abandoned"] / size,
                "not understood rate": counts["not understood"] / size,
                "prequalified before transfer": counts["prequalified"] / counts["known"].replace(0, np.nan),
                "time to first reply": _column(conversations, "time_to_first_reply_s")
                .groupby(key, observed=True)
                .median(),
                "replayed time to first reply": _column(conversations, "replayed_time_to_first_reply_s")
                .groupby(key, observed=True)
                .median(),
                "time to resolution": _column(conversations, "last_reply_s")
                .where(contained)
                .groupby(key, observed=True)
                .median(),
            }
        )
    return table.reindex(size.index).astype({"conversations": int})


def _column(conversations: pd.DataFrame, name: str) -> pd.Series:
    if name in conversations:
        return conversations[name]
    return pd.Series(np.nan, index=conversations.index, dtype=object)


def unit_of(name: str) -> str:
    """The unit of a figure by its name: a KPI's own, ``ms`` for a latency, else ``count``."""
    if name in KPIS:
        return KPIS[name].unit
    return "ms" if "latency p" in name else "count"


def formatted(table: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """The figures for people: counts as integers, shares as percentages with one decimal, seconds with
    one decimal and their unit; a figure that cannot be computed (no transfer, say) as a dash.

    A table's columns are the figures (as :func:`kpis` gives them); a series' index is (as
    :func:`~harness.analysis.metrics.summary` gives it).
    """
    if isinstance(table, pd.Series):
        return pd.Series(
            [format_value(v, unit_of(str(k))) for k, v in table.items()], index=table.index, name=table.name
        )
    shown = table.copy().astype(object)
    for name in table.columns:
        unit = unit_of(str(name))
        shown[name] = table[name].map(lambda value, unit=unit: format_value(value, unit))
    return shown


def formatted_change(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison (:func:`~harness.analysis.comparison.compare`) for people: each run's figures formatted,
    the change signed, in points for shares."""
    shown = table.copy().astype(object)
    for name, row in table.iterrows():
        unit = unit_of(str(name))
        for column in table.columns[:-1]:
            shown.loc[name, column] = format_value(row[column], unit)
        change = row[table.columns[-1]]
        shown.loc[name, table.columns[-1]] = _signed(change, unit)
    return shown


def _signed(change, unit: str) -> str:
    if change is None or (isinstance(change, float) and np.isnan(change)):
        return "-"
    if change == 0 or (unit == "ms" and abs(change) < 0.5):
        return "0 pts" if unit == "share" else "0"
    if unit == "share":
        return f"{change * 100:+.1f} pts"
    text = format_value(abs(change), unit)
    return ("+" if change >= 0 else "-") + text


def format_value(value, unit: str) -> str:
    """One figure in its unit: ``1027``, ``58.9 %``, ``12.3 s``, ``145 ms``; a dash when there is none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if unit == "share":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{int(value):,}".replace(",", " ")


def glossary() -> pd.DataFrame:
    """Every KPI, outcome and term of the report with its definition, as a two-column table."""
    rows = [
        *((name, "KPI", kpi.definition) for name, kpi in KPIS.items()),
        *((name, "outcome", text) for name, text in OUTCOMES.items()),
        *((name, "term", text) for name, text in TERMS.items()),
    ]
    return pd.DataFrame(rows, columns=["term", "kind", "definition"]).set_index("term")

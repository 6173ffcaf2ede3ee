"""Metrics over replay results, vectorised with pandas (no per-row Python).

Inputs are the two tables ``replay`` writes: ``exchanges`` (one row per exchange) and
``conversations`` (one row per conversation). Latency is the recorded one where there is
one (what visitors lived), else the replayed one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BUDGETS_MS = {"first-messages": 2_000, "all": 10_000}  # iAdvize shows nothing after these
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
FUNNEL = ("conversations", "asked for a human", "transfer attempted", "transfer succeeded", "transfer failed")


def load(results: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (exchanges, conversations) tables of a replay's output folder."""
    folder = Path(results)
    return pd.read_parquet(folder / "exchanges.parquet"), pd.read_parquet(folder / "conversations.parquet")


def latency(exchanges: pd.DataFrame, source: str = "recorded") -> pd.Series:
    """Milliseconds per exchange. ``recorded``: what visitors lived (the replayed value where the
    recording has none); ``replayed``: what the bot under test took."""
    if source == "recorded" and "recorded_latency_ms" in exchanges:
        return exchanges["recorded_latency_ms"].fillna(exchanges["latency_ms"])
    return exchanges["latency_ms"]


def _by_endpoint(exchanges: pd.DataFrame) -> pd.Categorical:
    # Grouping on a categorical groups integer codes, not a million strings.
    return exchanges["endpoint"].astype("category")


def latency_percentiles(exchanges: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint: calls, p50/p90/p95/p99/max in ms, and the share of calls over the 2 s and 10 s budgets."""
    ms = latency(exchanges)
    frame = pd.DataFrame({"ms": ms, "over 2 s": ms.gt(BUDGETS_MS["first-messages"]),
                          "over 10 s": ms.gt(BUDGETS_MS["all"]), "endpoint": _by_endpoint(exchanges)})
    grouped = frame.groupby("endpoint", observed=True)
    table = grouped["ms"].quantile(list(PERCENTILES.values())).unstack()
    table.columns = list(PERCENTILES)
    shares = grouped.agg(calls=("ms", "size"), max=("ms", "max"), over2=("over 2 s", "mean"),
                         over10=("over 10 s", "mean"))
    table.insert(0, "calls", shares["calls"])
    table["max"] = shares["max"]
    table["over 2 s"], table["over 10 s"] = shares["over2"], shares["over10"]
    table.index = table.index.astype(str)
    return table.sort_index()


def over_budget(exchanges: pd.DataFrame, source: str = "recorded") -> pd.Series:
    """Calls over their own budget, per endpoint: 2 s for first messages, 10 s for the rest."""
    endpoint = _by_endpoint(exchanges)
    budgets = np.array([BUDGETS_MS.get(name, BUDGETS_MS["all"]) for name in endpoint.cat.categories])
    over = latency(exchanges, source).to_numpy() > budgets[endpoint.cat.codes.to_numpy()]
    counts = np.bincount(endpoint.cat.codes.to_numpy(), weights=over, minlength=len(budgets)).astype(int)
    present = np.bincount(endpoint.cat.codes.to_numpy(), minlength=len(budgets)) > 0
    return pd.Series(counts[present], index=endpoint.cat.categories[present].astype(str), name="over budget")


def latency_over_time(exchanges: pd.DataFrame, freq: str = "6h") -> pd.DataFrame:
    """p50 and p95 latency (ms) per period."""
    period = exchanges["sent_at"].dt.floor(freq)
    grouped = latency(exchanges).groupby(period)
    table = grouped.quantile([0.5, 0.95]).unstack()
    table.columns = ["p50", "p95"]
    table["calls"] = grouped.size()
    table.index.name = "sent_at"
    return table


def recorded_vs_replayed(exchanges: pd.DataFrame) -> pd.DataFrame:
    """p50 and p95 latency per endpoint, as recorded and as replayed, side by side (ms)."""
    grouped = exchanges.groupby("endpoint")
    return pd.DataFrame({
        "recorded p50": grouped["recorded_latency_ms"].median(),
        "replayed p50": grouped["latency_ms"].median(),
        "recorded p95": grouped["recorded_latency_ms"].quantile(0.95),
        "replayed p95": grouped["latency_ms"].quantile(0.95),
    })


def outcomes(conversations: pd.DataFrame) -> pd.Series:
    """Share of conversations per outcome."""
    return conversations["outcome"].value_counts(normalize=True).sort_index()


def escalation_rate_over_time(conversations: pd.DataFrame, freq: str = "1D") -> pd.DataFrame:
    """Per period: conversations, share with a transfer attempted, share escalated to a human."""
    frame = conversations.set_index("started_at")
    attempted = frame["transfer"].notna().resample(freq)
    escalated = frame["transfer"].eq("succeeded").resample(freq)
    return pd.DataFrame({"conversations": attempted.size(), "transfer rate": attempted.mean(),
                         "escalation rate": escalated.mean()})


def transfer_success_rate(conversations: pd.DataFrame) -> float:
    """Of the transfers asked for, the share a human took."""
    transfer = conversations["transfer"].dropna()
    return float(transfer.eq("succeeded").mean()) if len(transfer) else float("nan")


def escalation_by_step(conversations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Where in the scenario escalations happen: the bot's last message before the visitor asked, and at which turn."""
    escalated = conversations.dropna(subset=["escalation_step"])
    grouped = escalated.groupby("escalation_step")
    table = pd.DataFrame({"transfers": grouped.size(), "mean turn": grouped["escalation_turn"].mean()})
    return table.sort_values("transfers", ascending=False).head(top)


def escalation_funnel(conversations: pd.DataFrame) -> pd.Series:
    """Conversations → asked for a human → transfer attempted → succeeded / failed."""
    transfer = conversations["transfer"]
    return pd.Series([len(conversations), int(conversations["asked_for_human"].sum()), int(transfer.notna().sum()),
                      int(transfer.eq("succeeded").sum()), int(transfer.eq("failed").sum())], index=list(FUNNEL))


def time_to_escalation(conversations: pd.DataFrame) -> pd.Series:
    """Seconds from the chat opening to the transfer, for conversations with one."""
    return conversations["time_to_escalation_s"].dropna().describe()


def first_messages_leading_to_escalation(conversations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The visitors' first messages most often followed by a transfer, with how often they lead to one."""
    grouped = conversations.assign(escalated=conversations["transfer"].notna()).groupby("first_message")["escalated"]
    table = pd.DataFrame({"conversations": grouped.size(), "transfers": grouped.sum().astype(int),
                          "rate": grouped.mean()})
    return table[table["transfers"] > 0].sort_values(["transfers", "rate"], ascending=False).head(top)


def summary(exchanges: pd.DataFrame, conversations: pd.DataFrame, source: str = "replayed") -> pd.Series:
    """The few numbers that tell two runs apart (latency of the bot under test, by default)."""
    ms = latency(exchanges, source)
    return pd.Series({
        "conversations": len(conversations),
        "exchanges": len(exchanges),
        "latency p50 (ms)": ms.quantile(0.5),
        "latency p95 (ms)": ms.quantile(0.95),
        "calls over budget": int(over_budget(exchanges, source).sum()),
        "transfer rate": conversations["transfer"].notna().mean(),
        "transfer success rate": transfer_success_rate(conversations),
        "escalation rate": conversations["transfer"].eq("succeeded").mean(),
        "replies differing from the recording": int(exchanges["same"].eq(False).sum()),
    }, dtype=object)  # counts stay whole numbers


def compare(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame],
            names: tuple[str, str] = ("before", "after"), source: str = "replayed") -> pd.DataFrame:
    """Two runs side by side, with the change (``source="recorded"`` to compare recordings)."""
    table = pd.DataFrame({names[0]: summary(*a, source=source), names[1]: summary(*b, source=source)})
    table["change"] = table[names[1]] - table[names[0]]
    return table.map(lambda v: round(v, 3) if isinstance(v, float) else v)

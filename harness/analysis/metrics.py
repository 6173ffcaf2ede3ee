"""Metrics over replay results, vectorised with pandas (no per-row Python).

Inputs are the two tables ``replay`` writes: ``exchanges`` (one row per exchange) and
``conversations`` (one row per conversation). Latency is the recorded one where there is
one (what visitors lived), else the replayed one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.wire.limits import BUDGET_SECONDS, FIRST_MESSAGES_BUDGET_SECONDS

BUDGETS_MS = {"first-messages": FIRST_MESSAGES_BUDGET_SECONDS * 1000, "all": BUDGET_SECONDS * 1000}  # then nothing
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
# Each step a subset of the one before, but the last two: of the transfers asked, taken or not.
FUNNEL = (
    "conversations",
    "visitor asked for a human",
    "bot asked for a transfer",
    "a human took it",
    "nobody took it in time",
)


def budget_ms(endpoint) -> float:
    """How long iAdvize waits for one endpoint, in ms: 2 s for the greeting, 10 s for every other call."""
    return BUDGETS_MS.get(str(endpoint), BUDGETS_MS["all"])


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


def _by_endpoint(exchanges: pd.DataFrame) -> tuple[pd.DataFrame, pd.Categorical]:
    """The rows that name an endpoint, and their endpoints as a categorical (integer codes to group on,
    not a million strings; replay stores the column so, which makes this free)."""
    endpoint = exchanges["endpoint"].astype("category")
    named = endpoint.notna()
    return (exchanges, endpoint) if named.all() else (exchanges[named], endpoint[named])


def _group_quantiles(values: np.ndarray, codes: np.ndarray, groups: int, quantiles: list[float]) -> np.ndarray:
    """Quantiles of ``values`` per group (rows: group codes 0..groups-1; NaN values skipped, as pandas does).

    One stable sort on the small integer codes (numpy radix-sorts them: linear time), then a
    selection per group (a partition, no sort): a groupby-quantile sorts every value instead,
    which is most of its cost at a million rows. Interpolation is linear, as pandas' default.
    """
    known = ~np.isnan(values)
    if not known.all():
        values, codes = values[known], codes[known]
    ordered = values[np.argsort(codes, kind="stable")]
    table = np.full((groups, len(quantiles)), np.nan)
    end = 0
    for group, size in enumerate(np.bincount(codes, minlength=groups)):
        start, end = end, end + size
        if size:
            part = ordered[start:end]  # a view: partitioned in place, each group's slice is its own
            position = (size - 1) * np.asarray(quantiles)
            low, high = np.floor(position).astype(int), np.ceil(position).astype(int)
            part.partition(np.unique(np.concatenate([low, high])))
            table[group] = part[low] + (part[high] - part[low]) * (position - low)
    return table


def latency_percentiles(exchanges: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint: calls, p50/p90/p95/p99/max in ms, and the share of calls over the endpoint's own budget."""
    exchanges, endpoint = _by_endpoint(exchanges)
    ms = latency(exchanges).to_numpy(dtype=float)
    codes, groups = endpoint.cat.codes.to_numpy(), len(endpoint.cat.categories)
    calls = np.bincount(codes, minlength=groups)
    table = pd.DataFrame(
        _group_quantiles(ms, codes, groups, list(PERCENTILES.values())),
        columns=list(PERCENTILES),
        index=endpoint.cat.categories.astype(str),
    )
    table.insert(0, "calls", calls)
    maxima = np.full(groups, -np.inf)
    np.fmax.at(maxima, codes, ms)  # fmax: NaN latencies ignored
    table["max"] = np.where(np.isneginf(maxima), np.nan, maxima)
    with np.errstate(invalid="ignore", divide="ignore"):
        # each endpoint against its own budget: 2 s for the greeting, 10 s for the rest
        budgets = np.array([budget_ms(name) for name in endpoint.cat.categories])
        table["over its budget"] = np.bincount(codes[ms > budgets[codes]], minlength=groups) / calls
    return table[calls > 0].sort_index()


def over_budget(exchanges: pd.DataFrame, source: str = "recorded") -> pd.Series:
    """Calls over their own budget, per endpoint: 2 s for first messages, 10 s for the rest."""
    exchanges, endpoint = _by_endpoint(exchanges)
    budgets = np.array([budget_ms(name) for name in endpoint.cat.categories])
    codes = endpoint.cat.codes.to_numpy()
    counts = np.bincount(codes[latency(exchanges, source).to_numpy() > budgets[codes]], minlength=len(budgets))
    present = np.bincount(codes, minlength=len(budgets)) > 0
    return pd.Series(counts[present], index=endpoint.cat.categories[present].astype(str), name="over budget")


# who sent what a call carried, by the exchange's purpose
SENT_BY = {"visitor": "visitor", "echo": "bot (its echo)", "human": "human", "greeting": "-", "create": "-"}


def slow_calls(exchanges: pd.DataFrame) -> pd.DataFrame:
    """Every call over its budget as recorded (what visitors lived), slowest first: its conversation, endpoint,
    state (the bot's message the visitor saw last), the message sent and by whom, the recorded and replayed
    latency (ms) and the budget."""
    from harness.analysis.journeys import states

    recorded = latency(exchanges, "recorded")
    budget = exchanges["endpoint"].map(budget_ms).astype(float)
    slow = exchanges[recorded > budget]
    table = pd.DataFrame(
        {
            "conversation": slow["conversation"],
            "seq": slow["seq"],
            "endpoint": slow["endpoint"].astype(str),
            "state": states(exchanges)[slow.index],
            "sent by": slow["purpose"].astype(object).map(lambda p: SENT_BY.get(p, p)),
            "message": slow["message"].fillna(""),
            "recorded ms": recorded[slow.index],
            "replayed ms": slow["latency_ms"],
            "budget ms": budget[slow.index],
        }
    )
    return table.sort_values(["recorded ms", "conversation", "seq"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def latency_over_time(exchanges: pd.DataFrame, freq: str = "6h") -> pd.DataFrame:
    """p50 and p95 latency (ms) per period (a fixed length such as ``6h`` or ``1D``, counted from the epoch)."""
    sent_at = exchanges["sent_at"]
    unit = getattr(sent_at.dtype, "unit", "ns")  # read in its own unit: a conversion costs more than the rest
    ticks = sent_at.to_numpy(dtype=f"datetime64[{unit}]").view("i8")
    step = pd.Timedelta(freq) // pd.Timedelta(1, unit=unit)
    dated = ticks != np.iinfo(np.int64).min  # NaT: no period
    floors = ticks[dated] // step
    first = int(floors.min()) if len(floors) else 0
    codes = floors - first
    groups = int(codes.max()) + 1 if len(codes) else 0
    codes = codes.astype(np.int16 if groups < 2**15 else np.int64)  # 16 bits: radix-sorted
    calls = np.bincount(codes, minlength=groups)
    table = pd.DataFrame(
        _group_quantiles(latency(exchanges).to_numpy(dtype=float)[dated], codes, groups, [0.5, 0.95]),
        columns=["p50", "p95"],
        index=pd.DatetimeIndex(((first + np.arange(groups)) * step).astype(f"datetime64[{unit}]"), name="sent_at"),
    )
    if sent_at.dt.tz is not None:  # the ticks are UTC
        table.index = table.index.tz_localize("UTC").tz_convert(sent_at.dt.tz)
    table["calls"] = calls
    return table[calls > 0]


def recorded_vs_replayed(exchanges: pd.DataFrame) -> pd.DataFrame:
    """p50 and p95 latency per endpoint, as recorded and as replayed, side by side (ms)."""
    grouped = exchanges.groupby("endpoint", observed=True)
    return pd.DataFrame(
        {
            "recorded p50": grouped["recorded_latency_ms"].median(),
            "replayed p50": grouped["latency_ms"].median(),
            "recorded p95": grouped["recorded_latency_ms"].quantile(0.95),
            "replayed p95": grouped["latency_ms"].quantile(0.95),
        }
    )


def outcomes(conversations: pd.DataFrame) -> pd.Series:
    """Share of conversations per outcome."""
    return conversations["outcome"].value_counts(normalize=True).sort_index()


def escalation_rate_over_time(conversations: pd.DataFrame, freq: str = "1D") -> pd.DataFrame:
    """Per period: conversations, share with a transfer attempted, share escalated to a human."""
    frame = conversations.set_index("started_at")
    attempted = frame["transfer"].notna().resample(freq)
    escalated = frame["transfer"].eq("succeeded").resample(freq)
    return pd.DataFrame(
        {"conversations": attempted.size(), "transfer rate": attempted.mean(), "escalation rate": escalated.mean()}
    )


def transfer_success_rate(conversations: pd.DataFrame) -> float:
    """Of the transfers asked for, the share a human took."""
    transfer = conversations["transfer"].dropna()
    return float(transfer.eq("succeeded").mean()) if len(transfer) else float("nan")


def prequalified_share(conversations: pd.DataFrame) -> float:
    """Of the conversations the bot transferred, the share that came with visitor data (``variables``)."""
    if "prequalified" not in conversations:  # results replayed before the column existed
        return float("nan")
    prequalified = conversations["prequalified"].dropna()
    return float(prequalified.astype(bool).mean()) if len(prequalified) else float("nan")


def escalation_by_step(conversations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Where in the scenario escalations happen: the bot's last message before the visitor asked, and at which turn."""
    escalated = conversations.dropna(subset=["escalation_step"])
    grouped = escalated.groupby("escalation_step")
    table = pd.DataFrame({"transfers": grouped.size(), "mean turn": grouped["escalation_turn"].mean()})
    return table.sort_values("transfers", ascending=False).head(top)


def escalation_funnel(conversations: pd.DataFrame) -> pd.Series:
    """Conversations → asked for a human → transfer attempted → succeeded / failed."""
    transfer = conversations["transfer"]
    return pd.Series(
        [
            len(conversations),
            int(conversations["asked_for_human"].sum()),
            int(transfer.notna().sum()),
            int(transfer.eq("succeeded").sum()),
            int(transfer.eq("failed").sum()),
        ],
        index=list(FUNNEL),
    )


def time_to_escalation(conversations: pd.DataFrame) -> pd.Series:
    """Seconds from the chat opening to the transfer, for conversations with one."""
    return conversations["time_to_escalation_s"].dropna().describe()


def first_messages_leading_to_escalation(conversations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The visitors' first messages most often followed by a transfer, with how often they lead to one."""
    grouped = conversations.assign(escalated=conversations["transfer"].notna()).groupby("first_message")["escalated"]
    table = pd.DataFrame(
        {"conversations": grouped.size(), "transfers": grouped.sum().astype(int), "rate": grouped.mean()}
    )
    return table[table["transfers"] > 0].sort_values(["transfers", "rate"], ascending=False).head(top)


def summary(exchanges: pd.DataFrame, conversations: pd.DataFrame, source: str = "replayed") -> pd.Series:
    """The few numbers that tell two runs apart, each named with its unit; latency is ``source``'s
    (``replayed``: the bot under test; ``recorded``: what visitors lived)."""
    from harness.analysis.kpis import kpis

    ms = latency(exchanges, source)
    figures = kpis(conversations).iloc[0]
    return pd.Series(
        {
            "conversations": len(conversations),
            "exchanges": len(exchanges),
            f"{source} latency p50": ms.quantile(0.5),
            f"{source} latency p95": ms.quantile(0.95),
            f"calls over budget ({source} latency)": int(over_budget(exchanges, source).sum()),
            "visitor asked for a human": int(conversations["asked_for_human"].sum())
            if "asked_for_human" in conversations
            else 0,
            **{name: figures[name] for name in ("containment", "escalation", "transfer success", "abandonment")},
            "replies differing from the recording": int(exchanges["same"].eq(False).sum()),
        },
        dtype=object,
    )  # counts stay whole numbers


def handed_over(conversations: pd.DataFrame) -> pd.Series:
    """Of the conversations transferred, how many carried each piece of visitor data (its name) to the human."""
    held = conversations.get("transfer_variables", pd.Series(dtype=object)).dropna()
    names = [name for text in held for name in json.loads(text)]
    return pd.Series(names, dtype=object).value_counts().rename_axis("visitor data").rename("transfers")

"""Two runs of the same recordings compared, ``A → B`` (A the baseline): each figure's change as B - A, the
conversations whose outcome changed, and the replies that differ, as text side by side grouped by state.

Runs of the same recordings share conversation ids and the visitor's messages, in the same order: the
n-th visitor message of a conversation in A and in B is the same message. Their places (``seq``) may
differ, as two bots echo and post a different number of messages between them.
"""

from __future__ import annotations

import difflib
import json
from html import escape

import pandas as pd

from harness import render
from harness.analysis import journeys, metrics

Run = tuple[pd.DataFrame, pd.DataFrame]  # (exchanges, conversations), as metrics.load gives them
KEY = ["conversation", "purpose", "turn"]  # the n-th greeting, or visitor message, of a conversation
ASKED = ("greeting", "visitor")  # the calls whose answers are compared: what iAdvize asked of the bot
DIFFED_WORDS = 300  # an answer longer than this is marked word by word on its start: a diff costs up to n x m


def run_names(names: str = "") -> tuple[str, str]:
    """The report's two runs named from ``--names`` ("A,B": this run, then the run compared with)."""
    given = tuple(n.strip() for n in names.split(",")) if names else ()
    return given if len(given) == 2 else ("this run", "other run")


def compare(a: Run, b: Run, names: tuple[str, str] = ("before", "after"), source: str = "replayed") -> pd.DataFrame:
    """Two runs side by side, with the change B - A (``source="recorded"`` to compare recordings)."""
    table = pd.DataFrame({names[0]: metrics.summary(*a, source=source), names[1]: metrics.summary(*b, source=source)})
    table["change"] = table[names[1]] - table[names[0]]
    return table


def said(replies, between: str = "\n") -> str:
    """An answer's replies (their JSON) as the text the chat shows, one reply a line (or ``between`` them); an
    await, transfer or close in brackets."""
    found = json.loads(replies) if isinstance(replies, str) and replies else []
    found = found if isinstance(found, list) else [found]
    return between.join(render.reply(r) if isinstance(r, dict) else f"({r!r})" for r in found)


def _asked(exchanges: pd.DataFrame) -> pd.DataFrame:
    """The greetings and visitor messages of a run, each with its state and its place among its kind."""
    kept = exchanges.assign(state=journeys.states(exchanges), purpose=exchanges["purpose"].astype(object))
    kept = kept[kept["purpose"].isin(ASKED)].sort_values(["conversation", "seq"])
    return kept.assign(turn=kept.groupby(["conversation", "purpose"]).cumcount())


def _paired(a: Run, b: Run, conversations: set | None = None) -> pd.DataFrame:
    """The messages both runs answered (the n-th visitor message of a conversation in each), A's state and
    ``seq`` beside both answers."""
    a_exchanges, b_exchanges = a[0], b[0]
    if conversations is not None:
        a_exchanges = a_exchanges[a_exchanges["conversation"].isin(conversations)]
        b_exchanges = b_exchanges[b_exchanges["conversation"].isin(conversations)]
    left = _asked(a_exchanges)[[*KEY, "seq", "state", "message", "replies"]]
    return left.merge(_asked(b_exchanges)[[*KEY, "replies"]], on=KEY, suffixes=("_a", "_b"))


def outcome_changes(a: Run, b: Run, names: tuple[str, str] = ("before", "after")) -> pd.DataFrame:
    """The conversations whose outcome changed from A to B, with the first exchange whose replies differ:
    what the visitor said there (``seq`` its place) and what each run answered, as text."""
    both = a[1][["conversation", "first_message", "outcome"]].merge(
        b[1][["conversation", "outcome"]], on="conversation", suffixes=(f" ({names[0]})", f" ({names[1]})")
    )
    changed = both[both[f"outcome ({names[0]})"] != both[f"outcome ({names[1]})"]]
    paired = _paired(a, b, set(changed["conversation"]))
    differing = paired[paired["replies_a"] != paired["replies_b"]]
    first = differing.sort_values(["conversation", "seq"]).drop_duplicates("conversation")
    first = pd.DataFrame(
        {
            "conversation": first["conversation"],
            "seq": first["seq"],
            "visitor said": first["message"],
            f"{names[0]} said": first["replies_a"].map(lambda r: said(r, " / ")),
            f"{names[1]} said": first["replies_b"].map(lambda r: said(r, " / ")),
        }
    )
    table = changed.merge(first, on="conversation", how="left").reset_index(drop=True)
    same = table["seq"].isna()  # the same answers: the outcome changed by the rules that read them
    table["visitor said"] = (
        table["visitor said"].astype(object).where(~same, "(the same answers: outcome rules differ)")
    )
    return table


def reply_differences(a: Run, b: Run, names: tuple[str, str] = ("before", "after")) -> pd.DataFrame:
    """Every answer that differs from A to B, as text, grouped: per state (the bot message the visitor saw
    last in A) and pair of answers, how many times, and the visitor message most often answered so. States
    with the most differences first, then the most frequent pairs."""
    paired = _paired(a, b)
    return _grouped(paired[paired["replies_a"].fillna("") != paired["replies_b"].fillna("")], names)


def recorded_differences(exchanges: pd.DataFrame) -> pd.DataFrame:
    """The replayed answers that differ from the recorded ones (``same`` is false), grouped as
    :func:`reply_differences` groups two runs': "recorded said" beside "replayed said"."""
    differing = exchanges[exchanges["same"].eq(False)]
    paired = differing.assign(state=journeys.states(exchanges).reindex(differing.index))
    paired = paired.rename(columns={"recorded_replies": "replies_a", "replies": "replies_b"})
    return _grouped(paired, ("recorded", "replayed"))


def _grouped(paired: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """Differing answers (``state``, ``purpose``, ``message``, ``replies_a``, ``replies_b``) as text, counted
    per state and pair of answers."""
    columns = ["state", "visitor said", "times", f"{names[0]} said", f"{names[1]} said"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    texts = pd.DataFrame(
        {
            "state": paired["state"].where(paired["purpose"].astype(object).ne("greeting"), "(the chat opens)"),
            "visitor": paired["message"].fillna("").astype(str),
            "a": paired["replies_a"].map(said),
            "b": paired["replies_b"].map(said),
        }
    )
    groups = texts.groupby(["state", "a", "b"], sort=False)
    table = pd.DataFrame(
        {"times": groups.size(), "visitor said": groups["visitor"].agg(lambda v: v.value_counts().index[0])}
    ).reset_index()
    table["per state"] = table.groupby("state")["times"].transform("sum")
    table = table.sort_values(["per state", "state", "times"], ascending=[False, True, False], kind="stable")
    table = table.rename(columns={"a": f"{names[0]} said", "b": f"{names[1]} said"})
    return table[columns].reset_index(drop=True)


def diff_html(table: pd.DataFrame, names: tuple[str, str] = ("before", "after"), top: int = 30) -> str:
    """A :func:`reply_differences` table as HTML: per state, the two answers side by side, the words only A
    said struck out, those only B says underlined; every foreign text escaped."""
    if table.empty:
        return "<p>none: both runs answered every message alike</p>"
    head = (
        "<colgroup><col><col><col class='n'><col><col></colgroup>"
        "<tr><th>state (the bot's message before)</th><th>visitor said</th><th>times</th>"
        f"<th>{escape(names[0])}</th><th>{escape(names[1])}</th></tr>"
    )
    rows = []
    for row in table.head(top).itertuples(index=False):
        state, visitor, times, a, b = row
        old, new = _marked(a, b)
        rows.append(
            f"<tr><td>{escape(state)}</td><td>{escape(visitor)}</td><td>{times}</td><td>{old}</td><td>{new}</td></tr>"
        )
    style = (
        "<style>.diff{border-collapse:collapse;font-size:13px;table-layout:fixed;width:100%}.diff td,.diff th{"
        "border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left !important;white-space:pre-wrap;"
        "overflow-wrap:anywhere}.diff col.n{width:4em}.diff del{background:#fdd}"
        ".diff ins{background:#dfd}</style>"
    )
    more = f"<p>the {top} most frequent of {len(table)} different pairs of answers</p>" if len(table) > top else ""
    return f"{style}<table class='diff'>{head}{''.join(rows)}</table>{more}"


def _marked(a: str, b: str) -> tuple[str, str]:
    """The two texts escaped, the words that differ marked (``<del>`` in A, ``<ins>`` in B), over their first
    :data:`DIFFED_WORDS` words; the rest, when they are longer, shown unmarked after a "[not compared]" mark."""
    words = [text.split(" ") for text in (a, b)]
    rests = [" ".join(w[DIFFED_WORDS:]) for w in words]
    words = [w[:DIFFED_WORDS] for w in words]
    old, new = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, *words, autojunk=False).get_opcodes():
        left, right = escape(" ".join(words[0][i1:i2])), escape(" ".join(words[1][j1:j2]))
        if op == "equal":
            old.append(left)
            new.append(right)
            continue
        if left:
            old.append(f"<del>{left}</del>")
        if right:
            new.append(f"<ins>{right}</ins>")
    for marked, rest in zip((old, new), rests, strict=True):
        if rest:
            marked.append(f"<i>[not compared:]</i> {escape(rest)}")
    return " ".join(old), " ".join(new)

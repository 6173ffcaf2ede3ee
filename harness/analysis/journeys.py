"""Where conversations end and how visitors get there: drop-off per bot message, paths through quick
replies, and the paths drawn as a flow from choice to choice to the outcome.

Over the ``conversations`` table ``replay`` writes: ``last_bot_message``, ``last_menu`` and ``path``
(the quick replies chosen, joined by " > ") come from each conversation's events.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from harness import wire
from harness.analysis.outcomes import DEFAULT_RULES, OutcomeRules

NO_PATH = "(no quick reply chosen)"
SEPARATOR = " > "  # as harness.traffic.replay joins a path


def drop_off(conversations: pd.DataFrame, by: str = "last_bot_message", top: int = 10) -> pd.DataFrame:
    """Per scenario, the bot messages after which conversations ended (``by="last_menu"``: the last
    quick-reply menu), counted by outcome, most frequent first, ``top`` per scenario."""
    scenario = conversations["scenario"] if "scenario" in conversations else pd.Series("-", conversations.index)
    table = _counts(
        [_named(scenario, "-").rename("scenario"), _named(conversations[by], "(none)").rename(by)], conversations
    )
    table.insert(0, "conversations", table.sum(axis=1))
    ranked = table.sort_values("conversations", ascending=False, kind="stable")
    return ranked.groupby(level="scenario", sort=False).head(top)


def paths(conversations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The visitors' paths through quick replies, counted by outcome, most frequent first."""
    table = _counts([_named(conversations["path"], NO_PATH).rename("path")], conversations)
    table.insert(0, "conversations", table.sum(axis=1))
    return table.sort_values("conversations", ascending=False, kind="stable").head(top)


NO_CHOICE = NO_PATH  # one label for a visitor who chose no quick reply, in every table and chart
NO_MORE = "(no more choices)"


def topics(conversations: pd.DataFrame) -> pd.Series:
    """Each conversation's topic: the first quick reply the visitor chose (the main path's first step), or
    :data:`NO_CHOICE` when the visitor only typed."""
    first = conversations["path"].fillna("").str.split(SEPARATOR, n=1).str[0]
    return first.where(first.ne(""), NO_CHOICE).rename("topic")


GREETING = "(the greeting)"


def states(exchanges: pd.DataFrame) -> pd.Series:
    """Each exchange's state: the bot message the visitor saw last before it (the greeting's state is
    :data:`GREETING`), aligned with ``exchanges``. A bot's messages are its echoed replies and posts."""
    ordered = exchanges.sort_values(["conversation", "seq"])
    shown = ordered["message"].astype(object).where(ordered["purpose"].astype(object).eq("echo"))
    # the last echo at or before each row; a visitor row is never an echo, so it is strictly before
    return shown.groupby(ordered["conversation"]).ffill().fillna(GREETING).reindex(exchanges.index).rename("state")


ENDINGS = ("handed over", "transfer failed", "re-asked", "left", "never offered")


def asked_for_human(
    exchanges: pd.DataFrame, conversations: pd.DataFrame, rules: OutcomeRules = DEFAULT_RULES
) -> pd.DataFrame:
    """Where visitors asked for a human, and how it ended: per state (the bot message the visitor saw last
    before asking, in the outcome rules' words), the conversations that asked there, split by how they ended:
    handed over to a human, the transfer failed, or without a transfer: re-asked (after the ask, the bot showed
    a message twice, or asked two questions: the visitor kept answering instead of reaching a person), the
    visitor left while the bot waited, or the bot went on without ever offering one. Most asked first."""
    where: dict[str, str] = {}
    said_after: dict[str, list[str]] = {}  # what the bot showed after the ask
    ordered = exchanges.assign(state=states(exchanges), asks=_asks(exchanges, rules)).sort_values(
        ["conversation", "seq"]
    )
    for conversation, purpose, message, state, asks in ordered[
        ["conversation", "purpose", "message", "state", "asks"]
    ].itertuples(index=False):  # one pass, a few rows a conversation
        if conversation in where:
            if purpose == "echo":
                said_after[conversation].append(str(message))
        elif purpose == "visitor" and asks:
            where[conversation], said_after[conversation] = state, []
    ended = conversations.set_index("conversation")
    rows = []
    for conversation, state in where.items():
        if conversation not in ended.index:  # exchanges of a conversation the table does not hold
            continue
        transfer, outcome = ended.at[conversation, "transfer"], ended.at[conversation, "outcome"]
        how = {"succeeded": "handed over", "failed": "transfer failed"}.get(transfer)
        after = said_after[conversation]
        # kept answering questions: the same message twice, or two of the bot's questions ("?") after the ask
        questioned = len(after) > len(set(after)) or sum("?" in said for said in after) >= 2
        how = how or ("re-asked" if questioned else "left" if outcome == "abandoned" else "never offered")
        rows.append((state, how))
    table = pd.DataFrame(rows, columns=["where they asked", "ended"])
    counts = pd.crosstab(table["where they asked"], table["ended"]).reindex(columns=list(ENDINGS), fill_value=0)
    counts.insert(0, "asked", counts.sum(axis=1))
    return counts.sort_values("asked", ascending=False, kind="stable")


def _asks(exchanges: pd.DataFrame, rules: OutcomeRules) -> pd.Series:
    """Per exchange, whether it is a visitor message asking for a person: as the replay judged it, by the
    outcome rules it was given (``asks_for_human``), else by ``rules``."""
    if "asks_for_human" in exchanges:
        return exchanges["asks_for_human"].fillna(False).astype(bool)
    visitor = exchanges["purpose"].astype(object).eq("visitor")
    return visitor & exchanges["message"].map(lambda m: rules.asks_for_human(str(m)))


def never_handed_over(conversations: pd.DataFrame) -> pd.Series:
    """Of the conversations that asked for a human and got no transfer, where they ended: the bot's last message,
    counted, most frequent first (a question asked again, a prequalification the visitor could not answer)."""
    kept = conversations[conversations["asked_for_human"].fillna(False).astype(bool) & conversations["transfer"].isna()]
    return (
        kept["last_bot_message"]
        .fillna("(none)")
        .value_counts()
        .rename_axis("the bot's last message")
        .rename("conversations")
    )


NEXT = ("understood after", "asked for a human", "not understood again", "left")


def not_understood(
    exchanges: pd.DataFrame, conversations: pd.DataFrame, rules: OutcomeRules = DEFAULT_RULES, by: str = "text"
) -> pd.DataFrame:
    """What visitors typed that the bot answered with its fallback (the ``fallback`` column replay writes),
    normalised (any case, spaces and end punctuation aside) and counted, most frequent first, with what the
    visitor did next: wrote something the bot understood, asked for a human, was not understood again, or
    left. ``by="state"``: the same counted per state (the bot message the visitor was answering), with how
    many different texts."""
    fallback = conversations.set_index("conversation")["fallback"] if "fallback" in conversations else pd.Series()
    rows, pending = [], {}  # pending: conversation -> (state, text) not understood, waiting for what came next
    visitor = exchanges.assign(state=states(exchanges), asks=_asks(exchanges, rules))
    visitor = visitor[visitor["purpose"] == "visitor"].sort_values(["conversation", "seq"])
    for conversation, message, replies, state, asks in visitor[
        ["conversation", "message", "replies", "state", "asks"]
    ].itertuples(index=False):
        said = fallback.get(conversation)
        missed = isinstance(said, str) and _says(replies, said)
        if conversation in pending:
            after = "asked for a human" if asks else None
            rows.append(
                (*pending.pop(conversation), after or ("not understood again" if missed else "understood after"))
            )
        if missed:
            pending[conversation] = (state, normalised(str(message)))
    rows += [(*where_what, "left") for where_what in pending.values()]
    table = pd.DataFrame(rows, columns=["state", "visitor said", "next"])
    key = "visitor said" if by == "text" else "state"
    counts = pd.crosstab(table[key], table["next"]).reindex(columns=list(NEXT), fill_value=0)
    counts.insert(0, "times", counts.sum(axis=1))
    if by != "text":
        counts.insert(1, "different texts", table.groupby("state")["visitor said"].nunique().reindex(counts.index))
    return counts.sort_values("times", ascending=False, kind="stable")


def normalised(text: str) -> str:
    """A visitor text as grouped: any case, spaces collapsed, punctuation at its ends left out."""
    return " ".join(text.casefold().split()).strip(" .,;:!?¿¡'\"")


def _says(replies, text: str) -> bool:
    """Whether one of an answer's text messages (its ``replies`` JSON) is ``text``; anything else a bot
    sent (a card, a value that is not a string) is not."""
    found = json.loads(replies) if isinstance(replies, str) and replies else []
    said = (wire.text_of(r) for r in (found if isinstance(found, list) else []))
    return any(isinstance(s, str) and s.strip() == text.strip() for s in said)


def _counts(keys: list[pd.Series], conversations: pd.DataFrame) -> pd.DataFrame:
    """Conversations per value of ``keys`` (rows) and outcome (columns): one groupby (a crosstab is 5x slower)."""
    outcome = conversations["outcome"].rename("outcome")
    counts = outcome.groupby([*keys, outcome], observed=True).size()
    table = counts.unstack("outcome", fill_value=0).rename_axis(columns="outcome")
    table.columns = table.columns.astype(str)
    return table


def _named(values: pd.Series, empty: str) -> pd.Series:
    """The values, ``empty`` where there is none; a categorical stays one (its codes group fast)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        if "" in values.cat.categories:
            values = values.cat.remove_categories([""])
        if empty not in values.cat.categories:
            values = values.cat.add_categories([empty])
        return values.fillna(empty)
    return values.where(values.notna() & values.ne(""), empty)


def flows(conversations: pd.DataFrame, depth: int = 2) -> Counter:
    """Links between the columns of the flow chart: ((column, node), (column + 1, node)) -> conversations.

    Column k (0-based) holds the k-th quick reply chosen, :data:`NO_MORE` once the path ends (:data:`NO_PATH`
    in the first column: no quick reply chosen at all); the last column holds the outcome ("= outcome").
    """
    links: Counter = Counter()
    for path, outcome in zip(conversations["path"].fillna(""), conversations["outcome"], strict=True):
        steps = path.split(SEPARATOR) if path else []
        nodes = [steps[k] if k < len(steps) else NO_MORE if k else NO_PATH for k in range(depth)] + [f"= {outcome}"]
        for k in range(len(nodes) - 1):
            links[((k, nodes[k]), (k + 1, nodes[k + 1]))] += 1
    return links


def flow_chart(conversations: pd.DataFrame, ax, depth: int = 2, top: int = 8) -> None:
    """The paths drawn on ``ax``: a column per choice, then the outcomes; band widths are conversations.

    Outcomes and the bands reaching them are in each outcome's colour and hatch (:mod:`.style`); the ``top``
    choices of each column are drawn by name, and any choice of 5 % of the conversations or more: only the
    rest is gathered as "(other)".
    """
    from matplotlib.patches import PathPatch, Rectangle

    from harness.analysis import style

    links = _grouped(flows(conversations, depth), top, minimum=0.05 * len(conversations))
    columns = depth + 1
    totals = [Counter() for _ in range(columns)]  # every conversation has one node in each column
    for ((k, a), (_, b)), n in links.items():
        totals[k][a] += n
        if k + 1 == columns - 1:
            totals[k + 1][b] += n
    gap = 0.02 * max(sum(totals[0].values()), 1)
    free, labels = [], []  # per column, per node: the next free height for bands leaving it and arriving
    for k, column in enumerate(totals):
        y, spans = 0.0, {}
        for node, n in column.most_common():
            drawn = style.outcome(node[2:]) if k == columns - 1 else {"color": style.CHOICE, "hatch": ""}
            colour, hatch = drawn["color"], drawn["hatch"]
            ax.add_patch(Rectangle((k - 0.04, y), 0.08, n, facecolor=colour, hatch=hatch, edgecolor="black", lw=0.5))
            labels.append((k + 0.06, y + n / 2, f"{node.removeprefix('= ')} ({n})"))
            spans[node] = {"out": y, "in": y}
            y += n + gap
        free.append(spans)
    for ((k, a), (_, b)), n in sorted(links.items(), key=lambda item: (item[0][0][0], -item[1])):
        y0, y1 = free[k][a]["out"], free[k + 1][b]["in"]
        last = k + 1 == columns - 1
        colour = style.outcome(b[2:])["color"] if last else "#C8CED6"
        band = _band(k + 0.04, y0, k + 0.96, y1, n)
        ax.add_patch(PathPatch(band, facecolor=colour, alpha=0.55 if last else 0.8, edgecolor="white", lw=0.5))
        free[k][a]["out"], free[k + 1][b]["in"] = y0 + n, y1 + n
    for x, y, text in labels:  # over the bands, readable
        ax.text(x, y, text, va="center", fontsize=9, parse_math=False,  # a quick reply's "$" is a dollar
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})  # fmt: skip
    height = max(sum(c.values()) + gap * len(c) for c in totals)
    ax.set_xlim(-0.2, columns + 0.3)  # room for the outcomes' labels
    ax.set_ylim(height, -gap)  # the most frequent at the top
    ax.set_xticks(range(columns), [*(f"choice {k + 1}" for k in range(depth)), "outcome"], fontsize=10)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def _band(x0: float, y0: float, x1: float, y1: float, width: float):
    """A band of ``width`` from (x0, y0) to (x1, y1), its edges S-curves."""
    from matplotlib.path import Path as Curve

    bend = (x1 - x0) * 0.45
    points = [
        (x0, y0), (x0 + bend, y0), (x1 - bend, y1), (x1, y1),
        (x1, y1 + width), (x1 - bend, y1 + width), (x0 + bend, y0 + width), (x0, y0 + width), (x0, y0),
    ]  # fmt: skip
    codes = [Curve.MOVETO, *[Curve.CURVE4] * 3, Curve.LINETO, *[Curve.CURVE4] * 3, Curve.CLOSEPOLY]
    return Curve(points, codes)


def _grouped(links: Counter, top: int, minimum: float = 0) -> Counter:
    """The links with each column's less frequent nodes gathered as "(other)": a node is kept when it is among
    the ``top`` of its column or carries ``minimum`` conversations or more."""
    weight: Counter = Counter()
    for ((k, a), _), n in links.items():
        weight[(k, a)] += n
    kept = {node for node, w in weight.items() if w >= minimum > 0}
    for column in {k for k, _ in weight}:
        kept |= {node for node, _ in Counter({n: w for n, w in weight.items() if n[0] == column}).most_common(top)}

    def name(node):
        return (
            node if node in kept or node[1].startswith("= ") or node[1] in (NO_MORE, NO_PATH) else (node[0], "(other)")
        )

    grouped: Counter = Counter()
    for (a, b), n in links.items():
        grouped[(name(a), name(b))] += n
    return grouped


def share(table: pd.DataFrame) -> pd.DataFrame:
    """A count table (as :func:`drop_off` or :func:`paths` give) with each outcome as a share of its row."""
    shares = table.drop(columns="conversations").div(table["conversations"], axis=0)
    return pd.concat([table[["conversations"]], shares.replace({np.nan: 0.0})], axis=1)


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """A count table with each outcome as a percentage of its row, for people."""
    from harness.analysis.kpis import format_value

    shares = share(table)
    return shares.assign(**{c: shares[c].map(lambda v: format_value(v, "share")) for c in shares.columns[1:]})

"""Drop-off, paths and flows on small hand-made tables, with counts worked out by hand; and a journey
read from a conversation's events."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from harness.analysis import journeys
from harness.analysis.outcomes import journey
from harness.conformance.platform import Event

CONVERSATIONS = pd.DataFrame(
    {
        "scenario": ["shop", "shop", "shop", "shop", "faq"],
        "outcome": ["abandoned", "abandoned", "escalated", "resolved", "abandoned"],
        "last_bot_message": ["Pick one", "Pick one", "Passing you on", "Bye", "Ask me"],
        "last_menu": ["Pick one", "Pick one", "Pick one", "Pick one", None],
        "path": ["", "Offers", "Offers > Human", "Offers > No", ""],
    }
)


def test_drop_off_ranks_the_bot_messages_after_which_conversations_end_per_scenario():
    table = journeys.drop_off(CONVERSATIONS)
    assert table.loc[("shop", "Pick one"), "conversations"] == 2 and table.loc[("shop", "Pick one"), "abandoned"] == 2
    assert table.index[0] == ("shop", "Pick one")  # the most frequent first
    assert table.loc[("faq", "Ask me"), "abandoned"] == 1
    menus = journeys.drop_off(CONVERSATIONS, by="last_menu")
    assert menus.loc[("shop", "Pick one")].tolist() == [4, 2, 1, 1]  # conversations, abandoned, escalated, resolved
    assert journeys.share(menus).loc[("shop", "Pick one"), "abandoned"] == 0.5
    assert journeys.shown(menus).loc[("shop", "Pick one"), "abandoned"] == "50.0 %"


def test_paths_count_the_quick_replies_chosen_to_each_outcome():
    table = journeys.paths(CONVERSATIONS)
    assert table.loc["(no quick reply chosen)", "conversations"] == 2
    assert table.loc["Offers > Human", "escalated"] == 1 and table.loc["Offers", "abandoned"] == 1


def test_flows_link_each_choice_to_the_next_and_the_last_to_the_outcome():
    links = journeys.flows(CONVERSATIONS, depth=2)
    assert links[((0, "Offers"), (1, "Human"))] == 1 and links[((0, "Offers"), (1, "(no more choices)"))] == 1
    assert links[((0, "(no quick reply chosen)"), (1, "(no more choices)"))] == 2
    assert links[((1, "(no more choices)"), (2, "= abandoned"))] == 3  # the two without a choice, and "Offers"
    assert sum(n for ((k, _), _), n in links.items() if k == 0) == len(CONVERSATIONS)  # every conversation, once


def test_a_flow_chart_draws_a_band_per_link():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    journeys.flow_chart(CONVERSATIONS, ax, depth=2)
    drawn = [p for p in ax.patches if type(p).__name__ == "PathPatch"]
    assert len(drawn) == len(journeys.flows(CONVERSATIONS, depth=2))
    assert "escalated (1)" in [t.get_text() for t in ax.texts]
    nodes = {round(p.get_y(), 6): p for p in ax.patches if type(p).__name__ == "Rectangle" and p.get_x() > 1.5}
    escalated = [p for p in nodes.values() if p.get_height() == 1 and p.get_hatch() == ".."]
    assert len(escalated) == 1 and matplotlib.colors.to_hex(escalated[0].get_facecolor()) == "#66ccee"
    plt.close(fig)


def test_the_flow_chart_gathers_as_other_only_the_small_choices():
    # 12 choices of 100 conversations: "c0" taken 45 times, "c1" to "c11" 5 times each (5 %)
    paths = ["c0"] * 45 + [f"c{n}" for n in range(1, 12) for _ in range(5)]
    table = pd.DataFrame({"path": paths, "outcome": "resolved"})
    links = journeys._grouped(journeys.flows(table, depth=1), top=3, minimum=0.05 * len(table))
    firsts = {a[1] for (a, _), _ in links.items() if a[0] == 0}
    assert firsts == {f"c{n}" for n in range(12)}  # every choice of 5 % or more by name: no "(other)"
    links = journeys._grouped(journeys.flows(table, depth=1), top=3, minimum=6)
    firsts = Counter({a[1]: n for (a, _), n in links.items() if a[0] == 0})
    assert len(firsts) == 4 and firsts["c0"] == 45 and firsts["(other)"] == 5 * 9  # the top 3, the rest gathered


def menu(text, *choices):
    reply = {"type": "message", "payload": {"contentType": "text", "value": text}}
    if choices:
        reply["quickReplies"] = [{"contentType": "text/quick-reply", "value": c} for c in choices]
    return Event(0.0, "shown", text, reply=reply)


def test_a_journey_keeps_the_quick_replies_chosen_and_where_the_bot_left_off():
    events = [
        menu("What can I do?", "Offers", "Returns"),
        Event(1.0, "visitor", "offers"),  # a choice, typed in another case
        menu("Here they are", "Deal", "No thanks"),
        Event(2.0, "visitor", "how much is shipping?"),  # typed: not a choice
        menu("Shipping is free."),
    ]
    went = journey(events)
    assert went.path == ("Offers",) and went.last_message == "Shipping is free."
    assert went.last_menu == "Here they are"


def test_a_bot_s_dollar_signs_are_drawn_as_written_not_read_as_mathtext():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.analysis import style

    style.setup()
    table = pd.DataFrame({"path": [r"Pay $\frac$ now", ""], "outcome": ["resolved", "abandoned"]})
    fig, ax = plt.subplots()
    journeys.flow_chart(table, ax, depth=1)
    ax.set_yticks([0], [r"Sorry $\frac$ broken"])  # as the drop-off chart labels its bars with bot messages
    fig.savefig(io.BytesIO(), format="png")  # mathtext would raise here: "Unknown symbol: \frac"
    assert r"Pay $\frac$ now (1)" in [t.get_text() for t in ax.texts]
    plt.close(fig)

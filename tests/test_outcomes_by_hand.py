"""Outcomes and figures read from the evidence, each recomputed by hand from the raw recording.

A transfer's outcome is what followed it (a human's message, the bot's fallback, or nothing): the bot's own
messages are its replies and what it posted through iAdvize's API (``chatbotMessageSend`` lines), an operator
message that is neither is a human's. Then "not understood", "abandoned" and the time to first reply of the
replayed sample, each computed again here in plain Python from the JSON lines.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.traffic.recordings import POSTED, Recorded, posted
from harness.traffic.replay import replay

OPERATOR = "ha-1"
RULE = {"id": "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6", "label": "Customer service"}


def text(value: str) -> dict:
    return {"type": "message", "payload": {"contentType": "text", "value": value}}


TRANSFER = {
    "type": "transfer",
    "distributionRule": RULE["id"],
    "transferOptions": {"timeout": {"unit": "seconds", "value": 30}},
}
FALLBACK = "Sorry, nobody from our team is free right now."


def line(seq: int, endpoint: str, request, response, minute: int = 0) -> dict:
    return {
        "v": 1, "conversation": "c-1", "operator": OPERATOR, "seq": seq, "endpoint": endpoint,
        "method": "POST", "path": "/conversations/c-1/messages", "request": request, "status": 200,
        "response": response, "sent_at": f"2026-01-05T10:{minute:02d}:{seq:02d}.000Z", "latency_ms": 40.0,
        "error": None,
    }  # fmt: skip


def said(seq: int, role: str, value: str, replies: list | None = None) -> dict:
    message = {"idMessage": f"m-{seq}", "author": {"role": role}, "payload": {"contentType": "text", "value": value},
               "createdAt": "2026-01-05T10:00:00.000Z"}  # fmt: skip
    answer = {"idConversation": "c-1", "idOperator": OPERATOR, "replies": replies or [],
              "createdAt": "2026-01-05T10:00:00.000Z", "updatedAt": "2026-01-05T10:00:00.000Z"}  # fmt: skip
    return line(seq, "messages", {"idOperator": OPERATOR, "message": message}, answer)


def post(seq: int, action: dict) -> dict:
    return posted(action, "c-1", OPERATOR, seq, f"2026-01-05T10:00:{seq:02d}.000Z")


SLOW_ANSWER = "Your parcel left our warehouse this morning."  # posted through the API: not a human's
BEFORE = [
    said(0, "visitor", "Where is my parcel? 123456", [text("One moment, let me check.")]),
    said(1, "operator", "One moment, let me check."),
    post(2, text(SLOW_ANSWER)),
    said(3, "operator", SLOW_ANSWER),
    said(4, "visitor", "I want a person", [text("I'm passing you on."), TRANSFER, text(FALLBACK)]),
    said(5, "operator", "I'm passing you on."),
]
CASES = {
    "failed": [*BEFORE, said(6, "operator", FALLBACK)],
    "human": [*BEFORE, said(6, "operator", "Hello, this is Sam. How can I help?")],
    "unknown": BEFORE,
    "failed, posted after": [*BEFORE, post(6, text("Still there? Nobody could take it."))],
}


@pytest.fixture(scope="session")
def replayed(tmp_path_factory):
    """The first 300 conversations of the committed sample replayed against the reference bot (with the local
    iAdvize API it posts through): the folder of the two tables, made once per run and shared by the tests that
    read them, whichever workers run them (only read)."""
    from harness.bots import bot
    from harness.conformance.iadvize_api import IAdvizeAPI

    from .conftest import once_per_run
    from .test_notebooks import SAMPLE

    def make(out: Path) -> None:
        with IAdvizeAPI() as api, bot(env=api.reference_bot_settings()) as url:
            replay([SAMPLE], url, out, limit=300, api=api)

    return once_per_run(tmp_path_factory, "outcomes-replayed", make)


@pytest.mark.parametrize("case", CASES)
def test_a_transfer_outcome_is_what_the_recording_shows_after_it(case):
    recorded = Recorded("c-1", OPERATOR, CASES[case])
    assert recorded.transfer_outcome == case.split(",")[0]
    assert recorded.human_took_it == (case == "human")  # the slow answer posted through the API is the bot's


def test_without_a_transfer_there_is_no_outcome_and_posts_are_no_human():
    recorded = Recorded("c-1", OPERATOR, BEFORE[:4])
    assert recorded.transfer_outcome is None and not recorded.human_took_it
    assert [x["endpoint"] for x in recorded.lines].count(POSTED) == 1


def raw_conversations(path) -> dict[str, list[dict]]:
    """The recording's lines per conversation, in their order: JSON read with nothing of the harness."""
    import gzip
    import json
    from collections import defaultdict

    conversations = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for raw in lines:
            x = json.loads(raw)
            if x["conversation"] is not None:
                conversations[x["conversation"]].append(x)
    return {cid: sorted(lines, key=lambda x: x["seq"]) for cid, lines in conversations.items()}


def outcomes_by_hand(path) -> dict[str, str]:
    """Each conversation's transfer outcome, recomputed from the raw JSON lines without the harness."""
    found = {}
    for cid, lines in raw_conversations(path).items():
        acted = []  # per line: what the bot answered in it or posted with it
        for x in lines:
            answer = x["response"] if isinstance(x["response"], dict) else {}
            acted.append((answer.get("replies") or []) + ([x["request"]["action"]] if x["endpoint"] == POSTED else []))
        own = {r["payload"].get("value") for replies in acted for r in replies if r.get("type") == "message"} - {None}
        spoken = [
            x["request"]["message"]["payload"].get("value")
            if x["endpoint"] == "messages" and x["request"]["message"]["author"]["role"] == "operator"
            else None
            for x in lines
        ]
        start = next((n for n, replies in enumerate(acted) if any(r["type"] == "transfer" for r in replies)), None)
        if start is None:
            continue
        replies = acted[start]
        after = replies[[r["type"] for r in replies].index("transfer") + 1 :]
        fallback = {r["payload"].get("value") for r in after if r["type"] == "message"} - {None}
        outcome = "failed" if any(r["type"] == "close" for r in after) else "unknown"
        for n in range(start + 1, len(lines)):
            if spoken[n] is not None and spoken[n] not in own:
                outcome = "human"
                break
            if spoken[n] in fallback or lines[n]["endpoint"] == POSTED:
                outcome = "failed"
                break
        found[cid] = outcome
    return found


def test_the_committed_sample_s_transfer_outcomes_are_the_ones_recomputed_by_hand_and_replayed_alike(replayed):
    from harness.traffic.recordings import recorded_conversations

    from .test_notebooks import SAMPLE

    by_hand = outcomes_by_hand(SAMPLE)
    harness = {r.id: r.transfer_outcome for r in recorded_conversations([SAMPLE], [], {}) if r.transfer_outcome}
    assert harness == by_hand
    assert set(by_hand.values()) == {"human", "failed"}  # the sample's generator always lets the outcome show
    # replayed against the reference bot: a human where one took it, else a failure
    outcomes = {r["conversation"]: r["outcome"] for r in pq.read_table(replayed / "conversations.parquet").to_pylist()}
    transferred = {c: o for c, o in outcomes.items() if c in by_hand}
    assert transferred and all(
        outcome == {"human": "escalated", "failed": "transfer failed"}[by_hand[c]] for c, outcome in transferred.items()
    ), {c: (by_hand[c], o) for c, o in transferred.items()}


@pytest.mark.parametrize("case", ["failed", "human"])
def test_a_script_made_from_the_recording_gives_a_human_only_where_one_took_it(case):
    from harness.traffic.to_scripts import script_of

    script = script_of(Recorded("c-1", OPERATOR, CASES[case]), {"distributionRules": [RULE]})
    assert script["transfer_available"] is (case == "human")  # the slow answer posted through the API: no human


def ended_by_hand(path, fallback: str) -> dict[str, str]:
    """Per conversation without a transfer, "not understood" or "abandoned" or "other", read from the raw lines:
    the last bot message shown is the last operator echo; the fallback is the scenario's own text."""
    found = {}
    for cid, lines in raw_conversations(path).items():
        replies = [
            r
            for x in lines
            for r in ((x["response"] or {}).get("replies") or [] if isinstance(x["response"], dict) else [])
            + ([x["request"]["action"]] if x["endpoint"] == POSTED else [])
        ]
        if any(r["type"] == "transfer" for r in replies):
            continue
        roles = [x["request"]["message"]["author"]["role"] if x["endpoint"] == "messages" else None for x in lines]
        visitor = [n for n, role in enumerate(roles) if role == "visitor"]
        echoes = [n for n, role in enumerate(roles) if role == "operator"]
        last = lines[echoes[-1]]["request"]["message"]["payload"].get("value") if echoes else None
        menus = {r["payload"].get("value") for r in replies if r["type"] == "message" and r.get("quickReplies")}
        closed = any(r["type"] == "close" for r in replies)
        if last == fallback:
            found[cid] = "not understood"
        elif not visitor or (not closed and echoes and echoes[-1] > visitor[-1] and ("?" in last or last in menus)):
            found[cid] = "abandoned"
        else:
            found[cid] = "other"
    return found


def test_not_understood_and_abandoned_in_the_replay_are_what_the_recording_shows_read_by_hand(replayed):
    import yaml

    from .conftest import ROOT
    from .test_notebooks import SAMPLE

    scenario = yaml.safe_load((ROOT / "reference_bot" / "scenarios" / "order-assistant.yaml").read_text("utf-8"))
    fallback = scenario["fallback"][0]["text"]["en"]
    outcomes = {r["conversation"]: r["outcome"] for r in pq.read_table(replayed / "conversations.parquet").to_pylist()}
    by_hand = {c: o for c, o in ended_by_hand(SAMPLE, fallback).items() if c in outcomes}
    for outcome in ("not understood", "abandoned"):
        expected = {c for c, o in by_hand.items() if o == outcome}
        assert expected, outcome  # the sample has some of each
        assert {c for c, o in outcomes.items() if o == outcome} == expected, outcome


def test_time_to_first_reply_is_what_visitors_lived_recomputed_from_the_recording(replayed):
    import gzip
    import json
    import statistics
    from collections import defaultdict
    from datetime import datetime

    from harness.analysis.kpis import kpis

    from .test_notebooks import SAMPLE

    conversations = pq.read_table(replayed / "conversations.parquet").to_pandas()
    # by hand: the first echo after the visitor's first message (what was shown), minus that message's time,
    # plus the bot's recorded latency on it
    lines = defaultdict(list)
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as raw:
        for text in raw:
            x = json.loads(text)
            if x["conversation"] in set(conversations["conversation"]):
                lines[x["conversation"]].append(x)
    at = lambda x: datetime.fromisoformat(x["sent_at"].replace("Z", "+00:00")).timestamp()  # noqa: E731
    waited = []
    for found in lines.values():
        found.sort(key=lambda x: x["seq"])
        roles = [x["request"]["message"]["author"]["role"] if x["endpoint"] == "messages" else None for x in found]
        if "visitor" not in roles:
            continue
        first = roles.index("visitor")
        echo = next((n for n in range(first + 1, len(found)) if roles[n] == "operator"), None)
        if echo is not None:
            waited.append(at(found[echo]) - at(found[first]) + found[first]["latency_ms"] / 1000)
    figure = kpis(conversations).loc["all", "time to first reply"]
    assert abs(figure - statistics.median(waited)) < 0.002  # rounded to the millisecond


def test_every_call_over_its_budget_is_listed_as_the_recording_has_it(replayed):
    import gzip
    import json

    from harness.analysis import metrics

    from .test_notebooks import SAMPLE

    exchanges, conversations = metrics.load(replayed)
    kept = set(conversations["conversation"])
    by_hand = set()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as raw:
        for text in raw:
            x = json.loads(text)
            budget = 2_000 if x["endpoint"] == "first-messages" else 10_000
            if x["conversation"] in kept and x["latency_ms"] is not None and x["latency_ms"] > budget:
                by_hand.add((x["conversation"], x["endpoint"], x["latency_ms"]))
    slow = metrics.slow_calls(exchanges)
    assert by_hand and set(zip(slow["conversation"], slow["endpoint"], slow["recorded ms"], strict=True)) == by_hand
    assert list(slow["recorded ms"]) == sorted(slow["recorded ms"], reverse=True)


HUMAN_WORDS = r"\b(human|person|agent|advisor|someone|operator)\b"  # the default outcome rules, restated


def states_by_hand(rows: list[dict]) -> dict[int, str]:
    """Per exchange of one conversation (its seq): the bot message the visitor saw last before it."""
    seen, last = {}, "(the greeting)"
    for r in sorted(rows, key=lambda r: r["seq"]):
        seen[r["seq"]] = last
        if r["purpose"] == "echo":
            last = r["message"]
    return seen


def asked_by_hand(folder) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Who asked for a human, per state and ending ({state: {"asked": n, ending: n}}), and where those who got
    no transfer ended ({the bot's last message: n}), from the replay's rows."""
    import re

    exchanges = pq.read_table(folder / "exchanges.parquet").to_pylist()
    conversations = {r["conversation"]: r for r in pq.read_table(folder / "conversations.parquet").to_pylist()}
    words = re.compile(HUMAN_WORDS, re.IGNORECASE)
    by_state: dict[str, dict[str, int]] = {}
    for cid, c in conversations.items():
        rows = sorted((r for r in exchanges if r["conversation"] == cid), key=lambda r: r["seq"])
        seen = states_by_hand(rows)
        for n, r in enumerate(rows):
            if r["purpose"] == "visitor" and words.search(r["message"] or ""):
                after = [x["message"] for x in rows[n + 1 :] if x["purpose"] == "echo"]
                ended = {"succeeded": "handed over", "failed": "transfer failed"}.get(c["transfer"])
                if ended is None and (len(after) != len(set(after)) or len([a for a in after if "?" in a]) > 1):
                    ended = "re-asked"  # the same bot message twice after the ask, or two of its questions
                if ended is None:
                    ended = "left" if c["outcome"] == "abandoned" else "never offered"
                counts = by_state.setdefault(seen[r["seq"]], {"asked": 0})
                counts["asked"] += 1
                counts[ended] = counts.get(ended, 0) + 1
                break
    stuck: dict[str, int] = {}
    for c in conversations.values():
        if c["asked_for_human"] and c["transfer"] is None:
            stuck[c["last_bot_message"] or "(none)"] = stuck.get(c["last_bot_message"] or "(none)", 0) + 1
    return by_state, stuck


def nonzero(table: dict) -> dict:
    """{row: {column: n}} without its zeros: as the by-hand dictionaries hold it."""
    return {row: {k: int(v) for k, v in values.items() if v} for row, values in table.items()}


def test_who_asked_for_a_human_where_and_how_it_ended_recomputed_from_the_rows(replayed):
    from harness.analysis import journeys

    by_hand, stuck = asked_by_hand(replayed)
    exchanges, conversations = (pq.read_table(replayed / f"{n}.parquet").to_pandas()
                                for n in ("exchanges", "conversations"))  # fmt: skip
    table = journeys.asked_for_human(exchanges, conversations)
    assert nonzero(table.to_dict("index")) == by_hand and int(table["asked"].sum()) > 0
    assert any(e in ("left", "never offered") for counts in by_hand.values() for e in counts)  # some never got one
    table = journeys.never_handed_over(conversations)
    assert stuck and {k: int(v) for k, v in table.items()} == stuck


def not_understood_by_hand(folder) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """What the bot answered with the scenario's fallback, per normalised text and per state, with what came
    next ({text: {"times": n, next: n}}, {state: {"times": n, "different texts": n, next: n}})."""
    import json
    import re

    import yaml

    from .conftest import ROOT

    scenario = yaml.safe_load((ROOT / "reference_bot" / "scenarios" / "order-assistant.yaml").read_text("utf-8"))
    fallback = scenario["fallback"][0]["text"]["en"]  # the scenario's own words: the fallback found by asking
    exchanges = pq.read_table(folder / "exchanges.parquet").to_pylist()
    words = re.compile(HUMAN_WORDS, re.IGNORECASE)
    by_text: dict[str, dict[str, int]] = {}
    by_state: dict[str, dict] = {}
    texts: dict[str, set] = {}

    def missed(row) -> bool:
        return fallback in [x.get("payload", {}).get("value") for x in json.loads(row["replies"] or "[]")]

    for cid in {r["conversation"] for r in exchanges}:
        rows = [r for r in exchanges if r["conversation"] == cid]
        seen = states_by_hand(rows)
        said = sorted((r for r in rows if r["purpose"] == "visitor"), key=lambda r: r["seq"])
        for n, r in enumerate(said):
            if not missed(r):
                continue
            text = " ".join(r["message"].lower().split()).strip(" .,;:!?¿¡'\"")
            if n + 1 == len(said):
                after = "left"
            elif words.search(said[n + 1]["message"]):
                after = "asked for a human"
            elif missed(said[n + 1]):
                after = "not understood again"
            else:
                after = "understood after"
            for key, table in ((text, by_text), (seen[r["seq"]], by_state)):
                counts = table.setdefault(key, {"times": 0})
                counts["times"] += 1
                counts[after] = counts.get(after, 0) + 1
            texts.setdefault(seen[r["seq"]], set()).add(text)
    for state, counts in by_state.items():
        counts["different texts"] = len(texts[state])
    return by_text, by_state


def test_what_the_bot_did_not_understand_and_what_came_next_recomputed_from_the_rows(replayed):
    from harness.analysis import journeys

    by_text, by_state = not_understood_by_hand(replayed)
    exchanges, conversations = (pq.read_table(replayed / f"{n}.parquet").to_pandas()
                                for n in ("exchanges", "conversations"))  # fmt: skip
    assert by_text and nonzero(journeys.not_understood(exchanges, conversations).to_dict("index")) == by_text
    table = journeys.not_understood(exchanges, conversations, by="state")
    assert by_state and nonzero(table.to_dict("index")) == by_state


def test_kpis_per_topic_recomputed_from_the_rows(replayed):
    from harness.analysis import journeys, kpis

    rows = pq.read_table(replayed / "conversations.parquet").to_pylist()
    by_topic: dict[str, list[dict]] = {}
    for r in rows:
        topic = (r["path"] or "").split(" > ")[0] or journeys.NO_CHOICE
        by_topic.setdefault(topic, []).append(r)
    conversations = pq.read_table(replayed / "conversations.parquet").to_pandas()
    table = kpis.kpis(conversations.assign(topic=journeys.topics(conversations)), by="topic")
    assert set(table.index) == set(by_topic) and len(by_topic) > 2
    for topic, kept in by_topic.items():
        share = lambda test, kept=kept: sum(map(test, kept)) / len(kept)  # noqa: E731
        assert table.loc[topic, "conversations"] == len(kept)
        assert table.loc[topic, "containment"] == pytest.approx(
            share(lambda r: r["outcome"] in ("resolved", "closed by bot"))
        )
        assert table.loc[topic, "escalation"] == pytest.approx(share(lambda r: r["transfer"] is not None))
        assert table.loc[topic, "not understood rate"] == pytest.approx(
            share(lambda r: r["outcome"] == "not understood")
        )
        assert table.loc[topic, "abandonment"] == pytest.approx(share(lambda r: r["outcome"] == "abandoned"))


def test_a_bot_posting_through_the_api_then_failing_to_transfer_reads_failed_everywhere(replayed):
    import gzip
    import json
    from collections import defaultdict

    from harness.analysis import journeys, metrics
    from harness.analysis.chat import conversation_html

    from .test_notebooks import SAMPLE

    exchanges, conversations = metrics.load(replayed)
    kept = set(conversations["conversation"])
    posted_before = defaultdict(bool)  # the bot posted through the API before its transfer
    transferred = set()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as raw:
        for text in sorted((json.loads(t) for t in raw), key=lambda x: (str(x["conversation"]), x["seq"])):
            cid = text["conversation"]
            if cid not in kept:
                continue
            replies = (text["response"] or {}).get("replies") or [] if isinstance(text["response"], dict) else []
            if any(r.get("type") == "transfer" for r in replies):
                transferred.add(cid)
            if text["endpoint"] == POSTED and cid not in transferred:
                posted_before[cid] = True
    by_hand = outcomes_by_hand(SAMPLE)
    for outcome, marker in (("failed", False), ("human", True)):
        chosen = sorted(c for c in transferred if posted_before[c] and by_hand[c] == outcome)
        assert chosen, outcome  # the sample has conversations of each kind
        row = conversations.set_index("conversation").loc[chosen[0]]
        assert row["outcome"] == ("transfer failed" if outcome == "failed" else "escalated")
        assert ("[a human took the conversation]" in conversation_html(exchanges, chosen[0])) is marker
        path = journeys.paths(conversations[conversations["conversation"] == chosen[0]])
        assert path.iloc[0][row["outcome"]] == 1  # the path counted under that outcome, and the flow drawn from it


def test_report_json_holds_the_figures_recomputed_by_hand(replayed, tmp_path):
    import json
    import subprocess
    import sys

    written = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", "--results", str(replayed), "--out", str(tmp_path / "r.html"),
         "--json", str(written)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"its figures in {written}")
    found = json.loads(written.read_text("utf-8"))
    figures_by_hand_agree(found, replayed)
    assert len(found["paths"]) > 3 and found["visitor data handed to a human"] and found["slow calls"]
    assert found["asked for a human"] and found["not understood"]
    assert "comparison" not in found  # one run: nothing compared


def quantile(values: list[float], q: float) -> float:
    """The q-quantile, interpolated linearly between the two nearest ranks (as numpy and pandas do)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures_by_hand_agree(found: dict, folder) -> None:
    """Every figure of a ``report --json`` document equals the one recomputed here from the replay's rows, in
    plain Python."""
    rows = pq.read_table(folder / "conversations.parquet").to_pylist()
    kpis_by_hand_agree(found, rows)
    latency_by_hand_agree(found, pq.read_table(folder / "exchanges.parquet").to_pylist())
    journeys_by_hand_agree(found, folder, rows)


def kpis_by_hand_agree(found: dict, rows: list[dict]) -> None:
    import statistics

    n = len(rows)
    contained = ("resolved", "closed by bot")
    overall = found["kpis"]["all"]
    assert overall["conversations"] == n
    assert overall["containment"] == pytest.approx(sum(r["outcome"] in contained for r in rows) / n)
    assert overall["escalation"] == pytest.approx(sum(r["transfer"] is not None for r in rows) / n)
    took = [r["transfer"] == "succeeded" for r in rows if r["transfer"] is not None]
    assert overall["transfer success"] == (pytest.approx(sum(took) / len(took)) if took else None)
    assert overall["time to first reply"] == pytest.approx(
        statistics.median(r["time_to_first_reply_s"] for r in rows if r["time_to_first_reply_s"] is not None)
    )
    for table, key in (("per scenario", "scenario"), ("per operator", "operator"),
                       ("per day", lambda r: r["started_at"].date().isoformat())):  # fmt: skip
        groups: dict[str, list] = {}
        for r in rows:
            groups.setdefault(key(r) if callable(key) else r[key], []).append(r)
        shown = {name[:10] if table == "per day" else name: figures for name, figures in found["kpis"][table].items()}
        assert set(shown) == set(groups)
        for name, kept in groups.items():
            assert shown[name]["conversations"] == len(kept)
            assert shown[name]["containment"] == pytest.approx(sum(r["outcome"] in contained for r in kept) / len(kept))
    for outcome in {r["outcome"] for r in rows}:
        count = sum(r["outcome"] == outcome for r in rows)
        assert found["outcomes"][outcome] == {"conversations": count, "share": pytest.approx(count / n)}
    asked = sum(bool(r["asked_for_human"]) for r in rows)
    assert found["escalation funnel"]["visitor asked for a human"] == asked
    seconds = sorted(r["time_to_escalation_s"] for r in rows if r["time_to_escalation_s"] is not None)
    if seconds:
        assert found["time to escalation"]["count"] == len(seconds)
        assert found["time to escalation"]["50%"] == pytest.approx(quantile(seconds, 0.5))
    rules: dict[str, int] = {}
    for r in rows:
        if r["transfer_rule"] is not None:
            rules[r["transfer_rule"]] = rules.get(r["transfer_rule"], 0) + 1
    assert found["transfers per rule"] == rules
    first: dict[str, list[bool]] = {}
    for r in rows:
        first.setdefault(r["first_message"], []).append(r["transfer"] is not None)
    leading = {m: {"conversations": len(v), "transfers": sum(v)} for m, v in first.items() if any(v)}
    assert {m: {k: row[k] for k in ("conversations", "transfers")}
            for m, row in found["first messages leading to a human"].items()} == leading  # fmt: skip


def latency_by_hand_agree(found: dict, calls: list[dict]) -> None:
    def recorded(x):
        return x["recorded_latency_ms"] if x["recorded_latency_ms"] is not None else x["latency_ms"]

    def budget(x):
        return 2_000 if x["endpoint"] == "first-messages" else 10_000

    for endpoint, figures in found["latency recorded and replayed"].items():
        replayed = [x["latency_ms"] for x in calls if x["endpoint"] == endpoint and x["latency_ms"] is not None]
        assert figures["replayed p50"] == pytest.approx(quantile(replayed, 0.5))
    for endpoint, figures in found["latency per endpoint"].items():
        ms = [recorded(x) for x in calls if x["endpoint"] == endpoint and recorded(x) is not None]
        assert figures["calls"] == sum(x["endpoint"] == endpoint for x in calls)
        assert figures["p50"] == pytest.approx(quantile(ms, 0.5)) and figures["p95"] == pytest.approx(
            quantile(ms, 0.95)
        )
        assert figures["max"] == pytest.approx(max(ms))
    for source, ms in (("recorded", recorded), ("replayed", lambda x: x["latency_ms"])):
        over: dict[str, int] = {}
        for x in calls:
            over[x["endpoint"]] = over.get(x["endpoint"], 0) + (ms(x) is not None and ms(x) > budget(x))
        assert found["calls over budget"][source] == over
    slow = [x for x in calls if x["latency_ms"] is not None and recorded(x) > budget(x)]
    assert len(found["slow calls"]) == len(slow)
    assert sorted((s["conversation"], s["seq"]) for s in found["slow calls"]) == sorted(
        (x["conversation"], x["seq"]) for x in slow
    )


def journeys_by_hand_agree(found: dict, folder, rows: list[dict]) -> None:
    import json

    by_state, stuck = asked_by_hand(folder)
    assert nonzero(found["asked for a human"]) == by_state and found["asked for a human, never handed over"] == stuck
    by_text, by_state = not_understood_by_hand(folder)
    assert nonzero(found["not understood"]) == by_text and nonzero(found["not understood by state"]) == by_state
    paths: dict[str, dict[str, int]] = {}
    ends: dict[str, dict[str, dict[str, int]]] = {}
    held: dict[str, int] = {}
    for r in rows:
        for counts in (
            paths.setdefault(r["path"] or "(no quick reply chosen)", {}),
            ends.setdefault(r["scenario"], {}).setdefault(r["last_bot_message"] or "(none)", {}),
        ):
            counts["conversations"] = counts.get("conversations", 0) + 1
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        for name in json.loads(r["transfer_variables"] or "{}"):
            held[name] = held.get(name, 0) + 1
    assert nonzero(found["paths"]) == paths
    assert {scenario: nonzero(table) for scenario, table in found["where conversations end"].items()} == ends
    assert found["visitor data handed to a human"] == held


def test_a_comparison_s_figures_are_this_run_minus_the_baseline_recomputed_from_both_runs_rows(tmp_path):
    """The same 100 recorded conversations replayed against the shipped bot (v1, the baseline) and a version
    whose handover no longer asks for the order number (v2); the comparison's figures recomputed by hand."""
    import json

    from harness.analysis import figures, metrics
    from harness.bots import bot
    from harness.conformance.iadvize_api import IAdvizeAPI

    from .test_notebooks import SAMPLE, asking_less

    scenarios = asking_less(tmp_path / "v2-scenarios")
    for name, env in (("v1", {}), ("v2", {"REFERENCE_BOT_SCENARIOS": str(scenarios)})):
        with IAdvizeAPI() as api, bot(env={**api.reference_bot_settings(), **env}) as url:
            replay([SAMPLE], url, tmp_path / name, limit=100, api=api)
    found = figures.figures(*metrics.load(tmp_path / "v2"), baseline=metrics.load(tmp_path / "v1"), names="v2,v1")
    compared = found["comparison"]
    assert (compared["baseline"], compared["run"]) == ("v1", "v2")
    rows = {name: {r["conversation"]: r for r in pq.read_table(tmp_path / name / "conversations.parquet").to_pylist()}
            for name in ("v1", "v2")}  # fmt: skip
    calls: dict[str, dict[tuple, dict]] = {}  # per run: (conversation, purpose, n-th of that purpose) -> its row
    for name in ("v1", "v2"):
        rows_of = sorted(pq.read_table(tmp_path / name / "exchanges.parquet").to_pylist(),
                         key=lambda x: (x["conversation"], x["seq"]))  # fmt: skip
        counted: dict[tuple, int] = {}
        calls[name] = {}
        for x in rows_of:
            if x["purpose"] in ("greeting", "visitor"):  # what iAdvize asked the bot: the same in both runs
                n = counted[(x["conversation"], x["purpose"])] = counted.get((x["conversation"], x["purpose"]), -1) + 1
                calls[name][(x["conversation"], x["purpose"], n)] = x

    def escalation(name: str) -> float:
        return sum(r["transfer"] is not None for r in rows[name].values()) / len(rows[name])

    assert compared["figures"]["escalation"]["change"] == pytest.approx(escalation("v2") - escalation("v1"))
    asked = {name: sum(bool(r["asked_for_human"]) for r in rows[name].values()) for name in rows}
    assert compared["figures"]["visitor asked for a human"] == {"v1": asked["v1"], "v2": asked["v2"], "change": 0}
    changed = {c for c, r in rows["v1"].items() if r["outcome"] != rows["v2"][c]["outcome"]}
    assert {r["conversation"] for r in compared["outcome changes"]} == changed
    differing = [
        key for key, x in calls["v1"].items() if key in calls["v2"] and x["replies"] != calls["v2"][key]["replies"]
    ]
    assert differing and sum(r["times"] for r in compared["reply differences"]) == len(differing)
    asked_email_first = (
        "I'll pass you to a person from our customer service. What email address can they write back to?"
    )
    assert any(r["v2 said"] == asked_email_first for r in compared["reply differences"])
    held = {name: {} for name in rows}
    for name, table in rows.items():
        for r in table.values():
            for key in json.loads(r["transfer_variables"] or "{}"):
                held[name][key] = held[name].get(key, 0) + 1
    assert compared["visitor data handed to a human"] == held
    assert held["v1"]["order_number"] > held["v2"].get("order_number", 0)  # v2 asks for it no more


@pytest.mark.parametrize("seed", [3, 5, 11])
def test_fresh_samples_of_other_seeds_give_the_same_figures_by_hand_and_by_the_harness(seed, tmp_path):
    """The by-hand recomputations above, on samples the committed one never saw."""
    import yaml

    from harness.analysis import figures, metrics
    from harness.bots import bot
    from harness.client import BotClient
    from harness.conformance.iadvize_api import IAdvizeAPI
    from harness.traffic.recordings import recorded_conversations
    from harness.traffic.sample import generate

    from .conftest import ROOT

    with (
        IAdvizeAPI() as api,
        bot(env={"REFERENCE_BOT_PUBLIC_URL": "https://bot.example.com", **api.reference_bot_settings()}) as url,
    ):
        sample = generate(BotClient(url), 30, seed, tmp_path / "sample", api=api)
        replay([sample], url, tmp_path / "results", api=api)
    by_hand = outcomes_by_hand(sample)
    assert "human" in by_hand.values() or "failed" in by_hand.values()  # transfers to judge
    assert {r.id: r.transfer_outcome for r in recorded_conversations([sample], [], {}) if r.transfer_outcome} == by_hand
    scenario = yaml.safe_load((ROOT / "reference_bot" / "scenarios" / "order-assistant.yaml").read_text("utf-8"))
    ended = ended_by_hand(sample, scenario["fallback"][0]["text"]["en"])
    rows = pq.read_table(tmp_path / "results" / "conversations.parquet").to_pylist()
    for row in rows:
        expected = {"human": "escalated", "failed": "transfer failed"}.get(by_hand.get(row["conversation"]))
        if expected is None and ended[row["conversation"]] != "other":
            expected = ended[row["conversation"]]
        assert expected is None or row["outcome"] == expected, (row["conversation"], row["outcome"], expected)
    figures_by_hand_agree(figures.figures(*metrics.load(tmp_path / "results")), tmp_path / "results")


def test_the_visitor_data_handed_to_a_human_counted_by_name_as_the_rows_hold_it(replayed):
    import json

    from harness.analysis import metrics

    rows = pq.read_table(replayed / "conversations.parquet").to_pylist()
    by_hand: dict[str, int] = {}
    for r in rows:
        for name in json.loads(r["transfer_variables"]) if r["transfer_variables"] else {}:
            by_hand[name] = by_hand.get(name, 0) + 1
    found = metrics.handed_over(pq.read_table(replayed / "conversations.parquet").to_pandas())
    assert by_hand and {k: int(v) for k, v in found.items()} == by_hand
    assert {r["transfer_variables"] is not None for r in rows if r["transfer"]} == {True}  # each transfer says

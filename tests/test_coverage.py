"""What check reached of a bot: its conversation graph and dead ends, for the reference bot and for a bot
made with deliberate dead ends (a quick reply it does not understand, a loop)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.client import BotClient
from harness.conformance.probes import check
from harness.conformance.reports import write_html

from .conftest import LoopbackServer

DEAD_ENDS = """
idBot: dead-ends
name: Dead ends
start: menu
fallback: [{text: "Sorry, I did not get that."}]
states:
  menu:
    replies: [{text: "Pick one", quick_replies: [Prices, Opening hours]}]
    transitions: [{quick_reply: Prices, goto: prices}]
  prices:
    replies: [{text: "Prices: pick again", quick_replies: [Again]}]
    transitions: [{quick_reply: Again, goto: prices}]
"""


def test_a_bot_with_deliberate_dead_ends_has_each_reported_where_it_is(tmp_path, make_bot):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "dead-ends.yaml").write_text(DEAD_ENDS, encoding="utf-8")
    with LoopbackServer(make_bot(SCENARIOS_DIR=str(tmp_path / "scenarios"))) as server:
        report = check(BotClient(server.url))
    [found] = report.coverage
    assert found.menus == {"Pick one": ["Prices", "Opening hours"], "Prices: pick again": ["Again"]}
    assert (found.offered, found.followed) == (3, 3)
    dead = {(d.kind, d.where) for d in found.dead_ends}
    assert dead == {
        ("fallback", "Pick one"),  # "Opening hours" is answered with the fallback
        ("loop", "Prices: pick again"),  # "Again" leads back to it
        ("no way to a human", "Pick one"),
        ("no way to a human", "Prices: pick again"),
    }
    fallback = next(d for d in found.dead_ends if d.kind == "fallback")
    assert fallback.why == "the quick reply 'Opening hours' is answered with the fallback"
    page = tmp_path / "check.html"
    write_html(report, page)
    shown = page.read_text(encoding="utf-8")
    assert "<h3>dead-ends: 3 of 3 quick replies followed</h3>" in shown
    assert "<li>fallback at &#x27;Pick one&#x27;: the quick reply &#x27;Opening hours&#x27; is answered" in shown


def test_the_reference_bot_s_graph_is_shown_in_the_terminal_and_the_json(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = next(line for line in lines if line.startswith("coverage of order-assistant: "))
    assert "quick replies followed" in summary and "menus" in summary
    [graph] = [c for c in json.loads(out.read_text())["coverage"] if c["scenario"] == "order-assistant"]
    assert "What can I do for you?" in graph["menus"]
    assert {"source": "What can I do for you?", "choice": "Talk to a person"} in [
        {k: e[k] for k in ("source", "choice")} for e in graph["edges"]
    ]
    assert not [d for d in graph["dead_ends"] if d["kind"] in ("fallback", "loop")]  # none it could not get on from


def test_the_reference_bot_s_states_reached_and_not_are_named_with_their_file_and_line(tmp_path):
    from reference_bot.config import SCENARIOS_DIR

    source = SCENARIOS_DIR / "order-assistant.yaml"
    line_of = {
        line.strip().rstrip(":"): n
        for n, line in enumerate(source.read_text().splitlines(), 1)
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":")
    }
    runs = {}
    for name, extra in (("probes", []), ("with-scripts", ["--scripts", str(SCENARIOS_DIR.parent / "scripts")])):
        out = tmp_path / f"{name}.json"
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "check", "--json", str(out), *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        [graph] = [c for c in json.loads(out.read_text())["coverage"] if c["scenario"] == "order-assistant"]
        runs[name] = (graph["states"], done.stdout)
    states, stdout = runs["probes"]
    missed = {s["state"]: s for s in states["not_reached"]}
    assert "order_status" in missed  # an order number is typed, never a quick reply: the probes cannot get there
    assert missed["order_status"]["line"] == line_of["order_status"] and missed["order_status"]["file"] == str(source)
    assert "menu" in {s["state"] for s in states["reached"]}
    assert f"  not reached: order_status ({source}:{line_of['order_status']})" in stdout
    with_scripts, _ = runs["with-scripts"]
    assert with_scripts["not_reached"] == []  # the shipped scripts reach every state
    # transitions: by the states they join, each with its line (the item's "- " in the state's transitions)
    text = source.read_text().splitlines()
    start = text.index("  order_status:")
    invoice = next(n for n in range(start, len(text)) if text[n].strip().startswith("- keywords:")) + 1
    untaken = {(t["from"], t["to"]): t["line"] for t in states["transitions not reached"]}
    assert untaken[("order_status", "invoice")] == invoice
    assert ("menu", "offers") in {(t["from"], t["to"]) for t in states["transitions reached"]}
    assert ("order_status", "invoice") in {(t["from"], t["to"]) for t in with_scripts["transitions reached"]}
    assert f"  not taken: order_status -> invoice, on keywords ({source}:{invoice})" in stdout
    # two transitions between the same states are told apart by what takes them; `anywhere` is said in words
    goodbyes = [line for line in stdout.splitlines() if line.startswith("  not taken: invoice -> goodbye")]
    assert [line.split(" (")[0] for line in goodbyes] == [
        "  not taken: invoice -> goodbye, on quick reply 'No thanks'",
        "  not taken: invoice -> goodbye, on keywords",
    ], goodbyes
    assert "  not taken: anywhere" not in stdout


GARAGE = """
idBot: garage
name: Garage
start: menu
fallback: [{text: "Sorry, I did not get that."}]
states:
  menu:
    replies: [{text: "How can we help?", quick_replies: [Talk to a mechanic, Opening hours]}]
    transitions:
      - {quick_reply: Talk to a mechanic, goto: mechanic}
      - {quick_reply: Opening hours, goto: hours}
  mechanic:
    replies:
      - text: "A mechanic takes it from here."
      - transfer: {rule: Customer service, timeout: 30s}
      - text: "Sorry, nobody is free."
      - close
  hours:
    replies: [{text: "We open at 9."}]
"""
BUSY = """
idBot: busy
name: Busy
start: menu
fallback: [{text: "Sorry, I did not get that."}]
states:
  menu:
    replies: [{text: "What now?", quick_replies: [Talk to a person, Prices]}]
    transitions:
      - {quick_reply: Talk to a person, goto: person}
      - {quick_reply: Prices, goto: prices}
  person:
    replies: [{text: "Everyone is busy, sorry."}]
  prices:
    replies: [{text: "Bikes from 300 euros."}]
"""


def test_a_way_to_a_human_is_judged_by_where_the_quick_reply_led_not_by_its_words(tmp_path, make_bot):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "garage.yaml").write_text(GARAGE, encoding="utf-8")
    (tmp_path / "scenarios" / "busy.yaml").write_text(BUSY, encoding="utf-8")
    with LoopbackServer(make_bot(SCENARIOS_DIR=str(tmp_path / "scenarios"))) as server:
        report = check(BotClient(server.url))
    dead = {(c.scenario, d.kind, d.where) for c in report.coverage for d in c.dead_ends}
    # "Talk to a mechanic" transfers (after a message): a way to a human; "Talk to a person" does not
    assert dead == {("busy", "no way to a human", "What now?")}


def test_a_fallback_is_kept_when_the_hello_got_it_too_but_not_when_it_is_the_menu():
    from harness.conformance.coverage import GIBBERISH, fallback_of
    from harness.conformance.platform import Event, SimulatedConversation

    def chat(*events: Event) -> SimulatedConversation:
        conversation = SimulatedConversation.__new__(SimulatedConversation)
        conversation.events = list(events)
        return conversation

    def shown(text: str, *choices: str) -> Event:
        reply = {"type": "message", "payload": {"contentType": "text", "value": text}}
        if choices:
            reply["quickReplies"] = [{"contentType": "text/quick-reply", "value": c} for c in choices]
        return Event(0.0, "shown", text, reply=reply)

    sorry = "Sorry, I didn't get that."
    # a bot that did not understand "Hello" either: its fallback is still its fallback
    assert fallback_of(chat(Event(0.0, "visitor", "Hello"), shown(sorry), Event(1.0, "visitor", GIBBERISH),
                            shown(sorry))) == sorry  # fmt: skip
    # a menu bot: what it shows gibberish is its menu, shown to the hello too
    menu = shown("How can we help?", "Track", "Person")
    assert fallback_of(chat(Event(0.0, "visitor", "Hello"), menu, Event(1.0, "visitor", GIBBERISH), menu)) is None
    # its greeting shown again
    assert fallback_of(chat(shown("Hi, I'm a bot."), Event(0.0, "visitor", "Hello"), shown("Yes?"),
                            Event(1.0, "visitor", GIBBERISH), shown("Hi, I'm a bot."))) is None  # fmt: skip

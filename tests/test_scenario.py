"""Scenarios as data: the shipped files, the engine's steps, and load errors that say where."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest
import yaml

from harness.wire import seconds as timeout_seconds
from reference_bot import ScenarioError, create_app
from reference_bot.config import SCENARIOS_DIR
from reference_bot.scenario import load_directory, load_file, parse, resolve_transfers, step

from .conftest import ROOT, RULES, bot_settings, save_operator

SCENARIOS = load_directory(SCENARIOS_DIR)
ORDERS = SCENARIOS["order-assistant"]
TEXT = lambda value: {"contentType": "text", "value": value}  # noqa: E731


def all_replies(scenario):
    for state in scenario.states.values():
        yield from state.replies
        yield from state.holding if state.slow else ()
        yield from state.fallback or ()
    yield from scenario.greeting
    yield from scenario.fallback or ()
    yield from scenario.non_text


def yaml_of(text: str):
    return yaml.safe_load(textwrap.dedent(text))


def nested_types(payload):
    yield payload["contentType"]
    for child in (*payload.get("cards", []), *payload.get("offers", [])):
        yield from nested_types(child)


def test_the_shipped_scenarios_are_listed_by_id_bot():
    assert set(SCENARIOS) == {"order-assistant", "hello"}
    assert len(SCENARIOS["hello"].states) == 1


def test_the_order_assistant_uses_every_payload_type_and_quick_replies():
    types = {t for r in all_replies(ORDERS) if r["type"] == "message" for t in nested_types(r["payload"])}
    assert types >= {"text", "card/content", "bundle/card", "product-offer", "bundle/product-offer", "file"}
    assert any(r.get("quickReplies") for r in all_replies(ORDERS))


def test_the_order_assistant_nudges_after_minutes_of_silence():
    replies = ORDERS.states["menu"].replies
    waits = [i for i, r in enumerate(replies) if r["type"] == "await" and r["duration"]["unit"] == "minutes"]
    assert waits and replies[waits[0] + 1]["type"] == "message"
    assert "still there" in replies[waits[0] + 1]["payload"]["value"]


def test_the_order_assistant_transfers_with_a_timeout_then_apologises_and_closes():
    replies = list(ORDERS.states["transfer"].replies)
    kinds = [r["type"] for r in replies]
    at = kinds.index("transfer")
    assert 15 <= timeout_seconds(replies[at]["transferOptions"]["timeout"]) <= 60
    assert kinds[at + 1 :] == ["message", "close"]
    assert replies[at - 1]["type"] == "await"  # messages are separated by awaits


def test_the_order_assistant_answers_non_text_payloads_politely():
    result = step(
        ORDERS,
        "menu",
        {"contentType": "file", "fileName": "a.png", "mimeType": "image/png", "url": "https://x.example/a.png"},
    )
    assert result.state == "menu"
    assert "only read text" in result.replies[0]["payload"]["value"]


def test_the_first_message_starts_the_scenario_unless_it_already_matches():
    assert step(ORDERS, None, TEXT("Hi")).state == "menu"
    assert step(ORDERS, None, TEXT("where is my parcel?")).state == "ask_order_number"


def test_quick_reply_values_keywords_patterns_and_anywhere_transitions():
    assert step(ORDERS, "menu", TEXT("Today's offers")).state == "offers"
    assert step(ORDERS, "menu", TEXT("I want a REFUND")).state == "returns"
    assert step(ORDERS, "ask_order_number", TEXT("it is 654321 I think")).state == "order_status"
    assert step(ORDERS, "offers", TEXT("let me talk to a human")).state == "handover"


def test_an_unmatched_message_gets_the_fallback_and_stays():
    result = step(ORDERS, "offers", TEXT("blue"))
    assert result.state == "offers"
    assert result.replies[0]["payload"]["value"].startswith("Sorry, I didn't get")


def test_a_slow_state_answers_with_its_holding_message_and_defers_the_rest():
    result = step(ORDERS, "ask_order_number", TEXT("123456"))
    assert [r["payload"]["value"] for r in result.replies] == [
        "Thanks! Let me look order 123456 up in our system, it takes a few seconds."
    ]
    assert result.deferred[0]["payload"]["value"].startswith("Found it: order 123456 left")


# --- visitor data (prequalification) ---------------------------------------------------------


def texts(result):
    return [r["payload"]["value"] for r in result.replies if r["type"] == "message"]


def test_a_question_keeps_the_valid_answer_and_writes_it_into_later_replies():
    result = step(ORDERS, "ask_order_number", TEXT("it is 654321 I think"))
    assert (result.state, result.variables) == ("order_status", {"order_number": "654321"})
    assert "order 654321" in texts(result)[0]


def test_a_question_is_asked_again_once_by_default_then_given_up():
    first = step(ORDERS, "ask_order_number", TEXT("it is in my mailbox somewhere"))
    assert first.state == "ask_order_number#1"
    assert "6-digit order number" in texts(first)[0]
    second = step(ORDERS, first.state, TEXT("still looking"))  # attempts: 2 (the default), otherwise: menu
    assert (second.state, second.variables) == ("menu", {})
    assert texts(second)[0] == "What can I do for you?"


@pytest.mark.parametrize("declined", ["no", "Nope.", "I'd rather not", "I\u2019d rather not say", "skip"])
def test_a_question_declined_is_not_asked_again(declined):
    assert step(ORDERS, "ask_order_number", TEXT(declined)).state == "menu"  # its otherwise, at once


def test_declining_or_asking_for_a_person_again_on_the_way_to_one_transfers_with_what_was_collected():
    handover = step(ORDERS, "menu", TEXT("I want to talk to a human"))
    assert handover.state == "handover"
    # asked again while being asked the order number: no more questions
    again = step(ORDERS, handover.state, TEXT("human"), handover.variables)
    assert again.state == "transfer" and [r["type"] for r in again.replies].count("transfer") == 1
    # the order number given, then the email declined: on to the transfer, the order number handed over
    given = step(ORDERS, "handover", TEXT("654321"))
    assert given.state == "ask_email"
    declined = step(ORDERS, given.state, TEXT("I'd rather not"), given.variables)
    assert declined.state == "transfer" and declined.variables == {"order_number": "654321"}
    assert any("654321" in text for text in texts(declined))  # the summary for the human
    french = ORDERS.in_language("fr")
    assert step(french, "ask_email", TEXT("non merci")).state == "transfer"
    assert step(french, "handover", TEXT("je veux un conseiller")).state == "transfer"


def test_each_kind_finds_its_value_in_what_the_visitor_wrote():
    scenario = parse(
        yaml_of(
            """
            idBot: kinds
            name: Kinds
            start: email
            states:
              email: {ask: {variable: email, kind: email, then: phone, otherwise: phone}, replies: [{text: "Email?"}]}
              phone: {ask: {variable: phone, kind: phone, then: order, otherwise: order}, replies: [{text: "Phone?"}]}
              order: {ask: {variable: order, kind: order_number, then: note, otherwise: note}, replies: [{text: "N?"}]}
              note: {ask: {variable: note, kind: text, then: done, otherwise: done}, replies: [{text: "More?"}]}
              done: {replies: [{text: "{email} {phone} {order} {note}"}]}
            """
        )
    )
    known = {}
    for state, said in [
        ("email", "sure: Ada.Lovelace+shop@example.co.uk."),
        ("phone", "call +33 6 12 34 56 78 please"),
        ("order", "order A-20931"),
        ("note", "  the box was damaged  "),
    ]:
        result = step(scenario, state, TEXT(said), known)
        known = result.variables
    assert known == {
        "email": "Ada.Lovelace+shop@example.co.uk",
        "phone": "+33 6 12 34 56 78",
        "order": "20931",
        "note": "the box was damaged",
    }
    assert texts(result) == ["Ada.Lovelace+shop@example.co.uk +33 6 12 34 56 78 20931 the box was damaged"]
    assert step(scenario, "email", TEXT("ada at example dot com")).state == "email#1"  # not an email


def test_the_handover_prequalifies_skips_what_is_known_and_sums_it_up_before_the_transfer():
    asked = step(ORDERS, "menu", TEXT("Talk to a person"))
    assert (asked.state, asked.variables) == ("handover", {})
    assert "order number" in texts(asked)[0]
    # the order number given while tracking: the handover does not ask it again
    known = {"order_number": "123456"}
    skipped = step(ORDERS, "order_status", TEXT("I want a person"), known)
    assert skipped.state == "ask_email"
    done = step(ORDERS, "ask_email", TEXT("ada@example.com"), skipped.variables)
    kinds = [r["type"] for r in done.replies]
    summary = done.replies[kinds.index("transfer") - 1]["payload"]["value"]
    assert summary == "Here is what I'll pass on to our team: order number: 123456; email: ada@example.com"
    # no data given (none, then the email declined): no summary, the transfer still happens
    bare = step(ORDERS, "ask_email", TEXT("no"), {})
    assert bare.state == "transfer" and "summary" not in " ".join(texts(bare))
    assert [r["type"] for r in bare.replies][:3] == ["message", "await", "transfer"]
    assert step(ORDERS, "handover", TEXT("none")).state == "ask_email"


def test_a_filled_in_message_longer_than_iadvize_shows_is_cut_to_fit():
    scenario = parse(
        yaml_of(
            """
            idBot: long
            name: Long
            start: ask
            states:
              ask: {ask: {variable: note, kind: text, then: echo, otherwise: echo}, replies: [{text: "Say it"}]}
              echo: {replies: [{text: "You said: {note} {note} {note}"}]}
            """
        )
    )
    said = texts(step(scenario, "ask", TEXT("x" * 500)))[0]
    assert len(said) == 450 and said.endswith("…")


# --- languages -------------------------------------------------------------------------------


def test_the_operators_language_picks_the_texts_and_its_quick_replies_and_keywords():
    french = ORDERS.in_language("fr")
    assert ORDERS.languages == ("en", "fr")
    hello = step(french, None, TEXT("Bonjour"))
    assert texts(hello)[0] == "Que puis-je faire pour vous ?"
    assert hello.replies[0]["quickReplies"][0]["value"] == "Suivre ma commande"
    assert step(french, "menu", TEXT("Suivre ma commande")).state == "ask_order_number"
    assert step(french, "menu", TEXT("je veux un remboursement")).state == "returns"
    assert step(french, "offers", TEXT("je veux parler à un conseiller")).state == "handover"
    tracked = step(french, "ask_order_number", TEXT("c'est le 123456"))
    assert tracked.deferred[0]["payload"]["value"].startswith("Trouvée : la commande 123456")
    # a language the scenario does not come in: its first one
    assert ORDERS.in_language("de") is ORDERS.in_language("en")
    assert ORDERS.in_language(None).greeting == ORDERS.greeting


def test_every_text_of_the_shipped_scenario_differs_between_its_languages():
    english, french = ORDERS.in_language("en"), ORDERS.in_language("fr")
    pairs = list(zip(all_replies(english), all_replies(french), strict=True))
    same = [a for a, b in pairs if a["type"] == "message" and a["payload"].get("contentType") == "text" and a == b]
    assert same == []


def test_transfers_resolve_to_the_rule_with_that_label_else_the_first_and_are_dropped_without_rules():
    transfer = [{"type": "transfer", "distributionRule": "returns desk"}, {"type": "close"}]
    assert resolve_transfers(transfer, RULES)[0]["distributionRule"] == RULES[1]["id"]
    unknown = [{"type": "transfer", "distributionRule": "Billing"}]
    assert resolve_transfers(unknown, RULES)[0]["distributionRule"] == RULES[0]["id"]
    assert resolve_transfers(transfer, []) == [{"type": "close"}]


# --- load errors ---------------------------------------------------------------------------

MINIMAL = """
idBot: tiny
name: Tiny
start: a
states:
  a:
    replies:
      - text: "Hi"
"""


def write(tmp_path, text, name="bot.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path, text) -> ScenarioError:
    with pytest.raises(ScenarioError) as raised:
        load_file(write(tmp_path, text))
    return raised.value


def test_the_minimal_scenario_loads(tmp_path):
    assert load_file(write(tmp_path, MINIMAL)).states["a"].replies == (
        {"type": "message", "payload": {"contentType": "text", "value": "Hi"}},
    )


def test_invalid_yaml_is_reported_with_its_line(tmp_path):
    error = load_error(tmp_path, "idBot: x\nstates: [a\n")
    assert error.source.endswith("bot.yaml")
    assert error.where.startswith("line 3") and "not valid YAML" in error.what


def test_a_problem_is_reported_with_the_line_it_is_on(tmp_path):
    text = MINIMAL + "    transitions:\n      - keywords: [go]\n        goto: nowhere\n"
    error = load_error(tmp_path, text)
    assert (
        str(error) == f"{tmp_path / 'bot.yaml'}:11: states.a.transitions[0].goto: unknown state 'nowhere' (states: a)"
    )
    error = load_error(tmp_path, MINIMAL.replace("start: a\n", ""))  # a key missing: where its mapping starts
    assert (error.where, error.line) == ("start", None) or error.line == 2


@pytest.mark.parametrize(
    "where, line, written",
    [
        ("states.a.transitions[0].pattern", 10, "    transitions:\n      - pattern: '(a+)\\1'\n        goto: a\n"),
        ("states.a.ask.pattern", 9, "    ask: {variable: v, kind: text, pattern: '(?=x)y', then: a, otherwise: a}\n"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_at_load_with_its_line(tmp_path, where, line, written):
    error = load_error(tmp_path, MINIMAL + written)
    assert (error.where, error.line) == (where, line)
    assert "not a regular expression RE2 can run" in error.what and "backreferences or lookarounds" in error.what


def test_patterns_take_linear_time_and_see_a_bounded_prefix_of_the_visitor_s_text(tmp_path):
    from reference_bot.scenario import MATCHED_CHARS

    asking = load_file(write(tmp_path, MINIMAL + "    ask: {variable: email, kind: email, then: a, otherwise: a}\n"))
    ask = asking.states["a"].ask
    # the attack that froze the bot for 31 s with Python's re: 130,000 characters with no @ in them
    assert ask.value_in("a." * 65_000) is None
    assert ask.value_in("écrivez à émile.zola@exemple.fr merci") == "émile.zola@exemple.fr"  # any script
    assert ask.value_in("x" * MATCHED_CHARS + " ada@example.com") is None  # past the cap: not read
    assert ask.value_in("x" * (MATCHED_CHARS - 20) + " ada@example.com") == "ada@example.com"


def test_a_message_over_450_characters_is_refused_where_it_was_written(tmp_path):
    error = load_error(tmp_path, MINIMAL.replace('"Hi"', "x" * 451))
    assert error.where == "states.a.replies[0].text"
    assert "451 characters" in error.what and "450" in error.what


@pytest.mark.parametrize("timeout", ["3s", "61s", "2min"])
def test_a_transfer_timeout_outside_5_to_60_seconds_is_refused(tmp_path, timeout):
    text = MINIMAL.replace('- text: "Hi"', f"- transfer: {{rule: any, timeout: {timeout}}}")
    error = load_error(tmp_path, text)
    assert error.where == "states.a.replies[0].transfer.timeout"
    assert "outside the 5-60 s" in error.what


def test_a_transition_to_an_unknown_state_is_refused(tmp_path):
    text = MINIMAL + "    transitions:\n      - keywords: [go]\n        goto: nowhere\n"
    error = load_error(tmp_path, text)
    assert (error.where, error.what) == ("states.a.transitions[0].goto", "unknown state 'nowhere' (states: a)")


def test_an_unknown_start_state_is_refused(tmp_path):
    assert load_error(tmp_path, MINIMAL.replace("start: a", "start: b")).where == "start"


def test_bare_yes_and_no_keywords_get_a_hint(tmp_path):
    text = MINIMAL + "    transitions:\n      - keywords: [yes, no]\n        goto: a\n"
    error = load_error(tmp_path, text)
    assert error.where == "states.a.transitions[0].keywords" and "quote them" in error.what


def test_an_invalid_payload_is_reported_inside_the_reply(tmp_path):
    text = MINIMAL.replace('- text: "Hi"', "- payload: {contentType: file, fileName: a.pdf}")
    error = load_error(tmp_path, text)
    assert error.where == "states.a.replies[0].payload.mimeType" and error.what == "is required"


def test_an_unknown_key_lists_the_allowed_ones(tmp_path):
    error = load_error(tmp_path, MINIMAL.replace("name: Tiny", "name: Tiny\ncolour: blue"))
    assert error.where == "colour" and "allowed: idBot, name, start, states" in error.what


def test_two_files_with_the_same_id_bot_are_refused(tmp_path):
    write(tmp_path, MINIMAL, "one.yaml")
    write(tmp_path, MINIMAL, "two.yaml")
    with pytest.raises(ScenarioError) as raised:
        load_directory(tmp_path)
    assert raised.value.where == "idBot" and "one.yaml" in raised.value.what


def test_a_greeting_may_not_transfer_or_close(tmp_path):
    error = load_error(tmp_path, MINIMAL + "greeting: [close]\n")
    assert error.where == "greeting"


LANGUAGES = """
idBot: both
name: Both
languages: [en, fr]
start: a
states:
  a:
    replies:
      - text: {en: Hello, fr: Bonjour}
"""


def test_a_text_missing_in_one_of_the_languages_is_refused_where_it_is(tmp_path):
    error = load_error(tmp_path, LANGUAGES.replace("{en: Hello, fr: Bonjour}", "{en: Hello}"))
    assert error.where == "states.a.replies[0].text"
    assert error.what == "has texts in en but not in fr: give all of en, fr"
    error = load_error(tmp_path, LANGUAGES.replace("[en, fr]", "[english]"))
    assert error.where == "languages" and "two-letter" in error.what


def test_a_problem_in_one_language_says_which(tmp_path):
    error = load_error(tmp_path, LANGUAGES.replace("fr: Bonjour", "fr: " + "b" * 451))
    assert error.where == "states.a.replies[0].text" and error.what.endswith("(in fr)")
    error = load_error(tmp_path, LANGUAGES.replace("start: a", "start: b"))  # the file's, in any language
    assert error.where == "start" and "(in " not in error.what


def test_a_placeholder_must_name_a_variable_some_state_asks_for(tmp_path):
    error = load_error(tmp_path, MINIMAL.replace('"Hi"', '"Hi {emial}"'))
    assert error.where == "states.a.replies[0].text"
    assert error.what == "{emial} is not a variable any state asks for (variables: none: no state asks for any)"


@pytest.mark.parametrize(
    "ask, where, what",
    [
        ("{variable: email, kind: mail, then: a, otherwise: a}", "states.a.ask.kind", "must be one of email, phone"),
        ("{variable: Email, kind: email, then: a, otherwise: a}", "states.a.ask.variable", "lower_case"),
        ("{variable: email, kind: email, then: b, otherwise: a}", "states.a.ask.then", "unknown state 'b'"),
        ("{variable: email, kind: email, then: a}", "states.a.ask.otherwise", "is required"),
        ("{variable: n, kind: text, pattern: '(', then: a, otherwise: a}", "states.a.ask.pattern", "not a valid"),
        ("{variable: n, kind: text, attempts: 0, then: a, otherwise: a}", "states.a.ask.attempts", "1 to 10"),
    ],
)
def test_a_bad_question_is_refused_where_it_is(tmp_path, ask, where, what):
    error = load_error(tmp_path, MINIMAL.replace("  a:\n", f"  a:\n    ask: {ask}\n"))
    assert error.where == where and what in error.what


def test_parse_accepts_data_directly():
    scenario = parse({"idBot": "d", "name": "D", "start": "s", "states": {"s": {"replies": [{"await": "800ms"}]}}})
    assert scenario.states["s"].replies[0]["duration"] == {"unit": "millis", "value": 800}


def test_a_bad_scenario_stops_the_app_at_start_up(tmp_path):
    write(tmp_path, MINIMAL.replace("start: a", "start: b"))
    with pytest.raises(ScenarioError) as raised:
        create_app(bot_settings(tmp_path, SCENARIOS_DIR=str(tmp_path)))
    assert str(raised.value).endswith("bot.yaml:4: start: unknown state 'b' (states: a)")


def test_serve_refuses_a_bad_scenario_with_the_file_path_and_problem(tmp_path):
    write(tmp_path, MINIMAL.replace('"Hi"', "y" * 500))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "serve",
            "--port",
            "0",
            "--scenarios",
            str(tmp_path),
            "--db",
            str(tmp_path / "db.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "bot.yaml:8: states.a.replies[0].text: message is 500 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_example_in_the_template_readme_is_a_valid_scenario(tmp_path):
    readme = (ROOT / "reference_bot" / "README.md").read_text(encoding="utf-8")
    example = load_file(write(tmp_path, re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)))
    assert example.id_bot == "opening-hours"
    assert step(example, "ask", TEXT("Lyon please")).state == "lyon"


def test_the_prequalification_and_languages_examples_of_the_template_readme_work():
    readme = (ROOT / "reference_bot" / "README.md").read_text(encoding="utf-8")
    _, asking, languages = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)[:3]]
    frame = {"idBot": "x", "name": "X"}
    asking = parse({**frame, **asking, "start": "ask_email", "states": {**asking["states"], "transfer": MENU}})
    given = step(asking, "ask_email", TEXT("sure, ada@example.com"))
    assert (given.state, given.variables) == ("transfer", {"email": "ada@example.com"})
    assert step(asking, "ask_email", TEXT("later")).replies[0]["payload"]["value"].startswith("That doesn't look")
    languages = parse(
        {**frame, **languages, "start": "menu", "states": {**languages["states"], "ask_order_number": MENU}}
    )
    assert step(languages.in_language("fr"), "menu", TEXT("mon colis")).state == "ask_order_number"


MENU = {"replies": [{"text": "Hello"}]}


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"REFERENCE_BOT_MAX_BODY_BYTES": "lots"},
            "error: REFERENCE_BOT_MAX_BODY_BYTES must be a whole number, got 'lots'",
        ),
        (
            {"REFERENCE_BOT_SCENARIOS": "/nonexistent/scenarios"},
            "error: /nonexistent/scenarios: scenario directory does not exist",
        ),
    ],
)
def test_serve_refuses_bad_settings_with_the_variable_named(tmp_path, env, message):
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--port", "0", "--db", str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert (result.returncode, result.stderr.strip()) == (2, message)


def serve_with_database(tmp_path, how: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--port", "0", *(["--db", url] if how == "--db" else [])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **({} if how == "--db" else {"REFERENCE_BOT_DATABASE": url})},
    )


@pytest.mark.parametrize("how", ["--db", "REFERENCE_BOT_DATABASE"])
def test_serve_refuses_a_database_url_it_cannot_use_rather_than_write_a_file_named_after_it(tmp_path, how):
    result = serve_with_database(tmp_path, how, "mysql://user@host:3306/bot")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {how}: the bot cannot keep its state in a mysql:// database; give an SQLite file path "
        "(such as instance/bot.sqlite3) or a postgresql://user:password@host:5432/name URL"
    )
    assert list(tmp_path.iterdir()) == []  # no file named mysql:/... left behind


def test_serve_says_in_one_line_why_it_cannot_reach_a_postgresql_server(tmp_path):
    with socket.socket() as closed:  # a port nobody listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = serve_with_database(tmp_path, "--db", f"postgresql://bot:s3cret@127.0.0.1:{port}/bot")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot use the database PostgreSQL: connection failed")
    assert "Connection refused" in line and "s3cret" not in line
    assert list(tmp_path.iterdir()) == []


def test_an_operator_whose_scenario_file_was_removed_gets_a_409_that_says_what_to_do(tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    write(scenarios, MINIMAL)
    write(scenarios, MINIMAL.replace("idBot: tiny", "idBot: other"), "other.yaml")
    client = create_app(bot_settings(tmp_path, SCENARIOS_DIR=str(scenarios))).test_client()
    save_operator(client, id_bot="tiny")
    (scenarios / "bot.yaml").unlink()
    client = create_app(bot_settings(tmp_path, SCENARIOS_DIR=str(scenarios))).test_client()
    response = client.get("/bots/ha-101/conversation-first-messages")
    assert response.status_code == 409
    assert response.get_json()["detail"].endswith("PUT the operator with another external.idBot")
    assert client.get("/bots/ha-101").get_json()["external"]["idBot"] == "tiny"  # still readable to fix it


def test_a_greeting_may_wait_between_messages_but_only_messages_are_sent(tmp_path):
    scenario = load_file(write(tmp_path, MINIMAL + 'greeting: [{text: "Hi"}, {await: 1s}, {text: "Ask me"}]\n'))
    assert [r["payload"]["value"] for r in scenario.greeting] == ["Hi", "Ask me"]


def test_an_editor_url_must_be_a_url_and_an_empty_description_is_empty(tmp_path):
    assert load_error(tmp_path, MINIMAL + "editorUrl: 123\n").where == "editorUrl"
    assert load_file(write(tmp_path, MINIMAL + "description:\n")).description == ""


def test_a_state_the_scenario_no_longer_has_starts_it_over():
    assert step(ORDERS, "deleted_state", TEXT("Hi")).state == "menu"


def test_a_non_text_first_message_does_not_start_the_scenario():
    result = step(ORDERS, None, {"contentType": "file", "fileName": "a", "mimeType": "image/png", "url": "u"})
    assert result.state is None and "only read text" in result.replies[0]["payload"]["value"]


def test_a_visitor_s_free_text_is_kept_as_plain_text_bounded():
    from reference_bot.scenario import MAX_VARIABLE_CHARS

    scenario = parse(yaml_of("""
        idBot: note
        name: Note
        start: ask
        states:
          ask: {ask: {variable: note, kind: text, then: done, otherwise: done}, replies: [{text: "Anything to add?"}]}
          done: {replies: [{text: "Noted: {note}"}]}
        """))  # fmt: skip
    said = "<b>Call</b> me\u202e at javascript:alert(1) or see https://phish.example/login, re:order ok " + "x" * 500
    kept = step(scenario, "ask", TEXT(said))
    note = kept.variables["note"]
    assert note.startswith("Call me at [link] or see [link] re:order ok xxx") and len(note) == MAX_VARIABLE_CHARS
    assert texts(kept) == [f"Noted: {note}"]  # repeated as kept: no markup, no link, no invisible character

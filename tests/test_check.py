"""``check``: each rule caught on a bot broken for it, and nothing reported on correct bots."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from flask import Flask, jsonify

from harness.client import BotClient
from harness.conformance.iadvize_api import IAdvizeAPI
from harness.conformance.probes import Exploration, check
from harness.conformance.rules import RULES, WHAT_IT_COSTS
from tests.test_iadvize_api import API_RULES

from . import connectors, third_party_bot
from .conftest import LoopbackServer

SECRET = "check-secret"
SMALL = Exploration(depth=2, conversations=3)

# fault of the third-party bot -> the one rule it must break
BROKEN = {
    "empty_echo": "echo-empty-body",
    "health_ok_text": "healthcheck",
    "errors_on_text": "http-error",
    "drops_id_operator": "envelope",
    "card_without_actions": "payload-shape",
    "answers_its_echo": "echo-loop",
    "replies_on_create": "replies-on-create",
    "message_600": "message-too-long",
    "message_300": "message-long",
    "transfer_timeout_3s": "transfer-timeout-range",
    "transfer_timeout_10s": "transfer-timeout-short",
    "transfer_to_unknown_rule": "transfer-unknown-rule",
    "rules_missing_from_strategy": "availability-shape",
    "strategy_with_unknown_rule": "availability-shape",
    "greeting_2500ms": "first-messages-latency",
    "first_answer_11s": "latency-budget",
    "messages_without_await": "missing-await",
    "ignores_signatures": "signature-not-enforced",
    "checks_only_get_signatures": "signature-not-enforced",
    "crashes_on_malformed_signatures": "signature-check-crash",
    "shows_its_errors": "error-shown-to-visitor",
    "crashes_on_files": "unsupported-payload-crash",
    "not_idempotent": "retry-not-idempotent",
}


def run(app, secret=SECRET):
    with LoopbackServer(app) as server:
        return check(BotClient(server.url, secret=secret), secret, exploration=SMALL)


def test_every_rule_has_a_broken_bot():
    assert set(BROKEN.values()) | set(REAL_WORLD_RULES) | set(API_RULES) == set(RULES)


@pytest.mark.parametrize("fault", BROKEN, ids=[f"{r}:{f}" for f, r in BROKEN.items()])
def test_a_bot_broken_for_one_rule_gets_exactly_that_rule(fault):
    app = third_party_bot.make_app(None if fault == "ignores_signatures" else SECRET, frozenset({fault}))
    report = run(app)
    assert report.stopped is None
    assert {f.rule for f in report.findings} == {BROKEN[fault]}, [f.as_dict() for f in report.findings]
    finding = report.findings[0]
    assert finding.severity == RULES[BROKEN[fault]].severity and finding.message


def test_a_correct_third_party_bot_gets_no_finding():
    report = run(third_party_bot.make_app(SECRET))
    assert report.findings == []
    outcomes = {c.transfer for c in report.conversations}
    assert outcomes == {None, "succeeded", "failed"}  # the escalation probe saw both transfer outcomes


def test_the_reference_bot_gets_no_finding(make_bot):
    report = run(make_bot(IADVIZE_SECRET=SECRET))
    assert report.findings == [] and report.stopped is None
    assert sorted(report.scenarios) == ["hello", "order-assistant"]  # both scenarios probed
    # the one-state scenario never transfers, and check says it could not make it
    assert report.notes == [
        "scenario hello never transferred to a human (12 ways of asking tried), so the "
        "transfer rules were not exercised on it; if it does transfer, give its words with "
        "--escalation TEXT"
    ]
    assert {c.transfer for c in report.conversations} == {None, "succeeded", "failed"}


def test_findings_name_where_and_why():
    report = run(third_party_bot.make_app(SECRET, frozenset({"message_600"})))
    finding = report.findings[0].as_dict()
    assert finding["rule"] == "message-too-long" and finding["endpoint"] == "messages"
    assert finding["message"] == "replies[3] is 600 characters"
    assert finding["evidence"].startswith("xxxx") and finding["conversation"]


def test_a_bot_that_is_down_is_said_once_not_a_hang():
    report = check(BotClient("http://127.0.0.1:9"), exploration=SMALL)
    assert report.stopped.startswith("cannot reach the bot at http://127.0.0.1:9: connection failed")
    assert report.findings == [] and report.conversations == []


def test_the_command_writes_json_junit_and_html_and_exits_1_on_errors(tmp_path):
    app = third_party_bot.make_app(None, frozenset({"answers_its_echo"}))
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "xml", "html")}
    with LoopbackServer(app) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "check",
                "--provider-url",
                server.url,
                "--json",
                str(paths["json"]),
                "--junit",
                str(paths["xml"]),
                "--html",
                str(paths["html"]),
                "--depth",
                "1",
                "--max-conversations",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("1 error, 0 warnings in ") and first.endswith(f" — {server.url}")  # one rule broken
    assert "ERROR echo-loop (" in result.stdout
    report = json.loads(paths["json"].read_text())
    assert [(f["rule"], f["message"]) for f in report["findings"]] == [
        ("echo-loop", "2 replies to its own message"),
        ("echo-loop", "2 replies to a human operator's message"),
    ]
    assert set(report["findings"][0]) == {
        "rule",
        "severity",
        "endpoint",
        "conversation",
        "message",
        "evidence",
        "count",
        "reproduce",
        "probe",
        "form",
    }
    assert report["findings"][0]["probe"] == "explore: Hi > Talk to a human (faq-v2)"  # its probe and scenario
    assert report["findings"][0]["reproduce"].startswith("curl -sS -i -X POST --max-time 10 ")  # unsigned: no secret
    assert report["summary"]["errors"] == 2
    failures = ET.parse(paths["xml"]).getroot().findall(".//failure")
    assert len(failures) == 1  # one JUnit case per rule
    assert "<td>echo-loop</td>" in paths["html"].read_text()


@pytest.mark.slow
def test_the_command_checks_the_embedded_bot_with_no_finding():
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--secret", SECRET], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert (
        first.startswith("0 errors, 0 warnings in ") and " — the embedded reference bot at http://127.0.0.1:" in first
    )
    assert "; no finding" in result.stdout


class Misbehaving(BaseHTTPRequestHandler):
    """Answers every call the same wrong way: set ``mode`` on a subclass."""

    mode = "html"

    def log_message(self, *args):
        pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.mode == "hang":
            time.sleep(12)
            return
        body, status, kind = (
            (b"<html>maintenance</html>", 200, "text/html")
            if self.mode == "html"
            else (b"Internal Server Error", 500, "text/plain")
        )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer


@pytest.mark.parametrize(
    "mode, rule, message",
    [
        ("html", "http-error", "the answer is not JSON"),
        ("crash", "http-error", "answered HTTP 500"),
    ],
)
def test_a_bot_answering_html_or_crashing_gets_one_finding_per_endpoint(mode, rule, message):
    handler = type("Handler", (Misbehaving,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = check(BotClient(f"http://127.0.0.1:{server.server_port}"), exploration=SMALL)
    finally:
        server.shutdown()
        server.server_close()
    assert report.notes[0].startswith("no scenario listed (GET http://127.0.0.1:")
    errors = [f for f in report.findings if f.rule == rule]
    assert len({f.endpoint for f in errors}) == len(errors)  # one finding per endpoint, whatever the calls
    # each configuration endpoint says what its failure costs the customer
    costs = {f.endpoint: f.message.removeprefix(message) for f in errors}
    assert costs["first-messages"] == costs["messages"] == ""
    assert costs["external-bots"].endswith("no bot can be created")
    assert costs["availability-strategies"].endswith("it always appears offline")
    assert {f.endpoint for f in errors} == {
        "external-bots",
        "bot.save",
        "bot.read",
        "availability-strategies",
        "first-messages",
        "conversations",
        "messages",
    }  # all still tried
    assert {f.rule for f in report.findings} == {rule, "unsupported-payload-crash", "healthcheck"}  # file, health too
    assert len(report.notes) == 1  # no scenario; no escalation sought from a bot that answers no message
    assert all("<html>" not in f.evidence for f in report.findings)  # a line of the page, never the page


def test_a_bot_that_hangs_on_everything_is_given_up_after_two_budgets():
    handler = type("Handler", (Misbehaving,), {"mode": "hang"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = BotClient(f"http://127.0.0.1:{server.server_port}")
        report = check(client, exploration=SMALL)
    finally:
        server.shutdown()
        server.server_close()
    # the first two calls (the preflight's) waited out their budget; everything after was not sent
    assert client.give_up.timeouts == {"external-bots": 1, "conversations": 1}
    assert "*" in client.give_up.given_up
    assert [(f.rule, f.endpoint) for f in report.findings] == [("latency-budget", "external-bots")]
    assert any(note.startswith("the bot stopped answering") for note in report.notes)


def test_a_bot_listing_no_scenario_fails_the_json_and_junit_reports_too(tmp_path):
    from harness.conformance.reports import write_json, write_junit

    app = Flask("empty")
    app.get("/external-bots")(lambda: jsonify([]))
    report = run(app, secret=None)
    write_json(report, tmp_path / "r.json")
    write_junit(report, tmp_path / "r.xml")
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["notes"][:1] == [
        "no scenario listed (GET /external-bots answered []): the probes ran with an operator linked to 'default'"
    ]
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.find("testcase[@name='set-up']/system-out").text == "\n".join(summary["notes"])


def test_failed_scripts_are_junit_cases(tmp_path, make_bot):
    from harness.conformance.reports import write_junit
    from harness.conformance.scripts import load_scripts

    (tmp_path / "s.convo.yaml").write_text(
        "name: greets in French\nsteps: [{visitor: Hi, expect: {text_contains: Bonjour}}]\n", encoding="utf-8"
    )
    with LoopbackServer(make_bot()) as server:
        report = check(BotClient(server.url), scripts=load_scripts(tmp_path), exploration=Exploration(1, 1))
    write_junit(report, tmp_path / "r.xml")
    case = ET.parse(tmp_path / "r.xml").getroot().find("testcase[@name='greets in French']")
    assert case.find("failure").get("message").startswith("greets in French: step 1")
    from harness.conformance.reports import table

    shown = table(report, width=200).splitlines()
    assert "ERROR script (1 script): a conversation script of yours did not go as it expects (its file below)" in (
        shown
    )


def test_odd_durations_and_greetings_are_judged_without_crashing():
    from harness.client import Exchange
    from harness.conformance.rules import Observation, judge

    huge = {"type": "transfer", "distributionRule": "r", "transferOptions": {"timeout": {"unit": [], "value": 10**400}}}
    exchange = Exchange("messages", "POST", "u", None, "t", 1.0, 200, {"replies": [huge, "x"]})
    assert {f.rule for f in judge(Observation(exchange, "visitor", "c", ["r"]))} == set()
    assert judge(Observation(exchange, "retry", "c", ["r"], previous=exchange)) == []  # same answer: no finding
    greeting = Exchange(
        "first-messages",
        "GET",
        "u",
        None,
        "t",
        1.0,
        200,
        {"replies": [{"type": "transfer", "distributionRule": "nope"}]},
    )
    assert judge(Observation(greeting, "greeting", "c", ["r"])) == []  # iAdvize ignores non-messages there


# --- connectors written the way real ones are (tests/connectors.py) -------------------------------

REAL_WORLD_RULES = {  # rules that only bots outside third_party_bot break (tests/connectors.py)
    "signature-header-case",
    "transfer-announced-not-done",
    "conversation-crosstalk",
}
GET_FORGED = ("a forged GET was accepted (200) [{}]", "external-bots")
POST_FORGED = ("a forged POST was accepted (200) [{}]", "messages")
WRONG_HEX, OTHER_SECRET, SHA1 = (
    "sha256= and 64 wrong hex digits",
    "a signature made with another secret",
    "the right signature behind sha1= instead of sha256=",
)
MALFORMED = (  # a check that looks only at the header's presence accepts these too
    "the right hex digits without sha256=",
    NON_HEX := "sha256= and 64 characters that are not hex",  # as long as a right one: length-only accepts it
    "sha256= and the first 32 of the right hex digits",
)
# Python's http.server reads the first of two headers (a length-only check accepts it); Werkzeug, like Node, joins
# them with ", " (a buffer compare then crashes)
TWO_HEADERS = "two signature headers, both wrong"


def forged(*forgeries: str, get=GET_FORGED, post=POST_FORGED) -> set:
    """The signature-not-enforced findings for forgeries accepted on a GET and on a POST."""
    found = set()
    for forgery in forgeries:
        for template, endpoint in (get, post):
            other = "another query string" if endpoint != "messages" else "another body"
            found.add(("signature-not-enforced", endpoint, template.format(forgery.format(other=other))))
    return found


def findings(report) -> set:
    return {(f.rule, f.endpoint, f.message + (f" [{f.form}]" if f.form else "")) for f in report.findings}


def test_a_signature_compared_by_length_only_is_caught():
    with connectors.serve(secret=SECRET, signature="length") as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert findings(report) == forged(WRONG_HEX, "a valid signature of {other}", OTHER_SECRET, NON_HEX, TWO_HEADERS)


def test_a_signature_check_that_crashes_on_a_malformed_header_is_caught_once_per_form():
    app = third_party_bot.make_app(SECRET, frozenset({"crashes_on_malformed_signatures"}))
    report = run(app)
    crashed = (
        "no signature",
        *MALFORMED,
        TWO_HEADERS,
    )  # the well-formed forgeries (sha1=, wrong digits...) got their 403
    page = "text/html: 500 Internal Server Error"  # Flask's error page, as excerpted
    assert findings(report) == {
        ("signature-check-crash", endpoint, f"a forged {method} was answered 500 [{what}]")
        for what in crashed
        for method, endpoint in (("GET", "external-bots"), ("POST", "messages"))
    }
    assert {f.evidence for f in report.findings} == {page}
    assert not any("signature" in note for note in report.notes)  # a crash is judged, not "could not be judged"


def test_a_signature_checked_for_presence_only_is_caught():
    with connectors.serve(secret=SECRET, signature="presence") as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert findings(report) == forged(
        WRONG_HEX, "a valid signature of {other}", SHA1, OTHER_SECRET, *MALFORMED, TWO_HEADERS
    )


def test_a_header_looked_up_case_sensitively_is_caught():
    with connectors.serve(secret=SECRET, signature="case-sensitive") as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert findings(report) == {
        (
            "signature-header-case",
            endpoint,
            f"a correctly signed {method} was refused (401) because its header was written x-iadvize-signature",
        )
        for method, endpoint in (("GET", "external-bots"), ("POST", "messages"))
    }


def test_a_partial_connector_is_judged_on_what_answers():
    """No configuration endpoints (Express's HTML 404), an echo answered after an escalation, no signature check."""
    from harness.conformance.probes import RULES_OF_OPERATOR

    with connectors.serve(
        secret=SECRET,
        signature="none",
        configuration=False,
        echo_after_escalation=True,
        rule=RULES_OF_OPERATOR[0]["id"],
    ) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert findings(report) == {
        ("http-error", "external-bots", f"answered HTTP 404: {WHAT_IT_COSTS['external-bots']}"),
        (
            "http-error",
            "bot.save",
            "answered HTTP 404: an admin cannot save the operator: no bot can be created or changed",
        ),
        ("http-error", "bot.read", "answered HTTP 404: an admin cannot open the operator's settings"),
        ("echo-loop", "messages", "1 reply to its own message"),
        ("echo-loop", "messages", "1 reply to a human operator's message"),
        *forged(
            "no signature",
            WRONG_HEX,
            "a valid signature of {other}",
            SHA1,
            OTHER_SECRET,
            *MALFORMED,
            TWO_HEADERS,
            get=("a forged GET was accepted (200) [{}]", "availability-strategies"),
        ),
    }
    errors = {f.endpoint: f.evidence for f in report.findings if f.rule == "http-error"}
    assert errors["external-bots"] == "text/html: Error / Cannot GET /external-bots"  # the page's words, not the page
    assert report.notes[0].startswith("no scenario listed (GET ")
    # every conversation probe ran, with check's own operator
    labels = {c.label.split(":")[0].split(" (")[0] for c in report.conversations}
    assert labels >= {
        "explore",
        "escalation, a human available",
        "escalation, nobody available",
        "a file from the visitor",
        "a long silence",
        "a retried message",
    }


def test_a_health_check_at_health_is_found_and_the_url_to_set_is_noted():
    with connectors.serve(secret=SECRET, health_path="/health") as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert report.findings == []
    assert f"the health check answers at {bot.url}/health, not at /healthcheck: set that URL" in "\n".join(report.notes)


def test_a_health_check_nowhere_is_the_healthcheck_finding():
    with connectors.serve(secret=SECRET, health_path=None) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert {(f.rule, f.endpoint) for f in report.findings} == {("healthcheck", "healthcheck")}
    assert not any("health check answers at" in note for note in report.notes)


def test_the_command_checks_the_health_check_where_healthcheck_url_says():
    with connectors.serve(secret=SECRET, health_path="/ops/ping") as bot:
        command = [sys.executable, "-m", "harness.cli", "check", "--provider-url", bot.url, "--secret", SECRET]
        given = subprocess.run(
            [*command, "--healthcheck-url", f"{bot.url}/ops/ping"], capture_output=True, text=True, timeout=180
        )
        missing = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert given.returncode == 0 and given.stdout.rstrip().endswith("no finding"), given.stdout + given.stderr
    assert "healthcheck" in missing.stdout and missing.returncode == 1, missing.stdout + missing.stderr


ANNOUNCED = "Please wait, I'm transferring you to an advisor."


def test_a_transfer_announced_and_never_sent_is_caught_and_the_words_are_not_blamed():
    with IAdvizeAPI() as api, connectors.serve(secret=SECRET, announcement=ANNOUNCED, transfers=False) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL, api=api, proactive_wait=1)
    assert findings(report) == {
        (
            "transfer-announced-not-done",
            "messages",
            "a transfer announced to the visitor, and none sent: in the answer, nor through iAdvize's API",
        )
    }  # and no holding-without-answer: "please wait" before a transfer promises no post
    assert report.findings[0].evidence == ANNOUNCED
    note = next(n for n in report.notes if "never transferred" in n)
    assert "--escalation" not in note  # the words worked: the bot did not


def test_please_wait_then_a_transfer_is_no_finding():
    with IAdvizeAPI() as api, connectors.serve(secret=SECRET, announcement=ANNOUNCED) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL, api=api, proactive_wait=1)
    assert report.findings == [] and {c.transfer for c in report.conversations} >= {"succeeded", "failed"}


def test_conversations_sent_to_the_session_opened_last_are_caught_once_with_the_words_that_leaked():
    with connectors.serve(secret=SECRET, assistant="last-opened", tickets=True) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    # the ticket number varies by itself: the rest of the answer is still compared, and is A's words after B's
    assert [(f.rule, f.message) for f in report.findings] == [
        (
            "conversation-crosstalk",
            "the answer to “Where is my order?” changed when another conversation had just said “xq zvbk qwpl?”; "
            "alone, it is “You asked 'Where is my order?', after 'Hi'. Ticket "
            + ALONE_TICKET.search(report.findings[0].message).group(1)
            + ".”",
        )
    ]
    assert report.findings[0].evidence.startswith("You asked 'Where is my order?', after 'xq zvbk qwpl?'. Ticket ")


ALONE_TICKET = re.compile(r"Ticket ([0-9a-f]{6})\.”$")


@pytest.mark.parametrize("tickets", [False, True], ids=["same-answers", "a-ticket-number-each-time"])
def test_a_bot_with_a_session_per_conversation_keeps_them_apart(tickets):
    with connectors.serve(secret=SECRET, assistant="sessions", tickets=tickets) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert report.findings == [] and not [n for n in report.notes if "varies" in n]
    interleaved = [c for c in report.conversations if c.label.startswith("two conversations at once: A, inter")]
    shown = [re.sub(r" Ticket [0-9a-f]{6}\.$", "", e.text) for e in interleaved[0].events if e.kind == "shown"]
    assert shown == [
        "Hello! Ask me about your order.",
        "You asked 'Hi'.",
        "You asked 'Where is my order?', after 'Hi'.",
    ]  # A's own words only, though B spoke in between


# escape sequences that clear the screen and recolour it, a carriage return, a right-to-left override, a lone
# surrogate (sent as the JSON escape \ud800: no UTF-8 file can hold it), then enough for message-too-long
HOSTILE = "\x1b[2J\x1b[31mred\r\u202eevil\ud800 \ufffe\ufeff " + "x" * 460


def test_a_bots_bytes_never_reach_the_terminal_raw_and_every_report_stays_valid(tmp_path):
    written = {name: tmp_path / name for name in ("c.json", "c.xml", "c.html", "v.json", "v.xml")}
    with connectors.serve(answer_text=HOSTILE, escalation_words=()) as bot:
        command = [sys.executable, "-m", "harness.cli"]
        checked = subprocess.run(
            [*command, "check", "--provider-url", bot.url, "--depth", "1", "--max-conversations", "2",
             "--json", written["c.json"], "--junit", written["c.xml"], "--html", written["c.html"]],
            capture_output=True, timeout=180,
        )  # fmt: skip
        verified = subprocess.run(
            [*command, "verify", "--provider-url", bot.url, "--junit", written["v.xml"], "--json", written["v.json"]],
            capture_output=True, timeout=180,
        )  # fmt: skip
    escaped = "\\x1b[2J\\x1b[31mred"  # then the carriage return, a space in a one-line evidence
    for result in (checked, verified):
        out = result.stdout.decode("utf-8")  # strict: a lone surrogate could not even have been written
        assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
        assert "message-too-long" in out and escaped in out and "\\u202eevil\\ud800 \\ufffe\\ufeff" in out
        assert not {"\x1b", "\r", "\u202e"} & set(out)
    for name in ("c.xml", "v.xml"):
        root = ET.parse(written[name]).getroot()  # well-formed XML 1.0
        said = " ".join([*root.itertext(), *(v for e in root.iter() for v in e.attrib.values())])
        assert escaped in said and "\x1b" not in said
    for name in ("c.json", "v.json"):
        document = json.loads(written[name].read_text("utf-8"))  # JSON escapes what it must: the text as sent
        kept = repr(document)  # the strings as loaded: JSON escaped the control characters, the reader gets them
        assert "\\x1b[2J\\x1b[31mred" in kept and "\\u202eevil\\ud800" in kept
    page = written["c.html"].read_text("utf-8")
    assert escaped in page and "\x1b" not in page


def test_escalation_in_french_only_is_found_and_its_transfer_judged():
    with connectors.serve(secret=SECRET, escalation_words=("conseiller",), transfer_timeout=3) as bot:
        report = check(BotClient(bot.url, secret=SECRET), SECRET, exploration=SMALL)
    assert findings(report) == {("transfer-timeout-range", "messages", "replies[1] transfer timeout is 3 s")}
    transferred = [c for c in report.conversations if c.transfer]
    assert {c.transfer for c in transferred} == {"succeeded", "failed"}
    assert all("conseiller" in c.label for c in transferred)


def test_the_bots_own_escalation_words_and_language_are_used():
    with connectors.serve(secret=SECRET, escalation_words=("parlez-moi",)) as bot:
        client = BotClient(bot.url, secret=SECRET)
        report = check(
            client,
            SECRET,
            exploration=Exploration(1, 1, language="fr", escalations=["parlez-moi"], id_operator="ha-424242"),
        )
        saved = bot.connector.operators
    assert report.findings == [] and report.notes == []
    first = next(c for c in report.conversations if c.label.startswith("escalation, a human"))
    assert first.label == "escalation, a human available: 'parlez-moi' (shop)"  # tried first, and it worked
    assert list(saved) == ["ha-424242"]  # the operator given, not one of check's own
    visitor_words = {e.text for c in report.conversations for e in c.events if e.kind == "visitor"}
    assert "Bonjour" in visitor_words and "Hi" not in visitor_words  # the probes speak the operator's language


def test_an_escalation_quick_reply_is_tapped_first():
    report = run(third_party_bot.make_app(SECRET))
    first = next(c for c in report.conversations if c.label.startswith("escalation, a human"))
    assert first.label == "escalation, a human available: 'Talk to a human' (faq-v2)"


@pytest.mark.parametrize(
    "options, endpoint, rule, budget",
    [
        ({"message_delay": 60}, "messages", "latency-budget", 10),
        ({"greeting_delay": 3}, "first-messages", "first-messages-latency", 2),
    ],
    ids=["hangs-on-messages", "slow-greeting"],
)
def test_a_bot_that_stops_answering_one_endpoint_is_given_up_after_two_budgets(options, endpoint, rule, budget):
    with connectors.serve(secret=SECRET, **options) as bot:
        client = BotClient(bot.url, secret=SECRET)
        report = check(client, SECRET, exploration=SMALL)
    assert [(f.rule, f.endpoint) for f in report.findings] == [(rule, endpoint)]
    finding = report.findings[0]
    assert finding.count == 2 and finding.message.startswith(
        f"2 calls with no complete answer within the {budget} s budget: given up after 2 in a row, "
    )
    # what the run waited for: two budgets on that endpoint, nothing else timed out: within 30 s
    assert client.give_up.timeouts == {endpoint: 2}
    assert sum(n * client.give_up.budgets[e] for e, n in client.give_up.timeouts.items()) <= 30
    assert client.give_up.given_up[endpoint] > 0  # later calls were not made
    # the rest of the conversation still ran
    assert any(e.kind == "call" and e.exchange.ok for c in report.conversations for e in c.events)


# --- what the reports show ------------------------------------------------------------------------


def test_the_table_wraps_long_messages_instead_of_cutting_them():
    from harness.conformance.reports import table

    report = run(third_party_bot.make_app(SECRET, frozenset({"message_600"})))
    narrow = table(report, width=80)
    assert max(map(len, narrow.splitlines())) <= 80
    [finding] = report.findings
    words = narrow.split()
    assert all(word in words for word in finding.message.split())  # every word of the message is there
    label = report.label(finding.conversation)  # "explore: ..." has an x of its own
    assert narrow.count("x") - label.count("x") == finding.evidence.count("x") == 77  # all the evidence, wrapped


def test_the_reproduce_command_of_a_finding_gets_the_same_status():
    with LoopbackServer(third_party_bot.make_app(SECRET, frozenset({"errors_on_text"}))) as server:
        report = check(BotClient(server.url, secret=SECRET), SECRET, exploration=SMALL)
        finding = next(f for f in report.findings if f.rule == "http-error")
        # signed when it runs, from $IADVIZE_SECRET: no valid signature in a report or a CI log to replay
        assert 'X-iAdvize-Signature: sha256=$(printf %s "$signed" | openssl' in finding.reproduce
        assert not re.search(r"sha256=[0-9a-f]{64}", finding.reproduce)
        answer = subprocess.run(["bash", "-c", finding.reproduce], capture_output=True, text=True, timeout=30,
                                env={**os.environ, "IADVIZE_SECRET": SECRET})  # fmt: skip
    assert answer.stdout.splitlines()[0].split()[1] == "500"


def test_the_html_report_reads_as_a_page(tmp_path):
    import re

    from harness.conformance.reports import write_html

    report = run(third_party_bot.make_app(SECRET, frozenset({"answers_its_echo"})))
    write_html(report, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    summary = re.search(r"<table class='summary'>(.*?)</table>", page).group(1)
    assert "<tr><th>errors</th><td>2</td></tr>" in summary and "{" not in summary  # a table, not a dict
    anchors = set(re.findall(r"<details id='(conversation-\d+)'>", page))
    links = re.findall(r"<a href='#(conversation-\d+)'>([^<]+)</a>", page)
    assert links and all(anchor in anchors for anchor, _ in links)  # each finding opens its transcript
    assert [label for _, label in links] == [
        "explore: Hi &gt; Talk to a human (faq-v2)",
        "escalation, a human available: &#x27;Talk to a human&#x27; (faq-v2)",
    ]
    assert "<summary>escalation, nobody available: &#x27;Talk to a human&#x27; (faq-v2) <small>" in page
    assert "<summary>reproduce</summary><code>signed=" in page and "curl -sS -i -X POST" in page


def test_escalation_phrasings_are_the_language_s_then_english_and_english_for_a_language_without_any():
    from harness.conformance.phrasings import ESCALATIONS, escalations

    assert escalations("de")[: len(ESCALATIONS["de"])] == ESCALATIONS["de"]
    assert escalations("de")[len(ESCALATIONS["de"]) :] == ESCALATIONS["en"]
    assert escalations("xx") == ESCALATIONS["en"]  # Exploration(language=...) built in code, not by the CLI


CALLBACK = """
idBot: callback
name: Callback
start: menu
anywhere: [{keywords: [human, agent, person], goto: ask_phone}]
states:
  menu: {replies: [{text: "Hello! Ask me anything."}]}
  ask_phone:
    ask: {variable: phone, kind: phone, then: transfer, otherwise: menu}
    replies: [{text: "QUESTION"}]
  transfer:
    replies: [{transfer: {rule: any, timeout: 30s}}, {text: "Nobody is free."}]
"""


@pytest.mark.parametrize(
    "question, transferred",
    [("What number can we call?", True), ("Which colour is the sky where you live?", False)],
)
def test_the_escalation_probe_answers_what_the_bot_asks_before_a_transfer_or_says_what_it_could_not(
    tmp_path, make_bot, question, transferred
):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "callback.yaml").write_text(CALLBACK.replace("QUESTION", question), encoding="utf-8")
    with LoopbackServer(make_bot(SCENARIOS_DIR=str(tmp_path / "scenarios"))) as server:
        report = check(BotClient(server.url), exploration=Exploration(language="en"))
    escalations = [c for c in report.conversations if c.label.startswith("escalation, a human available")]
    assert any(c.transfer == "succeeded" for c in escalations) is transferred
    notes = " ".join(report.notes)
    if transferred:  # the probe answered a phone number, then the bot transferred
        assert "+33 6 12 34 56 78" in escalations[-1].transcript() and "never transferred" not in notes
    else:
        assert f"after being asked, it asked {question!r}, which the probe could not answer" in notes

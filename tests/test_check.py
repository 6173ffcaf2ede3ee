"""``check``: each rule caught on a bot broken for it, and nothing reported on correct bots."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from flask import Flask, jsonify

from harness.check import Exploration, check
from harness.client import BotClient
from harness.rules import RULES

from . import third_party_bot
from .conftest import LoopbackServer

SECRET = "check-secret"
SMALL = Exploration(depth=2, conversations=3)

# fault of the third-party bot -> the one rule it must break
BROKEN = {
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
    "crashes_on_files": "unsupported-payload-crash",
    "not_idempotent": "retry-not-idempotent",
}


def run(app, secret=SECRET):
    with LoopbackServer(app) as server:
        return check(BotClient(server.url, secret=secret), secret, exploration=SMALL)


def test_every_rule_has_a_broken_bot():
    assert set(BROKEN.values()) == set(RULES)


@pytest.mark.parametrize("fault", BROKEN, ids=[f"{r}:{f}" for f, r in BROKEN.items()])
def test_a_bot_broken_for_one_rule_gets_exactly_that_rule(fault):
    app = third_party_bot.make_app(None if fault == "ignores_signatures" else SECRET, frozenset({fault}))
    report = run(app)
    assert report.setup_error is None
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
    assert report.findings == [] and report.setup_error is None
    assert len(report.conversations) >= 2 * 6  # both scenarios probed


def test_findings_name_where_and_why():
    report = run(third_party_bot.make_app(SECRET, frozenset({"message_600"})))
    finding = report.findings[0].as_dict()
    assert finding["rule"] == "message-too-long" and finding["endpoint"] == "messages"
    assert finding["message"] == "replies[3] is 600 characters"
    assert finding["evidence"].startswith("xxxx") and finding["conversation"]


def test_a_bot_that_is_down_is_a_setup_error_not_a_hang():
    report = check(BotClient("http://127.0.0.1:9"), exploration=SMALL)
    assert report.setup_error.startswith("GET /external-bots gave no scenario to link an operator to (GET ")
    assert "connection failed" in report.setup_error  # the cause, not only its consequence
    assert [f.rule for f in report.findings] == ["http-error"]


def test_the_command_writes_json_junit_and_html_and_exits_1_on_errors(tmp_path):
    app = third_party_bot.make_app(None, frozenset({"answers_its_echo"}))
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "xml", "html")}
    with LoopbackServer(app) as server:
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "check", "--provider-url", server.url, "--json",
             str(paths["json"]), "--junit", str(paths["xml"]), "--html", str(paths["html"]), "--depth", "1",
             "--max-conversations", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "echo-loop" in result.stdout and "2 errors, 0 warnings" in result.stdout
    report = json.loads(paths["json"].read_text())
    assert [(f["rule"], f["message"]) for f in report["findings"]] == [
        ("echo-loop", "2 replies to its own message"), ("echo-loop", "2 replies to a human operator's message")]
    assert set(report["findings"][0]) == {"rule", "severity", "endpoint", "conversation", "message", "evidence"}
    assert report["summary"]["errors"] == 2
    failures = ET.parse(paths["xml"]).getroot().findall(".//failure")
    assert len(failures) == 1  # one JUnit case per rule
    assert "<td>echo-loop</td>" in paths["html"].read_text()


@pytest.mark.slow
def test_the_command_checks_the_embedded_bot_with_no_finding():
    result = subprocess.run([sys.executable, "-m", "harness.cli", "check", "--secret", SECRET],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Checking the embedded reference bot at http://127.0.0.1:")
    assert result.stdout.rstrip().endswith("no finding")


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
        body, status, kind = (b"<html>maintenance</html>", 200, "text/html") if self.mode == "html" else \
            (b"Internal Server Error", 500, "text/plain")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer


@pytest.mark.parametrize("mode, rule, message", [
    ("html", "http-error", "the answer is not JSON"),
    ("crash", "http-error", "answered HTTP 500"),
    ("hang", "latency-budget", "no complete answer within the 10 s iAdvize waits"),
])
def test_a_bot_answering_html_crashing_or_hanging_is_reported_in_bounded_time(mode, rule, message):
    handler = type("Handler", (Misbehaving,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        report = check(BotClient(f"http://127.0.0.1:{server.server_port}"), exploration=SMALL)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert report.setup_error.startswith("GET /external-bots gave no scenario to link an operator to (")
    assert message in report.setup_error or "answered 500" in report.setup_error
    assert [(f.rule, f.message) for f in report.findings] == [(rule, message)]
    assert elapsed < 12  # one call, capped by its budget


def test_a_bot_listing_no_scenario_fails_the_json_and_junit_reports_too(tmp_path):
    from harness.check import write_json, write_junit

    app = Flask("empty")
    app.get("/external-bots")(lambda: jsonify([]))
    report = run(app, secret=None)
    write_json(report, tmp_path / "r.json")
    write_junit(report, tmp_path / "r.xml")
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["setup_error"] == \
        "GET /external-bots gave no scenario to link an operator to"
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None


def test_failed_scripts_are_junit_cases(tmp_path, make_bot):
    from harness.check import write_junit
    from harness.scripts import load_scripts

    (tmp_path / "s.convo.yaml").write_text("name: greets in French\nsteps: [{visitor: Hi, expect: "
                                           "{text_contains: Bonjour}}]\n", encoding="utf-8")
    with LoopbackServer(make_bot()) as server:
        report = check(BotClient(server.url), scripts=load_scripts(tmp_path), exploration=Exploration(1, 1))
    write_junit(report, tmp_path / "r.xml")
    case = ET.parse(tmp_path / "r.xml").getroot().find("testcase[@name='greets in French']")
    assert case.find("failure").get("message").startswith("greets in French: step 1")


def test_odd_durations_and_greetings_are_judged_without_crashing():
    from harness.client import Exchange
    from harness.rules import Observation, judge

    huge = {"type": "transfer", "distributionRule": "r",
            "transferOptions": {"timeout": {"unit": [], "value": 10**400}}}
    exchange = Exchange("messages", "POST", "u", None, "t", 1.0, 200, {"replies": [huge, "x"]})
    assert {f.rule for f in judge(Observation(exchange, "visitor", "c", ["r"]))} == set()
    assert judge(Observation(exchange, "retry", "c", ["r"], previous=exchange)) == []  # same answer: no finding
    greeting = Exchange("first-messages", "GET", "u", None, "t", 1.0, 200, {"replies": [
        {"type": "transfer", "distributionRule": "nope"}]})
    assert judge(Observation(greeting, "greeting", "c", ["r"])) == []  # iAdvize ignores non-messages there

"""``iadvize-harness check``: probe conversations through the simulated platform, judged by the rules.

The bot is set up as iAdvize would (its first scenario, an operator with two distribution
rules, saved with ``PUT /bots``), then driven through probe conversations that explore its
graph: every quick reply offered, breadth-first (bounded), an escalation phrase with a
human available and without, a file from the visitor, a long silence, and a retried
message. With a secret, an unsigned and a tampered call must both be refused.
"""

from __future__ import annotations

import html
import json
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from . import render
from .client import BotClient, Exchange, describe_failure, visitor_text
from .platform import Conversation, Event, SimulatedPlatform
from .rules import RULES, Finding, Observation, judge
from .wire import signature

RULES_OF_OPERATOR = [
    {"id": "3c9e1f5a-2b4d-4e6f-8a1b-0c2d3e4f5a01", "label": "Customer service"},
    {"id": "8d7c6b5a-4e3f-4a2b-9c1d-0e1f2a3b4c02", "label": "Returns desk"},
]
ESCALATION = "I would like to talk to a human, please"
VISITOR_FILE = {"contentType": "file", "fileName": "receipt.png", "mimeType": "image/png",
                "url": "https://files.example.com/receipt.png"}
THINK_SECONDS = 5.0  # simulated time a visitor takes to answer
MAX_SCENARIOS = 5


@dataclass
class Exploration:
    depth: int = 3  # quick replies followed in a row
    conversations: int = 12  # explored conversations at most


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    setup_error: str | None = None
    scripts: list[str] = field(default_factory=list)  # names of the scripts run

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def summary(self) -> dict:
        return {"setup_error": self.setup_error, "conversations": len(self.conversations),
                "findings": len(self.findings),
                "errors": len(self.errors), "warnings": len(self.findings) - len(self.errors),
                "calls": sum(len(c.calls) for c in self.conversations),
                "rules": sorted({f.rule for f in self.findings})}

    def as_dict(self) -> dict:
        return {"findings": [f.as_dict() for f in self.findings], "summary": self.summary()}


class Checker:
    def __init__(self, client: BotClient, secret: str | None = None, exploration: Exploration | None = None):
        self.client = client
        self.secret = secret
        self.exploration = exploration or Exploration()
        self.report = Report()
        self.id_operator = f"ha-{random.randint(900_000, 999_999)}"
        self.rule_ids = [r["id"] for r in RULES_OF_OPERATOR]
        self._seen: set[tuple[str, str, str]] = set()
        self._previous: dict[str, Exchange] = {}  # idMessage -> first answer

    # --- findings ------------------------------------------------------------------------

    def observe(self, exchange: Exchange, purpose: str, conversation: str = "", sent_payload=None) -> None:
        previous = None
        if exchange.endpoint == "messages" and isinstance(exchange.request_body, dict):
            id_message = (exchange.request_body.get("message") or {}).get("idMessage")
            previous = self._previous.get(id_message) if purpose == "retry" else None
            self._previous.setdefault(id_message, exchange)
        observation = Observation(exchange, purpose, conversation, self.rule_ids, sent_payload, previous)
        for finding in judge(observation):
            key = (finding.rule, finding.endpoint, finding.message)
            if key not in self._seen:  # the same fault met in many conversations is reported once
                self._seen.add(key)
                self.report.findings.append(finding)

    def _on_event(self, conversation: Conversation, event: Event) -> None:
        if event.kind == "call":
            body = event.exchange.request_body or {}
            sent = (body.get("message") or {}).get("payload") if event.purpose == "visitor" else None
            self.observe(event.exchange, event.purpose, conversation.id, sent)

    # --- the run -------------------------------------------------------------------------

    def run(self, scripts: list | None = None) -> Report:
        scenarios = self.client.exchange("external-bots", "GET", "/external-bots", "external-bots.response")
        self.observe(scenarios, "scenarios")
        listed = scenarios.body if isinstance(scenarios.body, list) else []
        ids = [s["idBot"] for s in listed if isinstance(s, dict) and isinstance(s.get("idBot"), str)]
        if not ids:
            why = f" ({describe_failure(scenarios)})" if not scenarios.ok else ""  # the cause, on the console too
            self.report.setup_error = f"GET /external-bots gave no scenario to link an operator to{why}"
            return self.report
        for id_bot in ids[:MAX_SCENARIOS]:  # one operator per scenario: each graph is explored
            self.id_operator = f"ha-{random.randint(900_000, 999_999)}"
            if not self.set_up(id_bot):
                return self.report
            self.explore()
            self.escalate(available=True)
            self.escalate(available=False)
            self.send_a_file()
            self.stay_silent()
            self.retry_a_message()
        if self.secret:
            self.probe_signatures()
        for script in scripts or []:
            self.run_script(script)
        return self.report

    def run_script(self, script) -> None:
        """A conversation script: its exchanges judged by the rules, its failed expectations reported."""
        from .client import BotError
        from .scripts import ScriptError, ScriptFailure, run_script

        self.rule_ids = [r.get("id") for r in script.distribution_rules]  # the script's operator has its own rules
        try:
            self.report.conversations.append(run_script(script, self.client, on_event=self._on_event))
        except ScriptFailure as failure:
            self.report.conversations.append(failure.conversation)
            self.report.findings.append(Finding("script", "error", "messages", failure.conversation.id,
                                                str(failure), script.source))
        except BotError as error:
            self.report.findings.append(Finding("script", "error", error.exchange.endpoint, "",
                                                f"{script.name}: could not set the operator up: {error}",
                                                script.source))
        except ScriptError as error:
            self.report.findings.append(Finding("script", "error", "", "", f"{script.name}: {error}", script.source))
        self.report.scripts.append(script.name)

    def set_up(self, id_bot: str) -> bool:
        saved = self.client.exchange("bot.save", "PUT", f"/bots/{self.id_operator}", "bot.response", body={
            "name": "iadvize-harness check", "pseudo": "Bot", "language": "en",
            "distributionRules": RULES_OF_OPERATOR, "external": {"idBot": id_bot}})
        self.observe(saved, "operator")
        if saved.status is None or not 200 <= saved.status < 300:
            self.report.setup_error = f"PUT /bots/{self.id_operator} failed: {saved.error or saved.status}"
            return False
        self.observe(self.client.exchange("availability-strategies", "GET", "/availability-strategies",
                                          "availability-strategies.response", params={"idOperator": self.id_operator}),
                     "availability")
        return True

    def platform(self, available: bool = False) -> SimulatedPlatform:
        return SimulatedPlatform(self.client, self.id_operator, RULES_OF_OPERATOR, rule_available=available,
                                 on_event=self._on_event)

    def conversation(self, platform: SimulatedPlatform) -> Conversation:
        chat = platform.open_chat()
        platform.start(chat)
        self.report.conversations.append(chat)
        return chat

    def explore(self) -> None:
        """Follow every quick reply offered, breadth-first, within the exploration's bounds."""
        paths: deque[list[str]] = deque([["Hi"]])
        explored = 0
        while paths and explored < self.exploration.conversations:
            path = paths.popleft()
            platform = self.platform()
            chat = self.conversation(platform)
            answer = None
            for text in path:
                answer = platform.visitor_says(chat, text, after=THINK_SECONDS)
            explored += 1
            if answer is None or not answer.ok or chat.closed or len(path) > self.exploration.depth:
                continue
            offered = [q.get("value") for r in answer.body["replies"] if r.get("type") == "message"
                       for q in r.get("quickReplies") or [] if isinstance(q.get("value"), str)]
            paths.extend([*path, value] for value in dict.fromkeys(offered))

    def escalate(self, available: bool) -> None:
        platform = self.platform(available)
        chat = self.conversation(platform)
        platform.visitor_says(chat, "Hi", after=THINK_SECONDS)
        platform.visitor_says(chat, ESCALATION, after=THINK_SECONDS)
        platform.wait(chat, 90)  # the transfer's outcome plays out, within its 60 s at most
        if chat.handed_over and not chat.closed:
            platform.visitor_says(chat, "Thanks Sam, my parcel is late", after=THINK_SECONDS)

    def send_a_file(self) -> None:
        platform = self.platform()
        chat = self.conversation(platform)
        platform.visitor_says(chat, payload=VISITOR_FILE, after=THINK_SECONDS)
        platform.visitor_says(chat, "Hi", after=THINK_SECONDS)
        platform.visitor_says(chat, payload=VISITOR_FILE, after=THINK_SECONDS)

    def stay_silent(self) -> None:
        platform = self.platform()
        chat = self.conversation(platform)
        platform.visitor_says(chat, "Hi", after=THINK_SECONDS)
        platform.wait(chat, 15 * 60)  # nudges, then iAdvize's 5-minute close

    def retry_a_message(self) -> None:
        platform = self.platform()
        chat = self.conversation(platform)
        first = platform.visitor_says(chat, "Hi", after=THINK_SECONDS)
        if first is not None:
            platform.resend(chat, first)

    def probe_signatures(self) -> None:
        """An unsigned GET, and an unsigned and a tampered POST to a conversation that exists."""
        unsigned = BotClient(self.client.base_url, secret=None)
        self.observe(unsigned.exchange("external-bots", "GET", "/external-bots", None), "unsigned")
        started = self.client.exchange("conversations", "POST", "/conversations", None, body={
            "idOperator": self.id_operator, "idConversation": str(uuid.uuid4()), "history": []})
        ours = started.body.get("idConversation") if isinstance(started.body, dict) else None
        if not isinstance(ours, str):
            return
        path = f"/conversations/{quote(ours, safe='')}/messages"
        body = {"idOperator": self.id_operator, "message": visitor_text("Hi")}
        self.observe(unsigned.exchange("messages", "POST", path, None, body=body), "unsigned", ours)
        data = json.dumps(body).encode()
        forged = signature.sign(self.secret, data + b" ")  # a valid signature, of another body
        tampered = unsigned.transmit("messages", "POST", path, "", data,
                                     {"Content-Type": "application/json", signature.HEADER: forged}, None,
                                     request_body=body)
        self.observe(tampered, "tampered", ours)


def check(client: BotClient, secret: str | None = None, scripts: list | None = None,
          exploration: Exploration | None = None) -> Report:
    return Checker(client, secret, exploration).run(scripts)


# --- reports ----------------------------------------------------------------------------------

COLUMNS = ("rule", "severity", "endpoint", "conversation", "message", "evidence")


def table(report: Report) -> str:
    if report.setup_error:
        return f"could not set the bot up: {report.setup_error}"
    summary = report.summary()
    head = (f"{summary['conversations']} conversations, {summary['calls']} calls: "
            f"{summary['errors']} errors, {summary['warnings']} warnings")
    if not report.findings:
        return head + "\nno finding"
    return head + "\n" + render.table(COLUMNS, [tuple(getattr(f, c) for c in COLUMNS) for f in report.findings])


def write_json(report: Report, path: Path) -> None:
    Path(path).write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_junit(report: Report, path: Path) -> None:
    import xml.etree.ElementTree as ET

    scripts_failed = {f.message.split(":", 1)[0] for f in report.findings if f.rule == "script"}
    failures = len({f.rule for f in report.errors if f.rule != "script"}) + len(scripts_failed) + bool(
        report.setup_error)
    suite = ET.Element("testsuite", name="iadvize-harness check", failures=str(failures),
                       tests=str(len(RULES) + len(report.scripts) + 1))
    setup = ET.SubElement(suite, "testcase", classname="check", name="set-up")
    if report.setup_error:
        ET.SubElement(setup, "failure", message=report.setup_error)
    for name in report.scripts:
        case = ET.SubElement(suite, "testcase", classname="script", name=name)
        found = [f for f in report.findings if f.rule == "script" and f.message.startswith(f"{name}:")]
        if found:
            ET.SubElement(case, "failure", message=found[0].message).text = found[0].evidence
    for rule in RULES.values():
        case = ET.SubElement(suite, "testcase", classname="check", name=rule.id)
        found = [f for f in report.findings if f.rule == rule.id]
        if found and rule.severity == "error":
            failure = ET.SubElement(case, "failure", message=found[0].message)
            failure.text = "\n".join(f"{f.conversation} {f.endpoint}: {f.message} {f.evidence}" for f in found)
        elif found:
            ET.SubElement(case, "system-out").text = "\n".join(f"warning: {f.message}" for f in found)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_html(report: Report, path: Path) -> None:
    def row(finding: Finding) -> str:
        cells = "".join(f"<td>{html.escape(str(getattr(finding, c)))}</td>" for c in COLUMNS)
        return f"<tr class='{html.escape(finding.severity)}'>{cells}</tr>"

    rows = "".join(map(row, report.findings)) or f"<tr><td colspan='{len(COLUMNS)}'>no finding</td></tr>"
    transcripts = "".join(f"<details><summary>{html.escape(c.id)}</summary><pre>{html.escape(c.transcript())}"
                          "</pre></details>" for c in report.conversations)
    Path(path).write_text(
        "<!doctype html><meta charset='utf-8'><title>iadvize-harness check</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}"
        ".error{background:#fde2e2}.warning{background:#fff5d6}</style>"
        f"<h1>iadvize-harness check</h1><p>{html.escape(json.dumps(report.summary()))}</p>"
        f"<table><tr>{''.join(f'<th>{c}</th>' for c in COLUMNS)}</tr>{rows}</table>"
        f"<h2>Conversations</h2>{transcripts}", encoding="utf-8")


def run(provider_url: str | None, secret: str | None, scripts_dir: str | None = None, json_path: str | None = None,
        junit_path: str | None = None, html_path: str | None = None, exploration: Exploration | None = None,
        out=None) -> int:
    """The command: check, print the findings table, write the reports; 0 unless an error-level finding."""
    import sys

    from .embedded import BotProcessError, EmbeddedBot

    out = out or sys.stdout
    scripts = []
    if scripts_dir:
        from .scripts import ScriptError, load_scripts

        try:
            scripts = load_scripts(Path(scripts_dir))
        except ScriptError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    embedded = None
    try:
        if provider_url is None:
            embedded = EmbeddedBot(secret=secret, workers=2)
            provider_url = embedded.start()
            print(f"Checking the embedded reference bot at {provider_url}", file=out)
        else:
            print(f"Checking {provider_url}", file=out)
        report = check(BotClient(provider_url, secret=secret), secret, scripts, exploration)
    except BotProcessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if embedded is not None:
            embedded.close()
    print(table(report), file=out)
    for path, write in ((json_path, write_json), (junit_path, write_junit), (html_path, write_html)):
        if path:
            write(report, Path(path))
    return 1 if report.errors or report.setup_error else 0

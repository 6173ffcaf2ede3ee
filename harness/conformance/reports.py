"""The findings of ``check``, written out: the terminal table, JSON, JUnit XML and a self-contained HTML page."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from harness import render
from harness.client import CALLS, NO_SCENARIO
from harness.conformance.probes import Report
from harness.conformance.rules import RULES, Finding

COLUMNS = ("rule", "severity", "endpoint", "conversation", "message", "evidence")
INDENT = "    "
# Errors that cost the most come first: forged calls answered, a bot talking to itself, visitors mixed up or
# misled; then the rest in the order found
FIRST = (
    "signature-not-enforced",
    "signature-check-crash",
    "echo-loop",
    "conversation-crosstalk",
    "error-shown-to-visitor",
    "transfer-announced-not-done",
)


def _message(finding: Finding) -> str:
    """A finding's message on its own, for JUnit and HTML: with the form that broke it and its count of calls."""
    counted = finding.count > 1 and "calls" not in finding.message
    said = finding.message + (f": {finding.form}" if finding.form else "")
    return said + (f" ({finding.count} calls)" if counted else "")


# What a finding that no rule makes says of itself: a script of the user's that did not go as it expects
NOT_A_RULE = {"script": "a conversation script of yours did not go as it expects (its file below)"}


def verdict(report: Report, bot: str) -> str:
    """The first line: the errors and warnings (a rule broken is one, however many calls broke it), in how many
    conversations, of which bot."""
    broken = {(f.rule, f.severity) for f in report.findings}
    errors, warnings = (sum(1 for _, severity in broken if severity == s) for s in ("error", "warning"))
    found = f"{render.count(errors, 'error')}, {render.count(warnings, 'warning')}"
    return f"{found} in {render.count(len(report.conversations), 'conversation')} — {bot}"


def table(report: Report, verbose: bool = False, width: int | None = None, bot: str = "") -> str:
    """The findings as the terminal shows them: the verdict, then one block per rule broken (errors first: the
    rule and what to fix, then each fault once with the count of calls, the forms and endpoints that showed it,
    and where), then what was probed, the notes and the coverage. Lines fit ``width`` without splitting a word."""
    if report.stopped:
        return report.stopped
    width = width or shutil.get_terminal_size((120, 24)).columns
    lines = [verdict(report, bot)] if bot else []
    for severity in ("error", "warning"):
        broken = dict.fromkeys(f.rule for f in report.findings if f.severity == severity)
        for rule in sorted(broken, key=lambda r: FIRST.index(r) if r in FIRST else len(FIRST)):
            lines += _block(report, rule, [f for f in report.findings if f.rule == rule and f.severity == severity],
                            width)  # fmt: skip
    lines.append(_probed(report))
    lines += [render.wrap(f"note: {note}", width, INDENT) for note in report.notes]
    lines += coverage_lines(report)
    if verbose and report.findings:
        lines.append("to reproduce (each fault's first call):")
        lines += [f"  {f.rule} ({f.endpoint}): {f.reproduce}" for f in report.findings if f.reproduce]
    return render.printable("\n".join(lines))


def _probed(report: Report) -> str:
    """What was probed: the scenarios, the scripts, the calls."""
    summary = report.summary()
    probed = [s for s in report.scenarios if s != NO_SCENARIO]  # none listed: a note says so instead
    parts = [f"{render.count(len(probed), 'scenario')} ({', '.join(probed)})"] if probed else []
    failed = sum(1 for f in report.findings if f.rule == "script")
    if report.scripts:
        parts.append(
            f"{render.count(len(report.scripts), 'script')} ({len(report.scripts) - failed} passed, {failed} failed)"
        )
    parts.append(render.count(summary["calls"], "call"))
    return "probed: " + ", ".join(parts) + ("" if report.findings else "; no finding")


def _block(report: Report, rule: str, found: list[Finding], width: int) -> list[str]:
    """One rule broken: its name, severity and why, then each distinct fault once (the forms and endpoints
    that showed it merged), where it was seen, and the evidence when it adds to the message."""
    calls = sum(f.count for f in found)
    why = RULES[rule].why if rule in RULES else NOT_A_RULE.get(rule, "")
    counted = render.count(calls, "script" if rule == "script" else "call")
    head = f"{found[0].severity.upper()}  {rule} ({counted})" + (f": {why}" if why else "")
    lines = [render.wrap(head, width, INDENT)]
    faults: dict[str, list[Finding]] = {}
    for finding in found:
        faults.setdefault(finding.message, []).append(finding)
    said_before: set[str] = set()  # evidence already shown in this block
    for message, alike in faults.items():
        # an endpoint is one word to the wrapping: "PUT /bots/:idOperator" is never split
        endpoints = list(
            dict.fromkeys(CALLS.get(f.endpoint, f.endpoint).replace(" ", render.NBSP) for f in alike if f.endpoint)
        )
        forms = list(dict.fromkeys(f.form for f in alike if f.form))
        n = sum(f.count for f in alike)
        said = (f"[{', '.join(endpoints)}] " if endpoints else "") + message
        said += f", {render.count(n, 'call')}" if n > 1 and len(faults) > 1 else ""
        if forms:
            said += ": " + "; ".join(forms)
        lines.append(render.wrap("- " + said, width, INDENT + "  ", INDENT))
        where = list(dict.fromkeys(report.label(f.conversation) or f.conversation for f in alike if f.conversation))
        if where and not forms:
            more = f" (and {len(where) - 1} more)" if len(where) > 1 else ""
            lines.append(render.wrap(f"in: {where[0]}{more}", width, INDENT + "  ", INDENT + "  "))
        shown = alike[0].evidence
        # the forms are what broke it: evidence enough; and evidence shown once in a block is not shown again
        if shown and not forms and not _repeats(shown, message) and shown not in said_before:
            said_before.add(shown)
            # the bot's own text: a run longer than the line may wrap (ids and URLs elsewhere never do)
            lines.append(render.wrap(f"evidence: {shown}", width, INDENT + "  ", INDENT + "  ", split_words=True))
    return lines


def _repeats(evidence: str, message: str) -> bool:
    """The evidence says nothing the message does not: one holds the other, once cuts are undone."""
    core, said = evidence.removesuffix("...").strip(), " ".join(message.split())
    return not core or core in said or said in core


def coverage_lines(report: Report) -> list[str]:
    """Per scenario with quick replies: how many the probes followed, then each dead end on a line."""
    lines = []
    for found in report.coverage:
        if not found.menus:
            continue
        lines.append(
            f"coverage of {found.scenario}: {found.followed} of {found.offered} quick replies followed, "
            f"{render.count(len(found.menus), 'menu')}, {render.count(len(found.dead_ends), 'dead end')}"
        )
        lines += [f"  dead end ({d.kind}) at {d.where!r}: {d.why}" for d in found.dead_ends]
    for found in report.coverage:
        if found.states:
            reached, missed = found.states["reached"], found.states["not_reached"]
            lines.append(f"states of {found.scenario} reached: {len(reached)} of {len(reached) + len(missed)}")
            lines += [f"  not reached: {s['state']} ({s['file']}:{s['line']})" for s in missed]
            taken, untaken = (
                found.states.get("transitions reached", []),
                found.states.get("transitions not reached", []),
            )
            if taken or untaken:
                lines.append(f"transitions of {found.scenario} taken: {len(taken)} of {len(taken) + len(untaken)}")
                lines += [
                    f"  not taken: {_origin(t['from'])} -> {t['to']}{_on(t)} ({t['file']}:{t['line']})" for t in untaken
                ]
    return lines


def _coverage_html(report: Report) -> str:
    """Per scenario: the graph as the probes found it (each menu, each quick reply and where it led), dead ends
    marked."""
    esc, parts = html.escape, []
    for found in report.coverage:
        dead = {(d.where, d.kind) for d in found.dead_ends}
        rows = []
        for menu, choices in found.menus.items():
            marks = ", ".join(kind for where, kind in sorted(dead) if where == menu)
            led = {e.choice: e.target for e in found.edges if e.source == menu}
            for n, choice in enumerate(choices):
                first = f"<td rowspan='{len(choices)}'>{esc(menu)}</td>" if n == 0 else ""
                mark = f"<td rowspan='{len(choices)}' class='dead'>{esc(marks)}</td>" if n == 0 else ""
                rows.append(
                    f"<tr>{first}<td>{esc(choice)}</td><td>{esc(led.get(choice, '(not followed)'))}</td>{mark}</tr>"
                )
        lines = "".join(f"<li>{esc(d.kind)} at {esc(repr(d.where))}: {esc(d.why)}</li>" for d in found.dead_ends)
        parts.append(
            f"<h3>{esc(found.scenario)}: {found.followed} of {found.offered} quick replies followed</h3>"
            + (f"<ul class='dead-ends'>{lines}</ul>" if lines else "<p>no dead end</p>")
            + "<table class='coverage'><tr>"
            + "".join(f"<th>{h}</th>" for h in ("bot message", "quick reply", "led to", "dead end"))
            + "</tr>"
            + ("".join(rows) or "<tr><td colspan='4'>no quick reply offered</td></tr>")
            + "</table>"
        )
    return "".join(parts) or "<p>no scenario probed</p>"


def write_json(report: Report, path: Path) -> None:
    """Writes the report to ``path`` as JSON: each finding with its probe, then the summary."""
    render.write_json(report.as_dict(), path)


def write_junit(report: Report, path: Path) -> None:
    """Writes the report to ``path`` as JUnit XML: a test case for the set-up, one per script run, one per rule.

    A rule of severity error fails when it found something; a warning rule's findings go to its output.
    """
    import xml.etree.ElementTree as ET

    scripts_failed = {f.message.split(":", 1)[0] for f in report.findings if f.rule == "script"}
    failures = len({f.rule for f in report.errors if f.rule != "script"}) + len(scripts_failed) + bool(report.stopped)
    suite = ET.Element(
        "testsuite",
        name="iadvize-harness check",
        failures=str(failures),
        tests=str(len(RULES) + len(report.scripts) + 1),
    )
    setup = ET.SubElement(suite, "testcase", classname="check", name="set-up")
    if report.stopped:
        ET.SubElement(setup, "failure", message=report.stopped)
    elif report.notes:
        ET.SubElement(setup, "system-out").text = "\n".join(report.notes)
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
            failure.text = "\n".join(
                f"{report.label(f.conversation) or f.endpoint}: {_message(f)} {f.evidence}\n  reproduce: {f.reproduce}"
                for f in found
            )
        elif found:
            ET.SubElement(case, "system-out").text = "\n".join(f"warning: {_message(f)}" for f in found)
    render.printable_xml(suite)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


_STYLE = (
    "body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;"
    "vertical-align:top}.error{background:#fde2e2}.warning{background:#fff5d6}"
    "code{font-size:85%;word-break:break-all}pre{white-space:pre-wrap}"
)


def write_html(report: Report, path: Path) -> None:
    """The findings (each linked to its conversation's transcript), a summary table, every transcript."""

    def esc(text: str) -> str:
        return html.escape(render.printable(text))

    anchors = {c.first_id: f"conversation-{i + 1}" for i, c in enumerate(report.conversations)}
    anchors.update({c.id: f"conversation-{i + 1}" for i, c in enumerate(report.conversations)})

    def row(finding: Finding) -> str:
        where = report.label(finding.conversation) or finding.conversation
        anchor = anchors.get(finding.conversation)
        link = f"<a href='#{anchor}'>{esc(where)}</a>" if anchor else esc(where)
        reproduce = (
            f"<details><summary>reproduce</summary><code>{esc(finding.reproduce)}</code></details>"
            if finding.reproduce
            else ""
        )
        return (
            f"<tr class='{esc(finding.severity)}'><td>{esc(finding.rule)}</td><td>{esc(finding.severity)}</td>"
            f"<td>{esc(finding.endpoint)}</td><td>{link}</td><td>{esc(_message(finding))}</td>"
            f"<td>{esc(finding.evidence)}{reproduce}</td></tr>"
        )

    summary = report.summary()
    facts = [
        ("stopped", summary["stopped"]),
        ("scenarios probed", ", ".join(summary["scenarios"]) or "none"),
        ("conversations", summary["conversations"]),
        ("calls", summary["calls"]),
        ("errors", summary["errors"]),
        ("warnings", summary["warnings"]),
        ("rules broken", ", ".join(summary["rules"]) or "none"),
        *(("note", n) for n in summary["notes"]),
    ]
    facts_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts if v is not None)
    rows = "".join(map(row, report.findings)) or f"<tr><td colspan='{len(COLUMNS)}'>no finding</td></tr>"
    transcripts = "".join(
        f"<details id='{anchors[c.id]}'><summary>{esc(c.label or c.id)} <small>({esc(c.id)})</small></summary>"
        f"<pre>{esc(c.transcript())}</pre></details>"
        for c in report.conversations
    )
    Path(path).write_text(
        f"<!doctype html><meta charset='utf-8'><title>iadvize-harness check</title><style>{_STYLE}</style>"
        f"<h1>iadvize-harness check</h1><table class='summary'>{facts_html}</table><h2>Findings</h2>"
        f"<table class='findings'><tr>{''.join(f'<th>{c}</th>' for c in COLUMNS)}</tr>{rows}</table>"
        f"<h2>Coverage</h2>{_coverage_html(report)}"
        f"<h2>Conversations</h2>{transcripts}"
        "<script>for (const a of document.querySelectorAll('a[href^=\"#conversation-\"]')) a.addEventListener("
        "'click', () => { document.querySelector(a.getAttribute('href')).open = true; });</script>",
        encoding="utf-8",
    )


def _origin(state: str) -> str:
    # a scenario's `anywhere` transitions are offered in every state
    return "any state (anywhere)" if state == "anywhere" else state


def _on(transition: dict) -> str:
    return f", on {transition['on']}" if transition.get("on") else ""

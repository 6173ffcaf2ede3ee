"""The verification in plain words: one line per interaction, and on failure what to fix.

Pact's mismatches are precise but written for Pact users; a bot provider needs "the
field idOperator is missing" or "this message must get no replies (the echo rule)".
The gateway's record of each exchange adds what Pact does not see: timeouts, the body
the bot really sent, and where it departs from the wire model.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.client import excerpt
from harness.render import count, printable, printable_xml, wrap
from harness.render import write_json as write_json_file
from harness.verify.gateway import Attempt
from harness.wire.model import DATE_TIME_PATTERN

ECHO_RULE = (
    "a message whose author is an operator is the bot's own message posted back by iAdvize (or a human's "
    "after a transfer): it must get no replies, or the bot answers itself forever"
)


@dataclass
class InteractionResult:
    """One interaction of the verification: whether it passed, why not, and what its set-up could not do."""

    description: str
    states: list[str]
    passed: bool
    reasons: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # what its state set-up could not do (it ran all the same)
    warnings: list[str] = field(default_factory=list)  # discouraged, not failing
    reproduce: str = ""  # a curl command sending the interaction's call again
    pending: bool = False  # the broker says it is new for this provider: a failure does not fail the run

    @property
    def status(self) -> str:
        """``pass``, ``fail``, or ``pending`` (failed, but pending)."""
        return "pass" if self.passed else "pending" if self.pending else "fail"


def outcomes(results: dict, attempts: list[Attempt]) -> list[InteractionResult]:
    """Pact's per-interaction results joined, in order, with the gateway's attempts."""
    interactions = list(results.get("interactionResults", []))
    paired = attempts if len(attempts) == len(interactions) else [None] * len(interactions)
    found = []
    for result, attempt in zip(interactions, paired, strict=True):
        reasons = _reasons(result.get("mismatch"), attempt)
        warnings = list(attempt.warnings) if attempt else []
        if attempt and attempt.undocumented and reasons and _answered(attempt.exchange) and not attempt.failures:
            # an answer the documentation does not rule out is no failure: each reason becomes a warning, with why
            warnings = [f"{reason} ({attempt.undocumented})" for reason in reasons] + warnings
            reasons = []
        reasons += list(attempt.failures) if attempt else []
        if attempt and attempt.vacuous and not reasons:
            reasons = [attempt.vacuous]
        exchange = attempt.exchange if attempt else None
        found.append(
            InteractionResult(
                result.get("description", "?"),
                list(result.get("providerStates", [])),
                passed=not reasons,
                reasons=list(dict.fromkeys(reasons)),
                setup=list(dict.fromkeys(attempt.state_errors)) if attempt else [],
                warnings=list(dict.fromkeys(warnings)),
                reproduce=exchange.reproduce() if exchange is not None else "",
                pending=bool(result.get("pending")),
            )
        )
    return found


def _answered(exchange) -> bool:
    """The bot answered 2xx, readably: what it did is an answer, if not the one iAdvize's pact asks for."""
    return exchange is not None and exchange.status is not None and 200 <= exchange.status < 300 and not exchange.error


def _reasons(mismatch: dict | None, attempt: Attempt | None) -> list[str]:
    exchange = attempt.exchange if attempt else None
    reasons: list[str] = []
    if attempt and attempt.state_error:
        reasons.append(f"could not prepare the bot: {attempt.state_error}")
    if exchange is not None and exchange.error:
        reasons.append(f"the bot did not answer properly: {exchange.error}")
    if mismatch:
        if mismatch.get("type") == "error":
            if not reasons:
                reasons.append(mismatch.get("message", "the verifier reported an error"))
        else:
            items = mismatch.get("mismatches", [])
            if any(i.get("type") == "StatusMismatch" for i in items):  # the rest of an error answer is noise
                items = [i for i in items if i.get("type") == "StatusMismatch"]
            if exchange is not None and exchange.error:
                # no answer (the gateway's 502/504 stood in for it): Pact's view of the stand-in adds nothing;
                # an unreadable answer: its status and headers still say something, its body does not
                items = [i for i in items if exchange.status is not None and i.get("type") != "BodyMismatch"]
            reasons.extend(plain(item, exchange) for item in items)
    if exchange is not None and exchange.problems:
        reasons.append("the body does not fit the API: " + "; ".join(map(str, exchange.problems[:5])))
    return list(dict.fromkeys(reasons))


def _short(value, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(path: str) -> str:
    path = path.removeprefix("$").removeprefix(".")
    return path or "the body"


_MISSING = re.compile(r"Actual map is missing the following keys: (.+)$")
_TYPE = re.compile(r"to be the same type as .* \((\w+)\)$")
_REGEX = re.compile(r"to match '(.*)'$")
_EQUAL = re.compile(r"Expected (.+) \(\w+\) to be equal to (.+) \(\w+\)$")
_KINDS = {
    "Array": "an array",
    "Object": "an object",
    "String": "a string",
    "Integer": "an integer",
    "Boolean": "true or false",
    "Decimal": "a number",
    "Number": "a number",
}


def plain(item: dict, exchange=None) -> str:
    """One Pact mismatch as a sentence a bot provider can act on."""
    kind, text = item.get("type"), item.get("mismatch", "")
    if kind == "StatusMismatch":
        said = f" and said {excerpt(exchange)}" if exchange is not None and exchange.body not in (None, "") else ""
        return f"expected HTTP status {item.get('expected')}, the bot answered {item.get('actual')}{said}"
    if kind == "HeaderMismatch":
        return f"the header {item.get('key')} must be {item.get('expected')!r}, got {item.get('actual') or 'none'!r}"
    if kind == "BodyTypeMismatch":
        return f"the body must be {item.get('expected')}, the bot sent {item.get('actual') or 'nothing'}" + (
            f": {excerpt(exchange)}" if exchange is not None and exchange.body else ""
        )
    if kind != "BodyMismatch":
        return text or json.dumps(item)
    return _body_mismatch(item, text, exchange)


def _body_mismatch(item: dict, text: str, exchange) -> str:
    """A mismatch inside the body, said of the field it is about."""
    path = item.get("path", "$")
    where = _field(path)
    if missing := _MISSING.search(text):
        keys = [k.strip() for k in missing.group(1).split(",")]
        prefix = "" if where == "the body" else f"{where}."
        return "missing field" + ("s " if len(keys) > 1 else " ") + ", ".join(prefix + k for k in keys)
    if "Expected an empty List" in text:
        said = f"{where} must be exactly [] here, the bot sent {_short(item.get('actual'))}"
        if _is_echo(exchange) and path == "$.replies":
            said += f" ({ECHO_RULE})"
        return said
    if found := _TYPE.search(text):
        return f"{where} must be {_KINDS.get(found.group(1), found.group(1))}, got {_short(item.get('actual'))}"
    if found := _REGEX.search(text):
        if found.group(1) == DATE_TIME_PATTERN:
            return f"{where} must be an ISO 8601 date-time, got {_short(item.get('actual'))}"
        return f"{where}: {_short(item.get('actual'))} does not have the expected form ({found.group(1)})"
    if found := _EQUAL.search(text):
        return f"{where} must be {found.group(2)}, got {found.group(1)}"
    return f"{where}: {text}"


def _is_echo(exchange) -> bool:
    body = exchange.request_body if exchange is not None else None
    return isinstance(body, dict) and ((body.get("message") or {}).get("author") or {}).get("role") == "operator"


def verdict(found: list[InteractionResult]) -> str:
    """How many interactions passed, failed (with warnings, pending)."""
    statuses = [o.status for o in found]
    warned = sum(bool(o.warnings) for o in found if o.passed)
    said = f"{statuses.count('pass')} passed" + (f" ({warned} with warnings)" if warned else "")
    said += f", {statuses.count('fail')} failed"
    return said + (f", {statuses.count('pending')} pending (not failing the run)" if "pending" in statuses else "")


REASON = " " * 8  # under an interaction's line
ORDER = {"FAIL": 0, "PENDING": 1, "WARN": 2, "PASS": 3}  # what needs work first


def render(found: list[InteractionResult], verbose: bool = False, bot: str = "", width: int | None = None) -> str:
    """The verdict first (with ``bot``, what was verified), the set-up problems once, then one line per
    interaction, failures first, its reasons under it, wrapped to ``width`` (default: the terminal's)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    lines = [verdict(found) + (f" — {bot}" if bot else "")]
    setup: dict[str, int] = {}
    for outcome in found:
        for problem in outcome.setup:
            setup[problem] = setup.get(problem, 0) + 1
    if setup:
        lines.append("set-up: what could not be prepared through the bot's own API (each interaction still ran):")
        lines += [wrap(f"- {problem} ({count(n, 'interaction')})", width, "    ", "  ") for problem, n in setup.items()]
    marked = [
        ({"fail": "FAIL", "pending": "PENDING", "pass": "WARN" if o.warnings else "PASS"}[o.status], o) for o in found
    ]
    for mark, outcome in sorted(marked, key=lambda pair: ORDER[pair[0]]):
        lines.append(f"  {mark}  {outcome.description}" + ("  (set-up incomplete)" if outcome.setup else ""))
        lines += [wrap(f"- {reason}", width, REASON + "  ", REASON) for reason in outcome.reasons]
        lines += [wrap(f"- warning: {warning}", width, REASON + "  ", REASON) for warning in outcome.warnings]
        if verbose and not outcome.passed and outcome.reproduce:
            lines.append(f"        reproduce: {outcome.reproduce}")
    return printable("\n".join(lines))  # a bot's bytes never reach the terminal raw


def write_json(found: list[InteractionResult], path: Path, provider: str) -> None:
    """Writes the results to ``path`` as JSON: per interaction its status (pass, fail, pending), the reasons,
    the set-up problems, the warnings and the curl command reproducing its call."""
    document = {
        "provider": provider,
        "passed": all(o.status != "fail" for o in found) and bool(found),
        "counts": {status: sum(o.status == status for o in found) for status in ("pass", "fail", "pending")},
        "interactions": [
            {
                "description": o.description,
                "states": o.states,
                "status": o.status,
                "reasons": o.reasons,
                "setup": o.setup,
                "warnings": o.warnings,
                "reproduce": o.reproduce,
            }
            for o in found
        ],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_file(document, path)


def write_junit(found: list[InteractionResult], path: Path, suite: str) -> None:
    """Writes the results to ``path`` as JUnit XML, one test case per interaction in the suite ``suite``."""
    failures = sum(o.status == "fail" for o in found)
    root = ET.Element("testsuites", name="pact verification", tests=str(len(found)), failures=str(failures))
    cases = ET.SubElement(root, "testsuite", name=suite, tests=str(len(found)), failures=str(failures))
    for outcome in found:
        case = ET.SubElement(cases, "testcase", classname=suite, name=outcome.description)
        if outcome.status == "pending":
            ET.SubElement(case, "skipped", message="pending: " + (outcome.reasons[0] if outcome.reasons else "failed"))
        elif not outcome.passed:
            failure = ET.SubElement(case, "failure", message=outcome.reasons[0] if outcome.reasons else "failed")
            failure.text = "\n".join(
                [
                    *outcome.reasons,
                    *(f"set-up: {p}" for p in outcome.setup),
                    *([f"reproduce: {outcome.reproduce}"] if outcome.reproduce else []),
                ]
            )
        elif outcome.warnings or outcome.setup:
            ET.SubElement(case, "system-out").text = "\n".join(
                [*(f"warning: {w}" for w in outcome.warnings), *(f"set-up: {p}" for p in outcome.setup)]
            )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    printable_xml(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)

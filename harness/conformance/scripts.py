"""Conversation test scripts: YAML files (``*.convo.yaml``) of visitor steps and what to expect.

```yaml
name: order status
scenario: order-assistant            # the idBot to link the operator to (default: the first listed)
operator: {language: en, distributionRules: [{id: 4f0c..., label: Support}]}
transfer_available: false            # whether a human of the rule takes a transfer (default: false)
steps:
  - visitor: "Where is my order?"
    expect: {text_contains: "order number", quick_replies: ["I don't have it"], within_ms: 1000}
  - visitor: "It's 123456"
    expect: {variables: {order_number: "123456"}}   # what the bot answers it holds of the visitor
  - visitor: "I want a human"
    expect: {transfer: {rule: 4f0c...}, then_on_failure: {text_contains: "nobody"}}
  - wait: 4min                       # the visitor stays silent
    expect: {text_contains: "still there"}
```

A step is ``visitor`` (text), ``payload`` (any visitor payload) or ``wait`` (silence);
``after`` delays a visitor step in simulated time. Expectations apply to the bot's answer
to the step (for ``wait``: to what was shown meanwhile): see :data:`EXPECTATIONS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath

from harness import wire
from harness.client import BotClient, new_operator_id
from harness.conformance.platform import PROACTIVE_WAIT_SECONDS, SimulatedConversation, SimulatedPlatform
from harness.wire.limits import DEFAULT_TRANSFER_TIMEOUT_SECONDS

EXPECTATIONS = {
    "text_equals": "one message of the answer has exactly this text",
    "text_contains": "one message of the answer contains this text",
    "text_matches": "one message of the answer matches this regular expression",
    "quick_replies": "these quick replies are offered (others may be too)",
    "payload_type": "one message of the answer has a payload of this contentType",
    "cards": "a carousel (bundle/card) of this many cards is sent",
    "offers": "a bundle/product-offer of this many offers is sent",
    "jsonpath": "{JSONPath: value} on the answer's body, e.g. {'$.replies[0].payload.title': 'Returns'}",
    "transfer": "a transfer is sent; {rule: id, timeout: seconds} when given must match",
    "then_on_failure": "expectations on the replies after the transfer (run when it fails)",
    "close": "true: the answer closes the conversation; false: it does not",
    "await": "true: the answer contains an await; false: it does not",
    "no_replies": "true: the answer is []",
    "variables": "{name: value} the answer's variables hold (null: not held), e.g. {email: ada@example.com}",
    "within_ms": "the bot answered within this many milliseconds",
}
STEP_KEYS = {"visitor", "payload", "wait", "after", "expect"}
SCRIPT_KEYS = {"name", "scenario", "operator", "transfer_available", "steps"}
DEFAULT_RULES = [{"id": "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a60", "label": "Customer service"}]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, "min": 60, None: 1}


class ScriptError(ValueError):
    """A script that cannot be run: which file, where in it, what is wrong."""

    def __init__(self, source: str, where: str, what: str):
        super().__init__(f"{source}: {where}: {what}" if where else f"{source}: {what}")


class ScriptFailure(AssertionError):
    """A step whose expectations did not hold; carries the transcript up to it."""

    def __init__(self, script: Script, step: int, problems: list[str], conversation: SimulatedConversation):
        self.script, self.step, self.problems, self.conversation = script, step, problems, conversation
        what = script.steps[step].describe()
        super().__init__(f"{script.name}: step {step + 1} ({what}): " + "; ".join(problems))


@dataclass
class ScriptStep:
    """One step of a conversation script: a visitor text, a visitor payload or a wait, and its expectations."""

    visitor: str | None = None
    payload: dict | None = None
    wait: float | None = None
    after: float = 0.0
    expect: dict = field(default_factory=dict)

    def describe(self) -> str:
        """The step in a few words, for failure messages."""
        if self.wait is not None:
            return f"wait {self.wait:g} s"
        if self.payload is not None:
            return f"visitor sends {self.payload.get('contentType')}"
        return f"visitor: {self.visitor!r}"


@dataclass
class Script:
    """A conversation script, loaded and checked: steps, scenario (None: the bot's first), the operator's rules."""

    name: str
    source: str
    steps: list[ScriptStep]
    scenario: str | None = None
    distribution_rules: list[dict] = field(default_factory=lambda: list(DEFAULT_RULES))
    transfer_available: bool = False
    language: str = "en"  # the operator's: the bot answers in it


# --- loading -------------------------------------------------------------------------------


def _seconds(value, source: str, where: str) -> float:
    found = _DURATION.match(str(value))
    if not found:
        raise ScriptError(source, where, f"must be a duration such as 800ms, 5s or 3min, got {value!r}")
    return float(found.group(1)) * _UNIT[found.group(2)]


def load_script(path: Path) -> Script:
    """The script in the YAML file at ``path``; raises ScriptError for a file that cannot be read or used."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ScriptError(source, "", f"cannot read the file ({error})") from None
    except yaml.YAMLError as error:
        raise ScriptError(source, "", f"not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise ScriptError(source, "steps", "a script is a mapping with a non-empty list of steps")
    if unknown := set(data) - SCRIPT_KEYS:
        raise ScriptError(source, sorted(unknown)[0], f"unknown key (allowed: {', '.join(sorted(SCRIPT_KEYS))})")
    operator = data.get("operator") or {}
    if not isinstance(operator, dict):
        raise ScriptError(source, "operator", "must be a mapping, e.g. {distributionRules: [{id: ..., label: ...}]}")
    rules = operator.get("distributionRules", DEFAULT_RULES)
    if not isinstance(rules, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in rules):
        raise ScriptError(source, "operator.distributionRules", "must be a list of {id, label}")
    language = operator.get("language", "en")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2}", language):
        raise ScriptError(
            source, "operator.language", f"must be a two-letter language code such as fr, got {language!r}"
        )
    steps = [_step(item, source, f"steps[{i}]") for i, item in enumerate(data["steps"])]
    return Script(
        str(data.get("name") or Path(path).name.removesuffix(".convo.yaml")),
        source,
        steps,
        data.get("scenario"),
        list(rules),
        bool(data.get("transfer_available", False)),
        language,
    )


def _step(item, source: str, where: str) -> ScriptStep:
    if not isinstance(item, dict) or len({"visitor", "payload", "wait"} & set(item)) != 1:
        raise ScriptError(source, where, "a step has exactly one of visitor, payload or wait")
    if unknown := set(item) - STEP_KEYS:
        raise ScriptError(
            source, f"{where}.{sorted(unknown)[0]}", f"unknown key (allowed: {', '.join(sorted(STEP_KEYS))})"
        )
    expect = item.get("expect") or {}
    _check_expectations(expect, source, f"{where}.expect")
    if "payload" in item and wire.problems(
        "message.request",
        {
            "idOperator": "x",
            "message": {
                "idMessage": "x",
                "author": {"role": "visitor"},
                "payload": item["payload"],
                "createdAt": "2026-01-01T00:00:00Z",
            },
        },
    ):
        raise ScriptError(source, f"{where}.payload", "not a payload a visitor can send")
    return ScriptStep(
        visitor=str(item["visitor"]) if "visitor" in item else None,
        payload=item.get("payload"),
        wait=_seconds(item["wait"], source, f"{where}.wait") if "wait" in item else None,
        after=_seconds(item.get("after", 0), source, f"{where}.after"),
        expect=expect,
    )


# What each expectation's value must be: (accepted types, how to say it)
_TEXT, _COUNT, _FLAG, _MAP = (
    ((str,), "a string"),
    ((int,), "a whole number"),
    ((bool,), "true or false"),
    ((dict,), "a mapping"),
)
EXPECTATION_TYPES = {
    "text_equals": _TEXT,
    "text_contains": _TEXT,
    "text_matches": _TEXT,
    "payload_type": _TEXT,
    "quick_replies": ((list,), "a list of strings"),
    "cards": _COUNT,
    "offers": _COUNT,
    "jsonpath": _MAP,
    "transfer": ((dict, type(None)), "a mapping (rule, timeout) or nothing"),
    "then_on_failure": _MAP,
    "close": _FLAG,
    "await": _FLAG,
    "no_replies": _FLAG,
    "variables": _MAP,
    "within_ms": ((int, float), "a number of milliseconds"),
}


def _check_expectations(expect, source: str, where: str) -> None:
    if not isinstance(expect, dict):
        raise ScriptError(source, where, "must be a mapping of expectations")
    if unknown := set(expect) - set(EXPECTATIONS):
        raise ScriptError(
            source, f"{where}.{sorted(unknown)[0]}", f"unknown expectation (known: {', '.join(EXPECTATIONS)})"
        )
    for key, value in expect.items():
        types, said = EXPECTATION_TYPES[key]
        wrong = (
            not isinstance(value, types)
            or (isinstance(value, bool) and bool not in types)
            or (key == "quick_replies" and not all(isinstance(v, str) for v in value))
        )
        if wrong:
            raise ScriptError(source, f"{where}.{key}", f"must be {said}, got {value!r}")
    if "text_matches" in expect:
        try:
            re.compile(expect["text_matches"])
        except re.error as error:
            raise ScriptError(source, f"{where}.text_matches", f"not a regular expression: {error}") from None
    for path in expect.get("jsonpath") or {}:
        try:
            jsonpath(path)
        except (JsonPathParserError, ValueError, TypeError) as error:
            raise ScriptError(source, f"{where}.jsonpath", f"{path!r} is not JSONPath ({error})") from None
    if "then_on_failure" in expect:
        _check_expectations(expect["then_on_failure"], source, f"{where}.then_on_failure")


def load_scripts(directory: Path) -> list[Script]:
    """The ``*.convo.yaml`` scripts under ``directory`` (recursively), or the file it names; ScriptError if none."""
    directory = Path(directory)
    paths = [directory] if directory.is_file() else sorted(directory.glob("**/*.convo.yaml"))
    if not paths:
        raise ScriptError(str(directory), "", "no *.convo.yaml script found")
    return [load_script(p) for p in paths]


# --- running -------------------------------------------------------------------------------


def run_script(
    script: Script,
    client: BotClient,
    on_event=None,
    api=None,
    proactive_wait: float = PROACTIVE_WAIT_SECONDS,
    webhooks=None,
) -> SimulatedConversation:
    """Run every step; raise :class:`ScriptFailure` at the first step whose expectations fail.

    With ``api`` (the local iAdvize API), what the bot posts through it joins the conversation; with
    ``webhooks`` (:class:`~harness.conformance.webhooks.Webhooks`), conversation events are delivered.
    """
    id_operator = new_operator_id()
    scenario = script.scenario or _first_scenario(client, script)
    client.save_bot(
        id_operator,
        {
            "name": script.name,
            "language": script.language,
            "distributionRules": script.distribution_rules,
            "external": {"idBot": scenario},
        },
    )
    platform = SimulatedPlatform(
        client,
        id_operator,
        script.distribution_rules,
        rule_available=script.transfer_available,
        on_event=on_event,
        api=api,
        proactive_wait=proactive_wait,
        webhooks=webhooks,
    )
    chat = platform.open_chat()
    chat.scenario = scenario
    platform.start(chat)
    for index, step in enumerate(script.steps):
        before = len(chat.events)
        if step.wait is not None:
            platform.wait(chat, step.wait)
            shown = [e.reply for e in chat.events[before:] if e.kind == "shown" and e.reply]
            body, latency = {"replies": shown, "variables": _held(chat.variables)}, 0
        else:
            answer = platform.visitor_says(chat, step.visitor, payload=step.payload, after=step.after)
            if answer is None:
                raise ScriptFailure(script, index, ["the conversation was already closed"], chat)
            if not answer.ok:
                raise ScriptFailure(script, index, [f"the call failed: {answer.error or answer.status}"], chat)
            # what the bot posted through iAdvize's API meanwhile counts as part of its answer
            posted = [e.reply for e in chat.events[before:] if e.purpose == "proactive" and e.reply]
            body, latency = {**answer.body, "replies": [*answer.body["replies"], *posted]}, answer.latency_ms
            if {"transfer", "then_on_failure"} & set(step.expect):
                _play_out_transfer(platform, chat)
        problems = expectation_problems(step.expect, body, latency)
        if "then_on_failure" in step.expect and chat.handed_over:
            problems.append(
                "then_on_failure cannot hold: the transfer succeeded (transfer_available: true), "
                "so nothing after it runs"
            )
        if problems:
            raise ScriptFailure(script, index, problems, chat)
    return chat


TRANSFER_WAIT_LIMIT = 180.0  # simulated seconds: awaits before a transfer, then its 60 s at most


def _play_out_transfer(platform: SimulatedPlatform, chat: SimulatedConversation) -> None:
    """The visitor waits until the transfer's outcome is known (a human, or the failure replies)."""
    waited = 0.0
    while chat.transfer is None and (chat.pending or chat.transfer_ends_at) and waited < TRANSFER_WAIT_LIMIT:
        platform.wait(chat, 1.0)
        waited += 1.0


def _held(variables: dict[str, str]) -> list[dict]:
    return [{"key": key, "value": value} for key, value in variables.items()]


def _first_scenario(client: BotClient, script: Script) -> str:
    scenarios = client.external_bots()
    if not scenarios:
        raise ScriptError(script.source, "scenario", "the bot lists no scenario to link the operator to")
    return scenarios[0]["idBot"]


def _texts(replies: list[dict]) -> list[str]:
    return [t for t in map(wire.text_of, replies) if t is not None]


def expectation_problems(expect: dict, body: dict, latency_ms: float = 0) -> list[str]:
    """What in ``body`` (a bot's answer) departs from ``expect``; empty when all hold."""
    replies = body.get("replies") or []
    return [
        *_text_problems(expect, _texts(replies)),
        *_content_problems(expect, replies, body),
        *_flow_problems(expect, replies, latency_ms),
    ]


def _text_problems(expect: dict, texts: list[str]) -> list[str]:
    """``text_equals``, ``text_contains`` and ``text_matches`` over the text messages."""
    said = f"the bot said {texts!r}"
    problems = []
    if "text_equals" in expect and expect["text_equals"] not in texts:
        problems.append(f"no message is exactly {expect['text_equals']!r}; {said}")
    if "text_contains" in expect and not any(expect["text_contains"] in t for t in texts):
        problems.append(f"no message contains {expect['text_contains']!r}; {said}")
    if "text_matches" in expect and not any(re.search(expect["text_matches"], t) for t in texts):
        problems.append(f"no message matches /{expect['text_matches']}/; {said}")
    return problems


def _content_problems(expect: dict, replies: list[dict], body: dict) -> list[str]:
    """``quick_replies``, ``payload_type``, ``cards``, ``offers``, ``jsonpath`` and ``variables``."""
    problems = []
    if "quick_replies" in expect:
        offered = [q.get("value") for r in replies for q in r.get("quickReplies") or []]
        if missing := [q for q in expect["quick_replies"] if q not in offered]:
            problems.append(f"quick replies {missing!r} not offered; offered {offered!r}")
    payloads = [r.get("payload") or {} for r in replies if r.get("type") == "message"]
    types = [p.get("contentType") for p in payloads]
    if "payload_type" in expect and expect["payload_type"] not in types:
        problems.append(f"no {expect['payload_type']} payload; got {types!r}")
    for key, kind, items in (("cards", "bundle/card", "cards"), ("offers", "bundle/product-offer", "offers")):
        counts = [len(p.get(items) or []) for p in payloads if p.get("contentType") == kind]
        if key in expect and expect[key] not in counts:
            problems.append(f"no {kind} of {expect[key]} {items}; got {counts or 'none'}")
    for path, wanted in (expect.get("jsonpath") or {}).items():
        found = [m.value for m in jsonpath(path).find(body)]
        if wanted not in found:
            problems.append(f"{path} is {found[0] if len(found) == 1 else found!r}, expected {wanted!r}")
    if "variables" in expect:
        problems += _variable_problems(expect["variables"], wire.variables_of(body))
    return problems


def _flow_problems(expect: dict, replies: list[dict], latency_ms: float) -> list[str]:
    """``transfer``, ``then_on_failure``, ``close``, ``await``, ``no_replies`` and ``within_ms``."""
    kinds = [r.get("type") for r in replies]
    problems = _transfer_problems(expect["transfer"] or {}, replies) if "transfer" in expect else []
    if "then_on_failure" in expect:
        after = replies[kinds.index("transfer") + 1 :] if "transfer" in kinds else []
        problems += [
            f"after the transfer: {p}" for p in expectation_problems(expect["then_on_failure"], {"replies": after})
        ]
    for kind in ("close", "await"):
        if kind in expect and (kind in kinds) != bool(expect[kind]):
            problems.append(f"expected {'a' if expect[kind] else 'no'} {kind}; got {kinds!r}")
    if expect.get("no_replies") and replies:
        problems.append(f"expected no replies; got {len(replies)}")
    if "within_ms" in expect and latency_ms > expect["within_ms"]:
        problems.append(f"answered in {latency_ms:.0f} ms, more than {expect['within_ms']} ms")
    return problems


def _variable_problems(wanted: dict, held: dict[str, str] | None) -> list[str]:
    if held is None:
        return ["the answer has no variables [{key, value}] to hold the visitor's data"]
    problems = []
    for key, value in wanted.items():
        if value is None and key in held:
            problems.append(f"variable {key} is held ({held[key]!r}), expected none")
        elif value is not None and held.get(key) != str(value):
            problems.append(f"variable {key} is {held.get(key)!r}, expected {str(value)!r}; held {held!r}")
    return problems


def _transfer_problems(wanted: dict, replies: list[dict]) -> list[str]:
    transfers = [r for r in replies if r.get("type") == "transfer"]
    if not transfers:
        return [f"no transfer; got {[r.get('type') for r in replies]!r}"]
    transfer = transfers[0]
    problems = []
    if "rule" in wanted and transfer.get("distributionRule") != wanted["rule"]:
        problems.append(f"the transfer goes to {transfer.get('distributionRule')!r}, not {wanted['rule']!r}")
    if "timeout" in wanted:
        timeout = (transfer.get("transferOptions") or {}).get("timeout")
        seconds = wire.seconds(timeout) if timeout else DEFAULT_TRANSFER_TIMEOUT_SECONDS
        if seconds != float(wanted["timeout"]):
            problems.append(f"the transfer timeout is {seconds:g} s, not {wanted['timeout']} s")
    return problems


def failure_report(failure: ScriptFailure) -> str:
    """The failure and the transcript up to it, as pytest and check show it."""
    return f"{failure}\n\ntranscript:\n{failure.conversation.transcript()}"

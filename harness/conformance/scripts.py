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

At suite scale (see :mod:`harness.conformance.script_files`): ``include: file`` puts another file's steps
there; ``visitor: [a, b, c]`` runs the script once per utterance (:func:`variants`); ``capture: {name:
JSONPath or regex}`` keeps a value of the answer that later steps use as ``{name}``, beside the built-in
``{$now}``, ``{$uuid}`` and ``{$random_digits(6)}``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath

from harness import wire
from harness.client import BotClient, new_operator_id
from harness.conformance import script_files
from harness.conformance.platform import PROACTIVE_WAIT_SECONDS, SimulatedConversation, SimulatedPlatform
from harness.conformance.rules import Observation, finding_line, judge_replies
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
STEP_KEYS = {"visitor", "payload", "wait", "after", "expect", "capture"}
UTTERANCE_MODES = ("all", "random")  # every utterance of a list, or one drawn with a seed
SCRIPT_KEYS = {"name", "scenario", "operator", "transfer_available", "steps"}
DEFAULT_RULES = [{"id": "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a60", "label": "Customer service"}]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, "min": 60, None: 1}


class ScriptError(ValueError):
    """A script that cannot be run: which file, where in it (the step and its line), what is wrong."""

    def __init__(self, source: str, where: str, what: str, line: int = 0):
        self.source, self.where, self.what, self.line = source, where, what, line
        place = f"{source}:{line}" if line else source
        super().__init__(f"{place}: {where}: {what}" if where else f"{place}: {what}")

    def on_line(self, line: int) -> ScriptError:
        """The same error, saying the line of the step it is in (when it does not say one yet)."""
        return self if self.line or not line else ScriptError(self.source, self.where, self.what, line)


class ScriptErrors(ScriptError):
    """Every broken script of a folder at once, one line each (``errors`` holds them)."""

    def __init__(self, errors: list[ScriptError]):
        self.errors = errors
        ValueError.__init__(self, "\n".join(map(str, errors)))


class ScriptFailure(AssertionError):
    """A step whose expectations did not hold; carries the transcript up to it."""

    def __init__(self, script: Script, step: int, problems: list[str], conversation: SimulatedConversation):
        self.script, self.step, self.problems, self.conversation = script, step, problems, conversation
        what = script.steps[step].describe()
        origin = script.steps[step]
        where = f" from {origin.source}:{origin.line}" if origin.source and origin.source != script.source else ""
        super().__init__(f"{script.name}: step {step + 1} ({what}{where}): " + "; ".join(problems))


@dataclass
class ScriptStep:
    """One step of a conversation script: a visitor text, a visitor payload or a wait, and its expectations."""

    visitor: str | None = None
    payload: dict | None = None
    wait: float | None = None
    after: float = 0.0
    expect: dict = field(default_factory=dict)
    utterances: tuple[str, ...] = ()  # ``visitor: [a, b, c]``: each runs in a variant of the script
    capture: dict = field(default_factory=dict)  # name -> JSONPath (``$...``) or regex on the answer's texts
    source: str = ""  # the file the step is written in (another one when included), its place and line there
    where: str = ""
    line: int = 0

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
    """The script in the YAML file at ``path``, its includes expanded; raises ScriptError for a file that
    cannot be read or used (naming the file, the step and its line)."""
    source = str(path)
    try:
        data = script_files.read(path)
    except script_files.FileProblem as problem:
        raise ScriptError(source, "", str(problem)) from None
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
    steps = _steps(data["steps"], source, (Path(source).resolve(),))
    _check_placeholders(steps)
    return Script(
        str(data.get("name") or Path(path).name.removesuffix(".convo.yaml")),
        source,
        steps,
        data.get("scenario"),
        list(rules),
        bool(data.get("transfer_available", False)),
        language,
    )


def _steps(items: list, source: str, chain: tuple[Path, ...]) -> list[ScriptStep]:
    """The steps of ``items``, each include replaced by the steps of the file it names; every broken step said
    at once (:class:`ScriptErrors`)."""
    steps, errors = [], []
    for index, item in enumerate(items):
        where, line = f"steps[{index}]", getattr(item, "line", 0)
        try:
            if isinstance(item, dict) and "include" in item:
                try:
                    target, included = script_files.included_steps(item, source, chain)
                except ValueError as problem:
                    raise ScriptError(source, where, str(problem), line) from None
                steps += _steps(included, str(target), (*chain, target))
            else:
                steps.append(replace(_step(item, source, where), source=source, where=where, line=line))
        except ScriptError as error:
            errors += [e.on_line(line) if e.source == source else e for e in getattr(error, "errors", [error])]
    _raise_all(errors)
    return steps


def _raise_all(errors: list[ScriptError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ScriptErrors(errors)


def _check_placeholders(steps: list[ScriptStep]) -> None:
    """Every ``{name}`` is captured by an earlier step, or built in; every step that uses one not, said at once."""
    known: set[str] = set()
    errors = []
    for step in steps:
        for value in (step.utterances, step.payload, step.expect):
            if name := script_files.unknown_placeholder(value, known):
                errors.append(
                    ScriptError(
                        step.source,
                        step.where,
                        f"{{{name}}} is not captured by an earlier step (capture: {{{name}: ...}}); "
                        f"built in: {script_files.BUILT_INS}",
                        step.line,
                    )
                )
                break
        known |= set(step.capture)
    _raise_all(errors)


def _captures(capture, source: str, where: str) -> dict:
    if not isinstance(capture, dict) or not capture:
        raise ScriptError(source, where, "must map names to a JSONPath ($...) or a regular expression")
    for name, spec in capture.items():
        if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)):
            raise ScriptError(source, where, f"{name!r} is not a name (letters, digits, _)")
        if not isinstance(spec, str) or not spec:
            raise ScriptError(source, f"{where}.{name}", "must be a JSONPath ($...) or a regular expression")
        try:
            jsonpath(spec) if spec.startswith("$") else re.compile(spec)
        except (JsonPathParserError, ValueError, TypeError, re.error) as error:
            kind = "JSONPath" if spec.startswith("$") else "a regular expression"
            raise ScriptError(source, f"{where}.{name}", f"{spec!r} is not {kind} ({error})") from None
    return dict(capture)


def _utterances(value, source: str, where: str) -> tuple[str, ...]:
    if isinstance(value, list):
        if not value or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise ScriptError(source, where, "a list of utterances must hold texts, at least one")
        return tuple(map(str, value))
    return (str(value),)


def _step(item, source: str, where: str) -> ScriptStep:
    if not isinstance(item, dict) or len({"visitor", "payload", "wait"} & set(item)) != 1:
        raise ScriptError(source, where, "a step has exactly one of visitor, payload, wait or include")
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
    utterances = _utterances(item["visitor"], source, f"{where}.visitor") if "visitor" in item else ()
    return ScriptStep(
        visitor=utterances[0] if utterances else None,
        utterances=utterances,
        capture=_captures(item["capture"], source, f"{where}.capture") if "capture" in item else {},
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
    """The ``*.convo.yaml`` scripts under ``directory`` (recursively), or the file it names.

    Raises ScriptError when there is none, ScriptErrors naming every broken file when any is.
    """
    directory = Path(directory)
    paths = [directory] if directory.is_file() else sorted(directory.glob("**/*.convo.yaml"))
    if not paths:
        raise ScriptError(str(directory), "", "no *.convo.yaml script found")
    scripts, errors = [], []
    for path in paths:
        try:
            scripts.append(load_script(path))
        except ScriptError as error:
            errors += getattr(error, "errors", [error])
    if errors:
        raise ScriptErrors(errors)
    return scripts


def variants(script: Script, utterances: str = "all", seed: int = 0) -> list[Script]:
    """The script once per utterance of its ``visitor: [...]`` lists (named ``name[utterance]``), or with
    ``utterances="random"`` once, drawn with ``seed``; a script without lists is itself.

    Lists of different lengths go side by side: variant i says utterance i of each (the shorter cycle).
    """
    lists = [step.utterances for step in script.steps if len(step.utterances) > 1]
    if not lists:
        return [script]
    count = max(map(len, lists))
    picks = range(count) if utterances == "all" else [random.Random(f"{seed}:{script.name}").randrange(count)]
    made = []
    for pick in picks:
        steps = [
            replace(step, visitor=step.utterances[pick % len(step.utterances)]) if len(step.utterances) > 1 else step
            for step in script.steps
        ]
        said = " / ".join(s.visitor for s, was in zip(steps, script.steps, strict=True) if len(was.utterances) > 1)
        made.append(replace(script, name=f"{script.name}[{said}]", steps=steps))
    return made


# --- running -------------------------------------------------------------------------------


def run_script(
    script: Script,
    client: BotClient,
    on_event=None,
    api=None,
    proactive_wait: float = PROACTIVE_WAIT_SECONDS,
    webhooks=None,
    judge_answers: bool = True,
) -> SimulatedConversation:
    """Run every step; raise :class:`ScriptFailure` at the first step whose expectations fail.

    With ``api`` (the local iAdvize API), what the bot posts through it joins the conversation; with
    ``webhooks`` (:class:`~harness.conformance.webhooks.Webhooks`), conversation events are delivered.
    ``judge_answers`` fails a step whose answer breaks an error rule of check's on replies (a stack trace
    shown to the visitor...), whatever the script expects; check, which judges every call itself, turns it off.
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
    values: dict[str, str] = {}  # what earlier steps captured, and the built-ins drawn so far
    for index, step in enumerate(script.steps):
        expect = script_files.fill(step.expect, values)
        before = len(chat.events)
        if step.wait is not None:
            platform.wait(chat, step.wait)
            shown = [e.reply for e in chat.events[before:] if e.kind == "shown" and e.reply]
            body, latency = {"replies": shown, "variables": _held(chat.variables)}, 0
        else:
            said, payload = script_files.fill(step.visitor, values), script_files.fill(step.payload, values)
            answer = platform.visitor_says(chat, said, payload=payload, after=step.after)
            if answer is None:
                raise ScriptFailure(script, index, ["the conversation was already closed"], chat)
            if not answer.ok:
                raise ScriptFailure(script, index, [f"the call failed: {answer.error or answer.status}"], chat)
            # what the bot posted through iAdvize's API meanwhile counts as part of its answer
            posted = [e.reply for e in chat.events[before:] if e.purpose == "proactive" and e.reply]
            body, latency = {**answer.body, "replies": [*answer.body["replies"], *posted]}, answer.latency_ms
            if {"transfer", "then_on_failure"} & set(expect):
                _play_out_transfer(platform, chat)
        problems = expectation_problems(expect, body, latency) + _capture(step.capture, body, values)
        if judge_answers and step.wait is None:
            rules = [r.get("id") for r in script.distribution_rules]
            observed = Observation(
                answer, "visitor", operator_rules=rules, sent_payload=answer.request_body["message"]["payload"]
            )
            problems += [finding_line(f) for f in judge_replies(observed) if f.severity == "error"]
        if "then_on_failure" in expect and chat.handed_over:
            problems.append(
                "then_on_failure cannot hold: the transfer succeeded (transfer_available: true), "
                "so nothing after it runs"
            )
        if problems:
            raise ScriptFailure(script, index, problems, chat)
    return chat


def _capture(capture: dict, body: dict, values: dict[str, str]) -> list[str]:
    """Keeps in ``values`` what each capture finds in the answer: a JSONPath's first match, or a regex's first
    match in its texts (its first group, when it has one); says which found nothing."""
    problems = []
    for name, spec in capture.items():
        if spec.startswith("$"):
            found = [m.value for m in jsonpath(spec).find(body)]
            value = None if not found or found[0] is None else str(found[0])
        else:
            matches = (re.search(spec, text) for text in _texts(body.get("replies") or []))
            match = next((m for m in matches if m), None)
            value = None if match is None else (match.group(1) if match.re.groups else match.group(0))
        if value is None:
            problems.append(f"capture {name}: nothing in the answer matches {spec!r}")
        else:
            values[name] = value
    return problems


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

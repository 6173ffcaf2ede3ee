"""Scenarios as data: YAML files loaded, checked and run as small state machines.

A scenario file (one per ``idBot``) names its states; each state has the replies sent
when the conversation enters it and the transitions that leave it on visitor text or a
quick-reply value. See ``scenarios/order-assistant.yaml`` for every feature and
``scenarios/hello.yaml`` for the smallest file that works.

Replies are written in a short authoring form (``text``, ``payload``, ``await``,
``transfer``, ``close``) and compiled into the wire model's reply objects, which are
then validated by the wire model itself: there is no second description of a reply here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness import wire
from harness.wire.limits import MAX_MESSAGE_CHARS, TRANSFER_TIMEOUT_RANGE

AVAILABILITY = ("atLeastOne", "all", "notAvailable", "always")
DEFAULT_NON_TEXT = "Thanks! I can only read text messages here: could you type your question?"
DEFAULT_HOLDING = "One moment please, I'm looking that up."

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|millis|s|sec|seconds?|min|minutes?)\s*$")
_UNITS = {
    "ms": "millis",
    "millis": "millis",
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used: which file, where in it, and what is wrong."""

    def __init__(self, source: str, where: str, what: str):
        self.source, self.where, self.what = source, where, what
        super().__init__(f"{source}: {where or '(top level)'}: {what}")


@dataclass(frozen=True)
class Transition:
    """A way out of a state to ``goto``, on a quick-reply value, a keyword or a pattern."""

    goto: str
    quick_reply: str | None = None
    keywords: tuple[re.Pattern, ...] = ()
    pattern: re.Pattern | None = None

    def matches(self, text: str) -> bool:
        """Whether the visitor's text takes this transition.

        It does on the quick-reply value (the whole text, ignoring case and surrounding spaces),
        on any keyword as a whole word, or on the pattern anywhere; keywords and the pattern ignore case.
        """
        if self.quick_reply is not None and text.strip().casefold() == self.quick_reply.casefold():
            return True
        if any(k.search(text) for k in self.keywords):
            return True
        return bool(self.pattern and self.pattern.search(text))


@dataclass(frozen=True)
class State:
    """One state of a scenario: the replies sent on entering it, the transitions out, its fallback.

    A ``slow`` state answers ``holding`` at once and sends its replies later, as proactive messages.
    """

    name: str
    replies: tuple[dict, ...]
    transitions: tuple[Transition, ...] = ()
    fallback: tuple[dict, ...] | None = None
    slow: bool = False
    holding: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """One scenario file, loaded and checked: what the operators linked to its ``idBot`` say, and their availability."""

    id_bot: str
    name: str
    description: str
    editor_url: str | None
    availability: str
    greeting: tuple[dict, ...]
    start: str
    states: dict[str, State]
    anywhere: tuple[Transition, ...]
    fallback: tuple[dict, ...] | None
    non_text: tuple[dict, ...]
    source: str = field(default="", compare=False)


@dataclass
class Step:
    """What the scenario does with one visitor message."""

    state: str | None  # the state the conversation is in afterwards (None: not started)
    replies: list[dict]  # wire replies, transfer rules still symbolic (see resolve_transfers)
    deferred: list[dict] = field(default_factory=list)  # replies too slow for the HTTP budget


# --- running -------------------------------------------------------------------------------


def step(scenario: Scenario, state: str | None, payload: dict) -> Step:
    """Advance ``scenario`` from ``state`` (None: nothing said yet) on one visitor payload.

    A state the scenario no longer has (the file was edited, or the operator moved to
    another scenario) counts as nothing said yet: the conversation starts over.
    """
    current = scenario.states.get(state) if state else None
    if payload.get("contentType") != "text":
        # Answered politely; the scenario itself has not started until the visitor writes.
        return Step(current.name if current else None, list(scenario.non_text))
    text = str(payload.get("value", ""))
    own = current.transitions if current else scenario.states[scenario.start].transitions
    for transition in (*own, *scenario.anywhere):
        if transition.matches(text):
            return _enter(scenario.states[transition.goto])
    if current is None:  # the first message starts the scenario
        return _enter(scenario.states[scenario.start])
    fallback = current.fallback if current.fallback is not None else scenario.fallback
    return Step(current.name, list(fallback if fallback is not None else current.replies))


def _enter(state: State) -> Step:
    if state.slow:
        return Step(state.name, list(state.holding), deferred=list(state.replies))
    return Step(state.name, list(state.replies))


def resolve_transfers(replies: list[dict], rules: list[dict]) -> list[dict]:
    """Turn symbolic transfer targets into one of the operator's distribution rule ids.

    A scenario names a rule by label ("Customer service") or ``any``; the operator's
    admin chose the real rules. An unknown label falls back to the first rule; an
    operator without rules cannot transfer, so the transfer is dropped and the replies
    written for a failed transfer run, as they would after a timeout.
    """
    resolved = []
    for reply in replies:
        if reply["type"] != "transfer":
            resolved.append(reply)
            continue
        if not rules:
            continue
        wanted = reply["distributionRule"].casefold()
        rule = next((r for r in rules if r.get("label", "").casefold() == wanted), rules[0])
        resolved.append({**reply, "distributionRule": rule["id"]})
    return resolved


def greeting(scenario: Scenario) -> list[dict]:
    """The scenario's first messages, as a new list."""
    return list(scenario.greeting)


# --- loading -------------------------------------------------------------------------------


def load_directory(directory: Path) -> dict[str, Scenario]:
    """Every ``*.yaml`` scenario in ``directory``, keyed by idBot; refuses the first bad one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScenarioError(str(directory), "", "scenario directory does not exist")
    scenarios: dict[str, Scenario] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        scenario = load_file(path)
        if scenario.id_bot in scenarios:
            raise ScenarioError(
                str(path), "idBot", f"{scenario.id_bot!r} is already used by {scenarios[scenario.id_bot].source}"
            )
        scenarios[scenario.id_bot] = scenario
    if not scenarios:
        raise ScenarioError(str(directory), "", "no scenario file (*.yaml) found")
    return scenarios


def load_file(path: Path) -> Scenario:
    """The scenario in the YAML file at ``path``; raises ScenarioError for a file that cannot be read or used."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(source, "", f"cannot read the file ({error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, where, f"not valid YAML: {getattr(error, 'problem', error)}") from None
    return parse(data, source)


def parse(data, source: str = "<scenario>") -> Scenario:
    """The scenario in ``data`` (a loaded YAML document); raises ScenarioError naming ``source`` and the field."""
    return _Parser(source).scenario(data)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str):
        raise ScenarioError(self.source, where, what)

    def mapping(self, value, where: str, required=(), optional=()) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping, got {type(value).__name__}")
        for key in required:
            if key not in value:
                self.fail(_join(where, key), "is required")
        unknown = set(value) - set(required) - set(optional)
        if unknown and (required or optional):  # no keys named: a free mapping such as `states`
            allowed = ", ".join([*required, *optional])
            self.fail(_join(where, sorted(map(str, unknown))[0]), f"unknown key (allowed: {allowed})")
        return value

    def string(self, value, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "must be a non-empty string")
        return value

    def scenario(self, data) -> Scenario:
        data = self.mapping(
            data,
            "",
            required=("idBot", "name", "start", "states"),
            optional=("description", "editorUrl", "availability", "greeting", "anywhere", "fallback", "non_text"),
        )
        states_data = self.mapping(data["states"], "states")
        if not states_data:
            self.fail("states", "must name at least one state")
        names = set(states_data)
        start = self.string(data["start"], "start")
        if start not in names:
            self.fail("start", f"unknown state {start!r} (states: {', '.join(sorted(names))})")
        availability = data.get("availability", "atLeastOne")
        if availability not in AVAILABILITY:
            self.fail("availability", f"must be one of {', '.join(AVAILABILITY)}, got {availability!r}")
        greeting = self.replies(data.get("greeting", []), "greeting")
        if any(r["type"] in ("transfer", "close") for r in greeting):
            self.fail("greeting", "a greeting cannot transfer or close: there is no conversation yet")
        editor_url = data.get("editorUrl")
        if editor_url is not None and not (
            isinstance(editor_url, str) and editor_url.startswith(("http://", "https://"))
        ):
            self.fail("editorUrl", f"must be an http(s) URL, got {editor_url!r}")
        return Scenario(
            id_bot=self.string(data["idBot"], "idBot"),
            name=self.string(data["name"], "name"),
            description=str(data.get("description") or ""),
            editor_url=editor_url,
            availability=availability,
            greeting=tuple(r for r in greeting if r["type"] == "message"),  # iAdvize ignores the others
            start=start,
            states={n: self.state(n, s, names) for n, s in states_data.items()},
            anywhere=self.transitions(data.get("anywhere", []), "anywhere", names),
            fallback=self.replies(data["fallback"], "fallback") if "fallback" in data else None,
            non_text=self.replies(data.get("non_text", [{"text": DEFAULT_NON_TEXT}]), "non_text"),
            source=self.source,
        )

    def state(self, name, data, names) -> State:
        where = f"states.{name}"
        data = self.mapping(data, where, required=("replies",), optional=("transitions", "fallback", "slow", "holding"))
        replies = self.replies(data["replies"], f"{where}.replies")
        slow = data.get("slow", False)
        if not isinstance(slow, bool):
            self.fail(f"{where}.slow", "must be true or false")
        if slow:
            for i, reply in enumerate(replies):
                if reply["type"] != "await" and reply.get("payload", {}).get("contentType") != "text":
                    self.fail(
                        f"{where}.replies[{i}]", "a slow state is sent as proactive messages, which carry text only"
                    )
        return State(
            name=name,
            replies=replies,
            transitions=self.transitions(data.get("transitions", []), f"{where}.transitions", names),
            fallback=self.replies(data["fallback"], f"{where}.fallback") if "fallback" in data else None,
            slow=slow,
            holding=self.replies(data.get("holding", [{"text": DEFAULT_HOLDING}]), f"{where}.holding"),
        )

    def transitions(self, data, where, names) -> tuple[Transition, ...]:
        if not isinstance(data, list):
            self.fail(where, "must be a list of transitions")
        found = []
        for i, item in enumerate(data):
            here = f"{where}[{i}]"
            item = self.mapping(item, here, required=("goto",), optional=("quick_reply", "keywords", "pattern"))
            goto = self.string(item["goto"], f"{here}.goto")
            if goto not in names:
                self.fail(f"{here}.goto", f"unknown state {goto!r} (states: {', '.join(sorted(names))})")
            if not {"quick_reply", "keywords", "pattern"} & set(item):
                self.fail(here, "needs quick_reply, keywords or pattern to match on")
            keywords = item.get("keywords", [])
            if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
                hint = (
                    " (YAML reads bare yes/no/on/off as booleans: quote them)"
                    if any(isinstance(k, bool) for k in keywords or [])
                    else ""
                )
                self.fail(f"{here}.keywords", "must be a list of non-empty strings" + hint)
            pattern = None
            if "pattern" in item:
                try:
                    pattern = re.compile(self.string(item["pattern"], f"{here}.pattern"), re.IGNORECASE)
                except re.error as error:
                    self.fail(f"{here}.pattern", f"not a valid regular expression: {error}")
            found.append(
                Transition(
                    goto=goto,
                    quick_reply=self.string(item["quick_reply"], f"{here}.quick_reply")
                    if "quick_reply" in item
                    else None,
                    keywords=tuple(re.compile(rf"\b{re.escape(k.strip())}\b", re.IGNORECASE) for k in keywords),
                    pattern=pattern,
                )
            )
        return tuple(found)

    def replies(self, data, where) -> tuple[dict, ...]:
        if not isinstance(data, list):
            self.fail(where, "must be a list of replies")
        return tuple(self.reply(item, f"{where}[{i}]") for i, item in enumerate(data))

    def reply(self, item, where) -> dict:
        if item == "close":
            return {"type": "close"}
        if not isinstance(item, dict):
            self.fail(where, "must be a reply: text, payload, await, transfer or close")
        kinds = {"text", "payload", "await", "transfer", "close"} & set(item)
        if len(kinds) != 1:
            self.fail(where, "must have exactly one of text, payload, await, transfer, close")
        kind = kinds.pop()
        build = {"text": self.message_reply, "payload": self.message_reply, "await": self.await_reply,
                 "transfer": self.transfer_reply, "close": self.close_reply}[kind]  # fmt: skip
        reply = build(item, kind, where)
        self.check_reply(reply, kind, where)
        return reply

    def message_reply(self, item, kind, where) -> dict:
        self.mapping(item, where, required=(kind,), optional=("quick_replies",))
        payload = {"contentType": "text", "value": item["text"]} if kind == "text" else item["payload"]
        reply = {"type": "message", "payload": payload}
        if "quick_replies" in item:
            reply["quickReplies"] = self.quick_replies(item["quick_replies"], f"{where}.quick_replies")
        return reply

    def await_reply(self, item, kind, where) -> dict:
        self.mapping(item, where, required=("await",))
        return {"type": "await", "duration": self.duration(item["await"], f"{where}.await")}

    def transfer_reply(self, item, kind, where) -> dict:
        self.mapping(item, where, required=("transfer",))
        spec = self.mapping(item["transfer"], f"{where}.transfer", required=("rule",), optional=("timeout",))
        reply = {"type": "transfer", "distributionRule": self.string(spec["rule"], f"{where}.transfer.rule")}
        if "timeout" in spec:
            timeout = self.duration(spec["timeout"], f"{where}.transfer.timeout")
            seconds = wire.seconds(timeout)
            low, high = TRANSFER_TIMEOUT_RANGE
            if not low <= seconds <= high:
                self.fail(
                    f"{where}.transfer.timeout",
                    f"{seconds:g} s is outside the {low}-{high} s iAdvize accepts for a transfer",
                )
            reply["transferOptions"] = {"timeout": timeout}
        return reply

    def close_reply(self, item, kind, where) -> dict:
        self.mapping(item, where, required=("close",))
        return {"type": "close"}

    def check_reply(self, reply: dict, kind: str, where: str) -> None:
        """The wire model's checks and iAdvize's length limit, reported where the author wrote the reply."""

        def authored(path: str) -> str:  # `text` rather than `payload.value`
            return _join(where, "text" if kind == "text" and path == "payload.value" else path)

        for problem in wire.reply_problems(reply):
            self.fail(authored(problem.field), problem.message)
        payload = reply.get("payload") or {}
        if payload.get("contentType") == "text" and len(payload["value"]) > MAX_MESSAGE_CHARS:
            self.fail(
                authored("payload.value"),
                f"message is {len(payload['value'])} characters; iAdvize cuts messages over "
                f"{MAX_MESSAGE_CHARS}: split it into several messages",
            )

    def quick_replies(self, data, where) -> list[dict]:
        if not isinstance(data, list) or not data:
            self.fail(where, "must be a non-empty list of quick-reply values")
        return [
            {"contentType": "text/quick-reply", "value": self.string(v, f"{where}[{i}]"), "idQuickReply": f"qr-{i + 1}"}
            for i, v in enumerate(data)
        ]

    def duration(self, value, where) -> dict:
        match = _DURATION.match(str(value))
        if not match:
            self.fail(where, f"must be a duration such as 800ms, 1s or 3min, got {value!r}")
        return {"unit": _UNITS[match.group(2)], "value": int(match.group(1))}


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key

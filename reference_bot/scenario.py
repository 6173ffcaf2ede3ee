"""Scenarios as data: YAML files loaded, checked and run as small state machines.

A scenario file (one per ``idBot``) names its states; each state has the replies sent
when the conversation enters it and the transitions that leave it on visitor text or a
quick-reply value. A state may ``ask`` for a piece of visitor data (an email, a phone
number, an order number, free text): it is validated, asked again a bounded number of
times, kept in the conversation's variables, written into later replies (``{email}``) and
summed up for the human before a transfer. A file may carry its texts in several
``languages``; the operator's language picks them. See ``scenarios/order-assistant.yaml``
for every feature and ``scenarios/hello.yaml`` for the smallest file that works.

Replies are written in a short authoring form (``text``, ``payload``, ``await``,
``transfer``, ``close``) and compiled into the wire model's reply objects, which are
then validated by the wire model itself: there is no second description of a reply here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import re2
import yaml

from harness import wire
from harness.wire.limits import MAX_MESSAGE_CHARS, TRANSFER_TIMEOUT_RANGE

AVAILABILITY = ("atLeastOne", "all", "notAvailable", "always")
# What an ``ask`` accepts, by kind: found anywhere in the visitor's text ("it's ada@example.com"). Patterns
# (these and a scenario's own) run on RE2, in time linear in the text: no visitor can make one backtrack for
# seconds. RE2's \w and \b are ASCII: letters of any script are \pL.
KINDS = {
    "email": r"[\pL\pN_.+-]+@[\pL\pN_-]+(?:\.[\pL\pN_-]+)+",
    "phone": r"\+?\d[\d .()-]{6,18}\d",
    "order_number": r"\b\d{4,12}\b",  # most shops: digits; give `pattern` for yours
    "text": r"\S.*",
}
# What of a visitor's message is matched against transitions and asks: its first characters only, so the
# work a message costs is bounded whatever its length (iAdvize itself cuts a bot's messages at 450).
MATCHED_CHARS = 2000
MAX_VARIABLE_CHARS = 200  # what a variable keeps of free text
DEFAULT_ATTEMPTS = 2  # answers without a valid value: the question is asked again once, then given up on
# What a visitor says to decline a question (whole words, any case), by language; an ask may give its own.
DECLINE = {
    "en": ("no", "nope", "none", "no thanks", "rather not", "prefer not", "skip", "don't want", "do not want"),
    "fr": ("non", "non merci", "aucun", "aucune", "préfère pas", "plutôt pas", "passer", "veux pas"),
}
# The message sent before a transfer when the visitor gave data: what the human is told.
DEFAULT_SUMMARY = {
    "en": "Here is what I'll pass on to our team: {summary}",
    "fr": "Voici ce que je transmets à notre équipe : {summary}",
}
_VARIABLE = r"[a-z_][a-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{(" + _VARIABLE + r")\}")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
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
    """A scenario file that cannot be used: which file (and line, when known), where in it, and what is wrong."""

    def __init__(self, source: str, where: str, what: str, line: int | None = None):
        self.source, self.where, self.what, self.line = source, where, what, line
        place = f"{source}:{line}" if line else source
        super().__init__(f"{place}: {where}: {what}" if where else f"{place}: {what}")


class ScenarioErrors(ScenarioError):
    """Several problems at once (every broken state of a file, every broken file of a folder), one a line,
    each a :class:`ScenarioError` with its file and line; the first gives the fields of a single error."""

    def __init__(self, problems: list[ScenarioError]):
        first = problems[0]
        super().__init__(first.source, first.where, first.what, first.line)
        self.problems = problems
        self.args = ("\n".join(str(problem) for problem in problems),)

    def __str__(self) -> str:
        return self.args[0]


def problems_of(error: ScenarioError) -> list[ScenarioError]:
    """Each problem an error holds: itself, or every one of :class:`ScenarioErrors`."""
    return list(getattr(error, "problems", [error]))


def _raise_all(problems: list[ScenarioError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ScenarioErrors(problems)


def pattern(text: str) -> re2._Regexp:
    """``text`` compiled for RE2, ignoring case (``re2.error`` when RE2 cannot run it: backreferences,
    lookarounds)."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is raised, and said once, where the scenario is loaded
    return re2.compile(text, options)


@dataclass(frozen=True)
class Transition:
    """A way out of a state to ``goto``, on a quick-reply value, a keyword or a pattern."""

    goto: str
    quick_reply: str | None = None
    keywords: tuple[re.Pattern, ...] = ()  # each a literal between word boundaries: linear in the text
    pattern: re2._Regexp | None = None

    def matches(self, text: str) -> bool:
        """Whether the visitor's text takes this transition.

        It does on the quick-reply value (the whole text, ignoring case and surrounding spaces),
        on any keyword as a whole word, or on the pattern anywhere; keywords and the pattern ignore case.
        """
        if self.quick_reply is not None and text.strip().casefold() == self.quick_reply.casefold():
            return True
        text = text[:MATCHED_CHARS].replace("\u2019", "'")  # a phone's curly apostrophe (U+2019) as '
        if any(k.search(text) for k in self.keywords):
            return True
        return bool(self.pattern and self.pattern.search(text))


@dataclass(frozen=True)
class Ask:
    """A piece of visitor data a state asks for: kept as ``variable`` once valid, then on to ``then``.

    After ``attempts`` answers that are not valid, the conversation goes to ``otherwise``; an answer that
    declines (``decline``: "no", "I'd rather not") ends the questions at once (see :func:`step`).
    """

    variable: str
    kind: str
    pattern: re2._Regexp
    label: str  # how the summary for the human names it
    attempts: int
    then: str
    otherwise: str
    decline: tuple[re.Pattern, ...] = ()

    def declined(self, text: str) -> bool:
        """Whether the visitor's text declines to answer (a decline phrase as whole words, any apostrophe)."""
        text = text[:MATCHED_CHARS].replace("\u2019", "'")
        return any(d.search(text) for d in self.decline)

    def value_in(self, text: str) -> str | None:
        """The value the visitor's text gives, or None when it gives none."""
        found = self.pattern.search(text[:MATCHED_CHARS])
        return plain(found.group(0))[:MAX_VARIABLE_CHARS] if found else None


# What a visitor's value must not carry into later messages and the summary for the human: markup, links
# (javascript:, data:, a phishing page), invisible and control characters. Linear-time patterns.
_MARKUP = re.compile(r"<[^<>]*>")
_LINK = re.compile(r"\b(?:(?:https?|ftp|file|javascript|vbscript|data|mailto|tel|sms):|www\.)[^\s<>]+", re.IGNORECASE)
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def plain(value: str) -> str:
    """A visitor's value as plain text, to repeat: markup and links taken out (a link as ``[link]``),
    invisible characters removed, spaces collapsed."""
    value = _LINK.sub("[link]", _MARKUP.sub(" ", _INVISIBLE.sub(" ", value)))
    return " ".join(value.split())


@dataclass(frozen=True)
class State:
    """One state of a scenario: the replies sent on entering it, the transitions out, its fallback.

    A ``slow`` state answers ``holding`` at once and sends its replies later, as proactive messages.
    A state that ``ask``s is skipped (straight to ``ask.then``) when the variable is known already.
    """

    name: str
    replies: tuple[dict, ...]
    transitions: tuple[Transition, ...] = ()
    fallback: tuple[dict, ...] | None = None
    slow: bool = False
    holding: tuple[dict, ...] = ()
    ask: Ask | None = None


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
    summary: str = DEFAULT_SUMMARY["en"]  # with {summary}: sent before a transfer when variables are known
    languages: tuple[str, ...] = ()  # the languages its texts come in, the first the default; () when one
    source: str = field(default="", compare=False)
    translations: dict[str, Scenario] = field(default_factory=dict, compare=False, repr=False)

    def in_language(self, language: str | None) -> Scenario:
        """The scenario with its texts in ``language``; in its first language when it has no such texts."""
        return self.translations.get(
            language or "", self.translations.get(self.languages[0]) if self.languages else self
        )

    def label_of(self, variable: str) -> str:
        """How the summary for the human names ``variable`` (its ask's label)."""
        return next((s.ask.label for s in self.states.values() if s.ask and s.ask.variable == variable), variable)


@dataclass
class Step:
    """What the scenario does with one visitor message."""

    state: str | None  # the state the conversation is in afterwards (None: not started)
    replies: list[dict]  # wire replies, transfer rules still symbolic (see resolve_transfers)
    deferred: list[dict] = field(default_factory=list)  # replies too slow for the HTTP budget
    variables: dict[str, str] = field(default_factory=dict)  # every variable known afterwards


# --- running -------------------------------------------------------------------------------


def step(scenario: Scenario, state: str | None, payload: dict, variables: dict[str, str] | None = None) -> Step:
    """Advance ``scenario`` from ``state`` (None: nothing said yet) on one visitor payload.

    ``variables`` are what the visitor gave so far. A state the scenario no longer has (the
    file was edited, or the operator moved to another scenario) counts as nothing said yet:
    the conversation starts over.
    """
    known = dict(variables or {})
    name, tries = _parse_state(state)
    current = scenario.states.get(name) if name else None
    if payload.get("contentType") != "text":
        # Answered politely; the scenario itself has not started until the visitor writes.
        return Step(state if current else None, _filled(scenario, scenario.non_text, known), variables=known)
    text = str(payload.get("value", ""))
    own = current.transitions if current else scenario.states[scenario.start].transitions
    for transition in own:
        if transition.matches(text):
            return _enter(scenario, scenario.states[transition.goto], known)
    for transition in scenario.anywhere:
        if transition.matches(text):
            target = scenario.states[transition.goto]
            if current is not None and current.ask and current.name in _questions_from(scenario, target):
                # asked, say, for a person again while being asked a question on the way to one: no more
                # questions, on with what was collected (a visitor is never kept in a loop of questions)
                return _enter(scenario, _past_questions(scenario, current), known)
            return _enter(scenario, target, known)
    if current is None:  # the first message starts the scenario
        return _enter(scenario, scenario.states[scenario.start], known)
    if current.ask:
        return _answer_ask(scenario, current, text, tries, known)
    fallback = current.fallback if current.fallback is not None else scenario.fallback
    return Step(
        current.name, _filled(scenario, fallback if fallback is not None else current.replies, known), variables=known
    )


def _answer_ask(scenario: Scenario, current: State, text: str, tries: int, known: dict) -> Step:
    """The visitor's answer to a state's question: kept when valid, else asked again, then given up on."""
    ask = current.ask
    value = ask.value_in(text)
    if value is not None:
        known[ask.variable] = value
        return _enter(scenario, scenario.states[ask.then], known)
    if ask.declined(text):  # "no", "I'd rather not": no more questions, on with what was collected
        return _enter(scenario, _past_questions(scenario, current), known)
    if tries + 1 >= ask.attempts:
        return _enter(scenario, scenario.states[ask.otherwise], known)
    # asked again: the state's fallback, or the question itself
    again = current.fallback if current.fallback is not None else current.replies
    return Step(f"{current.name}#{tries + 1}", _filled(scenario, again, known), variables=known)


def _questions_from(scenario: Scenario, state: State) -> set[str]:
    """The asking states a conversation goes through from ``state`` (itself included), following each
    question's ``then`` and ``otherwise``: the questions on the way there (a handover's)."""
    found, waiting = set(), [state]
    while waiting:
        current = waiting.pop()
        if current.ask and current.name not in found:
            found.add(current.name)
            waiting += [scenario.states[current.ask.then], scenario.states[current.ask.otherwise]]
    return found


def _past_questions(scenario: Scenario, current: State) -> State:
    """The first state that asks nothing, following each question's ``otherwise`` from ``current``: where a
    visitor goes who will not, or cannot, answer (the transfer, in a handover)."""
    state, seen = current, set()
    while state.ask and state.name not in seen:
        seen.add(state.name)
        state = scenario.states[state.ask.otherwise]
    return state


def _parse_state(state: str | None) -> tuple[str | None, int]:
    """A stored state: the state's name, and how many answers to its question were not valid (``name#2``)."""
    if not state or "#" not in state:
        return state, 0
    name, _, tries = state.partition("#")
    return name, int(tries) if tries.isdigit() else 0


def _enter(scenario: Scenario, state: State, known: dict, skipped: frozenset = frozenset()) -> Step:
    if state.ask and state.ask.variable in known and state.name not in skipped:
        # the visitor gave it already: never asked twice
        return _enter(scenario, scenario.states[state.ask.then], known, skipped | {state.name})
    replies = _filled(scenario, state.replies, known)
    if state.slow:
        return Step(state.name, _filled(scenario, state.holding, known), deferred=replies, variables=known)
    return Step(state.name, replies, variables=known)


def _filled(scenario: Scenario, replies, known: dict) -> list[dict]:
    """The replies with ``{variable}`` written in, and the summary for the human before a transfer."""
    filled = []
    for reply in replies:
        if reply["type"] == "transfer" and known:
            summary = "; ".join(f"{scenario.label_of(k)}: {v}" for k, v in known.items())
            filled.append(_text_reply(_cut(scenario.summary.replace("{summary}", summary))))
        payload = reply.get("payload") or {}
        if payload.get("contentType") == "text" and "{" in payload["value"]:
            value = _PLACEHOLDER.sub(lambda m: known.get(m.group(1), ""), payload["value"])
            reply = {**reply, "payload": {**payload, "value": _cut(value)}}
        filled.append(reply)
    return filled


def _text_reply(text: str) -> dict:
    return {"type": "message", "payload": {"contentType": "text", "value": text}}


def _cut(text: str) -> str:
    """A message filled in beyond what iAdvize shows, cut to fit rather than cut by iAdvize."""
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


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
    problems: list[ScenarioError] = []  # every file's, said at once
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in paths:
        try:
            scenario = load_file(path)
        except ScenarioError as error:
            problems += problems_of(error)
            continue
        if scenario.id_bot in scenarios:
            problems.append(
                ScenarioError(
                    str(path), "idBot", f"{scenario.id_bot!r} is already used by {scenarios[scenario.id_bot].source}"
                )
            )
        scenarios[scenario.id_bot] = scenario
    _raise_all(problems)
    if not paths:
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
    try:
        return parse(data, source)
    except ScenarioError as error:
        lined = [ScenarioError(e.source, e.where, e.what, _line_of(text, e.where)) for e in problems_of(error)]
        _raise_all(lined)
        raise  # unreachable: _raise_all raised


def _line_of(text: str, where: str) -> int | None:
    """The line (1-based) of ``where`` (``states.a.transitions[0].goto``) in the YAML ``text``: of its key in
    a mapping, its item in a list; the deepest part found when the rest is missing (a key required)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", where):
        if key and isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def parse(data, source: str = "<scenario>") -> Scenario:
    """The scenario in ``data`` (a loaded YAML document); raises ScenarioError naming ``source`` and the field.

    With ``languages: [en, fr]``, any value may be given per language (``{en: Hello, fr: Bonjour}``):
    the scenario is read once per language, and :meth:`Scenario.in_language` picks one.
    """
    languages = _languages(data, source)
    if not languages:
        return _Parser(source).scenario(data)
    # read in the first language first: a problem found there is the file's and told plainly; one found
    # only in another language is that language's, and said so
    translations = {
        lang: _Parser(source, lang, tell=lang != languages[0]).scenario(_localized(data, lang, languages, source))
        for lang in languages
    }
    return dataclasses.replace(translations[languages[0]], translations=translations)


def _languages(data, source: str) -> tuple[str, ...]:
    if not isinstance(data, dict) or "languages" not in data:
        return ()
    languages = data["languages"]
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(lang, str) and _LANGUAGE.match(lang) for lang in languages)
    ):
        raise ScenarioError(
            source, "languages", f"must be a list of two-letter language codes such as [en, fr], got {languages!r}"
        )
    return tuple(dict.fromkeys(languages))


def _localized(value, language: str, languages: tuple[str, ...], source: str, where: str = ""):
    """``value`` with every per-language mapping (keys among ``languages``) replaced by its ``language`` text."""
    if isinstance(value, dict):
        if value and set(value) <= set(languages) and not set(value) & {"idBot", "languages"}:
            if language not in value:
                given = ", ".join(sorted(value))
                raise ScenarioError(
                    source, where, f"has texts in {given} but not in {language}: give all of {', '.join(languages)}"
                )
            return _localized(value[language], language, languages, source, where)
        return {k: _localized(v, language, languages, source, _join(where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_localized(v, language, languages, source, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class _Parser:
    def __init__(self, source: str, language: str | None = None, tell: bool = False):
        self.source, self.language, self.tell = source, language, tell

    def fail(self, where: str, what: str):
        if self.tell:
            what += f" (in {self.language})"
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

    def pattern(self, value, where: str) -> re2._Regexp:
        try:
            return pattern(self.string(value, where))
        except re2.error as error:
            try:
                re.compile(value)
            except re.error as invalid:  # not a regular expression at all: say what is wrong with it
                self.fail(where, f"not a valid regular expression: {invalid}")
            said = error.args[0] if error.args else error
            reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
            self.fail(
                where,
                f"not a regular expression RE2 can run ({reason}): write it without backreferences or "
                "lookarounds, whose matching can take time exponential in the visitor's text",
            )

    def scenario(self, data) -> Scenario:
        data = self.mapping(
            data,
            "",
            required=("idBot", "name", "start", "states"),
            optional=(
                "description", "editorUrl", "availability", "greeting", "anywhere", "fallback", "non_text",
                "languages", "summary",
            ),
        )  # fmt: skip
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
        states, problems = {}, []
        for n, s in states_data.items():  # every broken state is said, not the first only
            try:
                states[n] = self.state(n, s, names)
            except ScenarioError as error:
                problems.append(error)
        _raise_all(problems)
        summary = data.get("summary", DEFAULT_SUMMARY.get(self.language or "en", DEFAULT_SUMMARY["en"]))
        if "{summary}" not in self.string(summary, "summary"):
            self.fail("summary", "must say where the data goes, with {summary}")
        scenario = Scenario(
            id_bot=self.string(data["idBot"], "idBot"),
            name=self.string(data["name"], "name"),
            description=str(data.get("description") or ""),
            editor_url=editor_url,
            availability=availability,
            greeting=tuple(r for r in greeting if r["type"] == "message"),  # iAdvize ignores the others
            start=start,
            states=states,
            anywhere=self.transitions(data.get("anywhere", []), "anywhere", names),
            fallback=self.replies(data["fallback"], "fallback") if "fallback" in data else None,
            non_text=self.replies(data.get("non_text", [{"text": DEFAULT_NON_TEXT}]), "non_text"),
            summary=summary,
            languages=_languages(data, self.source),
            source=self.source,
        )
        self.check_placeholders(data, {s.ask.variable for s in states.values() if s.ask})
        return scenario

    def check_placeholders(self, data, variables: set[str], where: str = "") -> None:
        """Every ``{name}`` in a text names a variable some state asks for."""
        if isinstance(data, dict):
            for key, value in data.items():
                self.check_placeholders(value, variables, _join(where, str(key)))
        elif isinstance(data, list):
            for i, value in enumerate(data):
                self.check_placeholders(value, variables, f"{where}[{i}]")
        elif isinstance(data, str) and where.endswith("text"):
            for name in _PLACEHOLDER.findall(data):
                if name not in variables:
                    known = ", ".join(sorted(variables)) or "none: no state asks for any"
                    self.fail(where, f"{{{name}}} is not a variable any state asks for (variables: {known})")

    def state(self, name, data, names) -> State:
        where = f"states.{name}"
        if "#" in name:
            self.fail(where, "a state's name cannot contain '#'")
        data = self.mapping(
            data, where, required=("replies",), optional=("transitions", "fallback", "slow", "holding", "ask")
        )
        replies = self.replies(data["replies"], f"{where}.replies")
        slow = data.get("slow", False)
        if not isinstance(slow, bool):
            self.fail(f"{where}.slow", "must be true or false")
        if slow:
            for i, reply in enumerate(replies):
                if reply["type"] == "message" and reply["payload"].get("contentType") != "text":
                    self.fail(
                        f"{where}.replies[{i}]",
                        "a slow state's replies are posted through iAdvize's API, which sends texts (with quick "
                        "replies), transfers and close only",
                    )
        return State(
            name=name,
            replies=replies,
            transitions=self.transitions(data.get("transitions", []), f"{where}.transitions", names),
            fallback=self.replies(data["fallback"], f"{where}.fallback") if "fallback" in data else None,
            slow=slow,
            holding=self.replies(data.get("holding", [{"text": DEFAULT_HOLDING}]), f"{where}.holding"),
            ask=self.ask(data["ask"], f"{where}.ask", names) if "ask" in data else None,
        )

    def ask(self, data, where, names) -> Ask:
        data = self.mapping(
            data,
            where,
            required=("variable", "kind", "then", "otherwise"),
            optional=("pattern", "label", "attempts", "decline"),
        )
        variable = self.string(data["variable"], f"{where}.variable")
        if not re.fullmatch(_VARIABLE, variable):
            self.fail(f"{where}.variable", f"must be lower_case_with_underscores, got {variable!r}")
        kind = data["kind"]
        if kind not in KINDS:
            self.fail(f"{where}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        compiled = self.pattern(data.get("pattern", KINDS[kind]), f"{where}.pattern")
        attempts = data.get("attempts", DEFAULT_ATTEMPTS)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
            self.fail(f"{where}.attempts", f"must be a whole number from 1 to 10, got {attempts!r}")
        for key in ("then", "otherwise"):
            if self.string(data[key], f"{where}.{key}") not in names:
                self.fail(f"{where}.{key}", f"unknown state {data[key]!r} (states: {', '.join(sorted(names))})")
        label = self.string(data.get("label", variable.replace("_", " ")), f"{where}.label")
        decline = data.get("decline", DECLINE.get(self.language or "en", DECLINE["en"]))
        if not isinstance(decline, list | tuple) or not all(isinstance(d, str) and d.strip() for d in decline):
            self.fail(f"{where}.decline", "must be a list of words or phrases (quote no and yes)")
        words = tuple(_phrase(d) for d in decline)
        return Ask(variable, kind, compiled, label, attempts, data["then"], data["otherwise"], words)

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
            pattern = self.pattern(item["pattern"], f"{here}.pattern") if "pattern" in item else None
            found.append(
                Transition(
                    goto=goto,
                    quick_reply=self.string(item["quick_reply"], f"{here}.quick_reply")
                    if "quick_reply" in item
                    else None,
                    keywords=tuple(_phrase(k) for k in keywords),
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


def _phrase(words: str) -> re.Pattern:
    """A keyword or phrase matched as whole words, any case: a literal, so matching is linear in the text."""
    return re.compile(rf"\b{re.escape(words.strip().replace(chr(0x2019), chr(39)))}\b", re.IGNORECASE)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --- where a state is, what it says (for coverage reports) --------------------------------------


def state_lines(source: str) -> dict[str, int]:
    """Each state's line (1-based) in the scenario file at ``source``, for reports that point at it."""
    document = yaml.compose(Path(source).read_text(encoding="utf-8"))
    for key, value in getattr(document, "value", []):
        if getattr(key, "value", None) == "states" and isinstance(value, yaml.MappingNode):
            return {k.value: k.start_mark.line + 1 for k, _ in value.value}
    return {}


def transition_lines(scenario: Scenario) -> list[dict]:
    """Every transition of the scenario: from which state (``anywhere``: any), to which, and its line."""
    document = yaml.compose(Path(scenario.source).read_text(encoding="utf-8"))
    top = {k.value: v for k, v in getattr(document, "value", [])}
    found = []
    for node, transition in zip(getattr(top.get("anywhere"), "value", []), scenario.anywhere, strict=False):
        found.append({"from": "anywhere", "to": transition.goto, "line": node.start_mark.line + 1,
                      "on": _trigger(transition)})  # fmt: skip
    for key, state_node in getattr(top.get("states"), "value", []):
        fields = {k.value: v for k, v in getattr(state_node, "value", [])}
        state = scenario.states.get(key.value)
        if state is None:
            continue
        for node, transition in zip(getattr(fields.get("transitions"), "value", []), state.transitions, strict=False):
            found.append({"from": state.name, "to": transition.goto, "line": node.start_mark.line + 1,
                          "on": _trigger(transition)})  # fmt: skip
    return found


ANYWHERE = ("anywhere",)  # the scenario's anywhere list, as no state's name can be


def unoffered_quick_replies(scenario: Scenario) -> list[ScenarioError]:
    """The transitions on a quick reply that no menu of their state offers (``Opening hour`` where the menu says
    ``Opening hours``): a visitor can only take one by typing it word for word. A state offers the quick
    replies of its replies, fallbacks, holding message, and of what any state may show (the fallback, the
    answer to a file, the greeting); ``anywhere`` transitions, those of any state."""
    declared = transition_lines(scenario)  # the anywhere list's first, then each state's (one may be named so)
    lines = {ANYWHERE: [t["line"] for t in declared[: len(scenario.anywhere)]]}
    for t in declared[len(scenario.anywhere) :]:
        lines.setdefault(t["from"], []).append(t["line"])
    found, said = [], set()
    for language in scenario.languages or ("",):
        version = scenario.in_language(language or None)
        # what any state may show: the fallback, the greeting, the answer to a file (non_text keeps the state)
        common = (*(version.fallback or ()), *version.greeting, *version.non_text)
        offered = {
            n: _offers((*s.replies, *(s.fallback or ()), *s.holding, *common)) for n, s in version.states.items()
        }
        everywhere = {k: v for offers in (*offered.values(), _offers(common)) for k, v in offers.items()}
        sources = [(ANYWHERE, version.anywhere, everywhere)]
        sources += [(n, s.transitions, offered[n]) for n, s in version.states.items()]
        for origin, transitions, offers in sources:
            for i, transition in enumerate(transitions):
                value = transition.quick_reply
                if value is None or value.casefold() in offers or (origin, i, value) in said:
                    continue
                said.add((origin, i, value))
                menu = ", ".join(sorted(offers.values())) or "none"
                where = f"{'anywhere' if origin is ANYWHERE else f'states.{origin}.transitions'}[{i}].quick_reply"
                line = (lines.get(origin) or [None] * (i + 1))[i]
                found.append(ScenarioError(scenario.source, where, f"{value!r} is not a quick reply offered there "
                                           f"(offered: {menu}): a visitor can only type it", line))  # fmt: skip
    return found


def _offers(replies) -> dict[str, str]:
    """The quick-reply values of ``replies``, keyed as a transition compares them (ignoring case)."""
    return {
        str(q.get("value", "")).casefold(): str(q.get("value", ""))
        for r in replies
        if isinstance(r, dict)
        for q in r.get("quickReplies") or ()
        if isinstance(q, dict)
    }


def _trigger(transition: Transition) -> str:
    """What takes a transition, in words: two transitions between the same states differ by it."""
    if transition.quick_reply is not None:
        return f"quick reply {transition.quick_reply!r}"
    return "keywords" if transition.keywords else "a pattern"


def state_messages(scenario: Scenario) -> dict[str, list[dict]]:
    """The payloads each state sends on entering it (its holding message for a slow one), in every language."""
    sent: dict[str, list[dict]] = {}
    for variant in scenario.translations.values() or [scenario]:
        for name, state in variant.states.items():
            replies = state.holding if state.slow else state.replies
            sent.setdefault(name, []).extend(r["payload"] for r in replies if r["type"] == "message")
    return sent

"""The probe engine of ``check``: conversations through the simulated platform, judged by the rules.

The bot is set up as iAdvize would (an operator with two distribution rules per scenario it
lists, saved with ``PUT /bots``), then driven through probe conversations that explore its
graph: every quick reply offered, breadth-first (bounded), an escalation in the bot's words
with a human available and without, a file from the visitor, a long silence, and a retried
message. With a secret, forged signatures (on a GET and on a POST) must all be refused, and
a correct one accepted whatever the case of its header.

What does not work is reported and the rest still runs: a connector without configuration
endpoints gets one finding per endpoint and every conversation probe, with an operator id of
check's own (or ``--id-operator``). An endpoint that keeps going over its budget is given up
(:class:`~harness.client.GiveUp`), so a hanging bot costs a few budgets, not minutes.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from harness import render
from harness.client import (
    NO_SCENARIO,
    BotClient,
    Exchange,
    GiveUp,
    describe_failure,
    json_bytes,
    preflight,
    visitor_text,
)
from harness.conformance import phrasings
from harness.conformance.coverage import GIBBERISH, Coverage, coverage, fallback_of
from harness.conformance.platform import (
    PROACTIVE_WAIT_SECONDS,
    Event,
    ProactiveWait,
    SimulatedConversation,
    SimulatedPlatform,
)
from harness.conformance.rules import Finding, Observation, PlatformObservation, judge, judge_platform
from harness.conformance.technical import technical_error
from harness.progress import silent
from harness.wire import signature

VISITOR_NEVER_WROTE = "the visitor has not written yet: a bot cannot start a conversation"
RULES_OF_OPERATOR = [
    {"id": "3c9e1f5a-2b4d-4e6f-8a1b-0c2d3e4f5a01", "label": "Customer service"},
    {"id": "8d7c6b5a-4e3f-4a2b-9c1d-0e1f2a3b4c02", "label": "Returns desk"},
]
VISITOR_FILE = {
    "contentType": "file",
    "fileName": "receipt.png",
    "mimeType": "image/png",
    "url": "https://files.example.com/receipt.png",
}
THINK_SECONDS = 5.0  # simulated time a visitor takes to answer
PREQUALIFICATION_ANSWERS = 4  # questions the escalation probe answers before it expects the transfer
MAX_SCENARIOS = 5
OTHER_SECRET = "not-the-app-secret"
CONFIRMING_RUNS = 4  # more runs alone when an answer changed: a bot picking among 4 texts agrees in 6 once in 1,000
CROSSTALK_WORDS = ("Where is my order?", "Thanks, goodbye")  # when the greeting offers no quick replies
LOWERCASE_HEADER = signature.HEADER.lower()  # how the documentation writes it now
SIGNATURE_REFUSALS = (400, 401, 403)  # 401/403 as the docs ask; 400 as Tock answers
FORGERIES = {  # what check sends in place of a valid X-iAdvize-Signature: each must be refused
    "unsigned": "no signature",
    "wrong-hex": "sha256= and 64 wrong hex digits",
    "other-data": "a valid signature of {other}",
    "wrong-algorithm": "the right signature behind sha1= instead of sha256=",
    "other-secret": "a signature made with another secret",
    # malformed: home-made checks split on "=", decode hex or compare buffers of unequal length, and crash
    "no-equals": "the right hex digits without sha256=",
    "non-hex": "sha256= and 64 characters that are not hex",
    "short": "sha256= and the first 32 of the right hex digits",
    "two-headers": "two signature headers, both wrong",  # Node joins them with ", ": a length no check expects
}


@dataclass
class Exploration:
    """How far check goes, and as whom."""

    depth: int = 3  # quick replies followed in a row
    conversations: int = 12  # explored conversations at most
    id_operator: str | None = None  # the operator to save and converse as (default: a new one per scenario)
    language: str | None = None  # the operator's language and the probes' (default: English, escalation in French too)
    escalations: list[str] = field(default_factory=list)  # the bot's own ways of asking for a human, tried first


@dataclass
class Report:
    """What ``check`` found: findings, conversations with transcripts, notes; ``stopped`` when nothing was tried."""

    findings: list[Finding] = field(default_factory=list)
    conversations: list[SimulatedConversation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run could not do, said once
    stopped: str | None = None  # why nothing was tried: the bot refuses the signature, or cannot be reached
    scripts: list[str] = field(default_factory=list)  # names of the scripts run
    scenarios: list[str] = field(default_factory=list)  # the scenarios probed
    labels: dict[str, str] = field(default_factory=dict)  # conversations outside the transcripts, by id
    coverage: list[Coverage] = field(default_factory=list)  # per scenario: the graph the probes found

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    def summary(self) -> dict:
        """Counts (conversations, calls made, findings, errors, warnings), the rules broken, notes and scenarios."""
        return {
            "stopped": self.stopped,
            "notes": list(self.notes),
            "scenarios": list(self.scenarios),
            "conversations": len(self.conversations),
            "findings": len(self.findings),
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "calls": sum(1 for c in self.conversations for e in c.calls if not e.exchange.skipped),
            "rules": sorted({f.rule for f in self.findings}),
        }

    def label(self, id_conversation: str) -> str:
        """A conversation by its probe and scenario (``""`` for calls outside conversations)."""
        found = next((c.label for c in self.conversations if id_conversation in (c.id, c.first_id)), None)
        return found if found is not None else self.labels.get(id_conversation, "")

    def as_dict(self) -> dict:
        """The report as the JSON file holds it: each finding with the name of its probe, the summary, and
        each scenario's coverage (its graph and dead ends)."""
        findings = [{**f.as_dict(), "probe": self.label(f.conversation)} for f in self.findings]
        return {"findings": findings, "summary": self.summary(), "coverage": [c.as_dict() for c in self.coverage]}


class Checker:
    """Runs ``check`` on one bot: an operator set up per scenario, the probes, every exchange judged by the rules.

    ``client`` is given the checker's GiveUp (its own, when it has one), so a bot that stops
    answering is given up across every probe.
    """

    def __init__(
        self,
        client: BotClient,
        secret: str | None = None,
        exploration: Exploration | None = None,
        progress=silent,
        api=None,
        proactive_wait: float = PROACTIVE_WAIT_SECONDS,
        webhooks=None,
        healthcheck_url: str | None = None,
    ):
        self.give_up = client.give_up or GiveUp()
        self.healthcheck_url = healthcheck_url  # where the app's settings put the health check (default: looked for)
        self.api = api  # the local iAdvize API the bot may post through (IAdvizeAPI), or None
        self.proactive_wait = ProactiveWait(proactive_wait)  # shared by the run's platforms
        self.webhooks = webhooks  # where the conversation events go (webhooks.Webhooks), or None
        client.give_up = self.give_up
        self.client = client
        self.secret = secret
        self.exploration = exploration or Exploration()
        self.progress = progress
        self.report = Report()
        self.id_operator = self._operator_id()
        self.id_bot = NO_SCENARIO
        self.rule_ids = [r["id"] for r in RULES_OF_OPERATOR]
        self._seen: dict[tuple[str, str, str, str], int] = {}  # (rule, endpoint, message, form) -> in findings
        self._previous: dict[str, Exchange] = {}  # idMessage -> first answer
        self._escalation: str | None = None  # the phrasing that made the bot transfer
        self._unanswered = ""  # a question the bot asked on the way to a human that the probe could not answer
        self._answered_get: dict[str, Exchange] = {}  # GET endpoint -> a signed call it answered 2xx
        self._doing = "check"  # the probe under way, for the progress line
        self._started: set[str] = set()  # iAdvize ids of the conversations check started

    def _operator_id(self) -> str:
        return self.exploration.id_operator or f"ha-{random.randint(900_000, 999_999)}"

    # --- findings ------------------------------------------------------------------------

    def observe(
        self, exchange: Exchange, purpose: str, conversation: str = "", sent_payload=None, forgery: str = ""
    ) -> None:
        """Judges one exchange by the rules and adds its findings; a fault already reported gets its count raised.

        Remembers each message's first answer, for a retry (``purpose`` ``retry``) to be compared
        with, and the first signed GET answered per endpoint, for the signature probes.
        """
        previous = None
        if exchange.endpoint == "messages" and isinstance(exchange.request_body, dict):
            id_message = (exchange.request_body.get("message") or {}).get("idMessage")
            previous = self._previous.get(id_message) if purpose == "retry" else None
            self._previous.setdefault(id_message, exchange)
        if exchange.endpoint == "conversations" and isinstance(exchange.request_body, dict):
            self._started.add(str(exchange.request_body.get("idConversation")))
        if exchange.method == "GET" and exchange.ok and purpose not in ("forged", "lowercase", "health"):
            self._answered_get.setdefault(exchange.endpoint, exchange)
        observation = Observation(exchange, purpose, conversation, self.rule_ids, sent_payload, previous, forgery)
        self._add(judge(observation), exchange.reproduce())

    def _add(self, findings: list[Finding], reproduce: str = "") -> None:
        for finding in findings:
            key = (finding.rule, finding.endpoint, finding.message, finding.form)
            if key in self._seen:  # the same fault met in many calls is reported once, with the count
                index = self._seen[key]
                self.report.findings[index] = dataclasses.replace(
                    self.report.findings[index], count=self.report.findings[index].count + 1
                )
            else:
                self._seen[key] = len(self.report.findings)
                self.report.findings.append(dataclasses.replace(finding, reproduce=reproduce))

    def _on_event(self, conversation: SimulatedConversation, event: Event) -> None:
        if event.kind == "unanswered":
            held = next((e.text for e in reversed(conversation.events) if e.kind == "shown"), "")
            # "Please wait, I'm transferring you" is no promise of a post: transfer-announced-not-done judges it
            if not phrasings.looks_like_transfer_announcement(held):
                observed = PlatformObservation(
                    "unanswered", conversation=conversation.first_id, text=event.text, quote=held
                )
                self._add(judge_platform(observed))
        if event.kind == "call":
            self.progress(f"{self._doing}, {self._tally()}")
            body = event.exchange.request_body or {}
            sent = (body.get("message") or {}).get("payload") if event.purpose == "visitor" else None
            self.observe(event.exchange, event.purpose, conversation.id, sent)

    def _health(self) -> Exchange:
        """The health check where ``healthcheck_url`` says, or looked for (a note when not at /healthcheck)."""
        exchange, note = self.client.find_health(self.healthcheck_url)
        self.report.notes += [note] if note else []
        return exchange

    # --- the run -------------------------------------------------------------------------

    def run(self, scripts: list | None = None) -> Report:
        """The whole check: preflight, the probes on each scenario listed, forged signatures, then ``scripts``.

        At most ``MAX_SCENARIOS`` scenarios are probed, and signatures are forged only with a secret.
        When the preflight finds the bot unreachable or refusing the signature, nothing else runs
        and ``stopped`` says why.
        """
        self.progress("check: is the bot there?", step="preflight")
        made, stopped = preflight(self.client, self.id_operator)
        if stopped:
            self.report.stopped = stopped
            return self.report
        scenarios = made[0]  # the preflight's conversation is for an operator not saved yet: not judged
        self._started |= {str((x.request_body or {}).get("idConversation")) for x in made[1:]}
        self.observe(scenarios, "scenarios")
        self.observe(self._health(), "health")  # as the developer platform polls it
        listed = scenarios.body if scenarios.ok and isinstance(scenarios.body, list) else []
        ids = [s["idBot"] for s in listed if isinstance(s, dict) and isinstance(s.get("idBot"), str)]
        if not ids:
            why = describe_failure(scenarios) if not scenarios.ok else "GET /external-bots answered []"
            self.report.notes.append(
                f"no scenario listed ({why}): the probes ran with an operator linked to {NO_SCENARIO!r}"
            )
            ids = [NO_SCENARIO]
        for id_bot in ids[:MAX_SCENARIOS]:  # one operator per scenario: each graph is explored
            self.id_bot, self.id_operator = id_bot, self._operator_id()
            self.report.scenarios.append(id_bot)
            self.set_up(id_bot)
            for name, probe in (
                ("exploring quick replies", self.explore),
                ("escalation", self.escalate),
                ("a file from the visitor", self.send_a_file),
                ("a long silence", self.stay_silent),
                ("a retried message", self.retry_a_message),
                ("a message it cannot understand", self.say_gibberish),
                ("two conversations at once", self.keep_apart),
            ):
                self._doing = f"check: scenario {id_bot}: {name}"
                self.progress(f"{self._doing}, {self._tally()}", step=f"{id_bot}:{name}")
                probe()
            self._map(id_bot)
        if self.secret:
            self.progress(f"check: forged signatures, {self._tally()}", step="signatures")
            self.probe_signatures()
        for script in scripts or []:
            self.progress(f"check: script {script.name}, {self._tally()}", step=f"script:{script.name}")
            self.run_script(script)
        self._judge_api()
        self._note_given_up()
        return self.report

    def _judge_api(self) -> None:
        """Every call the bot made to iAdvize's API, judged by the platform rules."""
        for call in self.api.calls if self.api is not None else []:
            if call.refusal == "ConversationNotFound" and call.conversation in self._started:
                # a conversation check started outside the platform (the preflight's): iAdvize knows it, and
                # would have refused the message because its visitor never wrote
                call = dataclasses.replace(call, refusal="VisitorHasNotWritten", why=VISITOR_NEVER_WROTE)
            self._add(judge_platform(PlatformObservation("api", call, call.conversation)))
        users = {c.user for c in self.api.calls if c.kind == "login"} if self.api is not None else set()
        for user in sorted(users):
            logins = sum(1 for c in self.api.calls if c.kind == "login" and c.user == user and c.status == 200)
            posts = sum(1 for c in self.api.calls if c.kind == "graphql")
            self._add(judge_platform(PlatformObservation("logins", (logins, posts), text=user)))

    def _tally(self) -> str:
        summary = self.report.summary()
        return ", ".join(
            render.count(summary[what], what.removesuffix("s")) for what in ("conversations", "calls", "findings")
        )

    def _note_given_up(self) -> None:
        """The endpoints given up: their timeout finding says so, with the count and the budget."""
        for endpoint in self.give_up.given_up:
            timeouts = [
                i
                for i, f in enumerate(self.report.findings)
                if f.endpoint == endpoint and f.rule in ("latency-budget", "first-messages-latency")
            ]
            if timeouts:
                finding = self.report.findings[timeouts[0]]
                self.report.findings[timeouts[0]] = dataclasses.replace(
                    finding, message=self.give_up.sentence(endpoint), count=self.give_up.timeouts.get(endpoint, 1)
                )
                for i in reversed(timeouts[1:]):  # the same timeouts said in other words: one finding
                    del self.report.findings[i]
            else:
                self.report.notes.append(self.give_up.sentence(endpoint))

    def run_script(self, script) -> None:
        """A conversation script: its exchanges judged by the rules, its failed expectations reported."""
        from harness.client import BotError
        from harness.conformance.scripts import ScriptError, ScriptFailure, run_script

        self.rule_ids = [r.get("id") for r in script.distribution_rules]  # the script's operator has its own rules
        try:
            chat = run_script(
                script, self.client, on_event=self._on_event, api=self.api, webhooks=self.webhooks, judge_answers=False
            )
            chat.label = f"script {script.name}"
            self.report.conversations.append(chat)
        except ScriptFailure as failure:
            failure.conversation.label = f"script {script.name}"
            self.report.conversations.append(failure.conversation)
            self.report.findings.append(
                Finding("script", "error", "messages", failure.conversation.id, str(failure), script.source)
            )
        except BotError as error:
            self.report.findings.append(
                Finding(
                    "script",
                    "error",
                    error.exchange.endpoint,
                    "",
                    f"{script.name}: could not set the operator up: {error}",
                    script.source,
                    reproduce=error.exchange.reproduce(),
                )
            )
        except ScriptError as error:
            self.report.findings.append(Finding("script", "error", "", "", f"{script.name}: {error}", script.source))
        self.report.scripts.append(script.name)

    def set_up(self, id_bot: str) -> None:
        """Save, read back and poll the operator, as an admin and iAdvize would; failures are findings."""
        path = f"/bots/{quote(self.id_operator, safe='')}"
        self.observe(
            self.client.exchange(
                "bot.save",
                "PUT",
                path,
                "bot.response",
                body={
                    "name": "iadvize-harness check",
                    "pseudo": "Bot",
                    "language": self.exploration.language or "en",
                    "distributionRules": RULES_OF_OPERATOR,
                    "external": {"idBot": id_bot},
                },
            ),
            "operator",
        )
        self.observe(self.client.exchange("bot.read", "GET", path, "bot.response"), "operator")
        self.observe(
            self.client.exchange(
                "availability-strategies",
                "GET",
                "/availability-strategies",
                "availability-strategies.response",
                params={"idOperator": self.id_operator},
            ),
            "availability",
        )

    def platform(self, available: bool = False) -> SimulatedPlatform:
        """A simulated platform for the current operator; a human takes a transfer only when ``available``."""
        return SimulatedPlatform(
            self.client,
            self.id_operator,
            RULES_OF_OPERATOR,
            rule_available=available,
            on_event=self._on_event,
            api=self.api,
            proactive_wait=self.proactive_wait,
            webhooks=self.webhooks,
        )

    def conversation(self, platform: SimulatedPlatform, label: str) -> SimulatedConversation:
        """A new conversation on ``platform``, greeted and started, kept in the report as ``label``."""
        chat = platform.open_chat()
        chat.label, chat.scenario = f"{label} ({self.id_bot})", self.id_bot
        self.report.conversations.append(chat)
        platform.start(chat)
        return chat

    @property
    def hello(self) -> str:
        """What the probe visitor says first, in the exploration's language."""
        return phrasings.greeting(self.exploration.language)

    def explore(self) -> None:
        """Follow every quick reply offered, breadth-first, within the exploration's bounds."""
        paths: deque[list[str]] = deque([[self.hello]])
        explored = 0
        while paths and explored < self.exploration.conversations:
            path = paths.popleft()
            platform = self.platform()
            chat = self.conversation(platform, "explore: " + " > ".join(path))
            answer = None
            for text in path:
                answer = platform.visitor_says(chat, text, after=THINK_SECONDS)
            explored += 1
            if answer is None or not answer.ok or chat.closed or len(path) > self.exploration.depth:
                continue
            paths.extend([*path, value] for value in dict.fromkeys(_offered(answer)))

    def escalate(self) -> None:
        """Ask for a human in the bot's words until it transfers; then again with nobody available.

        The words that worked for one scenario are tried first on the next.
        """
        tried, self._unanswered, announced = [], "", False
        for phrase in self._escalation_attempts():
            tried.append(phrase)
            transferred = self._ask_for_a_human(phrase, available=True)
            if transferred is None:  # the bot does not answer messages: other words would fare no better
                return
            if transferred == "announced":  # the words worked, the bot did not: other words would not help
                announced = True
                break
            if transferred:
                self._escalation = phrase
                self._ask_for_a_human(phrase, available=False)
                return
        asked = (
            f"; after being asked, it asked {self._unanswered!r}, which the probe could not answer (it answers "
            "questions naming an email, a phone number, an order number or a name)"
            if self._unanswered
            else ""
        )
        hint = "" if announced else "; if it does transfer, give its words with --escalation TEXT"
        self.report.notes.append(
            f"scenario {self.id_bot} never transferred to a human ({render.count(len(tried), 'way')} of asking "
            f"tried){asked}, so "
            f"the transfer rules were not exercised on it{hint}"
        )

    def _escalation_attempts(self):
        """Quick replies that look like a way to a human (when offered after the greeting), then phrasings."""
        platform = self.platform()
        chat = self.conversation(platform, "escalation: what the greeting offers")
        answer = platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        offered = [q for q in _offered(answer) if phrasings.looks_like_escalation(q)] if answer else []
        # a quick reply the exploration saw transfer, whatever its words ("Talk to a mechanic")
        explored = [
            c.label.removeprefix("explore: ").rsplit(" > ", 1)[-1].removesuffix(f" ({self.id_bot})")
            for c in self.report.conversations
            if c.scenario == self.id_bot
            and c.label.startswith("explore: ")
            and any(e.kind == "transfer" for e in c.events)  # asked for: its outcome was not waited for
        ]
        yield from dict.fromkeys(
            [
                *([self._escalation] if self._escalation else []),
                *self.exploration.escalations,
                *explored,
                *offered,
                *phrasings.escalations(self.exploration.language),
            ]
        )

    def _ask_for_a_human(self, phrase: str, available: bool) -> bool | str | None:
        """One conversation: greeting, then ``phrase``; True when the bot transferred, None when it did
        not answer the visitor at all, "announced" when the words worked and the bot did not (it told the
        visitor a person was coming and sent no transfer: a transfer-announced-not-done finding; or it showed
        the visitor an error), False otherwise."""
        platform = self.platform(available)
        who = "a human available" if available else "nobody available"
        chat = self.conversation(platform, f"escalation, {who}: {phrase!r}")
        platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        before = len(chat.events)  # what the bot says from here on answers the phrase
        asked = platform.visitor_says(chat, phrase, after=THINK_SECONDS)
        if chat.transfer is None and (asked is None or not asked.ok) and not chat.closed:
            return None
        asked = self._prequalify(platform, chat, asked)
        platform.wait(chat, 90)  # the transfer's outcome plays out, within its 60 s at most
        if chat.handed_over and not chat.closed:
            platform.visitor_says(chat, "Thanks Sam, my parcel is late", after=THINK_SECONDS)
        if any(e.kind == "transfer" for e in chat.events):  # asked for, whatever its outcome (a long timeout)
            return True
        shown = [e.text for e in chat.events if e.kind == "shown"]
        greeted = [e.text for e in chat.events[:before] if e.kind == "shown"]
        failed = [e.text for e in chat.events[before:] if e.kind == "shown" and technical_error(e.text)]
        if failed and not any(technical_error(text) for text in greeted):  # the words reached code that failed
            return "announced"  # they worked; error-shown-to-visitor says what the visitor read
        announcement = next((text for text in shown if phrasings.looks_like_transfer_announcement(text)), None)
        if announcement is None:
            return False
        self._add(judge_platform(PlatformObservation("announced", conversation=chat.first_id, quote=announcement)))
        return "announced"

    def _prequalify(self, platform: SimulatedPlatform, chat: SimulatedConversation, answer: Exchange | None):
        """Answer what the bot asks before it transfers (an email, a phone, an order number), a few times."""
        for _ in range(PREQUALIFICATION_ANSWERS):
            if chat.transfer is not None or chat.closed or answer is None or not answer.ok:
                break
            replies = answer.body["replies"]
            messages = [r for r in replies if r.get("type") == "message"]
            if not messages or any(r.get("type") == "transfer" for r in replies):  # transferring: nothing asked
                break
            question = render.reply(messages[-1])  # the question is the last message
            data = phrasings.visitor_data_for(question)
            if data is None:
                if question.rstrip().endswith("?"):  # asked something the probe cannot answer: say so if no transfer
                    self._unanswered = question
                break
            answer = platform.visitor_says(chat, data, after=THINK_SECONDS)
        return answer

    def send_a_file(self) -> None:
        """The probe of a visitor's file: a file, a greeting, then a file again."""
        platform = self.platform()
        chat = self.conversation(platform, "a file from the visitor")
        platform.visitor_says(chat, payload=VISITOR_FILE, after=THINK_SECONDS)
        platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        platform.visitor_says(chat, payload=VISITOR_FILE, after=THINK_SECONDS)

    def stay_silent(self) -> None:
        """The probe of a long silence: a greeting, then 15 minutes without a word (nudges, then iAdvize's close)."""
        platform = self.platform()
        chat = self.conversation(platform, "a long silence")
        platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        platform.wait(chat, 15 * 60)  # nudges, then iAdvize's 5-minute close

    def say_gibberish(self) -> None:
        """The probe of a message the bot cannot understand: its answer is the fallback (for the coverage)."""
        platform = self.platform()
        chat = self.conversation(platform, "a message it cannot understand")
        platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        platform.visitor_says(chat, GIBBERISH, after=THINK_SECONDS)

    def keep_apart(self) -> None:
        """The probe of shared state: conversations A and B on one operator, interleaved (A, B, A, B), must get
        the answers each gets alone.

        A says hello, then the first quick reply offered (or asks about an order); B says what the bot cannot
        understand, then the second quick reply (or says goodbye): different words, so a bot answering A from
        B's state answers A otherwise. What the visitor is answered is compared: the HTTP answer and what the
        bot posts through iAdvize's API meanwhile. Each is run alone twice first: words that differ between
        runs are not compared. A change is confirmed before it is reported (four more runs alone, one more
        interleaved), so a bot whose answers vary by themselves is not taken for one that mixes visitors up.
        """
        platform = self.platform()
        chat = self.conversation(platform, "two conversations at once: what the greeting offers")
        hello = platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        if hello is None or not hello.ok:
            return  # nothing answered: nothing to compare
        offered = list(dict.fromkeys(_offered(hello)))
        words = {
            "A": [self.hello, offered[0] if offered else CROSSTALK_WORDS[0]],
            "B": [GIBBERISH, offered[1] if len(offered) > 1 else CROSSTALK_WORDS[1]],
        }
        label = "two conversations at once"
        alone = {who: [self._alone(said, f"{label}: {who} alone") for _ in range(2)] for who, said in words.items()}
        runs = [self._interleaved(words, f"{label}: {{who}}, interleaved")]
        if self._changed(words, alone, runs, note=True) is None:
            return
        for who, said in words.items():  # confirm: what varies by itself shows in more runs alone
            alone[who] += [self._alone(said, f"{label}: {who} alone, again") for _ in range(CONFIRMING_RUNS)]
        runs.append(self._interleaved(words, f"{label}: {{who}}, interleaved again"))
        changed = self._changed(words, alone, runs)
        if changed is not None:
            i, who = changed
            conversation, answers, followed = runs[0][who]
            observed = PlatformObservation(
                "crosstalk", (words[who][i], alone[who][0][i]), conversation, text=followed[i], quote=answers[i]
            )
            self._add(judge_platform(observed))

    def _changed(self, words: dict, alone: dict, runs: list[dict], note: bool = False) -> tuple[int, str] | None:
        """The first step, in the order the messages came, whose answer changed in every interleaved run (as
        many words each time) against the runs alone, which agree on it but for the words that vary; only a
        step the other conversation spoke before is judged. With ``note``, a note when none could be."""
        steps = [(i, who) for i in range(max(map(len, words.values()))) for who in words if i < len(words[who])]
        judged = [
            (i, who)
            for i, who in steps
            if runs[0][who][2][i] and _comparable([run[i] for run in alone[who]])  # B spoke before; alike in length
        ]
        if note and not judged:
            self.report.notes.append(
                f"scenario {self.id_bot}: every answer varies by itself (runs of the same words differ in length), "
                "so whether conversations share state could not be judged"
            )
        for i, who in judged:  # what follows the first change is the same fault's doing
            alike, seen = [run[i] for run in alone[who]], [run[who][1][i] for run in runs]
            # changed in every interleaved run, and alike in length each time
            if _comparable(seen) and all(_masked(a, alike) != _masked(alike[0], alike) for a in seen):
                return i, who
        return None

    def _alone(self, words: list[str], label: str) -> list[str]:
        platform = self.platform()
        chat = self.conversation(platform, label)
        return [self._answered(platform, chat, text) for text in words]

    def _answered(self, platform: SimulatedPlatform, chat: SimulatedConversation, text: str) -> str:
        """What the visitor is answered: the HTTP answer, and what the bot posted through iAdvize's API."""
        before = len(chat.events)
        answer = _said(platform.visitor_says(chat, text, after=THINK_SECONDS))
        posted = [e.text for e in chat.events[before:] if e.kind == "shown" and e.purpose == "proactive"]
        return " / ".join([answer, *posted])

    def _interleaved(self, words: dict[str, list[str]], label: str) -> dict[str, tuple[str, list, list]]:
        """A's first message, B's, A's second, B's second... on one platform: per conversation, its iAdvize id,
        its answers, and the other conversation's last words before each of its messages ("" for none)."""
        platform = self.platform()
        chats, found, last = {}, {}, {}
        for i in range(max(map(len, words.values()))):
            for who, said in words.items():
                if i >= len(said):
                    continue
                if who not in chats:
                    chats[who] = self.conversation(platform, label.format(who=who))
                    found[who] = (chats[who].first_id, [], [])
                found[who][2].append(next((last[w] for w in reversed(list(last)) if w != who), ""))
                found[who][1].append(self._answered(platform, chats[who], said[i]))
                last.pop(who, None)
                last[who] = said[i]
        return found

    def _map(self, id_bot: str) -> None:
        """The scenario's graph and dead ends, from its probe conversations."""
        own = [c for c in self.report.conversations if c.scenario == id_bot]
        gibberish = next((c for c in own if c.label.startswith("a message it cannot understand")), None)
        self.report.coverage.append(coverage(id_bot, own, fallback_of(gibberish) if gibberish else None))

    def retry_a_message(self) -> None:
        """The probe of iAdvize retrying a call: the first visitor message sent again, same idMessage."""
        platform = self.platform()
        chat = self.conversation(platform, "a retried message")
        first = platform.visitor_says(chat, self.hello, after=THINK_SECONDS)
        if first is not None and not first.skipped:
            platform.resend(chat, first)

    # --- signatures ----------------------------------------------------------------------

    def probe_signatures(self) -> None:
        """Forged signatures on a GET and on a POST to a live conversation: each must be refused; a
        correct signature with its header name in lower case must be accepted."""
        same = {
            "id_connector_version": self.client.id_connector_version,
            "id_website": self.client.id_website,
            "give_up": self.give_up,
        }
        unsigned = BotClient(self.client.base_url, secret=None, **same)  # sends only the headers it is given
        lowercase = BotClient(self.client.base_url, secret=self.secret, signature_header=LOWERCASE_HEADER, **same)
        signed_get = next(iter(self._answered_get.values()), None)
        path = self._new_conversation()
        if signed_get is None and path is None:
            self.report.notes.append(
                "forged signatures could not be tried: no GET was answered and no conversation could be started"
            )
            return
        if signed_get is not None:
            target, _, query = signed_get.url.removeprefix(self.client.base_url).partition("?")
            get = {"Accept": "application/json"}
            forged = []
            for kind, what in FORGERIES.items():
                header = self._forged(kind, query.encode(), (query + "&idWebsite=ha-999").encode())
                forged.append(
                    unsigned.transmit(signed_get.endpoint, "GET", target, query, b"", {**get, **header}, None)
                )
                self.observe(forged[-1], "forged", forgery=what.format(other="another query string"))
            self.observe(lowercase.transmit(signed_get.endpoint, "GET", target, query, b"", get, None), "lowercase")
            self._inconclusive(f"GET {signed_get.endpoint}", forged)
        if path is None:
            self.report.notes.append("no conversation could be started: forged signatures were tried on a GET only")
            return
        conversation = unquote(path.split("/")[2])
        self.report.labels[conversation] = f"signature probes ({self.id_bot})"
        post, forged = {"Content-Type": "application/json"}, []
        for kind, what in [*FORGERIES.items(), (None, "")]:  # None: signed right, header in lower case
            body = {"idOperator": self.id_operator, "message": visitor_text(self.hello)}  # a new idMessage each
            data = json_bytes(body)
            client, header = (unsigned, self._forged(kind, data, data + b" ")) if kind else (lowercase, {})
            sent = client.transmit("messages", "POST", path, "", data, {**post, **header}, None, request_body=body)
            self.observe(
                sent, "forged" if kind else "lowercase", conversation, forgery=what.format(other="another body")
            )
            forged += [sent] if kind else []
        self._inconclusive("POST messages", forged)
        if signed_get is None:
            self.report.notes.append("no GET was answered: forged signatures were tried on a POST only")

    def _inconclusive(self, where: str, forged: list[Exchange]) -> None:
        """A note when forged calls were neither accepted nor refused nor crashed on (an error, a timeout,
        not sent, another status): the signature check could not be judged there."""
        unclear = [
            x.error if x.skipped or x.status is None else f"answered {x.status}"
            for x in forged
            if x.status is None or not (200 <= x.status < 300 or x.status in SIGNATURE_REFUSALS or x.status >= 500)
        ]
        if unclear:
            self.report.notes.append(
                f"forged signatures on {where}: {len(unclear)} of {len(forged)} neither "
                f"accepted nor refused ({'; '.join(dict.fromkeys(unclear))}): the signature "
                "check could not be judged there"
            )

    def _forged(self, kind: str, signed: bytes, other: bytes) -> dict:
        """The signature header of one of :data:`FORGERIES`, for a call whose signed part is ``signed``."""
        right = signature.sign(self.secret, signed).removeprefix(signature.PREFIX)
        value = {
            "unsigned": None,
            "wrong-hex": signature.PREFIX + "".join("0123456789abcdef"[(int(c, 16) + 1) % 16] for c in right),
            "other-data": signature.sign(self.secret, other),
            "wrong-algorithm": "sha1=" + right,
            "other-secret": signature.sign(OTHER_SECRET, signed),
            "no-equals": right,
            "non-hex": signature.PREFIX + "z" * len(right),
            "short": signature.PREFIX + right[: len(right) // 2],
            "two-headers": (signature.sign(OTHER_SECRET, signed), signature.sign(self.secret, other)),
        }[kind]
        return {signature.HEADER: value} if value else {}

    def _new_conversation(self) -> str | None:
        """The messages path of a conversation started for the signature probes (None: it could not be)."""
        started = self.client.exchange(
            "conversations",
            "POST",
            "/conversations",
            None,
            body={"idOperator": self.id_operator, "idConversation": str(uuid.uuid4()), "history": []},
        )
        ours = started.body.get("idConversation") if started.ok and isinstance(started.body, dict) else None
        return f"/conversations/{quote(ours, safe='')}/messages" if isinstance(ours, str) and ours else None


def _comparable(answers: list[str]) -> bool:
    """Runs of the same words can be compared word by word: their answers have as many words."""
    return len({len(answer.split()) for answer in answers}) == 1


def _masked(answer: str, alone: list[str]) -> tuple:
    """``answer``'s words, with those that differ between the runs ``alone`` blanked (a ticket, a time): as they
    are when it has not as many words."""
    words, runs = answer.split(), [run.split() for run in alone]
    if any(len(words) != len(run) for run in runs):
        return tuple(words)
    return tuple(w if len({run[k] for run in runs}) == 1 else None for k, w in enumerate(words))


def _said(answer: Exchange | None) -> str:
    """An answer on one line, to compare: its replies, or what came instead."""
    if answer is None:
        return "(the conversation had closed)"
    if not answer.ok:
        return f"({answer.error or f'HTTP {answer.status}'})"
    return " / ".join(render.reply(r) for r in answer.body["replies"]) or "(no reply)"


def _offered(answer: Exchange | None) -> list[str]:
    """The quick replies an answer offered, by value."""
    if answer is None or not answer.ok:
        return []
    return [
        q.get("value")
        for r in answer.body["replies"]
        if r.get("type") == "message"
        for q in r.get("quickReplies") or []
        if isinstance(q, dict) and isinstance(q.get("value"), str)
    ]


def check(
    client: BotClient,
    secret: str | None = None,
    scripts: list | None = None,
    exploration: Exploration | None = None,
    progress=silent,
    api=None,
    proactive_wait: float = PROACTIVE_WAIT_SECONDS,
    webhooks=None,
    healthcheck_url: str | None = None,
) -> Report:
    """Probe the bot behind ``client`` (and run ``scripts``); the findings, notes and transcripts.

    With ``api`` (an :class:`~harness.conformance.iadvize_api.IAdvizeAPI` the bot posts to), what the bot
    posts joins the conversations and its calls to the API are judged too; with ``webhooks``
    (:class:`~harness.conformance.webhooks.Webhooks`) each conversation's pushed and closed events are delivered;
    ``healthcheck_url`` is where the app's settings put the health check (a path or a URL).
    """
    return Checker(client, secret, exploration, progress, api, proactive_wait, webhooks, healthcheck_url).run(scripts)

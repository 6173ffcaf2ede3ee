"""One conversation with a bot, driven from the chat page: the visitor opens the chat, writes, taps quick
replies; the developer plays the human after a transfer. Each step runs on the simulated iAdvize platform (the
same as ``check`` and ``replay``), awaits fast-forwarded, and the page reads what happened as events.

An event is a dict the page draws: ``kind`` (``shown``, ``visitor``, ``human``, ``transfer``, ``dropped``,
``closed``, ``call``...), ``text``, the ``reply`` as the bot sent it, and for a call its method, path, status,
latency, budget, whether it was signed, both bodies and the findings of check's rules on it (the same engine).
"""

from __future__ import annotations

import json
import re
import threading
import uuid

from harness import render, wire
from harness.client import BotClient, BotError
from harness.conformance.platform import SimulatedConversation, SimulatedPlatform
from harness.conformance.rules import RULES, Observation, PlatformObservation, judge, judge_platform
from harness.traffic.recordings import posted, record, recorded_conversations, replies_of
from harness.traffic.to_scripts import script_file, script_of_conversation
from harness.wire.record_format import utc_iso

OPERATOR = "ha-777000"  # iAdvize ids end in digits: the bot posts to its API by them
RULE = {"id": "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6", "label": "Customer service"}  # the operator's first rule
MAX_RULES = 10
THINK_SECONDS = 2.0  # the simulated time a visitor takes to write
SHORT_WAIT_SECONDS = 10.0  # a wait of the bot's up to this is its typing, played at once
PREFERRED = "order-assistant"  # the embedded reference bot's full scenario, when the bot offers it
# The rules name the reply a finding is about as "replies[i] ..." (their own words, so anchored and bounded):
# the page marks that reply's bubble
_REPLY_NAMED = re.compile(r"replies\[(\d{1,4})\]")


class ChatSession:
    """The conversation the page shows (one at a time), on operator ``OPERATOR`` of the bot behind ``client``."""

    def __init__(
        self,
        client: BotClient,
        scenario: str = "",
        language: str = "en",
        human_available: bool = True,
        api=None,
        webhooks=None,
    ):
        self.client, self.scenario, self.language = client, scenario, language
        self.webhooks = webhooks  # where the conversation's webhooks are delivered (Webhooks), or None
        self.api = api  # the local iAdvize API the bot posts its slow answers through (IAdvizeAPI), or None
        # the operator's distribution rules, and whether a human takes a transfer to each (the developer plays them)
        self.rules = [{**RULE, "available": bool(human_available)}]
        self.opened_with: list[dict] = self._rules()  # the rules the conversation under way was opened with
        self.lock = threading.Lock()  # the page's calls arrive on the server's threads: one step at a time
        self.platform: SimulatedPlatform | None = None
        self.chat: SimulatedConversation | None = None
        self.judged = 0  # the chat's events judged so far (calls get their findings once)
        self.findings: dict[int, list[dict]] = {}
        self.recorded: list[tuple[dict, list[dict]]] = []  # an opened recording: its visitor payloads and answers
        self.played = 0  # how many of them were sent again
        self.compared: dict[int, list[dict]] = {}  # a call's event index -> the answer recorded to its message
        self.scenario_problem: str | None = None  # why the bot's scenario files do not load, when it says
        self.origins: dict[int, tuple[int, int]] = {}  # id() of a reply -> (its call's event index, its index)
        self.api_from = 0  # the bot's calls to iAdvize's API before this conversation are not its own

    def new(self) -> None:
        """A new conversation: the operator set up (scenario, language, a distribution rule), the chatbox opened
        (the greeting asked for, within its 2 s), the conversation routed to the bot."""
        with self.lock:
            self.opened_with = self._rules()  # a change of rules is for the next conversation, as iAdvize's
            settings = {"name": "chat", "distributionRules": self.opened_with, "language": self.language}
            if self.scenario:
                settings["external"] = {"idBot": self.scenario}
            else:
                offered = [s.get("idBot") for s in self.client.external_bots() if isinstance(s, dict)]
                chosen = PREFERRED if PREFERRED in offered else (offered[0] if offered else None)
                settings["external"] = {"idBot": chosen} if chosen else {}
            self.saved = self.client.exchange("bot.save", "PUT", f"/bots/{OPERATOR}", "bot.response", body=settings)
            if not self.saved.ok:
                raise BotError(self.saved)
            self.platform = SimulatedPlatform(
                self.client,
                OPERATOR,
                self.opened_with,
                rule_available=lambda rule: any(r["id"] == rule and r["available"] for r in self.rules),
                api=self.api,
                webhooks=self.webhooks,
            )
            self.chat = self.platform.open_chat()
            self.chat.label = "a conversation saved from iadvize-harness chat"
            self.chat.scenario = settings["external"].get("idBot", "")
            self.platform.start(self.chat)
            self.judged, self.findings, self.compared, self.origins = 0, {}, {}, {}
            self.api_from = len(self.api.calls) if self.api is not None else 0
            self._settle()
            self._look_for_problem()

    def say(self, text: str) -> None:
        """The visitor writes ``text`` (a quick reply tapped is its value written)."""
        self.send({"contentType": "text", "value": text})

    def send(self, payload: dict) -> None:
        """The visitor sends ``payload`` (a text, or a file as iAdvize posts one)."""
        with self.lock:
            self._ready()
            if self.chat.closed:
                raise ValueError("the conversation is closed: start a new one to write again")
            self.platform.visitor_says(self.chat, payload=payload, after=THINK_SECONDS)
            self._settle()
            self._look_for_problem()

    def open_recording(self, path, conversation: str | None = None) -> int:
        """Opens a recorded conversation (a recording file, JSON lines or gzipped; ``conversation``: its id, else
        the first one with a visitor message) to play again, message by message, against the bot now: a new
        conversation starts, and :meth:`step` sends the next recorded visitor message. Returns how many."""
        operators: dict = {}
        found = [
            c for c in recorded_conversations([path], [], operators) if c.visitor_lines and conversation in (None, c.id)
        ]
        if not found:
            which = f"no conversation {conversation!r}" if conversation else "no conversation with a visitor message"
            raise ValueError(f"{which} in {path}")
        self.recorded = [
            (line["request"]["message"]["payload"], replies_of(line["response"])) for line in found[0].visitor_lines
        ]
        self.played = 0
        recorded_bot = ((operators.get(found[0].operator) or {}).get("external") or {}).get("idBot")
        if isinstance(recorded_bot, str) and recorded_bot:
            self.scenario = recorded_bot  # played on the scenario it was recorded with
        self.new()
        return len(self.recorded)

    @property
    def steps_left(self) -> int:
        """How many recorded visitor messages are still to send."""
        return len(self.recorded) - self.played

    def step(self) -> bool:
        """Sends the next recorded visitor message; the bot's answer now is marked beside the recorded one.
        False once every recorded message was sent."""
        if self.played >= len(self.recorded):
            return False
        payload, replies = self.recorded[self.played]
        self.played += 1
        self.send(payload)
        with self.lock:
            call = max(n for n, e in enumerate(self.chat.events) if e.kind == "call" and e.purpose == "visitor")
            self.compared[call] = replies
        return True

    def settings(self) -> dict:
        """The operator's settings a new conversation gets, and the scenarios the bot offers to choose from."""
        offered = self.client.exchange("external-bots", "GET", "/external-bots", "external-bots.response")
        scenarios = [s.get("idBot") for s in offered.body if isinstance(s, dict)] if offered.ok else []
        chosen = self.scenario or (self.chat.scenario if self.chat is not None else "")
        return {"scenario": chosen, "language": self.language, "rules": [dict(r) for r in self.rules],
                "scenarios": scenarios, "signed": bool(self.client.secret)}  # fmt: skip

    def configure(self, scenario: str | None = None, language: str | None = None, rules=None) -> None:
        """Changes the operator's settings: the scenario, language and distribution rules for the next
        conversation; whether a human takes a transfer to each rule from now on. All or nothing."""
        if language is not None and not (isinstance(language, str) and len(language) == 2 and language.isalpha()):
            raise ValueError(f"a language is two letters (en, fr), got {str(language)[:20]!r}")
        if scenario is not None and not isinstance(scenario, str):
            raise ValueError("a scenario is the idBot of one the bot offers, as a string")
        checked = _checked_rules(rules) if rules is not None else None
        with self.lock:
            if scenario is not None:
                self.scenario = scenario
            if language is not None:
                self.language = language.lower()
            if checked is not None:
                self.rules = checked

    def human_says(self, text: str) -> None:
        """The human who took the conversation writes ``text``: posted to the bot as iAdvize posts an
        ``operator`` message."""
        with self.lock:
            self._ready()
            if not self.chat.handed_over:
                raise ValueError("no human has the conversation: a transfer must succeed first")
            self.platform.human_says(self.chat, text, after=THINK_SECONDS)

    @property
    def waiting(self) -> float | None:
        """How many seconds the bot's pending replies wait (a wait longer than its typing, say a nudge "are you
        still there?"), None when nothing waits; the visitor writing first cancels them."""
        chat = self.chat
        if chat is None or chat.closed or chat.resume_at is None:
            return None
        return round(chat.resume_at - chat.now, 3)

    def wait(self, seconds: float) -> None:
        """The visitor stays silent while the bot's pending wait of ``seconds`` passes (the page says which wait
        it let pass: one the visitor cancelled meanwhile is not played)."""
        with self.lock:
            self._ready()
            if self.waiting is None or not abs(self.waiting - seconds) <= 0.001:  # NaN is no wait either
                raise ValueError("nothing waits any more: the visitor wrote first, or the conversation closed")
            self.platform.wait(self.chat, seconds)
            self._settle()

    def api_calls(self, since: int = 0) -> list[dict]:
        """The bot's calls to iAdvize's API (the local one) from index ``since`` on, this conversation's and the
        logins, each judged by check's platform rules."""
        with self.lock:
            if self.api is None or self.chat is None:
                return []
            calls = list(self.api.calls)
            return [
                self._api_call(n, call)
                for n in range(max(since, self.api_from), len(calls))
                if (call := calls[n]).conversation in ("", self.chat.first_id)
            ]

    def fates(self, n: int) -> list[dict]:
        """What became of each reply of call ``n``, now: shown, not shown and why (the visitor wrote first, a
        transfer succeeded, the conversation closed), a transfer, a close, still waiting, or never played."""
        with self.lock:
            self._ready()
            if not 0 <= n < len(self.chat.events) or self.chat.events[n].kind != "call":
                raise ValueError(f"no call {n} in this conversation")
            self._judge()
            x = self.chat.events[n].exchange
            replies = x.body.get("replies") if x is not None and isinstance(x.body, dict) else None
            return [
                {"reply": _shown(r), "fate": self._fate(n, r)} for r in (replies if isinstance(replies, list) else [])
            ]

    def events(self, since: int = 0) -> list[dict]:
        """The conversation's events from index ``since``, as the page draws them."""
        with self.lock:
            if self.chat is None:
                return []
            self._judge()
            return [self._event(n, e) for n, e in enumerate(self.chat.events) if n >= since]

    def script(self) -> str:
        """The conversation as a conversation script (``*.convo.yaml``): what the visitor said, what the bot
        answered; it passes against the same bot under pytest."""
        with self.lock:
            self._ready()
            script = script_of_conversation(self.chat, self.opened_with, self.language)
            if script is None:
                raise ValueError("nothing to save yet: the visitor has not written")
            return script_file(script, "with `iadvize-harness chat`")

    def recording(self) -> str:
        """The conversation as a recording (JSON lines, the operator's set-up first), for ``replay``, ``report``
        and ``scripts --from``; what the bot posted through iAdvize's API as its own lines."""
        with self.lock:
            self._ready()
            lines = [record(self.saved, None, OPERATOR, 0)]
            for seq, event in enumerate(self.chat.events):
                if event.kind == "call" and event.exchange is not None:
                    lines.append(record(event.exchange, self.chat.id, OPERATOR, seq))
                elif event.purpose == "proactive" and event.kind == "shown" and isinstance(event.reply, dict):
                    lines.append(posted(event.reply, self.chat.id, OPERATOR, seq, utc_iso()))
            return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)

    # --- inside ----------------------------------------------------------------------------------

    def _rules(self) -> list[dict]:
        """The operator's distribution rules as iAdvize gives them to the bot: id and label."""
        return [{"id": r["id"], "label": r["label"]} for r in self.rules]

    def _label(self, rule: str) -> str:
        return next((r["label"] for r in self.opened_with if r["id"] == rule), rule)

    def _look_for_problem(self) -> None:
        """What the bot says of its scenario files (the reference bot with ``serve --reload``: a file that no
        longer loads); another bot has no such endpoint, and nothing is said."""
        said = self.client.exchange("scenario-problem", "GET", "/scenario-problem", None, budget=2.0)
        body = said.body if said.status == 200 and isinstance(said.body, dict) else {}
        self.scenario_problem = body.get("problem") if isinstance(body.get("problem"), str) else None

    def _ready(self) -> None:
        if self.chat is None:
            raise ValueError("no conversation yet: open one first")

    def _settle(self) -> None:
        """Fast-forwards simulated time through the bot's short waits (its typing: :data:`SHORT_WAIT_SECONDS`)
        and a transfer's search for a human; a longer wait (a nudge "are you still there?") stays pending, for
        the visitor's next message to cancel as iAdvize would."""
        for _ in range(100):  # each round runs at least one due reply or ends a transfer: bounded by the replies
            short = self.chat.resume_at if self.chat.resume_at is not None else None
            if short is not None and short - self.chat.now > SHORT_WAIT_SECONDS:
                short = None
            due = [t for t in (short, self.chat.transfer_ends_at) if t is not None]
            if not due or self.chat.closed:
                return
            self.platform.advance(self.chat, max(0.0, min(due) - self.chat.now))

    def _judge(self) -> None:
        """check's rules on every call not judged yet (the same engine; a transfer's rule known: the chat's)."""
        for n in range(self.judged, len(self.chat.events)):
            event = self.chat.events[n]
            if event.kind == "call" and event.exchange is not None:
                sent = (event.exchange.request_body or {}).get("message") if event.exchange.request_body else None
                payload = sent.get("payload") if isinstance(sent, dict) else None
                rules = [r["id"] for r in self.opened_with]
                found = judge(Observation(event.exchange, event.purpose, self.chat.id, rules, payload))
                self.findings[n] = [_finding(f) for f in found]
                replies = event.exchange.body.get("replies") if isinstance(event.exchange.body, dict) else None
                for i, reply in enumerate(replies if isinstance(replies, list) else []):
                    self.origins[id(reply)] = (n, i)  # the very objects the platform shows, dropped or transfers
        self.judged = len(self.chat.events)

    def _fate(self, n: int, reply) -> str:
        played = next((e for e in self.chat.events if e.reply is reply and e.kind != "call"), None)
        if played is not None and played.kind == "dropped":  # its text ends with why: "(the visitor wrote first)"
            return "not shown: " + played.text.rsplit(" (", 1)[-1].rstrip(")")
        if played is not None:
            return {"shown": f"shown at {played.at:g} s", "transfer": "transfer asked", "closed": "closed it"}.get(
                played.kind, played.kind
            )
        if any(reply is r for r in self.chat.pending):
            return "waiting: the bot's wait before it has not passed"
        if any(reply is r for r in self.chat.after_transfer):
            return "waiting for the transfer's outcome: played if nobody takes it"
        purpose, x = self.chat.events[n].purpose, self.chat.events[n].exchange
        if isinstance(reply, dict) and reply.get("type") == "await":
            return f"a wait of {wire.seconds(reply['duration']):g} s" if x.ok else "never played"
        if purpose in ("echo", "human"):
            return "never played: iAdvize plays no answer to an operator-authored message"
        if purpose == "greeting":
            return "never played: before the conversation, iAdvize shows messages only"
        return "never played: iAdvize cannot use this answer" if not x.ok else "never played"

    def _unplaced(self, n: int) -> list[dict]:
        """The errors found on call ``n`` that no bubble or marker of the chat carries: about the whole call (no
        answer, an echo answered), or about a reply the visitor never saw (an answer iAdvize could not use)."""
        placed = {id(e.reply) for e in self.chat.events if isinstance(e.reply, dict)}
        placed |= {id(r) for r in (*self.chat.pending, *self.chat.after_transfer)}  # shown later, or dropped
        replies = self.chat.events[n].exchange.body
        replies = replies.get("replies") if isinstance(replies, dict) else None
        replies = replies if isinstance(replies, list) else []
        return [
            f
            for f in self.findings.get(n, [])
            if f["severity"] == "error"
            and (f["reply"] is None or f["reply"] >= len(replies) or id(replies[f["reply"]]) not in placed)
        ]

    def _api_call(self, n: int, call) -> dict:
        what = {"login": "POST /oauth2/token (a login)", "authenticated": "GET /_authenticated"}.get(call.kind)
        if what is None:
            what = "POST /graphql" + (f": {render.reply(call.action)}" if call.action else "")
        found = judge_platform(PlatformObservation("api", call, call.conversation))
        return {"n": n, "text": what, "status": call.status, "refused": call.why if call.refusal else "",
                "findings": [_finding(f) for f in found]}  # fmt: skip

    def _event(self, n: int, event) -> dict:
        drawn = {"n": n, "kind": event.kind, "text": event.text, "reply": event.reply, "at": round(event.at, 1),
                 "purpose": event.purpose}  # fmt: skip
        origin = self.origins.get(id(event.reply)) if isinstance(event.reply, dict) else None
        if origin is not None:  # what the rules found on this very reply, for its bubble or its marker
            drawn["findings"] = [f for f in self.findings.get(origin[0], []) if f["reply"] == origin[1]]
        if event.kind == "call" and event.exchange is not None:
            drawn.update(self._call(n, event))
        elif event.kind == "transfer":
            drawn["text"] = self._transfer(event)
        elif event.reply is not None and event.kind in ("shown", "dropped"):
            drawn.update(_reply_drawn(event))
        return drawn

    def _call(self, n: int, event) -> dict:
        """A call as the inspector draws it: what, its answer, its latency against its budget, its findings."""
        x = event.exchange
        path = x.url.split("//", 1)[-1].split("/", 1)[-1].split("?")[0]
        drawn = {"method": x.method, "path": path, "status": x.status, "error": x.error, "latency_ms": x.latency_ms,
                 "budget_ms": x.budget * 1000, "signed": x.signed_by is not None, "request": x.request_body,
                 "response": x.body if not isinstance(x.body, bytes) else None, "findings": self.findings.get(n, []),
                 "unplaced": self._unplaced(n), "text": f"{x.method} /{path}"}  # fmt: skip
        if n in self.compared:  # a recorded message sent again: the answer then, and whether it is the same
            recorded = self.compared[n]
            drawn["recorded"] = "\n".join(_shown(r) for r in recorded)
            drawn["sameAsRecorded"] = x.ok and replies_of(x.body) == recorded
        sent = (x.request_body or {}).get("message") if isinstance(x.request_body, dict) else None
        if event.purpose in ("echo", "human") and isinstance(sent, dict) and isinstance(sent.get("payload"), dict):
            drawn["echoes"] = render.payload(sent["payload"])  # which message iAdvize posted back, or the human's
        return drawn

    def _transfer(self, event) -> str:
        """A transfer in words, its rule by its label: asked (and its timeout), or how it ended."""
        if not isinstance(event.reply, dict):  # its outcome
            text = event.text
            for rule in self.opened_with:
                text = text.replace(rule["id"], rule["label"])
            return text
        named = self._label(str(event.reply.get("distributionRule")))
        timeout = (event.reply.get("transferOptions") or {}).get("timeout")
        wait = f"{wire.seconds(timeout):g} s" if isinstance(timeout, dict) else "60 s, by default"
        return f"transferring to {named} ({wait}): {event.text.split(': ', 1)[-1]}"


def _reply_drawn(event) -> dict:
    """A reply shown (or not shown, and why) as the chat draws it: its words, payload and quick replies."""
    reply = event.reply
    drawn = {"text": _shown(reply), "kindOfReply": reply.get("type") if isinstance(reply, dict) else None}
    if event.kind == "dropped":  # why it was not shown, the end of the platform's words for it
        drawn["why"] = event.text.rsplit(" (", 1)[-1].rstrip(")")
    if isinstance(reply, dict):
        drawn["quickReplies"] = [q.get("value") for q in reply.get("quickReplies") or [] if isinstance(q, dict)]
        drawn["payload"] = reply.get("payload") if reply.get("type") == "message" else None
        if reply.get("type") == "await" and isinstance(reply.get("duration"), dict):
            drawn["seconds"] = wire.seconds(reply["duration"])
    return drawn


def _finding(found) -> dict:
    """A finding as the page shows it: its rule, severity, what and why, and the reply it is about (an index into
    the answer's replies, None when it is about the whole call)."""
    named = _REPLY_NAMED.match(found.message)
    return {"rule": found.rule, "severity": found.severity, "message": found.message, "evidence": found.evidence,
            "why": RULES[found.rule].why, "reply": int(named.group(1)) if named else None}  # fmt: skip


def _checked_rules(rules) -> list[dict]:
    """The distribution rules the page sends, checked: 1 to :data:`MAX_RULES` of them, each an id (a UUID, as
    iAdvize's), a label and whether a human is available."""
    if not isinstance(rules, list) or not 1 <= len(rules) <= MAX_RULES:
        raise ValueError(f"give the operator 1 to {MAX_RULES} distribution rules")
    checked = []
    for rule in rules:
        rule = rule if isinstance(rule, dict) else {}
        try:
            id_ = str(uuid.UUID(str(rule.get("id", "")).strip()))
        except ValueError:
            given = str(rule.get("id"))[:60]
            raise ValueError(f"a distribution rule's id is a UUID, as iAdvize's are, not {given!r}") from None
        label = str(rule.get("label") or "").strip()[:100] or id_
        if any(r["id"] == id_ for r in checked):
            raise ValueError(f"the distribution rule {id_} is given twice")
        checked.append({"id": id_, "label": label, "available": bool(rule.get("available"))})
    return checked


def _shown(reply) -> str:
    """A reply in words, whatever the bot sent (one iAdvize would refuse included)."""
    try:
        return render.reply(reply) if isinstance(reply, dict) else str(reply)[:200]
    except (KeyError, TypeError, AttributeError, ValueError):
        return json.dumps(reply, ensure_ascii=False, default=str)[:200]

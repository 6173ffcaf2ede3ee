"""A simulated iAdvize platform: drives a bot over HTTP and executes its replies as iAdvize does.

Time is simulated: an ``await`` of three minutes, a transfer's 60 s timeout or five minutes
of silence cost nothing, so whole conversations run in milliseconds. HTTP latency is real
and measured on the monotonic clock, apart from simulated time. Everything that happens
goes in the conversation's transcript: each call, what the visitor saw, what was dropped
and why, the transfer outcome and why the conversation closed.

The rules iAdvize applies (spec, "Reply objects" and "A full conversation"):

- replies run in order; a message is shown and then posted back to the bot, author
  ``operator`` (the echo);
- ``await`` pauses; a visitor message arriving first cancels every reply still pending;
- ``transfer`` succeeds when a human of the rule is available: the replies after it are
  dropped and a human answers from then on (author ``operator``); otherwise it fails after
  its timeout (60 s when absent) and the replies after it run;
- ``close`` ends the conversation; so do five minutes without any message.

With an :class:`~harness.conformance.iadvize_api.IAdvizeAPI`, what the bot posts through iAdvize's API
joins the conversation too: each accepted message or action is played at the simulated time it is
found (shown and echoed like any message, a close or a transfer run as one), each refused one noted with
why. After an answer that leaves the visitor waiting (a holding message), the platform waits up to
``proactive_wait`` seconds of wall time for the bot to post before simulated time moves on (a
:class:`ProactiveWait` shared by several platforms stops waiting after two holding messages in a row
went unanswered: a bot that never posts costs two waits, not one per message).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from harness import render, wire
from harness.client import BotClient, Exchange, message, utc_iso
from harness.conformance.phrasings import looks_like_holding
from harness.wire.limits import BUDGET_SECONDS, DEFAULT_TRANSFER_TIMEOUT_SECONDS, INACTIVITY_CLOSE_SECONDS

HUMAN_GREETING = "Hello, this is Sam from the support team. How can I help?"
# wall time given to a bot to post what its holding message promised: the budget it could not answer within
PROACTIVE_WAIT_SECONDS = BUDGET_SECONDS
UNANSWERED_GIVE_UP_AFTER = 2  # holding messages in a row left unanswered, after which no more is waited


class ProactiveWait:
    """How long to wait for what a holding message promised: ``seconds``, until the bot leaves
    ``give_up_after`` holding messages in a row unanswered, then no longer (it posts nothing)."""

    def __init__(self, seconds: float = PROACTIVE_WAIT_SECONDS, give_up_after: int = UNANSWERED_GIVE_UP_AFTER):
        self.seconds, self.give_up_after, self.missed = seconds, give_up_after, 0

    def now(self) -> float:
        """The wall seconds to wait this time."""
        return 0.0 if self.missed >= self.give_up_after else self.seconds

    def record(self, answered: bool) -> None:
        """Whether the bot posted after the last holding message."""
        self.missed = 0 if answered else self.missed + 1


@dataclass
class Event:
    """One thing that happened in a simulated conversation, at a simulated time: a call, a reply shown, a transfer..."""

    at: float  # simulated seconds since the chat opened
    kind: str  # call | visitor | shown | dropped | transfer | human | closed | refused | unanswered | webhook
    # | variables (what the bot's answer says it holds of the visitor's data) | note
    text: str = ""
    exchange: Exchange | None = None
    purpose: str = ""  # for calls: greeting, create, visitor, echo, human, retry, probe
    reply: dict | None = None


@dataclass
class SimulatedConversation:
    """One conversation on the simulated platform: its events, the replies pending, the transfer and how it ended.

    ``id`` becomes the connector's own id when ``POST /conversations`` answers one; ``first_id``
    stays iAdvize's.
    """

    id: str
    operator: str
    events: list[Event] = field(default_factory=list)
    closed: str | None = None  # why: "bot", "inactivity", None while open
    transfer: str | None = None  # "succeeded" | "failed" once the bot transferred
    pending: list[dict] = field(default_factory=list)  # replies waiting on an await (a visitor message cancels them)
    resume_at: float | None = None  # when the first pending reply runs
    after_transfer: list[dict] = field(default_factory=list)  # replies run if the transfer in progress fails
    transfer_ends_at: float | None = None  # when the transfer in progress times out
    transfer_rule: str = ""  # the distribution rule of the last transfer asked
    last_message_at: float = 0.0
    handed_over: bool = False
    now: float = 0.0  # simulated seconds since the chat opened
    label: str = ""  # what the conversation is for, in words (check names its probes)
    first_id: str = ""  # iAdvize's id, kept when the connector answers with its own
    api_calls_seen: int = 0  # the bot's calls to iAdvize's API for this conversation already in the events
    scenario: str = ""  # the idBot its operator is linked to, when the one who opened it says (check does)
    variables: dict[str, str] = field(default_factory=dict)  # the visitor data the bot's last answer held
    variables_at_transfer: dict[str, str] | None = None  # what it held when it transferred (None: no transfer)

    def __post_init__(self):
        self.first_id = self.first_id or self.id

    @property
    def shown(self) -> list[str]:
        """What the visitor saw from the bot (and from a human after a transfer), in order."""
        return [e.text for e in self.events if e.kind in ("shown", "human")]

    @property
    def calls(self) -> list[Event]:
        """The events that are HTTP calls to the bot, in order."""
        return [e for e in self.events if e.kind == "call"]

    def transcript(self) -> str:
        """The events as text, one line each: simulated time, then the call and its outcome, or what happened."""
        lines = []
        for event in self.events:
            when = f"{event.at:8.1f}s"
            if event.kind == "call":
                x = event.exchange
                outcome = x.error or f"{x.status}"
                lines.append(
                    f"{when}  {event.purpose:<8} {x.method} {x.url.split('?')[0].split('//', 1)[-1]}"
                    f" -> {outcome} in {x.latency_ms:.0f} ms"
                )
            else:
                # what the bot posted through iAdvize's API: a message shown, or an action run
                text, kind = event.text, event.kind
                if event.purpose == "proactive":
                    kind, text = (
                        ("posted", text) if kind == "shown" else (kind, f"{text} (posted through iAdvize's API)")
                    )
                lines.append(f"{when}  {kind:<8} {text}")
        return "\n".join(lines)


class SimulatedPlatform:
    """One operator of one bot, as the iAdvize platform sees it."""

    def __init__(
        self,
        client: BotClient,
        id_operator: str,
        distribution_rules: list[dict] | None = None,
        rule_available: Callable[[str], bool] | bool = False,
        on_event: Callable[[SimulatedConversation, Event], None] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        epoch: float | None = None,
        api=None,
        proactive_wait: ProactiveWait | float = PROACTIVE_WAIT_SECONDS,
        webhooks=None,
    ):
        self.client = client
        self.id_operator = id_operator
        self.distribution_rules = list(distribution_rules or [])
        self.rule_available = rule_available if callable(rule_available) else (lambda rule: rule_available)
        self.on_event = on_event
        self.new_id = new_id  # message ids: a seeded source makes a whole run reproducible
        self.epoch = epoch  # wall-clock time of simulated 0 s; None: messages are dated now
        self.api = api  # the iAdvize API the bot may post through (IAdvizeAPI), or None
        self.webhooks = webhooks  # where conversation events are delivered (webhooks.Webhooks), or None
        self.proactive_wait = (
            proactive_wait if isinstance(proactive_wait, ProactiveWait) else ProactiveWait(proactive_wait)
        )
        self._api_calls_seen = len(api.calls) if api is not None else 0  # refused logins told from here on

    # --- a conversation ------------------------------------------------------------------

    def open_chat(self, id_conversation: str | None = None, start: bool = True) -> SimulatedConversation:
        """The visitor opens the chatbox: the greeting is asked for (and shown if in time)."""
        conversation = SimulatedConversation(id_conversation or self.new_id(), self.id_operator)
        if self.api is not None:
            self.api.open(conversation.first_id, self.id_operator)
        exchange = self.client.exchange(
            "first-messages",
            "GET",
            f"/bots/{quote(self.id_operator, safe='')}/conversation-first-messages",
            "first-messages.response",
            budget=self.client.first_messages_budget,
        )
        self._call(conversation, exchange, "greeting")
        if exchange.ok:
            for reply in exchange.body["replies"]:
                if reply.get("type") == "message":  # only messages count before the conversation
                    self._event(conversation, "shown", render.reply(reply), reply=reply)
        return conversation

    def start(self, conversation: SimulatedConversation, history: list[dict] | None = None) -> Exchange:
        """iAdvize routes the conversation to the bot (its replies here should be empty)."""
        body = {"idOperator": self.id_operator, "idConversation": conversation.id, "history": list(history or [])}
        exchange = self.client.exchange("conversations", "POST", "/conversations", "conversation.response", body=body)
        self._call(conversation, exchange, "create")
        # The connector may use its own id (even when the rest of its answer is off: that is reported apart).
        ours = exchange.body.get("idConversation") if isinstance(exchange.body, dict) else None
        if isinstance(ours, str) and ours:
            conversation.id = ours
            if self.api is not None and ours != conversation.first_id:
                self.api.open(conversation.first_id, self.id_operator).connector_id = ours
        self._webhook(conversation, "v2.conversation.pushed")
        return exchange

    def visitor_says(
        self,
        conversation: SimulatedConversation,
        text: str | None = None,
        *,
        payload: dict | None = None,
        after: float = 0.0,
        id_message: str | None = None,
    ) -> Exchange | None:
        """The visitor writes ``after`` simulated seconds; returns the bot's answer (None if closed)."""
        self.advance(conversation, after)
        self._proactive(conversation)
        if conversation.closed:
            return None
        if self.api is not None:
            self.api.open(conversation.first_id, self.id_operator).visitor_wrote = True
        if conversation.pending:  # the visitor spoke first: iAdvize cancels what was still waiting
            for reply in conversation.pending:
                self._event(conversation, "dropped", f"{render.reply(reply)} (the visitor wrote first)", reply=reply)
            conversation.pending, conversation.resume_at = [], None
        payload = payload or {"contentType": "text", "value": text or ""}
        sent = message("visitor", payload, id_message=id_message or self.new_id(), created_at=self._date(conversation))
        self._event(conversation, "visitor", render.payload(payload))
        conversation.last_message_at = conversation.now
        exchange = self._post(conversation, sent, "visitor")
        if exchange.ok and not conversation.handed_over:
            conversation.pending = list(exchange.body["replies"])
            conversation.resume_at = conversation.now
            self._run(conversation)
            if self._holding(exchange.body["replies"]):
                self._proactive(conversation, holding=True)
        return exchange

    def human_says(self, conversation: SimulatedConversation, text: str, after: float = 0.0) -> Exchange:
        """The human who took the conversation writes: iAdvize posts it to the bot as an ``operator`` message."""
        self.advance(conversation, after)
        sent = message("operator", {"contentType": "text", "value": text}, id_message=self.new_id(),
                       created_at=self._date(conversation))  # fmt: skip
        self._event(conversation, "human", text)
        conversation.last_message_at = conversation.now
        return self._post(conversation, sent, "human")

    def resend(self, conversation: SimulatedConversation, exchange: Exchange) -> Exchange:
        """iAdvize retrying a call (same ``idMessage``): the bot must answer it as before."""
        return self._post(conversation, exchange.request_body["message"], "retry")

    def wait(self, conversation: SimulatedConversation, seconds: float) -> None:
        """The visitor stays silent for ``seconds`` of simulated time."""
        self._proactive(conversation)
        self.advance(conversation, seconds)
        self._proactive(conversation)

    # --- what the bot posts through iAdvize's API --------------------------------------------

    def _holding(self, replies: list) -> bool:
        """The answer leaves the visitor waiting: its last message is a holding one."""
        texts = [r["payload"].get("value", "") for r in replies if isinstance(r, dict) and r.get("type") == "message"]
        return self.api is not None and bool(texts) and looks_like_holding(str(texts[-1]))

    def _proactive(self, conversation: SimulatedConversation, holding: bool = False) -> None:
        """Play what the bot posted through the API since last time; after a holding message, wait for it."""
        if self.api is None:
            return
        wait = self.proactive_wait.now() if holding else 0.0
        taken = self.api.take(conversation.first_id, wait)
        calls = self.api.calls_for(conversation.first_id)
        for call in calls[conversation.api_calls_seen :]:
            if call.refusal:
                what = render.reply(call.action) if call.action else "a call to iAdvize's API"
                self._event(conversation, "refused", f"{what}: {call.why}", reply=call.action)
        conversation.api_calls_seen = len(calls)
        # a login names no conversation: a refused one is told in the conversation waiting on the bot
        logins, self._api_calls_seen = self.api.refused_logins(self._api_calls_seen)
        for call in logins:
            self._event(conversation, "refused", f"a login to iAdvize's API ({call.status}): {call.why}")
        if holding:
            self.proactive_wait.record(bool(taken))
        if holding and not taken:
            waited = (
                f"within {wait:g} s" if wait else "(no longer waited for: earlier holding messages went unanswered)"
            )
            self._event(conversation, "unanswered", f"nothing posted through iAdvize's API {waited}")
        for action in taken:
            self._play(conversation, action)

    def _play(self, conversation: SimulatedConversation, action: dict) -> None:
        """One accepted message or action, run as iAdvize runs it, at the conversation's simulated now."""
        if conversation.closed:  # accepted before the close was known to the API, played after it: dropped
            self._event(conversation, "dropped", f"{render.reply(action)} (the conversation closed)", reply=action)
            return
        conversation.pending.append(action)
        if conversation.resume_at is None and conversation.transfer_ends_at is None:
            self._run(conversation, purpose="proactive")

    # --- simulated time --------------------------------------------------------------------

    def advance(self, conversation: SimulatedConversation, seconds: float) -> None:
        """Let ``seconds`` pass: pending replies whose time comes run; silence closes the chat."""
        target = conversation.now + seconds
        while not conversation.closed:
            silence_ends = conversation.last_message_at + INACTIVITY_CLOSE_SECONDS
            due = [
                t
                for t in (conversation.resume_at, conversation.transfer_ends_at, silence_ends)
                if t is not None and t <= target
            ]
            if not due:
                break
            conversation.now = max(conversation.now, min(due))
            if conversation.resume_at is not None and conversation.resume_at <= conversation.now:
                self._run(conversation)
            elif conversation.transfer_ends_at is not None and conversation.transfer_ends_at <= conversation.now:
                self._transfer_failed(conversation)
            elif silence_ends <= conversation.now:
                self._close(conversation, "inactivity")
        conversation.now = max(conversation.now, target)

    def _run(self, conversation: SimulatedConversation, purpose: str = "") -> None:
        """Run pending replies from ``now`` until one makes the conversation wait."""
        conversation.resume_at = None
        while conversation.pending and not conversation.closed:
            reply = conversation.pending.pop(0)
            kind = reply.get("type")
            if kind == "message":
                self._event(conversation, "shown", render.reply(reply), reply=reply, purpose=purpose)
                conversation.last_message_at = conversation.now
                echo = message(
                    "operator", reply["payload"], id_message=self.new_id(), created_at=self._date(conversation)
                )
                self._post(conversation, echo, "echo")
            elif kind == "await":
                conversation.resume_at = conversation.now + wire.seconds(reply["duration"])
                return
            elif kind == "transfer":
                if self._transfer(conversation, reply, purpose):
                    return
            elif kind == "close":
                self._close(conversation, "bot", reply=reply, purpose=purpose)

    def _transfer(self, conversation: SimulatedConversation, reply: dict, purpose: str = "") -> bool:
        """True when the conversation now waits for the transfer's outcome (``purpose``: proactive when posted)."""
        conversation.variables_at_transfer = dict(conversation.variables)  # prequalified, or not
        conversation.transfer_rule = str(reply.get("distributionRule"))
        rule = reply.get("distributionRule")
        options = reply.get("transferOptions") or {}
        timeout = wire.seconds(options["timeout"]) if "timeout" in options else DEFAULT_TRANSFER_TIMEOUT_SECONDS
        known = any(r.get("id") == rule for r in self.distribution_rules)
        if known and self.rule_available(rule):
            conversation.transfer = "succeeded"
            self._event(
                conversation, "transfer", f"to {rule}: a human took the conversation", reply=reply, purpose=purpose
            )
            for dropped in conversation.pending:
                self._event(conversation, "dropped", f"{render.reply(dropped)} (the transfer succeeded)", reply=dropped)
            conversation.pending, conversation.handed_over = [], True
            if self.api is not None:
                self.api.open(conversation.first_id, self.id_operator).with_human = True
            self._event(conversation, "human", HUMAN_GREETING)
            conversation.last_message_at = conversation.now
            greeting = message(
                "operator",
                {"contentType": "text", "value": HUMAN_GREETING},
                id_message=self.new_id(),
                created_at=self._date(conversation),
            )
            self._post(conversation, greeting, "human")
            return False
        # Not an await: a visitor writing meanwhile does not cancel what runs if the transfer fails.
        why = "nobody available" if known else "not one of the operator's distribution rules"
        self._event(
            conversation,
            "transfer",
            f"to {rule}: asked, {timeout:g} s to find a human ({why})",
            reply=reply,
            purpose=purpose,
        )
        conversation.after_transfer, conversation.pending = conversation.pending, []
        conversation.transfer_ends_at = conversation.now + timeout
        return True

    def _transfer_failed(self, conversation: SimulatedConversation) -> None:
        conversation.transfer, conversation.transfer_ends_at = "failed", None
        self._event(conversation, "transfer", f"to {conversation.transfer_rule}: failed, nobody took it")
        conversation.pending, conversation.after_transfer = conversation.after_transfer, []
        self._run(conversation)

    def _close(self, conversation: SimulatedConversation, why: str, **details) -> None:
        for dropped in [*conversation.pending, *conversation.after_transfer]:
            self._event(conversation, "dropped", f"{render.reply(dropped)} (the conversation closed)", reply=dropped)
        conversation.pending, conversation.after_transfer, conversation.closed = [], [], why
        if self.api is not None:
            self.api.open(conversation.first_id, self.id_operator).closed = True
        self._webhook(conversation, "v2.conversation.closed")
        conversation.resume_at = conversation.transfer_ends_at = None
        self._event(
            conversation,
            "closed",
            {"bot": "closed by the bot", "inactivity": "closed by iAdvize after 5 minutes without a message"}[why],
            **details,
        )

    def _webhook(self, conversation: SimulatedConversation, event: str) -> None:
        """Deliver ``event`` of the conversation, retries included, each try noted in the transcript."""
        if self.webhooks is None:
            return
        for delivery in self.webhooks.deliver(event, conversation.first_id, self.id_operator):
            outcome = f"answered {delivery.status}" if delivery.status is not None else delivery.error
            when = f", {delivery.after:g} s later" if delivery.after else ""
            self._event(conversation, "webhook", f"{event} delivered{when}: {outcome}")

    # --- HTTP --------------------------------------------------------------------------------

    def _date(self, conversation: SimulatedConversation) -> str | None:
        return None if self.epoch is None else utc_iso(self.epoch + conversation.now)

    def _post(self, conversation: SimulatedConversation, wire_message: dict, purpose: str) -> Exchange:
        body = {"idOperator": self.id_operator, "message": wire_message}
        path = f"/conversations/{quote(conversation.id, safe='')}/messages"
        exchange = self.client.exchange("messages", "POST", path, "message.response", body=body)
        self._call(conversation, exchange, purpose)
        return exchange

    def _call(self, conversation: SimulatedConversation, exchange: Exchange, purpose: str) -> None:
        self._event(conversation, "call", exchange=exchange, purpose=purpose)
        held = wire.variables_of(exchange.body) if exchange.ok else None
        if held is not None and held != conversation.variables:
            conversation.variables = held
            self._event(conversation, "variables", ", ".join(f"{k}={v}" for k, v in held.items()) or "(none)")

    def _event(self, conversation: SimulatedConversation, kind: str, text: str = "", **details) -> None:
        event = Event(conversation.now, kind, text, **details)
        conversation.events.append(event)
        if self.on_event:
            self.on_event(conversation, event)

"""Conformance rules: what iAdvize does with a bot's answers, as small named checks.

Each rule looks at one :class:`Observation` (an HTTP exchange and why it was made) and
says what is wrong with it, if anything. Severity ``error`` breaks a conversation for real
visitors; ``warning`` is documented as discouraged. The ``spec`` field names the section of
the iAdvize external-bot API reference the rule comes from.

A timeout is reported by the latency rules (``first-messages-latency``, ``latency-budget``),
not by ``http-error``, so each problem has exactly one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness import wire
from harness.client import REFUSED_STATUSES, Exchange, brief, describe_failure, excerpt
from harness.conformance.technical import technical_error
from harness.wire.limits import (
    BUDGET_SECONDS,
    FIRST_MESSAGES_BUDGET_SECONDS,
    LONG_MESSAGE_CHARS,
    MAX_MESSAGE_CHARS,
    TRANSFER_TIMEOUT_ADVISED,
    TRANSFER_TIMEOUT_RANGE,
)


@dataclass
class Observation:
    """An exchange and what the rules need to judge it: why it was made, its conversation, the operator's rules."""

    exchange: Exchange
    purpose: str  # greeting, create, visitor, echo, human, retry, availability, operator, scenarios, forged, lowercase
    conversation: str = ""
    operator_rules: list[str] = field(default_factory=list)
    sent_payload: dict | None = None  # what the visitor sent, for visitor calls
    previous: Exchange | None = None  # for a retry: the first answer to the same idMessage
    forgery: str = ""  # for a forged call: what was forged, in words

    @property
    def answered(self) -> bool:
        """True when the bot answered 2xx with a readable body, whether or not it fits the API."""
        x = self.exchange
        return x.status is not None and 200 <= x.status < 300 and x.error is None

    @property
    def replies(self) -> list[dict]:
        """The answer's replies that are objects; empty when it has none."""
        body = self.exchange.body
        replies = body.get("replies") if isinstance(body, dict) else None
        return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []


@dataclass(frozen=True)
class Finding:
    """One fault a rule found: the rule and its severity, where (endpoint, conversation), what, and the evidence."""

    rule: str
    severity: str
    endpoint: str
    conversation: str
    message: str
    evidence: str
    count: int = 1  # how many calls showed it (the same fault is reported once)
    reproduce: str = ""  # a curl command sending the first such call again
    form: str = ""  # what the call that broke it tried, when calls of several forms break it alike (a forgery)

    def as_dict(self) -> dict:
        """The finding as the JSON report holds it."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "endpoint": self.endpoint,
            "conversation": self.conversation,
            "message": self.message,
            "evidence": self.evidence,
            "count": self.count,
            "reproduce": self.reproduce,
            "form": self.form,
        }


@dataclass
class PlatformObservation:
    """What the simulated platform saw of a bot beyond its answers: a call to iAdvize's API (``kind`` ``api``),
    a holding message no proactive answer followed (``unanswered``), a transfer announced and never sent
    (``announced``), an answer that changed with another conversation running (``crosstalk``: ``call`` is
    (the words, their answer alone), ``text`` the other's words, ``quote`` the answer changed), or a user's
    logins over a run (``logins``: ``call`` is (logins, calls posted), ``text`` the user)."""

    kind: str
    call: object = None  # an iadvize_api.ApiCall, for kind "api"
    conversation: str = ""  # iAdvize's id
    text: str = ""  # for "unanswered": what the platform noted
    quote: str = ""  # for "unanswered" and "announced": the bot's message judged


@dataclass(frozen=True)
class Rule:
    """A named check: its severity, why it matters, where in the spec it comes from, and its check function.

    ``on`` says what it judges: ``exchange`` rules an :class:`Observation` (a call to the bot), ``platform``
    rules a :class:`PlatformObservation`; such a check may yield a third item, a severity of its own.
    """

    id: str
    severity: str
    why: str
    spec: str
    check: Callable[..., Iterator[tuple]]  # -> (message, evidence[, severity])
    on: str = "exchange"


RULES: dict[str, Rule] = {}
CONVERSATION_CALLS = ("create", "visitor", "echo", "human", "retry")
PROBES = ("forged", "lowercase")  # calls made to test the signature check, not the conversation
# The rules on what a reply says and does, which verify applies to every answer too (Pact checks only shapes)
REPLY_RULES = (
    "error-shown-to-visitor",
    "message-too-long",
    "message-long",
    "missing-await",
    "replies-on-create",
    "transfer-timeout-range",
    "transfer-timeout-short",
    "transfer-unknown-rule",
)


def rule(id: str, severity: str, why: str, spec: str, on: str = "exchange"):
    """A decorator: the function becomes the check of the rule ``id``, registered in ``RULES``.

    The check yields a (message, evidence) pair for each fault it sees in an observation.
    """

    def register(check):
        RULES[id] = Rule(id, severity, why, spec, check, on)
        return check

    return register


evidence = brief  # a value as evidence: one line, cut


def _replies_word(n: int) -> str:
    return f"{n} repl{'y' if n == 1 else 'ies'}"


def _timed_out(x: Exchange) -> bool:
    return x.timed_out


def _non_text_visit(o: Observation) -> bool:
    return o.purpose == "visitor" and (o.sent_payload or {}).get("contentType") != "text"


def _messages(o: Observation) -> Iterator[tuple[int, str]]:
    for i, reply in enumerate(o.replies):
        payload = reply.get("payload") if reply.get("type") == "message" else None
        if isinstance(payload, dict) and payload.get("contentType") == "text" and isinstance(payload.get("value"), str):
            yield i, payload["value"]


def _transfers(o: Observation) -> Iterator[tuple[int, dict]]:
    if o.purpose == "greeting":  # iAdvize ignores everything but messages in a greeting
        return
    yield from ((i, r) for i, r in enumerate(o.replies) if r.get("type") == "transfer")


# What a failing endpoint costs the customer, said with its http-error
WHAT_IT_COSTS = {
    "external-bots": "iAdvize cannot list the bot's scenarios, so no operator can be linked to one: no bot can be "
    "created",
    "bot.save": "an admin cannot save the operator: no bot can be created or changed",
    "bot.read": "an admin cannot open the operator's settings",
    "availability-strategies": "iAdvize cannot tell whether the bot is available: it always appears offline",
    "conversations": "no conversation can start with the bot",
}


@rule(
    "http-error",
    "error",
    "the call failed: an error status, an answer that is not JSON, or no connection",
    "Endpoints the connector must serve",
)
def _http_error(o: Observation):
    x = o.exchange
    if o.purpose in (*PROBES, "health") or _timed_out(x) or _non_text_visit(o):
        return
    cost = f": {WHAT_IT_COSTS[x.endpoint]}" if x.endpoint in WHAT_IT_COSTS else ""
    if x.status is None:  # no answer: refused, reset, or cut off in the middle of one
        yield (f"no answer from the bot: {x.error}" if x.error else "the bot could not be reached") + cost, ""
    elif not 200 <= x.status < 300:
        yield f"answered HTTP {x.status}{cost}", excerpt(x)
    elif x.error:
        yield x.error + cost, excerpt(x)


def _empty_echo(o: Observation) -> bool:
    """An operator-authored message answered 2xx with no body at all (rule echo-empty-body)."""
    return o.purpose in ("echo", "human") and o.answered and o.exchange.raw == b""


def _in_payload(problem: wire.Problem) -> bool:
    return ".payload" in problem.field


@rule(
    "envelope", "error", "a field of the answer is missing or of the wrong type", "Endpoints the connector must serve"
)
def _envelope(o: Observation):
    if o.answered and o.purpose not in ("availability", "health", *PROBES) and not _empty_echo(o):
        for problem in o.exchange.problems:
            if not _in_payload(problem):
                yield f"{problem.field or 'the body'}: {problem.message}", evidence(o.exchange.body)


@rule(
    "payload-shape",
    "error",
    "a payload lacks what its content type needs; iAdvize cannot show it",
    "Payloads (payload.contentType)",
)
def _payload_shape(o: Observation):
    if o.answered:
        for problem in o.exchange.problems:
            if _in_payload(problem):
                yield f"{problem.field}: {problem.message}", evidence(o.exchange.body)


@rule(
    "echo-loop",
    "error",
    "the bot answered an operator-authored message (its own echo, or a human's): it will talk to itself forever",
    "7. POST /conversations/:idConversation/messages (the echo rule)",
)
def _echo_loop(o: Observation):
    if o.purpose in ("echo", "human") and o.replies:
        author = "its own message" if o.purpose == "echo" else "a human operator's message"
        yield f"{_replies_word(len(o.replies))} to {author}", evidence(o.replies)


@rule(
    "replies-on-create",
    "warning",
    "POST /conversations should answer no replies: the first visitor message follows at once",
    "6. POST /conversations",
)
def _replies_on_create(o: Observation):
    if o.purpose == "create" and o.replies:
        yield f"{_replies_word(len(o.replies))} when the conversation starts", evidence(o.replies)


@rule("message-too-long", "error", "iAdvize cuts a message over 450 characters", "Reply objects")
def _too_long(o: Observation):
    for i, value in _messages(o):
        if len(value) > MAX_MESSAGE_CHARS:
            yield f"replies[{i}] is {len(value)} characters", evidence(value, 80)


@rule(
    "error-shown-to-visitor",
    "error",
    "a visitor must never read a stack trace, an exception, a server path or an unfilled value: "
    "catch the error, log it, and say something the visitor can act on",
    "Reply objects",
)
def _error_shown(o: Observation):
    for i, value in _messages(o):
        shown = technical_error(value)
        if shown:
            yield f"replies[{i}] shows the visitor {shown[0]}: {evidence(shown[1], 60)}", evidence(value, 80)


@rule("message-long", "warning", "messages over 250 characters are discouraged: split them", "Reply objects")
def _long(o: Observation):
    for i, value in _messages(o):
        if LONG_MESSAGE_CHARS < len(value) <= MAX_MESSAGE_CHARS:
            yield f"replies[{i}] is {len(value)} characters", evidence(value, 80)


def _timeout_seconds(reply: dict) -> float | None:
    """The transfer's timeout in seconds; None when absent or unreadable (the envelope rule reports that)."""
    options = reply.get("transferOptions")
    timeout = options.get("timeout") if isinstance(options, dict) else None
    if not isinstance(timeout, dict) or type(timeout.get("value")) not in (int, float):
        return None
    try:
        return float(wire.seconds(timeout))
    except (KeyError, TypeError, OverflowError):
        return None


@rule("transfer-timeout-range", "error", "a transfer timeout must be 5 to 60 seconds", "Reply objects (transfer)")
def _timeout_range(o: Observation):
    low, high = TRANSFER_TIMEOUT_RANGE
    for i, reply in _transfers(o):
        seconds = _timeout_seconds(reply)
        if seconds is not None and not low <= seconds <= high:
            yield f"replies[{i}] transfer timeout is {seconds:g} s", evidence(reply)


@rule(
    "transfer-timeout-short",
    "warning",
    "under 15 s, iAdvize has no time to find an available human",
    "Reply objects (transfer)",
)
def _timeout_short(o: Observation):
    low, _ = TRANSFER_TIMEOUT_RANGE
    for i, reply in _transfers(o):
        seconds = _timeout_seconds(reply)
        if seconds is not None and low <= seconds < TRANSFER_TIMEOUT_ADVISED:
            yield f"replies[{i}] transfer timeout is {seconds:g} s", evidence(reply)


@rule(
    "transfer-unknown-rule",
    "error",
    "a transfer must name one of the operator's distribution rules",
    "Reply objects (transfer)",
)
def _unknown_rule(o: Observation):
    for i, reply in _transfers(o):
        if reply.get("distributionRule") not in o.operator_rules:
            yield (
                f"replies[{i}] transfers to a distribution rule the operator does not have",
                evidence(reply),
            )


@rule(
    "availability-shape",
    "error",
    "availability strategies must be well formed and name the operator's rules, or the bot always appears offline",
    "4. GET /availability-strategies",
)
def _availability(o: Observation):
    if o.purpose != "availability" or not o.answered:
        return
    for problem in o.exchange.problems:
        yield f"{problem.field or 'the body'}: {problem.message}", evidence(o.exchange.body)
    body = o.exchange.body if isinstance(o.exchange.body, list) else []
    for i, strategy in enumerate(s for s in body if isinstance(s, dict)):
        unknown = [r for r in strategy.get("distributionRulesToCheck") or [] if r not in o.operator_rules]
        if unknown:
            yield f"[{i}].distributionRulesToCheck names rules the operator does not have", evidence(unknown)


@rule(
    "first-messages-latency",
    "error",
    "the greeting is shown only when it comes within 2 s",
    "5. GET /bots/:idOperator/conversation-first-messages",
)
def _first_latency(o: Observation):
    x = o.exchange
    if o.purpose == "greeting" and (_timed_out(x) or (x.latency_ms or 0) > FIRST_MESSAGES_BUDGET_SECONDS * 1000):
        yield f"answered in {x.latency_ms:.0f} ms" if not _timed_out(x) else x.error, ""


@rule("latency-budget", "error", "iAdvize waits 10 s, then shows nothing", "Endpoints the connector must serve")
def _latency(o: Observation):
    x = o.exchange
    if o.purpose != "greeting" and (_timed_out(x) or (x.latency_ms or 0) > BUDGET_SECONDS * 1000):
        yield f"answered in {x.latency_ms:.0f} ms" if not _timed_out(x) else x.error, ""


@rule(
    "missing-await",
    "warning",
    "put an await (about 1 s) between two messages: it keeps their order and reads naturally",
    "Reply objects (platform rules)",
)
def _missing_await(o: Observation):
    if o.purpose == "greeting":  # iAdvize ignores everything but messages in a greeting
        return
    kinds = [r.get("type") for r in o.replies]
    for i in range(1, len(kinds)):
        if kinds[i] == kinds[i - 1] == "message":
            yield (
                f"replies[{i - 1}] and replies[{i}] are messages with no await between",
                evidence(o.replies[i - 1 : i + 1]),
            )


@rule(
    "signature-not-enforced",
    "error",
    "with a secret, a call without a valid X-iAdvize-Signature must be refused",
    "Security: X-iAdvize-Signature",
)
def _signature(o: Observation):
    x = o.exchange
    if o.purpose == "forged" and x.status is not None and 200 <= x.status < 300:
        sent = next((v for k, v in x.request_headers.items() if k.lower() == "x-iadvize-signature"), None)
        yield f"a forged {x.method} was accepted ({x.status})", evidence(sent, 24) if sent else "no signature header"


@rule(
    "signature-check-crash",
    "error",
    "a malformed or foreign X-iAdvize-Signature must be refused (401 or 403), not crash the signature check",
    "Security: X-iAdvize-Signature",
)
def _signature_crash(o: Observation):
    x = o.exchange
    if o.purpose == "forged" and x.status is not None and x.status >= 500:
        yield f"a forged {x.method} was answered {x.status}", excerpt(x)


@rule(
    "signature-header-case",
    "error",
    "header names are case-insensitive: iAdvize now writes x-iadvize-signature, "
    "and a correctly signed call must be accepted in any case",
    "Corrections and additions (Security)",
)
def _signature_case(o: Observation):
    x = o.exchange
    if o.purpose == "lowercase" and x.status in REFUSED_STATUSES:
        yield (
            f"a correctly signed {x.method} was refused ({x.status}) because its header was written "
            "x-iadvize-signature",
            excerpt(x),
        )


@rule(
    "unsupported-payload-crash",
    "error",
    "a visitor may send files and other payloads: the bot must answer them",
    "7. POST /conversations/:idConversation/messages",
)
def _payload_crash(o: Observation):
    x = o.exchange
    if _non_text_visit(o) and not _timed_out(x) and (x.status is None or not 200 <= x.status < 300 or x.error):
        yield f"a {o.sent_payload.get('contentType')} payload was answered {x.status or x.error}", excerpt(x)


@rule(
    "retry-not-idempotent",
    "warning",
    "iAdvize retries a call with the same idMessage: it should get the same "
    "answer, and the conversation should advance once",
    "7. POST /conversations/:idConversation/messages",
)
def _retry(o: Observation):
    if o.purpose == "retry" and o.previous is not None and o.answered and o.replies != _replies(o.previous):
        yield "the same idMessage got a different answer", evidence({"first": _replies(o.previous), "retry": o.replies})


def _replies(exchange: Exchange) -> list:
    return Observation(exchange, "").replies


@rule(
    "echo-empty-body",
    "warning",
    "an echo answered with an empty body: iAdvize takes it, but the documentation asks for the envelope, "
    'with "replies": []',
    "Corrections and additions (Echoes in the wild)",
)
def _echo_empty_body(o: Observation):
    if _empty_echo(o):
        yield f"HTTP {o.exchange.status} with an empty body", "(empty)"


@rule(
    "healthcheck",
    "error",
    'GET /healthcheck, public and without parameters, must answer 200 {"status": "UP"}: iAdvize polls it',
    "Corrections and additions (Health check)",
)
def _health(o: Observation):
    x = o.exchange
    if o.purpose != "health" or x.timed_out:
        return
    if not o.answered:
        yield f"unsigned and without parameters, {describe_failure(x)}", excerpt(x)
    elif x.problems:
        yield f'GET {urlsplit(x.url).path} must answer {{"status": "UP"}}', evidence(x.body)


def judge(observation: Observation) -> list[Finding]:
    """Every finding of every rule on one observation (none on a call that was not made)."""
    if observation.exchange.skipped:
        return []
    found = []
    for r in RULES.values():
        if r.on != "exchange":
            continue
        for message, proof in r.check(observation):
            found.append(
                Finding(
                    r.id,
                    r.severity,
                    observation.exchange.endpoint,
                    observation.conversation,
                    message,
                    proof,
                    form=observation.forgery,
                )
            )
    return found


def judge_replies(observation: Observation) -> list[Finding]:
    """The findings of :data:`REPLY_RULES` on one answer: what verify and conversation scripts judge besides
    their own expectations (a transfer's rule only when the operator's rules are known)."""
    return [
        f
        for f in judge(observation)
        if f.rule in REPLY_RULES and (observation.operator_rules or f.rule != "transfer-unknown-rule")
    ]


def finding_line(finding: Finding) -> str:
    """A finding in one line, for a report that is not check's: what, the evidence, the rule and why."""
    what = f"{finding.message}: {finding.evidence}" if finding.evidence else finding.message
    return f"{what} ({finding.rule}: {RULES[finding.rule].why})"


def judge_platform(observation: PlatformObservation) -> list[Finding]:
    """Every finding of the platform rules on one thing the platform saw."""
    kind = getattr(observation.call, "kind", "")
    endpoint = {"login": "oauth2/token", "authenticated": "_authenticated", "graphql": "graphql"}.get(kind, "messages")
    endpoint = "oauth2/token" if observation.kind == "logins" else endpoint
    found = []
    for r in RULES.values():
        if r.on == "platform":
            for message, proof, *severity in r.check(observation):
                found.append(
                    Finding(r.id, severity[0] if severity else r.severity, endpoint, observation.conversation,
                            message, proof)
                )  # fmt: skip
    return found


# --- what the bot does through iAdvize's API (harness.conformance.iadvize_api) -----------------------------

REFUSALS_OF_THEIR_OWN = {  # userError types with a rule of their own; any other refusal is proactive-refused
    "VisitorHasNotWritten": "proactive-before-visitor",
    "ConversationWithHuman": "proactive-with-human",
    "ConversationClosed": "proactive-after-close",
}


def _refused(o: PlatformObservation, rule_id: str):
    call = o.call
    refused = o.kind == "api" and call.kind == "graphql" and call.refusal
    if refused and REFUSALS_OF_THEIR_OWN.get(call.refusal, "proactive-refused") == rule_id:
        yield f"iAdvize refused the call: {call.why}", evidence(call.action) if call.action else call.refusal


@rule(
    "proactive-before-visitor",
    "error",
    "a bot may post through the API only after the visitor's first message: it cannot start a conversation",
    "Corrections and additions (chatbotMessageSend)",
    on="platform",
)
def _before_visitor(o: PlatformObservation):
    yield from _refused(o, "proactive-before-visitor")


@rule(
    "proactive-with-human",
    "error",
    "a bot cannot be in a conversation at the same time as a human: it posted after the transfer succeeded",
    "Corrections and additions (chatbotMessageSend)",
    on="platform",
)
def _with_human(o: PlatformObservation):
    yield from _refused(o, "proactive-with-human")


@rule(
    "proactive-after-close",
    "error",
    "the bot posted to a conversation that had closed",
    "Corrections and additions (chatbotMessageSend)",
    on="platform",
)
def _after_close(o: PlatformObservation):
    yield from _refused(o, "proactive-after-close")


@rule(
    "proactive-refused",
    "error",
    "iAdvize's API refused a call: token, conversation id, chatbotId, one message per call, an invalid mutation",
    "The bot calling iAdvize: proactive messages (GraphQL)",
    on="platform",
)
def _api_refused(o: PlatformObservation):
    yield from _refused(o, "proactive-refused")


@rule(
    "login-rate",
    "error",
    "logins are limited to 10 a minute per user and 100 per IP address; a token lives 24 h: reuse it",
    "Corrections and additions (OAuth)",
    on="platform",
)
def _login_rate(o: PlatformObservation):
    call = o.call
    if o.kind == "api" and call.kind == "login" and call.status == 429:
        yield f"iAdvize refused the login: {call.why}", f"user {call.user}"
    elif o.kind == "logins":  # o.call: (logins, messages and actions posted) of the user o.text
        logins, posts = o.call
        if logins >= 3 and logins * 2 > posts:
            yield (
                f"{logins} logins for {posts} calls to the API: a token lives 24 h, reuse it",
                f"user {o.text}",
                "warning",
            )


@rule(
    "holding-without-answer",
    "warning",
    "the bot told the visitor to wait, then posted nothing through iAdvize's API",
    "The bot calling iAdvize: proactive messages (GraphQL)",
    on="platform",
)
def _holding_without_answer(o: PlatformObservation):
    if o.kind == "unanswered":
        yield f"a holding message, then {o.text}", evidence(o.quote, 80) if o.quote else o.text


@rule(
    "transfer-announced-not-done",
    "error",
    "the bot told the visitor a person is coming, then sent no transfer: the visitor waits for nobody",
    "Reply objects: transfer",
    on="platform",
)
def _transfer_announced(o: PlatformObservation):
    if o.kind == "announced":
        yield (
            "a transfer announced to the visitor, and none sent: in the answer, nor through iAdvize's API",
            evidence(o.quote, 80),
        )


@rule(
    "conversation-crosstalk",
    "error",
    "each conversation must keep its own state: with two visitors at once, one got an answer that depends on the "
    "other's words (key sessions by idConversation, never by 'the last one')",
    "A full conversation",
    on="platform",
)
def _crosstalk(o: PlatformObservation):
    if o.kind == "crosstalk":  # o.call: (the words answered, the answer they get alone)
        words, alone = o.call
        yield (
            f"the answer to “{evidence(words, 60)}” changed when another conversation had just said "
            f"“{evidence(o.text, 60)}”; alone, it is “{evidence(alone, 80)}”",
            evidence(o.quote, 80),
        )

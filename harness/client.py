"""A client that speaks the connector API exactly as iAdvize does.

Every call carries ``idConnectorVersion`` and ``idWebsite``, is signed with
``X-iAdvize-Signature`` when a secret is given, and has iAdvize's budget as a hard
deadline: 10 s, 2 s for ``conversation-first-messages``. Answers are parsed and checked
against the wire model; anything else raises :class:`BotError` with the exchange attached.

The client knows nothing of Pact or of the simulated platform: both drive it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import requests
import urllib3

from harness import wire
from harness.wire import signature
from harness.wire.limits import BUDGET_SECONDS, FIRST_MESSAGES_BUDGET_SECONDS
from harness.wire.model import utc_iso

MAX_BODY_BYTES = 5 * 1024 * 1024  # an answer larger than this is a bot fault, not something to buffer
NO_ANSWER_WITHIN = "no complete answer within"  # how every timeout's error begins
GIVE_UP_AFTER = 2  # calls in a row over budget: then the endpoint (or, across endpoints, the bot) is given up
REFUSED_STATUSES = (401, 403)  # what a connector answers to a signature it does not accept
NO_SCENARIO = "default"  # the idBot an operator is saved with when the bot lists no scenario
CONVERSATION_ENDPOINTS = frozenset({"first-messages", "conversations", "messages"})


@dataclass
class Exchange:
    """One HTTP call to a bot and what came back, whatever came back."""

    endpoint: str  # the spec's name: "external-bots", "bot.save", "messages", ...
    method: str
    url: str
    request_body: dict | None
    sent_at: str  # ISO 8601, UTC
    latency_ms: float | None = None  # monotonic, from sending to the last byte
    status: int | None = None
    body: object = None  # parsed JSON, or the text when it was not JSON
    error: str | None = None  # timeout, connection refused, not JSON, too large...
    problems: list[wire.Problem] = field(default_factory=list)  # where the body departs from the wire model
    content_type: str = ""
    raw: bytes = field(default=b"", repr=False)  # the body exactly as received
    request_headers: dict = field(default_factory=dict, repr=False)  # as sent, the signature included
    signed_by: str | None = None  # the header the client signed the call in with its secret (None: not signed)
    request_data: bytes = field(default=b"", repr=False)  # the body exactly as sent
    skipped: bool = False  # not sent: the endpoint (or the whole bot) was given up for not answering
    unreachable: bool = False  # no connection could be made at all (refused, unknown host)
    budget: float = field(default=BUDGET_SECONDS, repr=False)  # the seconds iAdvize gives this call

    @property
    def ok(self) -> bool:
        """True for a 2xx answer that was read in full and fits the wire model."""
        return self.error is None and not self.problems and self.status is not None and 200 <= self.status < 300

    @property
    def timed_out(self) -> bool:
        """No complete answer within the budget (a call given up before it was sent is not one)."""
        return self.status is None and not self.skipped and (self.error or "").startswith(NO_ANSWER_WITHIN)

    def reproduce(self) -> str:
        """A ``curl`` command that sends this exact call again: same URL, headers and body, and iAdvize's budget
        as its time limit. A call the client signed is signed again from ``$IADVIZE_SECRET`` when the command
        runs (openssl): the command holds no valid signature to be replayed from a report or a CI log."""
        parts = ["curl", "-sS", "-i", "-X", self.method, "--max-time", f"{self.budget:g}"]
        for name, value in self.request_headers.items():
            if name != self.signed_by:
                parts += [part for one in _values(value) for part in ("-H", f"{name}: {one}")]
        if self.request_data:
            parts += ["--data-binary", self.request_data.decode("utf-8", errors="replace")]
        command = " ".join(shlex.quote(part) for part in parts)
        if self.signed_by is None:
            return f"{command} {shlex.quote(self.url)}"
        # what the signature covers: the query string of a GET, the body of anything else
        covered = self.url.partition("?")[2] if self.method.upper() in ("GET", "HEAD") else self.request_data
        covered = covered.decode("utf-8", errors="replace") if isinstance(covered, bytes) else covered
        sign = 'printf %s "$signed" | openssl dgst -sha256 -hmac "$IADVIZE_SECRET" -r | cut -c1-64'
        header = f'-H "{self.signed_by}: sha256=$({sign})"'
        return f"signed={shlex.quote(covered)}; {command} {header} {shlex.quote(self.url)}"


def json_bytes(document) -> bytes:
    """``document`` as the JSON iAdvize sends: UTF-8, and a lone surrogate a bot wrote (echoed back) as its JSON
    escape, since UTF-8 cannot hold it."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _values(value) -> tuple:
    """A header's values: a tuple is sent as that many headers of the same name (a probe's two signatures)."""
    return value if isinstance(value, tuple) else (value,)


class BotError(Exception):
    """A call that did not get a conformant answer; ``exchange`` holds everything that happened."""

    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        super().__init__(describe_failure(exchange))

    @property
    def status(self) -> int | None:
        """The HTTP status the bot answered, or None when no answer came."""
        return self.exchange.status


def describe_failure(exchange: Exchange) -> str:
    """What went wrong with the exchange, in one line naming the call.

    The error, the status with an excerpt of the answer, or where the answer departs from the API.
    """
    call = f"{exchange.method} {exchange.url.split('?')[0]}"
    if exchange.error and exchange.status is not None:  # answered, but unreadable: say what came
        return f"{call}: {exchange.error} ({excerpt(exchange)})"
    if exchange.error:
        return f"{call}: {exchange.error}"
    if exchange.status is not None and not 200 <= exchange.status < 300:
        return f"{call} answered {exchange.status}: {excerpt(exchange)}"
    return f"{call}: the answer does not fit the API: " + "; ".join(map(str, exchange.problems[:5]))


EXCERPT_CHARS = 160  # what a person reads of a body in a report line


def brief(body, limit: int = EXCERPT_CHARS) -> str:
    """A JSON value (or text) on one line, cut to ``limit`` characters."""
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Linear in the page, whatever a bot sends: a failed match stops at the next "<" (no ".*?" across a page).
_TITLE = re.compile(r"<title[^<>]*>([^<]*)<", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
HIDDEN = ("script", "style", "head")  # elements whose content is no text a reader sees
EXCERPT_SCAN_CHARS = 256 * 1024  # an excerpt reads a page's start: a title and a first line are there


def excerpt(exchange: Exchange, limit: int = EXCERPT_CHARS) -> str:
    """What the bot answered, short enough for one line: JSON as compact text; anything else as its
    content type and a line of it (an HTML page: its title, or its first line of text)."""
    body = exchange.body
    if body is None or body == "":
        return "an empty body"
    if not isinstance(body, str):
        return brief(body, limit)
    kind = exchange.content_type.split(";")[0].strip() or "no content type"
    body = body[:EXCERPT_SCAN_CHARS]
    if "html" in kind or body.lstrip()[:1] == "<":
        title = _TITLE.search(body)
        lines = _lines(_TAG.sub("\n", _without_hidden(body)))
        heading = _lines(title.group(1))[:1] if title else []
        # a page's title, and its first line of text when it says more ("Error" / "Cannot GET /bots/1")
        text = " / ".join(dict.fromkeys([*heading, *lines[:1]]))
    else:
        text = next(iter(_lines(body)), "")
    return f"{kind}: {brief(text, limit - len(kind) - 2)}" if text else f"{kind}, no text"


def _without_hidden(page: str) -> str:
    """``page`` without its script, style and head elements (an unclosed one: to the end), in one pass."""
    lower, kept, at = page.lower(), [], 0
    following = {name: lower.find(f"<{name}") for name in HIDDEN}  # each name's next opening (-1: none left)
    while True:
        for name, found in following.items():  # looked for again only once passed: each find scans once
            if 0 <= found < at:
                following[name] = lower.find(f"<{name}", at)
        start, name = min(((s, n) for n, s in following.items() if s >= 0), default=(-1, ""))
        if start < 0:
            return "".join([*kept, page[at:]])
        kept.append(page[at:start])
        end = lower.find(f"</{name}", start)
        if end < 0:
            return "".join(kept)
        close = lower.find(">", end)
        at = len(page) if close < 0 else close + 1


def _lines(text: str) -> list[str]:
    return [line.strip() for line in html.unescape(text).splitlines() if line.strip()]


def now_iso() -> str:
    """The current instant as iAdvize writes it: UTC, milliseconds, ``Z``."""
    return utc_iso()


def message(role: str, payload: dict, id_message: str | None = None, created_at: str | None = None) -> dict:
    """A wire message as iAdvize posts it."""
    return {
        "idMessage": id_message or str(uuid.uuid4()),
        "author": {"role": role},
        "payload": payload,
        "createdAt": created_at or now_iso(),
    }


def new_operator_id() -> str:
    """An operator id shaped like iAdvize's (``ha-`` and a number), unlikely to collide in one bot."""
    return f"ha-{uuid.uuid4().int % 900_000 + 100_000}"


def visitor_text(text: str, **kwargs) -> dict:
    """A visitor's text message as iAdvize posts it; ``kwargs`` may set ``id_message`` and ``created_at``."""
    return message("visitor", {"contentType": "text", "value": text}, **kwargs)


def echo_of(reply: dict, **kwargs) -> dict:
    """The message iAdvize posts back to the bot after showing one of its ``message`` replies."""
    return message("operator", reply["payload"], **kwargs)


@dataclass(frozen=True)
class Route:
    """One of the seven connector endpoints: the requests it matches, its spec name, its 2xx body and its budget."""

    method: str
    pattern: re.Pattern
    endpoint: str  # the spec's name for it
    response_body: str  # the wire model body of its 2xx answer
    budget: float


HEALTH_ELSEWHERE = ("/health", "/healthz", "/status")  # where connectors serve it when not at /healthcheck

ROUTES = (
    Route("GET", re.compile(r"^/external-bots/?$"), "external-bots", "external-bots.response", BUDGET_SECONDS),
    Route(
        "GET",
        re.compile(r"^/bots/[^/]+/conversation-first-messages/?$"),
        "first-messages",
        "first-messages.response",
        FIRST_MESSAGES_BUDGET_SECONDS,
    ),
    Route("PUT", re.compile(r"^/bots/[^/]+/?$"), "bot.save", "bot.response", BUDGET_SECONDS),
    Route("GET", re.compile(r"^/bots/[^/]+/?$"), "bot.read", "bot.response", BUDGET_SECONDS),
    Route(
        "GET",
        re.compile(r"^/availability-strategies/?$"),
        "availability-strategies",
        "availability-strategies.response",
        BUDGET_SECONDS,
    ),
    Route("POST", re.compile(r"^/conversations/?$"), "conversations", "conversation.response", BUDGET_SECONDS),
    Route("POST", re.compile(r"^/conversations/[^/]+/messages/?$"), "messages", "message.response", BUDGET_SECONDS),
)


# Each endpoint as its documentation writes it, for people to read
CALLS = {
    "healthcheck": "GET /healthcheck",
    "external-bots": "GET /external-bots",
    "first-messages": "GET /bots/:idOperator/conversation-first-messages",
    "bot.save": "PUT /bots/:idOperator",
    "bot.read": "GET /bots/:idOperator",
    "availability-strategies": "GET /availability-strategies",
    "conversations": "POST /conversations",
    "messages": "POST /conversations/:idConversation/messages",
}


def route(method: str, path: str) -> Route | None:
    """Which of the seven endpoints a request is for (None: not one of them)."""
    return next((r for r in ROUTES if r.method == method.upper() and r.pattern.match(path)), None)


def environment_session(base_url: str) -> requests.Session:
    """A session whose proxy and CA settings are read from the environment once, not per call.

    requests re-reads every environment variable on each call to find proxies: a sixth of a
    replay's time in a profile. The same variables are honoured (``HTTPS_PROXY``, ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``...), as they were when the client was created.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(base_url)  # empty when NO_PROXY covers the bot
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


class BotClient:
    """The seven connector endpoints of one bot, called as iAdvize calls them."""

    def __init__(
        self,
        base_url: str,
        secret: str | None = None,
        id_connector_version: str | None = None,
        id_website: str = "ha-123",
        session: requests.Session | None = None,
        budget: float = BUDGET_SECONDS,
        first_messages_budget: float = FIRST_MESSAGES_BUDGET_SECONDS,
        on_exchange: Callable[[Exchange], None] | None = None,
        give_up: GiveUp | None = None,
        signature_header: str = signature.HEADER,
    ):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.give_up = give_up  # shared by the clients of one run: who stopped answering is not called again
        self.signature_header = signature_header  # header names are case-insensitive: probes try other cases
        self.id_connector_version = id_connector_version or str(uuid.uuid4())
        self.id_website = id_website
        self.session = session or environment_session(self.base_url)
        self.budget, self.first_messages_budget = budget, first_messages_budget
        self.on_exchange = on_exchange  # sees every exchange, failed ones included (recording, metrics)

    # --- the seven endpoints ---------------------------------------------------------------

    def external_bots(self) -> list[dict]:
        """``GET /external-bots``: the scenarios the bot offers; raises BotError unless the answer conforms."""
        return self.call("external-bots", "GET", "/external-bots", "external-bots.response").body

    def save_bot(self, id_operator: str, settings: dict) -> dict:
        """``PUT /bots/:idOperator``: ``settings`` holds name, pseudo, language, distributionRules, external."""
        return self.call("bot.save", "PUT", f"/bots/{quote(id_operator, safe='')}", "bot.response", body=settings).body

    def bot(self, id_operator: str) -> dict:
        """``GET /bots/:idOperator``: the operator as the bot has it; raises BotError unless the answer conforms."""
        return self.call("bot.read", "GET", f"/bots/{quote(id_operator, safe='')}", "bot.response").body

    def availability_strategies(self, id_operator: str) -> list[dict]:
        """``GET /availability-strategies`` for the operator; raises BotError unless the answer conforms."""
        return self.call(
            "availability-strategies",
            "GET",
            "/availability-strategies",
            "availability-strategies.response",
            params={"idOperator": id_operator},
        ).body

    def first_messages(self, id_operator: str) -> dict:
        """``GET /bots/:idOperator/conversation-first-messages`` (2 s budget); raises BotError unless it conforms."""
        return self.call(
            "first-messages",
            "GET",
            f"/bots/{quote(id_operator, safe='')}/conversation-first-messages",
            "first-messages.response",
            budget=self.first_messages_budget,
        ).body

    def start_conversation(
        self, id_operator: str, id_conversation: str | None = None, history: list[dict] | None = None
    ) -> dict:
        """``POST /conversations`` (a new idConversation when none is given); raises BotError unless it conforms."""
        body = {
            "idOperator": id_operator,
            "idConversation": id_conversation or str(uuid.uuid4()),
            "history": list(history or []),
        }
        return self.call("conversations", "POST", "/conversations", "conversation.response", body=body).body

    def send_message(self, id_conversation: str, id_operator: str, wire_message: dict, **extra) -> dict:
        """``POST /conversations/:id/messages`` with a visitor message, or an echo (role ``operator``).

        ``extra`` adds fields beside ``message``, as some platform versions do (``operator``).
        """
        body = {"idOperator": id_operator, "message": wire_message, **extra}
        return self.call(
            "messages",
            "POST",
            f"/conversations/{quote(id_conversation, safe='')}/messages",
            "message.response",
            body=body,
        ).body

    def health(self, where: str = "/healthcheck") -> Exchange:
        """The health check as the developer platform calls it: a GET, unsigned, without parameters.

        ``where`` is a path under the base URL, or a URL of its own (the one set in the app's settings).
        """
        if "://" in where:
            url = urlsplit(where)
            elsewhere = BotClient(f"{url.scheme}://{url.netloc}", session=self.session, give_up=self.give_up)
            return elsewhere.health(url.path or "/")
        return self.transmit("healthcheck", "GET", where, "", b"", {}, "health.response", sign=False)

    def find_health(self, where: str | None = None) -> tuple[Exchange, str]:
        """The health check at ``where`` (a path, or the URL set in the app's settings, which is the one the
        developer platform polls); without it, at /healthcheck, or else where connectors often serve it under
        the base URL. Returns the exchange, and a note giving the URL to set when it was found elsewhere."""
        if where:
            return self.health(where), ""
        usual = self.health()
        for path in () if usual.ok else HEALTH_ELSEWHERE:
            found = self.health(path)
            if found.ok:
                return found, (
                    f"the health check answers at {found.url}, not at /healthcheck: set that URL in the app's "
                    f"settings (the developer platform polls the URL set there), and give it with "
                    f"--healthcheck-url {found.url}"
                )
        return usual, ""

    def healthcheck(self) -> bool:
        """Whether ``GET /healthcheck`` answers 200 within 2 s.

        Not one of the connector endpoints: sent unsigned, without iAdvize's query parameters,
        outside the GiveUp, and never seen by ``on_exchange``.
        """
        try:
            return self.session.get(f"{self.base_url}/healthcheck", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --- one call ----------------------------------------------------------------------------

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        response_body: str | None,
        *,
        body: dict | None = None,
        params: dict | None = None,
        budget: float | None = None,
    ) -> Exchange:
        """Send one call and return its exchange; raise :class:`BotError` unless it conforms."""
        exchange = self.exchange(endpoint, method, path, response_body, body=body, params=params, budget=budget)
        if not exchange.ok:
            raise BotError(exchange)
        return exchange

    def exchange(
        self,
        endpoint: str,
        method: str,
        path: str,
        response_body: str | None,
        *,
        body: dict | None = None,
        params: dict | None = None,
        budget: float | None = None,
        headers: dict | None = None,
    ) -> Exchange:
        """Send one call and record what happened, never raising for what the bot did."""
        query = urlencode(
            {"idConnectorVersion": self.id_connector_version, "idWebsite": self.id_website, **(params or {})}
        )
        data = json_bytes(body) if body is not None else b""
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        return self.transmit(endpoint, method, path, query, data, sent, response_body, budget, request_body=body)

    def transmit(
        self,
        endpoint: str,
        method: str,
        path: str,
        query: str,
        data: bytes,
        headers: dict,
        response_body: str | None,
        budget: float | None = None,
        request_body=None,
        sign: bool = True,
    ) -> Exchange:
        """Send raw bytes within the budget and record the exchange.

        Signed when the client has a secret, unless ``headers`` already carry a signature (in any
        case): a caller that sets one on purpose (a forged one, to probe the bot) has it sent as is.
        """
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = dict(headers)
        signed = sign and self.secret and not any(k.lower() == signature.HEADER.lower() for k in headers)
        if signed:
            headers[self.signature_header] = signature.sign(
                self.secret, signature.signed_part(method, query.encode("utf-8"), data)
            )
        budget = self.budget if budget is None else budget
        exchange = Exchange(
            endpoint, method, url, request_body, now_iso(), request_headers=headers, request_data=data, budget=budget
        )
        exchange.signed_by = self.signature_header if signed else None
        if self.give_up is not None and (reason := self.give_up.reason(endpoint)):
            exchange.error, exchange.skipped, exchange.latency_ms = reason, True, 0.0
            if self.on_exchange:
                self.on_exchange(exchange)
            return exchange
        started = time.monotonic()
        try:
            exchange.raw, exchange.status, exchange.content_type = self._send(
                method, url, data, headers, started + budget
            )
        except (_Timeout, requests.Timeout):
            exchange.error = f"{NO_ANSWER_WITHIN} the {budget:g} s iAdvize waits"
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            # a read timeout in the middle of a body comes as a connection or protocol error
            exchange.error = (
                f"{NO_ANSWER_WITHIN} the {budget:g} s iAdvize waits"
                if time.monotonic() >= started + budget
                else f"connection failed ({_reason(error)})"
            )
            exchange.unreachable = _never_connected(error)
        except _TooLarge:
            exchange.error = f"the answer is larger than {MAX_BODY_BYTES} bytes"
        else:
            self._read_body(exchange, exchange.raw, response_body)
        exchange.latency_ms = round((time.monotonic() - started) * 1000, 3)
        if self.give_up is not None:
            self.give_up.record(exchange)
        if self.on_exchange:
            self.on_exchange(exchange)
        return exchange

    def _send(self, method: str, url: str, data: bytes, headers: dict, deadline: float) -> tuple[bytes, int, str]:
        # requests' timeout bounds each socket wait, not the whole answer: a bot that trickles
        # a byte at a time would never time out. Streaming lets us hold the real deadline.
        prepared = self.session.prepare_request(requests.Request(method, url, data=data or None))
        for name in headers:  # the caller's replace the session's
            prepared.headers.pop(name, None)
        sent = urllib3.HTTPHeaderDict(prepared.headers)  # urllib3 sends each of its values as a header of its own
        for name, value in headers.items():
            for one in _values(value):
                sent.add(name, one)
        prepared.headers = sent
        settings = self.session.merge_environment_settings(prepared.url, {}, True, None, None)  # proxies, CA bundle
        remaining = deadline - time.monotonic()
        with self.session.send(
            prepared, timeout=(min(remaining, 3.05), remaining), allow_redirects=False, **settings
        ) as response:
            sock = getattr(getattr(response.raw, "connection", None), "sock", None)
            chunks, size = [], 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout
                if sock is not None:
                    sock.settimeout(remaining)  # each wait shrinks to what is left of the budget
                chunk = response.raw.read1(65536, decode_content=True)  # what has arrived, not a full 64 KiB
                if not chunk:
                    return b"".join(chunks), response.status_code, response.headers.get("Content-Type", "")
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge

    @staticmethod
    def _read_body(exchange: Exchange, raw: bytes, response_body: str | None) -> None:
        try:
            exchange.body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            exchange.body = raw.decode("utf-8", errors="replace")
            if 200 <= exchange.status < 300:
                exchange.error = "the answer is not JSON"
            return
        if response_body and 200 <= exchange.status < 300:
            try:
                exchange.problems = wire.problems(response_body, exchange.body)
            except RecursionError:
                exchange.problems = [wire.Problem("", "nested too deeply")]


class GiveUp:
    """Which endpoints a run stops calling because they stopped answering (thread-safe, shared).

    After :data:`GIVE_UP_AFTER` calls in a row over budget on one endpoint, that endpoint is
    no longer called; after as many in a row across endpoints, a conversation endpoint among
    them, the whole bot is not. A bot
    that hangs then costs a run a few budgets, not one budget per planned call. Every call
    not made is counted, for the finding that says so.
    """

    def __init__(self, after: int = GIVE_UP_AFTER):
        self.after = after
        self._lock = threading.Lock()
        self._in_a_row: dict[str, int] = {}  # endpoint -> calls over budget in a row
        self._streak: set[str] = set()  # the endpoints of the bot's current run of calls over budget
        self.budgets: dict[str, float] = {}  # endpoint -> its budget, as the calls had it
        self.given_up: dict[str, int] = {}  # endpoint ("*": the whole bot) -> calls not made since
        self.timeouts: dict[str, int] = {}  # endpoint -> calls over budget, in all

    def reason(self, endpoint: str) -> str | None:
        """Why a call to ``endpoint`` is not made (None: make it); counts it as not made."""
        with self._lock:
            for key in (endpoint, "*"):
                if key in self.given_up:
                    self.given_up[key] += 1
                    what = "the bot" if key == "*" else endpoint
                    return (
                        f"not sent: {what} was given up after {self.after} calls in a row with "
                        f"{NO_ANSWER_WITHIN} the budget"
                    )
        return None

    def record(self, exchange: Exchange) -> None:
        """Notes how a call went: over budget, it adds to its endpoint's run and the bot's; otherwise it ends both.

        A run of ``after`` calls gives the endpoint up, or the whole bot when the run spans
        endpoints, a conversation endpoint among them.
        """
        with self._lock:
            endpoint = exchange.endpoint
            if not exchange.timed_out:
                self._in_a_row[endpoint] = 0
                self._streak.clear()
                return
            self.budgets[endpoint] = exchange.budget
            self.timeouts[endpoint] = self.timeouts.get(endpoint, 0) + 1
            self._in_a_row[endpoint] = self._in_a_row.get(endpoint, 0) + 1
            self._streak.add(endpoint)
            if self._in_a_row[endpoint] >= self.after:
                self.given_up.setdefault(endpoint, 0)
            # Different endpoints one after the other, a conversation endpoint among them: the bot is down.
            # Configuration endpoints alone hanging leave the conversation endpoints to be judged.
            if len(self._streak) >= self.after and self._streak & CONVERSATION_ENDPOINTS:
                self.given_up.setdefault("*", 0)

    def sentence(self, endpoint: str) -> str:
        """What happened to a given-up endpoint, in words: the calls over budget and those not made."""
        skipped = self.given_up[endpoint]
        if endpoint == "*":
            said = (
                f"the bot stopped answering ({self.after} calls in a row on different endpoints with "
                f"{NO_ANSWER_WITHIN} the budget)"
            )
            return said + (f": {skipped} further calls were not made" if skipped else "")
        said = (
            f"{self.timeouts.get(endpoint, 0)} calls with {NO_ANSWER_WITHIN} the "
            f"{self.budgets.get(endpoint, BUDGET_SECONDS):g} s budget: given up after {self.after} in a row"
        )
        return said + (f", {skipped} further calls not made" if skipped else "")

    def summary(self) -> list[str]:
        """One line per endpoint given up (and for the whole bot, if it was)."""
        return [
            f"{endpoint}: {self.sentence(endpoint)}" if endpoint != "*" else self.sentence(endpoint)
            for endpoint in self.given_up
        ]


def url_problem(text: str) -> str | None:
    """What is wrong with a bot's base URL, in words (None: nothing): http(s), a host, a valid port."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f" (did you mean http://{text}?)" if "://" not in text and text.strip() else ""
        return f"must be a URL starting with http:// or https://, got {text!r}{hint}"
    if any(c.isspace() for c in text):
        return f"must not contain spaces, got {text!r}"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        return f"has no valid port (a number up to 65535), got {text!r}"
    return None


def refusal(exchange: Exchange, secret: str | None, flag: str = "--secret") -> str | None:
    """One line when ``exchange`` was refused for its signature (401/403): what to do about it.

    ``flag`` is how the caller's user passes a secret (the pytest plugin's is ``--iadvize-secret``).
    """
    if exchange.status not in REFUSED_STATUSES:
        return None
    call = f"{exchange.method} {urlsplit(exchange.url).path} answered {exchange.status}"
    if secret:
        return (
            f"the bot refuses this secret ({call}): check {flag} or IADVIZE_SECRET against the secret "
            "of the bot's iAdvize app"
        )
    return f"the bot refuses unsigned calls ({call}): pass {flag} or set IADVIZE_SECRET"


def preflight(
    client: BotClient, id_operator: str | None = None, flag: str = "--secret"
) -> tuple[list[Exchange], str | None]:
    """The first calls of a run: can the bot be reached, and does it take our signature?

    ``GET /external-bots``, then a conversation started (``POST /conversations``): a connector may
    check signatures on POSTs only, or check GETs wrongly. Returns the exchanges made and, when
    nothing else is worth trying, the one line that says why: the bot cannot be reached, it refuses
    the POST, or (without a secret) it refuses the GET and does not take the POST either.
    """
    first = client.exchange("external-bots", "GET", "/external-bots", "external-bots.response")
    if first.unreachable:
        return [first], f"cannot reach the bot at {client.base_url}: {first.error}"
    started = client.exchange(
        "conversations",
        "POST",
        "/conversations",
        "conversation.response",
        body={"idOperator": id_operator or new_operator_id(), "idConversation": str(uuid.uuid4()), "history": []},
    )
    refused = [x for x in (first, started) if x.status in REFUSED_STATUSES]
    if started in refused or (refused and not client.secret and not started.ok):
        return [first, started], refusal(refused[0], client.secret, flag)
    return [first, started], None


class _Timeout(Exception):
    pass


class _TooLarge(Exception):
    pass


def _never_connected(error: Exception) -> bool:
    """The connection itself failed (refused, no such host, a TLS handshake that failed: https to an
    http port), as opposed to a bot hanging up mid-answer."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, urllib3.exceptions.NewConnectionError | urllib3.exceptions.SSLError | ssl.SSLError):
            return True
        cause = cause.__context__ if cause.__context__ is not cause else None
    return False


def _reason(error: Exception) -> str:
    # urllib3 nests the cause several exceptions deep; its innermost message is what a person needs.
    cause: BaseException = error
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    return str(cause) or type(error).__name__

"""A client that speaks the connector API exactly as iAdvize does.

Every call carries ``idConnectorVersion`` and ``idWebsite``, is signed with
``X-iAdvize-Signature`` when a secret is given, and has iAdvize's budget as a hard
deadline: 10 s, 2 s for ``conversation-first-messages``. Answers are parsed and checked
against the wire model; anything else raises :class:`BotError` with the exchange attached.

The client knows nothing of Pact or of the simulated platform: both drive it.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import requests
import urllib3

from . import wire
from .wire import signature

BUDGET_SECONDS = 10.0  # what iAdvize waits for every endpoint...
FIRST_MESSAGES_BUDGET_SECONDS = 2.0  # ...but this one: after it, the greeting is not shown
MAX_BODY_BYTES = 5 * 1024 * 1024  # an answer larger than this is a bot fault, not something to buffer


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

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems and self.status is not None and 200 <= self.status < 300


class BotError(Exception):
    """A call that did not get a conformant answer; ``exchange`` holds everything that happened."""

    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        super().__init__(describe_failure(exchange))

    @property
    def status(self) -> int | None:
        return self.exchange.status


def describe_failure(exchange: Exchange) -> str:
    call = f"{exchange.method} {exchange.url}"
    if exchange.error:
        return f"{call}: {exchange.error}"
    if exchange.status is not None and not 200 <= exchange.status < 300:
        return f"{call} answered {exchange.status}: {brief(exchange.body)}"
    return f"{call}: the answer does not fit the API: " + "; ".join(map(str, exchange.problems[:5]))


def brief(body) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def utc_iso(moment: datetime | float | None = None) -> str:
    """An instant (a datetime, unix seconds, or now) as iAdvize writes it: UTC, milliseconds, ``Z``."""
    if moment is None:
        moment = datetime.now(UTC)
    elif isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
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
    return message("visitor", {"contentType": "text", "value": text}, **kwargs)


def echo_of(reply: dict, **kwargs) -> dict:
    """The message iAdvize posts back to the bot after showing one of its ``message`` replies."""
    return message("operator", reply["payload"], **kwargs)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    endpoint: str  # the spec's name for it
    response_body: str  # the wire model body of its 2xx answer
    budget: float


ROUTES = (
    Route("GET", re.compile(r"^/external-bots/?$"), "external-bots", "external-bots.response", BUDGET_SECONDS),
    Route("GET", re.compile(r"^/bots/[^/]+/conversation-first-messages/?$"), "first-messages",
          "first-messages.response", FIRST_MESSAGES_BUDGET_SECONDS),
    Route("PUT", re.compile(r"^/bots/[^/]+/?$"), "bot.save", "bot.response", BUDGET_SECONDS),
    Route("GET", re.compile(r"^/bots/[^/]+/?$"), "bot.read", "bot.response", BUDGET_SECONDS),
    Route("GET", re.compile(r"^/availability-strategies/?$"), "availability-strategies",
          "availability-strategies.response", BUDGET_SECONDS),
    Route("POST", re.compile(r"^/conversations/?$"), "conversations", "conversation.response", BUDGET_SECONDS),
    Route("POST", re.compile(r"^/conversations/[^/]+/messages/?$"), "messages", "message.response", BUDGET_SECONDS),
)


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
    ):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.id_connector_version = id_connector_version or str(uuid.uuid4())
        self.id_website = id_website
        self.session = session or environment_session(self.base_url)
        self.budget, self.first_messages_budget = budget, first_messages_budget
        self.on_exchange = on_exchange  # sees every exchange, failed ones included (recording, metrics)

    # --- the seven endpoints ---------------------------------------------------------------

    def external_bots(self) -> list[dict]:
        return self.call("external-bots", "GET", "/external-bots", "external-bots.response").body

    def save_bot(self, id_operator: str, settings: dict) -> dict:
        """``PUT /bots/:idOperator``: ``settings`` holds name, pseudo, language, distributionRules, external."""
        return self.call("bot.save", "PUT", f"/bots/{quote(id_operator, safe='')}", "bot.response",
                         body=settings).body

    def bot(self, id_operator: str) -> dict:
        return self.call("bot.read", "GET", f"/bots/{quote(id_operator, safe='')}", "bot.response").body

    def availability_strategies(self, id_operator: str) -> list[dict]:
        return self.call("availability-strategies", "GET", "/availability-strategies",
                         "availability-strategies.response", params={"idOperator": id_operator}).body

    def first_messages(self, id_operator: str) -> dict:
        return self.call("first-messages", "GET",
                         f"/bots/{quote(id_operator, safe='')}/conversation-first-messages",
                         "first-messages.response", budget=self.first_messages_budget).body

    def start_conversation(self, id_operator: str, id_conversation: str | None = None,
                           history: list[dict] | None = None) -> dict:
        body = {"idOperator": id_operator, "idConversation": id_conversation or str(uuid.uuid4()),
                "history": list(history or [])}
        return self.call("conversations", "POST", "/conversations", "conversation.response", body=body).body

    def send_message(self, id_conversation: str, id_operator: str, wire_message: dict, **extra) -> dict:
        """``POST /conversations/:id/messages`` with a visitor message, or an echo (role ``operator``).

        ``extra`` adds fields beside ``message``, as some platform versions do (``operator``).
        """
        body = {"idOperator": id_operator, "message": wire_message, **extra}
        return self.call("messages", "POST", f"/conversations/{quote(id_conversation, safe='')}/messages",
                         "message.response", body=body).body

    def healthcheck(self) -> bool:
        try:
            return self.session.get(f"{self.base_url}/healthcheck", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --- one call ----------------------------------------------------------------------------

    def call(self, endpoint: str, method: str, path: str, response_body: str | None, *,
             body: dict | None = None, params: dict | None = None, budget: float | None = None) -> Exchange:
        """Send one call and return its exchange; raise :class:`BotError` unless it conforms."""
        exchange = self.exchange(endpoint, method, path, response_body, body=body, params=params, budget=budget)
        if not exchange.ok:
            raise BotError(exchange)
        return exchange

    def exchange(self, endpoint: str, method: str, path: str, response_body: str | None, *,
                 body: dict | None = None, params: dict | None = None, budget: float | None = None,
                 headers: dict | None = None) -> Exchange:
        """Send one call and record what happened, never raising for what the bot did."""
        query = urlencode({"idConnectorVersion": self.id_connector_version, "idWebsite": self.id_website,
                           **(params or {})})
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        return self.transmit(endpoint, method, path, query, data, sent, response_body, budget, request_body=body)

    def transmit(self, endpoint: str, method: str, path: str, query: str, data: bytes, headers: dict,
                 response_body: str | None, budget: float | None = None, request_body=None) -> Exchange:
        """Send raw bytes, signed when the client has a secret, within the budget; record the exchange."""
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = {k: v for k, v in headers.items() if k.lower() != signature.HEADER.lower()}
        if self.secret:
            headers[signature.HEADER] = signature.sign(
                self.secret, signature.signed_part(method, query.encode("utf-8"), data))
        exchange = Exchange(endpoint, method, url, request_body, now_iso())
        budget = self.budget if budget is None else budget
        started = time.monotonic()
        try:
            exchange.raw, exchange.status, exchange.content_type = self._send(
                method, url, data, headers, started + budget)
        except (_Timeout, requests.Timeout):
            exchange.error = f"no complete answer within the {budget:g} s iAdvize waits"
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            # a read timeout in the middle of a body comes as a connection or protocol error
            exchange.error = (f"no complete answer within the {budget:g} s iAdvize waits"
                              if time.monotonic() >= started + budget else f"connection failed ({_reason(error)})")
        except _TooLarge:
            exchange.error = f"the answer is larger than {MAX_BODY_BYTES} bytes"
        else:
            self._read_body(exchange, exchange.raw, response_body)
        exchange.latency_ms = round((time.monotonic() - started) * 1000, 3)
        if self.on_exchange:
            self.on_exchange(exchange)
        return exchange

    def _send(self, method: str, url: str, data: bytes, headers: dict, deadline: float) -> tuple[bytes, int, str]:
        # requests' timeout bounds each socket wait, not the whole answer: a bot that trickles
        # a byte at a time would never time out. Streaming lets us hold the real deadline.
        remaining = deadline - time.monotonic()
        with self.session.request(method, url, data=data or None, headers=headers, stream=True,
                                  timeout=(min(remaining, 3.05), remaining), allow_redirects=False) as response:
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


class _Timeout(Exception):
    pass


class _TooLarge(Exception):
    pass


def _reason(error: Exception) -> str:
    # urllib3 nests the cause several exceptions deep; its innermost message is what a person needs.
    cause: BaseException = error
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    return str(cause) or type(error).__name__

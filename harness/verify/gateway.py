"""The local gateway the Pact verifier talks to, between it and the bot under verification.

It does three things Pact cannot do alone:

- signs every forwarded request with the provider's secret (a signature depends on each
  body, and on the query string for a GET, so no static header can do it);
- holds iAdvize's budgets (10 s, 2 s for first messages): a bot that hangs or trickles is
  answered 504 by the gateway, and the report says why;
- sets provider states up through the bot's public API (:mod:`.states`) and records each
  attempt: the states, the exchange, what went wrong, for a report in plain words. A set-up
  that fails part-way still lets the interaction run: the report says both.

Its client gives up an endpoint (or the bot) that keeps going over its budget
(:class:`~harness.client.GiveUp`): the calls after that are answered 504 at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from harness import wire
from harness.client import BotClient, Exchange, GiveUp, route
from harness.conformance.rules import Finding, Observation, finding_line, judge_replies
from harness.progress import silent
from harness.verify.states import ProviderStates, StateError, undocumented

STATE_PATH = "/_iadvize-harness/provider-states"
HEALTH_PATH = "/healthcheck"  # the pact's path for the health check, wherever the bot serves it
FORWARDED_HEADERS = {"content-type": "Content-Type", "accept": "Accept"}


@dataclass
class Attempt:
    """One interaction as the bot lived it: states set up, then (unless set-up failed) one call."""

    states: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)  # the states' parameters: the operator's distribution rules...
    state_errors: list[str] = field(default_factory=list)  # what the set-up could not do (the call still ran)
    state_error: str | None = None  # a state with no set-up at all: the interaction did not run
    exchange: Exchange | None = None
    failures: list[str] = field(default_factory=list)  # what fails it whatever Pact says: check's reply rules...
    warnings: list[str] = field(default_factory=list)  # discouraged, not broken (replies on POST /conversations)
    undocumented: str = ""  # why the documentation does not ask for it: a mismatch is then only a warning
    vacuous: str = ""  # why a pass would say nothing of the bot (the endpoint is missing): it then fails


class Gateway:
    """The gateway's HTTP server, on a free local port: the verifier calls ``url`` and sets states up at ``state_url``.

    It serves from a daemon thread while used as a context manager; ``attempts`` holds each
    interaction as the bot lived it, in order.
    """

    def __init__(
        self,
        provider_url: str,
        secret: str | None = None,
        give_up: GiveUp | None = None,
        progress=silent,
        healthcheck_url: str | None = None,
    ):
        self.client = BotClient(provider_url, secret=secret, give_up=give_up or GiveUp())
        self.healthcheck_url = healthcheck_url  # where the app's settings put the health check (default: looked for)
        self.notes: list[str] = []  # what the run found out beside the interactions, once each
        self.states = ProviderStates(self.client)
        self.progress = progress
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.state_url = self.url + STATE_PATH
        # shutdown() waits for the serving loop's next poll: 0.5 s by default, per verify run
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), name="pact-gateway", daemon=True
        )

    def __enter__(self) -> Gateway:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _current(self) -> Attempt:
        # A set-up after a call, or a call after a call, begins the next interaction.
        last = self.attempts[-1] if self.attempts else None
        if last is None or last.exchange is not None or last.state_error:
            last = Attempt()
            self.attempts.append(last)
        return last

    def set_up(self, state: str, action: str, params: dict | None) -> tuple[int, dict]:
        """Sets the provider ``state`` up on the bot, for the verifier's state handler; returns (status, values).

        Only the ``setup`` action does anything. 200 with the values the interaction may use, even
        when part of the set-up failed (recorded in the attempt); 422 for a state with no set-up or
        a set-up that crashed, which the verifier does not retry.
        """
        if action != "setup":
            return 200, {}
        with self._lock:
            attempt = self._current()
            attempt.states.append(state)
            attempt.params.update(params or {})
            attempt.undocumented = attempt.undocumented or undocumented(state)
        try:
            values, errors, vacuous = self.states.set_up(state, params)
        except StateError as error:
            attempt.state_error = str(error)
        except Exception as error:  # a bug or a bot answering nonsense: report it, never drop the call
            attempt.state_error = f"setting up {state!r}: {type(error).__name__}: {error}"
        else:
            attempt.state_errors += errors
            attempt.vacuous = attempt.vacuous or vacuous
            return 200, values  # even after a failed call: the interaction runs and shows what it shows
        # 4xx, not 5xx: the verifier retries a 5xx set-up for minutes with backoff, to no avail here
        return 422, {"error": "provider state set-up failed", "detail": attempt.state_error}

    def forward(self, method: str, target: str, headers: dict, body: bytes) -> Exchange:
        """Sends the verifier's call on to the bot, signed and held to its budget; returns the exchange.

        The exchange is recorded in the current attempt, with what Pact cannot check: distribution
        rules the operator does not have (as problems), and what check's reply rules say of the replies
        (errors fail the interaction, warnings are warnings).
        """
        parts = urlsplit(target)
        known = route(method, parts.path)
        if method == "GET" and parts.path == HEALTH_PATH:  # the developer platform polls the URL set in the settings
            exchange, note = self.client.find_health(self.healthcheck_url)
            with self._lock:
                self.notes += [note] if note and note not in self.notes else []
                self._current().exchange = exchange
            return exchange
        exchange = self.client.transmit(
            known.endpoint if known else f"{method} {parts.path}",
            method,
            parts.path,
            parts.query,
            body,
            {FORWARDED_HEADERS[k.lower()]: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS},
            known.response_body if known else None,
            known.budget if known else None,
            request_body=_json_or_none(body),
        )
        with self._lock:
            attempt = self._current()
            attempt.exchange = exchange
            self.progress(f"verify: {len(self.attempts)} interactions tried", step="verify")
        if known and known.endpoint == "availability-strategies" and exchange.ok:
            exchange.problems += _rules_not_of_the_operator(exchange.body, attempt.params)
        for finding in _judged(exchange, attempt.params):
            (attempt.failures if finding.severity == "error" else attempt.warnings).append(finding_line(finding))
        return exchange


def _judged(exchange: Exchange, params: dict) -> list[Finding]:
    """What check's reply rules find in an answer of the conversation endpoints (none on other endpoints)."""
    sent = exchange.request_body if isinstance(exchange.request_body, dict) else {}
    message = sent.get("message") if isinstance(sent.get("message"), dict) else {}
    if exchange.endpoint == "messages":
        purpose = "echo" if (message.get("author") or {}).get("role") == "operator" else "visitor"
    else:
        purpose = {"conversations": "create", "first-messages": "greeting"}.get(exchange.endpoint)
    if purpose is None or exchange.status is None or not 200 <= exchange.status < 300 or exchange.error:
        return []  # no answer, or not one to read: Pact and the wire model say what is wrong
    rules = [r.get("id") for r in params.get("distributionRules") or [] if isinstance(r, dict)]
    return judge_replies(Observation(exchange, purpose, operator_rules=rules, sent_payload=message.get("payload")))


def _rules_not_of_the_operator(strategies: list, params: dict) -> list[wire.Problem]:
    """Pact can only match "an array of ids": the ids must also be rules the operator has."""
    if "distributionRules" not in params:
        return []
    allowed = {rule.get("id") for rule in params["distributionRules"]}
    found = []
    for i, strategy in enumerate(strategies):
        unknown = [r for r in strategy.get("distributionRulesToCheck") or [] if r not in allowed]
        if unknown:
            found.append(
                wire.Problem(
                    f"[{i}].distributionRulesToCheck",
                    f"names rules the operator does not have: {', '.join(map(str, unknown))}",
                )
            )
    return found


def _json_or_none(body: bytes):
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _handler(gateway: Gateway):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

        def log_message(self, *args):
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self):
            body = self._body()
            if self.command == "POST" and urlsplit(self.path).path == STATE_PATH:
                change = json.loads(body or b"{}")
                status, values = gateway.set_up(
                    change.get("state", ""), change.get("action", "setup"), change.get("params")
                )
                return self._send(status, json.dumps(values).encode())
            exchange = gateway.forward(self.command, self.path, dict(self.headers), body)
            if exchange.status is None:  # the bot never answered in full: say so in the bot's place
                status = 504 if "within" in (exchange.error or "") else 502
                detail = json.dumps({"error": "no answer from the bot", "detail": exchange.error})
                return self._send(status, detail.encode())
            return self._send(exchange.status, exchange.raw, exchange.content_type)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    return Handler

"""Availability polls answered before Flask: the hottest call, answered from memory with the least work.

iAdvize polls ``GET /availability-strategies?idOperator=...`` once a second for every operator, so
this is most of a bot's traffic. A WSGI layer in front of the Flask app answers the usual poll (a
known operator, a valid signature, an allowed address) with the same checks and the same answer the
Flask view gives, its body kept per operator, and counts it in the access log (see ``logs``). Anything
else (an unknown operator, a bad signature, a missing parameter, recording switched on) goes on to
Flask, whose hooks answer and log it as every other call.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from harness.wire import signature

from .admin import availability_of
from .logs import PollCounter, new_request_id
from .runtime import Runtime
from .security import caller_address

PATH = "/availability-strategies"


class AvailabilityPolls:
    """``wsgi_app`` with usual availability polls answered in front of it."""

    def __init__(
        self,
        wsgi_app,
        bot: Runtime,
        secret: str | None,
        allowed: frozenset[str] | None,
        polls: PollCounter,
        proxies: frozenset[str] = frozenset(),
    ):
        self.wsgi_app, self.bot, self.secret, self.allowed, self.polls = wsgi_app, bot, secret, allowed, polls
        self.proxies = proxies  # the reverse proxies whose X-Forwarded-For is read
        self._bodies: dict[str, tuple[object, bytes]] = {}  # idOperator -> (the operator it was made for, body)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            answered = self._answer(environ)
            if answered is not None:
                id_operator, body = answered
                start_response(
                    "200 OK",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("X-Content-Type-Options", "nosniff"),
                        ("X-Request-Id", environ.get("HTTP_X_REQUEST_ID", "")[:64] or new_request_id()),
                    ],
                )
                self.polls.count(id_operator)
                return [body]
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ) -> tuple[str, bytes] | None:
        """The operator polled and the body to answer, or None for Flask to answer (and word any problem)."""
        query = environ.get("QUERY_STRING", "")
        if self.allowed is not None:
            address = caller_address(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR", ""), self.proxies)
            if address not in self.allowed:
                return None
        if self.secret is not None:
            header = environ.get("HTTP_X_IADVIZE_SIGNATURE")
            if not signature.is_valid(self.secret, header, query.encode("latin-1")):  # WSGI's str of the raw bytes
                return None
        values = parse_qs(query).get("idOperator")
        id_operator = values[0] if values else None  # the first, as Flask's request.args reads it
        operator = self.bot.operators.known(id_operator) if id_operator else None
        if operator is None or operator.id_bot not in self.bot.scenarios:
            return None
        made_for, body = self._bodies.get(id_operator, (None, b""))
        if made_for is not operator:  # saved again, or re-read by the refresh: made once more
            scenario = self.bot.scenario_of(operator)
            body = json.dumps(availability_of(operator, scenario), separators=(",", ":")).encode() + b"\n"
            self._bodies[id_operator] = (operator, body)
        return id_operator, body

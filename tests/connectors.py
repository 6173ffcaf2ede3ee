"""Small connectors written the way real ones are, with the mistakes real ones make.

Not Flask, not our code: a bare HTTP handler (the shape of an Express or Node-RED connector),
state in dictionaries, its own signature check. Each keyword of :func:`serve` switches on one
pattern seen in public iAdvize connectors:

- ``signature``: ``"hmac"`` (right), ``"length"`` (compares only the length of the header with
  the expected one), ``"presence"`` (any header passes), ``"none"``, ``"case-sensitive"``
  (looks the header up by its exact name ``X-iAdvize-Signature``, as a case-sensitive map does),
  ``"split"`` (splits the header on ``=``, decodes the hex and compares buffers, as Node's
  ``timingSafeEqual``: no header, no ``=``, a non-hex digit or another length crash it, and it
  answers Express's 500 page with the stack trace);
- ``configuration=False``: no ``GET /external-bots`` nor ``PUT/GET /bots/:id``, answered with the
  HTML 404 page of Express;
- ``escalation_words``: the bot transfers only on its own words (``("conseiller",)``);
- ``transfer_timeout``: seconds of the transfer it sends;
- ``health_path``: where its public health check answers (``"/health"``; ``None``: nowhere);
- ``assistant``: it answers through an assistant service whose answer depends on the session's history:
  ``"sessions"`` (one session per conversation), ``"last-opened"`` (every message goes to the session of
  the conversation opened last: visitor B gets answers meant for A); with ``tickets``, a new ticket number
  in every answer;
- ``answer_text``: what it answers every visitor text (whatever bytes it holds); ``file_answer``: a file;
- ``errors_shown``: the errors it catches go to the visitor as they are: a file gets the JSON of a
  TypeError with its stack, a transfer whose routing call failed gets "Something went wrong during
  the transfer : Error: getaddrinfo ENOTFOUND ...";
- ``menu``: quick replies offered to a conversation's first message; the last one transfers
  (``("Track my order", "Talk to a mechanic")``), the others answer and close; with
  ``menu_transfers=False`` none does, whatever its words (``"Talk to a person"``);
- ``unknown``: what it answers any other text: a fallback of its own (``"Sorry, I didn't get that."``), or
  ``"menu"``: its menu again, as many menu bots answer what they do not understand;
- ``hostile``: markup, scripts and ``javascript:`` links in every field it answers (texts, quick replies,
  cards, files, an await's unit, variables), whose script logs ``XSS-RAN`` if a page ever runs it;
  ``hostile="shaped"``: the same in shapes the API allows, so the platform shows them;
- ``rotating``: its answers change by themselves (another wording every second time it is asked the same);
- ``unknown_operator=200``: an operator it never saved is opened with default settings (the documentation
  does not say what to answer);
- ``announcement`` and ``transfers=False``: what it tells the visitor on those words, and a transfer never
  sent (it reads its routing rules from a field iAdvize does not send);
- ``fixed_rule``: the distribution rule it transfers to, whatever the operator's (an id in its configuration);
- ``echo_after_escalation``: once it has transferred, it answers operator-authored messages;
- ``message_delay`` / ``greeting_delay``: seconds it takes on visitor messages / the greeting;
- ``api_url`` and ``api``: it answers a visitor with a holding message and posts the real answer
  through iAdvize's API (``"good"``: one login, the token reused), or makes one mistake with it:
  ``"before-visitor"`` (posts a welcome when the conversation starts), ``"with-human"`` (posts to a
  conversation a human took), ``"login-every-message"``, ``"holding-only"`` (never posts the answer it
  promised), ``"invalid-mutation"`` (a mutation iAdvize's schema does not have), ``"nudges-after-close"``
  (takes the closed webhook and posts a nudge to the conversation anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

EXPRESS_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n'
    "<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
)


EXPRESS_500 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n'
    "<body>\n<pre>{error}<br> &nbsp; &nbsp;at verify (/app/signature.js:14:22)<br> &nbsp; &nbsp;at Layer.handle "
    "(/app/node_modules/express/lib/router/layer.js:95:5)</pre>\n</body>\n</html>\n"
)
# What a connector that shows its errors sends the visitor: the error it caught, as JSON with its stack
CAUGHT = (  # under 250 characters: this is the one rule it breaks
    '{"error":{"name":"TypeError","message":"Cannot read properties of undefined (reading \'url\')",'
    '"stack":"TypeError\\n    at toAssistant (/app/src/assistant.js:88:31)"}}'
)
ROTATING = ("Sorry, I did not get {!r}. Can you say it another way?", "What was that: {!r}?")
TRANSFER_FAILED = "Something went wrong during the transfer : Error: getaddrinfo ENOTFOUND routing.internal"
# What a hostile bot puts in every field: markup whose script, if a page ever ran it, logs XSS_RAN
XSS_RAN = "XSS-RAN"
ATTACK = f"<img src=x onerror=\"console.log('{XSS_RAN}')\"><script>console.log('{XSS_RAN}')</script><b>bold</b>"
LINK = f"javascript:console.log('{XSS_RAN}')"
_CARD = {"contentType": "card/content", "title": ATTACK, "text": ATTACK, "image": {"url": LINK, "description": ATTACK},
         "actions": [{"type": "LINK", "name": ATTACK, "url": LINK}]}  # fmt: skip
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"  # a terminal's: set the window's title, clear the screen, red
HOSTILE = [
    {"type": "message", "payload": {"contentType": "text", "value": ESCAPES + ATTACK},
     "quickReplies": [{"contentType": "text/quick-reply", "value": ATTACK, "idQuickReply": ATTACK}]},
    {"type": "message", "payload": _CARD},
    {"type": "message", "payload": {"contentType": "bundle/card", "cards": [_CARD]}},
    {"type": "message", "payload": {"contentType": "file", "fileName": ATTACK, "mimeType": "text/html", "url": LINK}},
    {"type": "await", "duration": {"unit": ATTACK, "value": 1}},
    {"type": "message", "payload": {"contentType": "text", "value": f"see {LINK}"}},
    {"type": "message", "payload": {"contentType": "text", "value": ESCAPES + "red\u202e"}},
]  # fmt: skip
# The same in the shapes the API allows (a bot that validates its answers and escapes nothing): iAdvize shows them
HOSTILE_SHAPED = [
    {**r, "payload": {**r["payload"], "mimeType": "image/png"}} if r.get("payload", {}).get("contentType") == "file"
    else r
    for r in HOSTILE
    if r["type"] != "await"
]  # fmt: skip


class Connector:
    def __init__(
        self,
        secret: str | None = None,
        signature: str = "hmac",
        configuration: bool = True,
        escalation_words: tuple[str, ...] = ("human", "agent"),
        transfer_timeout: int = 30,
        health_path: str | None = "/healthcheck",
        unknown_operator: int = 404,
        assistant: str | None = None,
        tickets: bool = False,
        answer_text: str | None = None,
        errors_shown: bool = False,
        file_answer: str = "Thanks, I have your file.",
        menu: tuple[str, ...] = (),
        menu_transfers: bool = True,
        rotating: bool = False,
        unknown: str | None = None,
        hostile: bool | str = False,
        announcement: str = "I am transferring you to a colleague.",
        transfers: bool = True,
        echo_after_escalation: bool = False,
        message_delay: float = 0.0,
        greeting_delay: float = 0.0,
        rule: str | None = None,
        fixed_rule: str | None = None,
        api_url: str | None = None,
        api: str = "good",
    ):
        self.secret, self.signature, self.configuration = secret, signature, configuration
        self.escalation_words, self.transfer_timeout = escalation_words, transfer_timeout
        self.announcement, self.transfers = announcement, transfers
        self.health_path = health_path  # where its public health check is (None: nowhere)
        self.unknown_operator = unknown_operator  # 200: an operator never saved is opened with default settings
        self.assistant, self.tickets = assistant, tickets
        self.answer_text = answer_text  # what it answers every visitor text, when set
        self.errors_shown = errors_shown  # the errors it catches are sent to the visitor as they are
        self.file_answer = file_answer  # what it answers a visitor's file
        self.menu = menu  # quick replies offered to a first message; the last one transfers...
        self.menu_transfers = menu_transfers  # ...unless False: then no quick reply leads to a human
        self.greeted: set[str] = set()  # conversations the menu was offered in
        self.rotating = rotating  # its answers change by themselves: every second time it is asked the same
        self.asked: dict[str, int] = {}  # text -> times asked
        self.unknown = unknown  # what it answers any other text: its fallback, or "menu" (its menu again)
        self.hostile = hostile  # markup and javascript: links in every field it answers ("shaped": valid shapes)
        self.hostile_replies = HOSTILE_SHAPED if hostile == "shaped" else HOSTILE
        self.sessions: dict[str, list[str]] = {}  # the assistant service's sessions: the words said in each
        self.opened_last = ""  # the conversation opened last
        self.echo_after_escalation = echo_after_escalation
        self.message_delay, self.greeting_delay = message_delay, greeting_delay
        self.rule = rule  # the distribution rule it transfers to when it was never told the operator's
        self.fixed_rule = fixed_rule  # the rule it always transfers to, hard-coded in its configuration
        self.api_url, self.api = api_url, api
        self.token: str | None = None
        self.operators: dict[str, dict] = {}
        self.escalated: set[str] = set()
        self.answers: dict[str, list] = {}  # idMessage -> replies: a retry gets the same answer
        self.calls: list[tuple[str, str]] = []  # (method, path) of every call received
        self.lock = threading.Lock()

    # --- the signature check, done the connector's way -------------------------------------

    def signed(self, method: str, raw_query: bytes, body: bytes, headers) -> bool:
        if not self.secret or self.signature == "none":
            return True
        if self.signature == "case-sensitive":
            given = dict(headers.items()).get("X-iAdvize-Signature")  # exact name: a case-sensitive map
        else:
            given = headers.get("X-iAdvize-Signature")
        expected = (
            "sha256="
            + hmac.new(self.secret.encode(), raw_query if method == "GET" else body, hashlib.sha256).hexdigest()
        )
        if self.signature == "presence":
            return bool(given)
        if self.signature == "split":  # split on "=", decode the hex, compare buffers as Node's timingSafeEqual
            algorithm, digits = given.split("=")  # no header, or no "=": a crash
            theirs, ours = bytes.fromhex(digits), bytes.fromhex(expected.split("=")[1])  # not hex: a crash
            if len(theirs) != len(ours):
                raise ValueError("Input buffers must have the same byte length")
            return algorithm == "sha256" and hmac.compare_digest(theirs, ours)
        if self.signature == "length":
            return len(given or "") == len(expected)
        return given is not None and hmac.compare_digest(given, expected)

    # --- the endpoints ----------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        parts = path.strip("/").split("/")
        if path == self.health_path:
            return 200, {"status": "UP"}
        if not self.configuration and (path == "/external-bots" or (parts[0] == "bots" and len(parts) == 2)):
            return 404, EXPRESS_404.format(method=method, path=path)
        if method == "GET" and path == "/external-bots":
            return 200, [{"idBot": "shop", "name": "Shop", "editorUrl": "https://editor.example.net/shop"}]
        if parts[0] == "bots" and len(parts) == 2 and method == "PUT":
            self.operators[parts[1]] = {
                "idBot": body["external"]["idBot"],
                "rules": [r["id"] for r in body.get("distributionRules") or []],
            }
            return 200, self.operator_view(parts[1])
        if parts[0] == "bots" and len(parts) == 2 and method == "GET":
            if parts[1] in self.operators:
                return 200, self.operator_view(parts[1])
            if self.unknown_operator == 200:  # the defaults a new operator would get
                self.operators[parts[1]] = {"idBot": "shop", "rules": []}
                return 200, self.operator_view(parts[1])
            return 404, {"error": "unknown"}
        if method == "GET" and path == "/availability-strategies":
            rules = self.operators.get(query.get("idOperator", [""])[0], {}).get("rules")
            if rules:
                return 200, [{"strategy": "atLeastOne", "distributionRulesToCheck": rules}]
            return 200, [{"strategy": "customAvailability", "availability": True}]
        if method == "GET" and len(parts) == 3 and parts[2] == "conversation-first-messages":
            time.sleep(self.greeting_delay)
            return 200, {"replies": self.hostile_replies if self.hostile else [say("Hello! Ask me about your order.")]}
        if method == "POST" and path == "/webhooks":
            if body.get("eventType") == "v2.conversation.closed" and self.api == "nudges-after-close":
                self.post(body["conversationId"], f"ha-{body['operatorIds'][0]}", "Are you still there?")
            return 200, {"ok": True}
        if method == "POST" and path == "/conversations":
            self.opened_last = body["idConversation"]
            if self.api_url and self.api == "before-visitor":
                self.post(body["idConversation"], body["idOperator"], "Welcome! Ask me anything.")
            return 200, envelope(body["idConversation"], body["idOperator"], [])
        if method == "POST" and len(parts) == 3 and parts[2] == "messages":
            if self.hostile:
                visitor = body["message"]["author"]["role"] == "visitor"
                answer = envelope(parts[1], body["idOperator"], self.hostile_replies if visitor else [])
                return 200, {**answer, "variables": [{"key": "name", "value": ATTACK}]}
            return 200, envelope(parts[1], body["idOperator"], self.reply(parts[1], body))
        return 404, EXPRESS_404.format(method=method, path=path)

    def operator_view(self, id_operator: str) -> dict:
        now = stamp()
        return {
            "idOperator": id_operator,
            "external": {"idBot": self.operators[id_operator]["idBot"], "editorUrl": "https://editor.example.net/shop"},
            "createdAt": now,
            "updatedAt": now,
        }

    def reply(self, id_conversation: str, body: dict) -> list:
        message = body["message"]
        if message["author"]["role"] == "operator":
            human = id_conversation in self.escalated and not message["payload"].get("value", "").startswith(
                ("I am transferring", "One moment", "Here is")
            )
            if self.api_url and self.api == "with-human" and human:
                self.post(id_conversation, body["idOperator"], "Are you still there?")
            if self.echo_after_escalation and id_conversation in self.escalated:
                return [say("A colleague will be with you in a moment.")]
            return []
        with self.lock:
            if message["idMessage"] in self.answers:
                return self.answers[message["idMessage"]]
        time.sleep(self.message_delay)
        payload = message["payload"]
        if payload.get("contentType") != "text":
            replies = [say(CAUGHT if self.errors_shown else self.file_answer)]
        elif self.menu and self.menu_transfers and payload["value"] == self.menu[-1]:  # to a human, its words
            replies = self.transfer_to(id_conversation, body)
        elif self.menu and payload["value"] in self.menu:
            replies = [say(f"About {payload['value']!r}: it is on its way."), {"type": "close"}]
        elif self.menu and id_conversation not in self.greeted:
            self.greeted.add(id_conversation)
            replies = [self.offered()]
        elif any(word in payload["value"].lower() for word in self.escalation_words):
            replies = self.transfer_to(id_conversation, body)
        elif self.unknown is not None:
            replies = [self.offered() if self.unknown == "menu" else say(self.unknown)]
        elif self.answer_text is not None:
            replies = [say(self.answer_text)]
        elif self.rotating:
            with self.lock:
                n = self.asked[payload["value"]] = self.asked.get(payload["value"], -1) + 1
            replies = [say(ROTATING[n // 2 % len(ROTATING)].format(payload["value"][:60]))]
        elif self.assistant:
            replies = [say(self.ask_assistant(id_conversation, payload["value"]))]
        elif self.api_url and id_conversation in self.escalated:  # a human has it: the bot steps aside
            replies = []
        elif self.api_url:  # the answer goes through iAdvize's API, after a holding message
            if self.api != "holding-only":
                self.post(id_conversation, body["idOperator"], f"Here is what I found about {payload['value'][:80]!r}.")
            replies = [say("One moment please, let me check.")]
        else:
            replies = [
                {"type": "await", "duration": {"unit": "seconds", "value": 1}},
                say(f"You said: {payload['value'][:100]}"),
            ]
        with self.lock:
            return self.answers.setdefault(message["idMessage"], replies)

    def offered(self) -> dict:
        """Its menu: "How can we help?" with a quick reply per choice."""
        choices = [{"contentType": "text/quick-reply", "value": v, "idQuickReply": v} for v in self.menu]
        return {**say("How can we help?"), "quickReplies": choices}

    def transfer_to(self, id_conversation: str, body: dict) -> list:
        """The replies of a transfer to a human: to the operator's first rule, then the fallback and a close."""
        self.escalated.add(id_conversation)
        if self.errors_shown:  # its call to its routing service failed, and it says so as caught
            return [say(TRANSFER_FAILED)]
        if not self.transfers:  # its routing rules read from a field iAdvize does not send: nothing to send
            return [say(self.announcement)]
        known = self.operators.get(body["idOperator"], {}).get("rules") or []
        rule = self.fixed_rule or (known[0] if known else self.rule or str(uuid.uuid4()))
        return [
            say(self.announcement),
            {
                "type": "transfer",
                "distributionRule": rule,
                "transferOptions": {"timeout": {"unit": "seconds", "value": self.transfer_timeout}},
            },
            say("Sorry, nobody is free right now."),
            {"type": "close"},
        ]

    def ask_assistant(self, id_conversation: str, text: str) -> str:
        """An assistant service with a session per conversation: its answer depends on what was said before."""
        with self.lock:
            key = self.opened_last if self.assistant == "last-opened" else id_conversation
            session = self.sessions.setdefault(key, [])
            before = session[-1] if session else None
            session.append(text)
        answer = f"You asked {text[:60]!r}" + (f", after {before[:60]!r}." if before else ".")
        if self.tickets:  # a new ticket number each time: the answers vary by themselves
            answer += f" Ticket {uuid.uuid4().hex[:6]}."
        return answer

    # --- iAdvize's API, called the connector's way ------------------------------------------

    def post(self, id_conversation: str, id_operator: str, text: str) -> None:
        if self.token is None or self.api == "login-every-message":
            answer = requests.post(
                f"{self.api_url}/oauth2/token",
                data={"username": "shop-bot", "password": "s3cret", "grant_type": "password"},
                timeout=10,
            )
            self.token = answer.json().get("access_token")
        chatbot = id_operator.rsplit("-", 1)[-1]
        if self.api == "invalid-mutation":  # a field the schema does not have, as from an outdated example
            query = (
                f'mutation {{ chatbotMessageSend(input: {{conversationId: "{id_conversation}", '
                f"text: {json.dumps(text)}}}) {{ ok }} }}"
            )
        else:
            query = (
                "mutation { chatbotMessageSend(input: {"
                f'conversationId: "{id_conversation}", chatbotId: {chatbot}, '
                f"actionOrMessage: {{chatbotMessage: {{chatbotSimpleTextMessage: {json.dumps(text)}}}}}"
                "}) { userErrors { __typename } } }"
            )
        requests.post(
            f"{self.api_url}/graphql",
            json={"query": query},
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.iadvize.automation-chatbot-conversation-preview+json",
            },
            timeout=10,
        )


def say(text: str) -> dict:
    return {"type": "message", "payload": {"contentType": "text", "value": text}}


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def envelope(id_conversation: str, id_operator: str, replies: list) -> dict:
    now = stamp()
    return {
        "idConversation": id_conversation,
        "idOperator": id_operator,
        "replies": replies,
        "createdAt": now,
        "updatedAt": now,
    }


def _handler(connector: Connector):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall per call

        def log_message(self, *args):
            pass

        def handle_one(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = urlsplit(self.path)
            connector.calls.append((self.command, target.path))
            try:
                signed = target.path == connector.health_path or connector.signed(
                    self.command, target.query.encode(), raw, self.headers
                )
            except (AttributeError, ValueError) as crash:  # Express's default error page, stack trace included
                signed, status, answer = None, 500, EXPRESS_500.format(error=f"{type(crash).__name__}: {crash}")
            if signed is None:
                pass
            elif not signed:
                status, answer = 401, {"error": "invalid signature"}
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status, answer = connector.answer(self.command, target.path, parse_qs(target.query), body)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "text/html; charset=utf-8" if isinstance(answer, str) else "application/json; charset=utf-8",
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting: its budget ran out
                pass

        do_GET = do_PUT = do_POST = handle_one

    return Handler


class serve:  # lower case: used as a context manager, like open()
    """``with serve(secret=..., signature="length") as bot:`` -> ``bot.url``, ``bot.connector``."""

    def __init__(self, **options):
        self.connector = Connector(**options)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.connector))
        self.server.daemon_threads = True  # a connector sleeping in a handler must not hold the test up
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> serve:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

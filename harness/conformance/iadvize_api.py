"""The iAdvize side a bot calls, served on loopback: OAuth tokens, the token check and GraphQL.

It plays what the iAdvize documentation says of the API a bot may call (spec, "The bot calling iAdvize"
and "Corrections and additions"):

- ``POST /oauth2/token``: the password grant (form-encoded ``username``, ``password``,
  ``grant_type=password``) answers ``access_token``, ``token_type``, ``expires_in``, ``refresh_token``;
  past 10 logins a minute for one user, or 100 from one address, it answers 429;
- ``GET /_authenticated``: ``{"authenticated": true}`` for a valid token, else 401 ``invalid_token``;
- ``POST /graphql`` with a valid token: the mutation ``chatbotMessageSend`` (a text, a quick-reply menu,
  a close action or a transfer action: one message or action per call), and the reads
  ``routingRule(id) { availability { chat { isAvailable } } }`` and
  ``visitorConversationCustomData(conversationId)``.

A message is accepted only for a conversation the simulated platform opened, after its visitor's first
message, while no human has it and before it closed, from the operator's own ``chatbotId``, by iAdvize's
conversation id (not the connector's own), with the preview ``Accept`` header. Refusals are answered
the documented way: HTTP 401 for a bad or expired token, ``userErrors`` otherwise. Their ``__typename``
values are ours (the live schema's are not published); each carries a ``message`` saying what to fix.

Everything a bot asks is kept as an :class:`ApiCall`, refused or not, for the rules to judge; accepted
messages and actions wait in their conversation's inbox for the platform to play.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import graphql

PREVIEW_ACCEPT = "application/vnd.iadvize.automation-chatbot-conversation-preview+json"
TOKEN_SECONDS = 24 * 3600  # tokens live 24 h
LOGINS_PER_USER = 10  # a minute
LOGINS_PER_ADDRESS = 100  # a minute
MAX_BODY_BYTES = 1024 * 1024
# Wall seconds between two posts of one slow answer (one message per call) for them to count as one
# burst. An outbox sends them back to back: the reference bot's came 48 ms apart (median), 180 ms at worst,
# with four notebook replays at once and a busy core on 2 cores. Each holding message waits it once after the last post
# (none after a close: nothing can follow one). A post that comes later plays at the next visitor step.
BURST_SECONDS = 0.3
BOT_USER, BOT_PASSWORD = "bot@harness.invalid", "harness-api-password"  # the embedded bot's API user
_CONVERSATION_ID = re.compile(r'conversationId\\?"?\s*:\s*\\?"([0-9a-fA-F-]{36})')  # inline or a variable
INVALID_TOKEN = {"error": "invalid_token", "error_description": "access token not valid"}

SCHEMA = graphql.build_schema(
    """
    scalar UUID

    type Query {
      routingRule(id: UUID!): RoutingRule
      visitorConversationCustomData(conversationId: UUID!): VisitorConversationCustomData
    }

    type RoutingRule { id: UUID!, availability: RoutingRuleAvailability! }
    type RoutingRuleAvailability {
      chat: ChannelAvailability!, call: ChannelAvailability!, video: ChannelAvailability!,
      thirdParties: ChannelAvailability!
    }
    type ChannelAvailability { isAvailable: Boolean! }

    type VisitorConversationCustomData { customData: [VisitorConversationCustomDataEntry!]! }
    interface VisitorConversationCustomDataEntry { key: String!, label: String }
    type VisitorConversationCustomDataEntryString implements VisitorConversationCustomDataEntry {
      key: String!, label: String, stringValue: String
    }

    type Mutation { chatbotMessageSend(input: ChatbotMessageSendInput!): ChatbotMessageSendPayload! }

    input ChatbotMessageSendInput {
      conversationId: UUID!, chatbotId: Int!, actionOrMessage: ChatbotActionOrMessageInput!
    }
    input ChatbotActionOrMessageInput { chatbotMessage: ChatbotMessageInput, chatbotAction: ChatbotActionInput }
    input ChatbotMessageInput {
      chatbotSimpleTextMessage: String, chatbotMessageAttachmentInput: ChatbotMessageAttachmentInput
    }
    input ChatbotMessageAttachmentInput { quickReplyMenu: QuickReplyMenuInput }
    input QuickReplyMenuInput { message: String!, choices: [String!]! }
    input ChatbotActionInput { closeMessage: CloseMessageInput, transferMessage: TransferMessageInput }
    input CloseMessageInput { message: String }
    input TransferMessageInput { routingRuleId: UUID!, transferOptions: TransferOptionsInput }
    input TransferOptionsInput { timeout: DurationInput }
    input DurationInput { value: Int!, unit: DurationUnit! }
    enum DurationUnit { SECONDS, MINUTES }

    type ChatbotMessageSendPayload { userErrors: [UserError!]! }
    interface UserError { message: String! }
    type ConversationNotFound implements UserError { message: String! }
    type ConnectorConversationId implements UserError { message: String! }
    type VisitorHasNotWritten implements UserError { message: String! }
    type ConversationWithHuman implements UserError { message: String! }
    type ConversationClosed implements UserError { message: String! }
    type ChatbotNotOfOperator implements UserError { message: String! }
    type OneMessageOrAction implements UserError { message: String! }
    type PreviewHeaderMissing implements UserError { message: String! }
    """
)

# userError type -> the rule that judges it (any other refusal: proactive-refused)
REFUSAL_RULES = {
    "VisitorHasNotWritten": "proactive-before-visitor",
    "ConversationWithHuman": "proactive-with-human",
    "ConversationClosed": "proactive-after-close",
}


@dataclass
class ApiConversation:
    """What the API knows of one conversation of the simulated platform."""

    id: str  # iAdvize's
    id_operator: str
    connector_id: str = ""  # the id the connector answered POST /conversations with, when its own
    visitor_wrote: bool = False
    with_human: bool = False
    closed: bool = False
    custom_data: dict[str, str] = field(default_factory=dict)
    inbox: list[dict] = field(default_factory=list)  # accepted messages and actions, oldest first


@dataclass
class ApiCall:
    """One call a bot made to the API: what, for whom, and the refusal if it was refused."""

    kind: str  # login | authenticated | graphql
    at: float  # monotonic seconds
    status: int
    user: str = ""
    address: str = ""
    conversation: str = ""  # iAdvize's id, for a message or action
    action: dict | None = None  # the accepted (or refused) message or action, as a wire reply
    refusal: str = ""  # a userError type, "http" for an HTTP refusal, "" when accepted
    why: str = ""  # the refusal, in words


def chatbot_id_of(id_operator: str) -> int | None:
    """The integer part of an operator id (``ha-456678`` -> 456678), as ``chatbotId`` carries it."""
    digits = id_operator.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else None


class IAdvizeAPI:
    """The API on a loopback port: ``url`` once started; the conversations and calls it saw."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_seconds: float = TOKEN_SECONDS,
        rule_available=lambda rule: False,
        burst_seconds: float = BURST_SECONDS,
        logins_per_user: int = LOGINS_PER_USER,
    ):
        self.users = dict(users or {})  # username -> password
        self.any_user = users is None  # then any user may log in, the first password it gives kept
        self.token_seconds = token_seconds
        self.rule_available = rule_available  # a routing rule's live availability, as the platform simulates it
        self.burst_seconds = burst_seconds
        self.logins_per_user = logins_per_user  # a minute, before a 429
        self.conversations: dict[str, ApiConversation] = {}
        self.calls: list[ApiCall] = []
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (user, expiry)
        self._logins: dict[str, deque] = defaultdict(deque)  # "user:NAME" / "address:IP" -> login times
        self._changed = threading.Condition()
        self.server = _Server((host, port), _handler(self))
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def reference_bot_settings(self) -> dict:
        """The environment that points the embedded reference bot at this API, with a user to log in as."""
        return {"IADVIZE_API_URL": self.url, "IADVIZE_USERNAME": BOT_USER, "IADVIZE_PASSWORD": BOT_PASSWORD}

    # --- the platform's side ------------------------------------------------------------------

    def open(self, id_conversation: str, id_operator: str) -> ApiConversation:
        """A conversation the platform opened: messages may be posted to it once its visitor writes."""
        with self._changed:
            return self.conversations.setdefault(id_conversation, ApiConversation(id_conversation, id_operator))

    def take(self, id_conversation: str, wait: float = 0.0) -> list[dict]:
        """The messages and actions posted to the conversation since last taken.

        With ``wait``, waits up to that many seconds for one, then for the rest of the burst: a bot
        posts a slow answer of several messages one call each, and they belong together. The burst
        goes on while posts come less than ``burst_seconds`` apart, and ends at a close.
        """
        deadline = time.monotonic() + wait
        with self._changed:
            conversation = self.conversations[id_conversation]
            while not conversation.inbox and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            while wait and conversation.inbox and conversation.inbox[-1].get("type") != "close":
                seen = len(conversation.inbox)
                self._changed.wait_for(lambda seen=seen: len(conversation.inbox) > seen, self.burst_seconds)
                if len(conversation.inbox) == seen:
                    break
            taken, conversation.inbox = conversation.inbox, []
            return taken

    def _record(self, call: ApiCall) -> None:
        # under self._changed: whoever waits on the calls (wait_until) looks again
        self.calls.append(call)
        self._changed.notify_all()

    def wait_until(self, done, timeout: float) -> bool:
        """Wait until ``done(calls)`` holds (checked at each new call), at most ``timeout`` s; whether it does."""
        with self._changed:
            return self._changed.wait_for(lambda: done(self.calls), timeout)

    def expire_tokens(self) -> None:
        """Every token given so far expires now: the next call with one is refused 401, as after 24 h."""
        with self._changed:
            self._tokens = {token: (user, 0.0) for token, (user, _) in self._tokens.items()}

    def forget_logins(self) -> None:
        """The minute of every login so far has passed: the rate limits count afresh."""
        with self._changed:
            self._logins.clear()

    def refused_logins(self, since: int) -> tuple[list[ApiCall], int]:
        """The logins refused among the calls from index ``since`` on, and the index to ask from next time."""
        with self._changed:
            return [c for c in self.calls[since:] if c.kind == "login" and c.refusal], len(self.calls)

    def calls_for(self, id_conversation: str) -> list[ApiCall]:
        """The message and action calls made for one conversation, in order."""
        with self._changed:
            return [c for c in self.calls if c.conversation == id_conversation]

    # --- the bot's side ------------------------------------------------------------------------

    def login(self, form: dict[str, str], address: str) -> tuple[int, dict]:
        """The password grant: a token, or why not (400 bad request, 401 bad credentials, 429 too many)."""
        user = form.get("username", "")
        now = time.monotonic()
        with self._changed:
            call = ApiCall("login", now, 200, user=user, address=address)
            self._record(call)
            over = self._over_limit(f"user:{user}", self.logins_per_user, now) or self._over_limit(
                f"address:{address}", LOGINS_PER_ADDRESS, now
            )
            if over:
                call.status, call.refusal, call.why = 429, "http", over
                return 429, {"error": "too_many_requests", "error_description": over}
            if form.get("grant_type") != "password":
                call.status, call.refusal, call.why = 400, "http", "grant_type must be password"
                return 400, {"error": "unsupported_grant_type", "error_description": call.why}
            if self.any_user and user and user not in self.users:
                self.users[user] = form.get("password", "")
            if not user or self.users.get(user) != form.get("password"):
                call.status, call.refusal, call.why = 401, "http", "unknown user or wrong password"
                return 401, {"error": "invalid_grant", "error_description": call.why}
            token = secrets.token_urlsafe(24)
            self._tokens[token] = (user, now + self.token_seconds)
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.token_seconds),
            "refresh_token": secrets.token_urlsafe(24),
        }

    def _over_limit(self, key: str, limit: int, now: float) -> str:
        logins = self._logins[key]
        while logins and logins[0] <= now - 60:
            logins.popleft()
        logins.append(now)
        if len(logins) > limit:
            who = key.split(":", 1)
            return f"more than {limit} logins in a minute for {who[0]} {who[1]}: reuse the token (it lives 24 h)"
        return ""

    def user_of(self, authorization: str) -> str | None:
        """The user a ``Bearer`` token was given to, None when it is missing, unknown or expired."""
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        with self._changed:
            user, expiry = self._tokens.get(token, ("", 0.0))
        return user if expiry > time.monotonic() else None

    def authenticated(self, authorization: str) -> tuple[int, dict]:
        """``GET /_authenticated``: whether the token is valid."""
        user = self.user_of(authorization)
        with self._changed:
            self._record(ApiCall("authenticated", time.monotonic(), 200 if user else 401, user=user or ""))
        return (200, {"authenticated": True}) if user else (401, INVALID_TOKEN)

    def post_graphql(self, headers, body: bytes) -> tuple[int, dict]:
        """``POST /graphql``: 401 without a valid token, 400 for a body that is no request, else the result."""
        if self.user_of(headers.get("Authorization", "")) is None:
            named = _CONVERSATION_ID.search(body.decode("utf-8", "replace"))  # for the transcript of the refusal
            with self._changed:
                self._record(
                    ApiCall(
                        "graphql", time.monotonic(), 401, conversation=named.group(1) if named else "",
                        refusal="http", why="bad or expired token",
                    )
                )  # fmt: skip
            return 401, INVALID_TOKEN
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return 400, {"errors": [{"message": "the body must be a JSON object with a query"}]}
        return 200, self.graphql(request, PREVIEW_ACCEPT in headers.get("Accept", ""))

    def graphql(self, body: dict, preview: bool) -> dict:
        """Execute one GraphQL request (the caller has checked the token)."""
        context = {"preview": preview, "calls": []}
        result = graphql.graphql_sync(
            SCHEMA,
            body.get("query") or "",
            root_value=_Root(self),
            context_value=context,
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        answer: dict = {"data": result.data}
        if result.errors:  # an invalid document: the GraphQL errors are the refusal
            answer["errors"] = [error.formatted for error in result.errors]
            if not context["calls"]:
                with self._changed:
                    self._record(
                        ApiCall(
                            "graphql", time.monotonic(), 200, refusal="InvalidRequest", why=result.errors[0].message
                        )
                    )
        return answer

    def send(self, data: dict, preview: bool) -> dict:
        """``chatbotMessageSend``: the message or action queued for the platform, or the userErrors."""
        wanted = str(data.get("conversationId", ""))
        action, problem = _action(data.get("actionOrMessage") or {})
        with self._changed:
            conversation = self.conversations.get(wanted)
            call = ApiCall("graphql", time.monotonic(), 200, conversation=wanted, action=action)
            self._record(call)
            refusal = problem or self._refusal(conversation, wanted, data.get("chatbotId"), preview)
            if refusal:
                call.refusal, call.why = refusal
                return {"userErrors": [{"__typename": call.refusal, "message": call.why}]}
            conversation.inbox.append(action)
            self._changed.notify_all()
        return {"userErrors": []}

    def _refusal(self, conversation: ApiConversation | None, wanted: str, chatbot, preview: bool):
        if conversation is None:
            own = next((c for c in self.conversations.values() if c.connector_id == wanted), None)
            if own is not None:
                return "ConnectorConversationId", (
                    f"{wanted} is the connector's own conversation id: use iAdvize's idConversation, {own.id}"
                )
            return "ConversationNotFound", f"no conversation {wanted} on this platform"
        if chatbot != chatbot_id_of(conversation.id_operator):
            return "ChatbotNotOfOperator", (
                f"chatbotId {chatbot} is not the conversation's operator {conversation.id_operator}: "
                f"send {chatbot_id_of(conversation.id_operator)}"
            )
        if not preview:
            return "PreviewHeaderMissing", f"chatbotMessageSend needs the header Accept: {PREVIEW_ACCEPT}"
        if conversation.closed:
            return "ConversationClosed", "the conversation is closed: a bot cannot post to it any more"
        if conversation.with_human:
            return "ConversationWithHuman", "a human has the conversation: the bot may not post while they do"
        if not conversation.visitor_wrote:
            return "VisitorHasNotWritten", "the visitor has not written yet: a bot cannot start a conversation"
        return None

    # --- the server ---------------------------------------------------------------------------

    def start(self) -> IAdvizeAPI:
        """Serve in a daemon thread; returns itself."""
        threading.Thread(target=self.server.serve_forever, args=(0.05,), name="iadvize-api", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> IAdvizeAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _action(given: dict) -> tuple[dict | None, tuple[str, str] | None]:
    """The one message or action of ``actionOrMessage``, as a wire reply; or why it is not one."""
    message, action = given.get("chatbotMessage") or {}, given.get("chatbotAction") or {}
    chosen = [(k, v) for k, v in {**message, **action}.items() if v is not None]
    if len(chosen) != 1:
        return None, ("OneMessageOrAction", f"one message or action per call, got {len(chosen)}: send them one by one")
    kind, value = chosen[0]
    if kind == "chatbotSimpleTextMessage":
        return {"type": "message", "payload": {"contentType": "text", "value": value}}, None
    if kind == "chatbotMessageAttachmentInput":
        menu = value.get("quickReplyMenu") or {"message": "", "choices": []}
        choices = [{"contentType": "text/quick-reply", "value": c} for c in menu["choices"]]
        return {
            "type": "message",
            "payload": {"contentType": "text", "value": menu["message"]},
            "quickReplies": choices,
        }, None
    if kind == "closeMessage":
        return {"type": "close"}, None
    timeout = (value.get("transferOptions") or {}).get("timeout")
    reply = {"type": "transfer", "distributionRule": str(value["routingRuleId"])}
    if timeout:
        unit = {"SECONDS": "seconds", "MINUTES": "minutes"}[timeout["unit"]]
        reply["transferOptions"] = {"timeout": {"value": timeout["value"], "unit": unit}}
    return reply, None


class _Root:
    """The GraphQL root: each field a method (graphql-core calls it with ``info`` and the arguments)."""

    def __init__(self, api: IAdvizeAPI):
        self.api = api

    def chatbotMessageSend(self, info, input):
        info.context["calls"].append(input)
        return self.api.send(input, info.context["preview"])

    def routingRule(self, info, id):
        available = {"isAvailable": bool(self.api.rule_available(str(id)))}
        return {"id": id, "availability": {"chat": available, "call": available, "video": available,
                                           "thirdParties": available}}  # fmt: skip

    def visitorConversationCustomData(self, info, conversationId):
        conversation = self.api.conversations.get(str(conversationId))
        data = conversation.custom_data if conversation else {}
        entries = [{"key": k, "label": k, "stringValue": v, "__typename": "VisitorConversationCustomDataEntryString"}
                   for k, v in data.items()]  # fmt: skip
        return {"customData": entries}


def _resolve_type(value, info, abstract):
    return value.get("__typename")


for _name in ("UserError", "VisitorConversationCustomDataEntry"):
    SCHEMA.type_map[_name].resolve_type = _resolve_type


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a bot closing a kept-alive connection (it stopped, or timed out) is not an error of ours
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(api: IAdvizeAPI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall per call

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = self.headers.get("Content-Length") or "0"
            return self.rfile.read(min(int(length), MAX_BODY_BYTES)) if length.isdigit() else b""

        def do_GET(self):
            if urlsplit(self.path).path != "/_authenticated":
                return self._answer(404, {"error": "not_found", "error_description": f"no {self.path} here"})
            return self._answer(*api.authenticated(self.headers.get("Authorization", "")))

        def do_POST(self):
            path, body = urlsplit(self.path).path, self._body()
            if path == "/oauth2/token":
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
                return self._answer(*api.login(form, self.client_address[0]))
            if path == "/graphql":
                return self._answer(*api.post_graphql(self.headers, body))
            return self._answer(404, {"error": "not_found", "error_description": f"no {path} here"})

    return Handler

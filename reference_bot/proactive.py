"""Proactive messages: the bot posting on its own through iAdvize's GraphQL API.

Used when an answer does not fit the 10 s budget of ``POST …/messages``: the HTTP call is
answered at once with a holding message, the real answer is queued in the store's outbox
(in the same transaction that advanced the conversation) and an ``OutboxWorker`` thread
sends it with ``chatbotMessageSend``, retrying with backoff while iAdvize is unreachable.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import requests

from harness import wire
from harness.wire.limits import DEFAULT_TRANSFER_TIMEOUT_SECONDS

from .store import Store

log = logging.getLogger(__name__)

PREVIEW_ACCEPT = "application/vnd.iadvize.automation-chatbot-conversation-preview+json"
TOKEN_LIFETIME = 24 * 3600  # what iAdvize grants when the token response does not say


class ProactiveError(RuntimeError):
    """iAdvize did not take the message; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def chatbot_id(id_operator: str) -> int:
    """``ha-456678`` → 456678: the integer part of the operator id is the GraphQL ``chatbotId``.

    A bare number (``456678``) is one already: the documentation writes operator ids both ways.
    """
    number = id_operator.rsplit("-", 1)[-1]
    if not number.isdigit():
        raise ProactiveError(f"operator id {id_operator!r} has no numeric chatbot id", retryable=False)
    return int(number)


def _string(value: str) -> str:
    # JSON string literals are valid GraphQL string literals, so json.dumps escapes the text.
    return json.dumps(value, ensure_ascii=False)


def text_message(text: str) -> str:
    """``actionOrMessage`` for a simple text."""
    return f"{{ chatbotMessage: {{ chatbotSimpleTextMessage: {_string(text)} }} }}"


def quick_reply_menu(message: str, choices: list[str]) -> str:
    """``actionOrMessage`` for a message with its quick replies."""
    listed = ", ".join(_string(c) for c in choices)
    return (
        "{ chatbotMessage: { chatbotMessageAttachmentInput: { quickReplyMenu: { "
        f"message: {_string(message)}, choices: [{listed}] }} }} }} }}"
    )


def close_action() -> str:
    """``actionOrMessage`` that closes the conversation."""
    return "{ chatbotAction: { closeMessage: {} } }"


def transfer_action(routing_rule_id: str, timeout_seconds: int) -> str:
    """``actionOrMessage`` that transfers to a routing (distribution) rule, waiting ``timeout_seconds`` for a human."""
    return (
        f"{{ chatbotAction: {{ transferMessage: {{ routingRuleId: {_string(routing_rule_id)}, "
        f"transferOptions: {{ timeout: {{ value: {int(timeout_seconds)}, unit: SECONDS }} }} }} }} }}"
    )


def action_of(reply: dict) -> str:
    """``actionOrMessage`` for a wire reply: a text (a quick-reply menu when it has quick replies), a
    transfer or a close; ValueError for what iAdvize's API cannot post (cards, files, awaits)."""
    kind, payload = reply.get("type"), reply.get("payload") or {}
    if kind == "message" and payload.get("contentType") == "text":
        choices = [q["value"] for q in reply.get("quickReplies") or []]
        return quick_reply_menu(payload["value"], choices) if choices else text_message(payload["value"])
    if kind == "transfer":
        timeout = (reply.get("transferOptions") or {}).get("timeout")
        seconds = wire.seconds(timeout) if timeout else DEFAULT_TRANSFER_TIMEOUT_SECONDS
        return transfer_action(reply["distributionRule"], int(seconds))
    if kind == "close":
        return close_action()
    raise ValueError(f"iAdvize's API cannot post a {payload.get('contentType') or kind}")


def send_mutation(conversation_id: str, chatbot: int, action_or_message: str) -> str:
    """The ``chatbotMessageSend`` mutation posting one message or action as the bot ``chatbot``."""
    return (
        "mutation { chatbotMessageSend(input: { "
        f"conversationId: {_string(conversation_id)}, chatbotId: {chatbot}, actionOrMessage: {action_or_message}"
        " }) { userErrors { __typename } } }"
    )


def send_message_mutation(conversation_id: str, chatbot: int, text: str) -> str:
    """The ``chatbotMessageSend`` mutation that posts ``text`` as the bot ``chatbot`` in the conversation."""
    return send_mutation(conversation_id, chatbot, text_message(text))


class GraphQLClient:
    """A small client for the two calls the bot needs: the OAuth token and ``chatbotMessageSend``."""

    def __init__(
        self,
        api_url: str,
        username: str,
        password: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        clock=time.monotonic,
    ):
        self.api_url = api_url.rstrip("/")
        self.username, self.password = username, password
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        """A bearer token, fetched once and reused until a minute before it expires (logins are rate limited)."""
        with self._lock:
            if self._token and self.clock() < self._expires_at:
                return self._token
            try:
                response = self.session.post(
                    f"{self.api_url}/oauth2/token",
                    data={"username": self.username, "password": self.password, "grant_type": "password"},
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                raise ProactiveError(f"token request failed: {type(error).__name__}") from None
            if response.status_code != 200:
                raise ProactiveError(
                    f"token request answered {response.status_code}",
                    retryable=response.status_code >= 500 or response.status_code == 429,
                )
            try:
                body = response.json()
                token, lifetime = body["access_token"], float(body.get("expires_in", TOKEN_LIFETIME))
            except (ValueError, KeyError, TypeError):
                raise ProactiveError("the token response has no access_token or a bad expires_in") from None
            self._token, self._expires_at = token, self.clock() + lifetime - 60
            return self._token

    def authenticated(self) -> bool:
        """Whether iAdvize still takes the token (``GET /_authenticated``); False when it does not."""
        try:
            response = self.session.get(
                f"{self.api_url}/_authenticated", headers={"Authorization": f"Bearer {self.token()}"},
                timeout=self.timeout,
            )  # fmt: skip
        except requests.RequestException as error:
            raise ProactiveError(f"token check failed: {type(error).__name__}") from None
        return response.status_code == 200 and (response.json() or {}).get("authenticated") is True

    def send_text(self, id_operator: str, conversation_id: str, text: str) -> None:
        """Post one text message as the bot ``id_operator`` in the iAdvize conversation ``conversation_id``."""
        self.send(id_operator, conversation_id, text_message(text))

    def send(self, id_operator: str, conversation_id: str, action_or_message: str) -> None:
        """Post one message or action (see :func:`text_message`, :func:`quick_reply_menu`, :func:`close_action`,
        :func:`transfer_action`) as the bot ``id_operator``; :class:`ProactiveError` when it is refused."""
        query = send_mutation(conversation_id, chatbot_id(id_operator), action_or_message)
        params = {"platform": "sd"} if id_operator.startswith("sd-") else None
        try:
            response = self.session.post(
                f"{self.api_url}/graphql",
                params=params,
                json={"query": query},
                headers={"Authorization": f"Bearer {self.token()}", "Accept": PREVIEW_ACCEPT},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise ProactiveError(f"GraphQL request failed: {type(error).__name__}") from None
        if response.status_code == 401:
            with self._lock:
                self._token = None  # expired early or revoked: log in again on the next try
            raise ProactiveError("GraphQL answered 401: token refused")
        if response.status_code != 200:
            raise ProactiveError(
                f"GraphQL answered {response.status_code}",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            body = response.json()
        except ValueError:
            raise ProactiveError("GraphQL answered something that is not JSON") from None
        if not isinstance(body, dict):
            raise ProactiveError("GraphQL answered an unexpected body")
        if body.get("errors"):
            raise ProactiveError(f"GraphQL errors: {body['errors']}", retryable=False)
        user_errors = ((body.get("data") or {}).get("chatbotMessageSend") or {}).get("userErrors") or []
        if user_errors:
            names = ", ".join(e.get("__typename", "?") for e in user_errors)
            raise ProactiveError(f"chatbotMessageSend refused the message: {names}", retryable=False)


class OutboxWorker:
    """Sends queued proactive messages in order per conversation, with exponential backoff."""

    def __init__(
        self,
        store: Store,
        client: GraphQLClient,
        poll: float = 0.5,
        max_backoff: float = 300.0,
        max_attempts: int = 20,
        lease: float = 30.0,
    ):
        self.store, self.client = store, client
        self.poll, self.max_backoff, self.max_attempts = poll, max_backoff, max_attempts
        # How long a claimed message is this worker's alone: longer than a send can take (token and
        # mutation), short enough that a message claimed by a worker killed mid-send is not held for long.
        self.lease = lease
        self._stop = threading.Event()
        self._due = threading.Event()  # set when this process queued a message: no need to wait for the poll
        self._thread: threading.Thread | None = None

    def deliver_due(self) -> int:
        """Send every message due now; returns how many were sent."""
        sent = 0
        while (message := self.store.claim_next(self.lease)) is not None:
            try:
                self.client.send(message.id_operator, message.id_conversation, action_of(message.reply))
            except ProactiveError as error:
                give_up = not error.retryable or message.attempts + 1 >= self.max_attempts
                delay = min(2**message.attempts, self.max_backoff)
                log.warning(
                    "proactive message %s not sent (%s)%s",
                    message.id,
                    error,
                    ": giving up" if give_up else f": retry in {delay:g} s",
                    extra={"idConversation": message.id_conversation},
                )
                if give_up:  # the conversation's later messages may go now
                    self.store.give_up(message.id, str(error))
                    continue
                self.store.retry_later(message.id, delay, str(error))
                break  # iAdvize is unwell: leave the rest for the next round
            self.store.mark_sent(message.id)
            sent += 1
        return sent

    def start(self) -> None:
        """Starts the daemon thread that runs ``deliver_due`` every ``poll`` seconds, unless one is running."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Asks the thread to stop; a round under way finishes first."""
        self._stop.set()
        self._due.set()

    def wake(self) -> None:
        """A message was queued in this process: the thread sends it now rather than at its next poll."""
        self._due.set()

    def _run(self) -> None:
        rounds = 0
        while True:
            # every `poll` seconds (messages queued by other processes, retries coming due), or at once when woken
            self._due.wait(self.poll)
            self._due.clear()
            if self._stop.is_set():
                break
            try:
                self.deliver_due()
            except Exception:  # the worker must outlive any one bad round
                log.exception("outbox round failed")
            rounds += 1
            # Debug level only (REFERENCE_BOT_LOG_LEVEL=DEBUG): a round finished, and in which process,
            # so that a test can wait for rounds that began after something happened rather than sleep
            # (tests/test_faults.py, "none may post again").
            log.debug("outbox round %d done in process %d", rounds, os.getpid())

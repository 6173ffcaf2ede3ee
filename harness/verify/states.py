"""Provider states of the iAdvize pact, set up through the bot's own public API.

A third-party bot has no test hook: the only way to put it in the state an interaction
needs is to do what iAdvize would do first (save the operator, start the conversation).
Each state's name is its template below; the values come from the pact's parameters.
What a set-up finds out (the bot's own scenario id, a quick reply it offered) is returned
and injected into the interaction's request by the verifier.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from harness.client import BotClient, BotError, visitor_text

CONSUMER = "iadvize-platform"  # the pact's consumer: the iAdvize platform...
PROVIDER = "external-bot"  # ...and its provider: any external bot

BOT_OFFERS_A_SCENARIO = "the bot offers at least one scenario"
OPERATOR_CONFIGURED = "operator {idOperator} is configured with distribution rules Customer service and Returns desk"
OPERATOR_WITHOUT_RULES = "operator {idOperator} is configured without distribution rules"
NO_SUCH_OPERATOR = "no operator {idOperator} exists"
CONVERSATION_STARTED = "conversation {idConversation} has started with operator {idOperator}"
QUICK_REPLIES_OFFERED = ("conversation {idConversation} has started with operator {idOperator} "
                         "and the bot has offered quick replies")


class StateError(Exception):
    """A state the bot could not be put in; the message says which call failed and how."""


class ProviderStates:
    def __init__(self, client: BotClient):
        self.client = client
        self._id_bot: str | None = None
        self._handlers: list[tuple[re.Pattern, Callable[[dict], dict]]] = [
            (_template(BOT_OFFERS_A_SCENARIO), self._scenario),
            (_template(OPERATOR_CONFIGURED), self._operator),
            (_template(OPERATOR_WITHOUT_RULES), self._operator),
            (_template(NO_SUCH_OPERATOR), lambda params: {}),  # nothing to do: ids in the pact are unusual
            (_template(QUICK_REPLIES_OFFERED), self._quick_replies),
            (_template(CONVERSATION_STARTED), self._conversation),
        ]

    def set_up(self, state: str, params: dict | None) -> dict:
        """Put the bot in ``state``; returns the values the interaction's request may use."""
        for pattern, handler in self._handlers:
            found = pattern.match(state)
            if found:
                try:
                    return handler({**found.groupdict(), **(params or {})})
                except BotError as error:
                    raise StateError(f"setting up {state!r}: {error}") from None
        raise StateError(f"no set-up is known for the provider state {state!r}")

    def id_bot(self) -> str:
        """The bot's first scenario: the one every operator of the verification is linked to."""
        if self._id_bot is None:
            scenarios = self.client.external_bots()
            if not scenarios:
                raise StateError("GET /external-bots lists no scenario: an operator needs one")
            self._id_bot = scenarios[0]["idBot"]
        return self._id_bot

    def _scenario(self, params: dict) -> dict:
        return {"idBot": self.id_bot()}

    def _operator(self, params: dict) -> dict:
        self.client.save_bot(params["idOperator"], {
            "name": "Pact verification", "pseudo": "Bot", "language": "en",
            "distributionRules": params.get("distributionRules", []), "external": {"idBot": self.id_bot()},
        })
        return {"idBot": self.id_bot()}

    def _conversation(self, params: dict) -> dict:
        values = self._operator(params)
        self.client.start_conversation(params["idOperator"], params["idConversation"])
        return values

    def _quick_replies(self, params: dict) -> dict:
        values = self._conversation(params)
        answer = self.client.send_message(params["idConversation"], params["idOperator"],
                                          visitor_text("Hi", id_message=str(uuid.uuid4())))
        offered = [q["value"] for r in answer["replies"] for q in r.get("quickReplies") or []]
        # A bot that offers none still gets a text message: the interaction then checks it answers it.
        return {**values, "quickReply": offered[0] if offered else "Yes"}


def _template(text: str) -> re.Pattern:
    pattern = re.escape(text)
    for name in re.findall(r"\{(\w+)\}", text):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>\\S+)")
    return re.compile(f"^{pattern}$")

"""Provider states of the iAdvize pact, set up through the bot's own public API.

A third-party bot has no test hook: the only way to put it in the state an interaction
needs is to do what iAdvize would do first (save the operator, start the conversation).
Each state's name is its template below; the values come from the pact's parameters.
What a set-up finds out (the bot's own scenario id, a quick reply it offered) is returned
and injected into the interaction's request by the verifier.

A set-up goes as far as the bot lets it: when a call fails (a connector without
``PUT /bots``, say), the failure is recorded and the rest still runs with stand-in values, so
the interaction itself is still tried and shows what it shows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from urllib.parse import quote

from harness.client import NO_SCENARIO, BotClient, describe_failure, visitor_text

CONSUMER = "iadvize-platform"  # the pact's consumer: the iAdvize platform...
PROVIDER = "external-bot"  # ...and its provider: any external bot

BOT_OFFERS_A_SCENARIO = "the bot offers at least one scenario"
OPERATOR_CONFIGURED = "operator {idOperator} is configured with distribution rules Customer service and Returns desk"
OPERATOR_WITHOUT_RULES = "operator {idOperator} is configured without distribution rules"
NO_SUCH_OPERATOR = "no operator {idOperator} exists"
CONVERSATION_STARTED = "conversation {idConversation} has started with operator {idOperator}"
QUICK_REPLIES_OFFERED = (
    "conversation {idConversation} has started with operator {idOperator} and the bot has offered quick replies"
)


# What the documentation does not ask of a bot, by the provider state of the interaction that expects it: iAdvize's
# pact says what a bot had better answer, and a bot answering otherwise gets a warning with this reason, not a failure.
UNDOCUMENTED = {
    NO_SUCH_OPERATOR: "the documentation does not say what GET /bots/:idOperator answers for an operator the bot "
    "never saved; a 404 lets iAdvize tell an unknown operator from a known one",
}


def undocumented(state: str) -> str:
    """Why the documentation does not require the interaction of provider ``state`` ("" when it does)."""
    return next((why for template, why in UNDOCUMENTED.items() if _template(template).match(state)), "")


class StateError(Exception):
    """A state that has no set-up at all (not one of the pact's)."""


class ProviderStates:
    """Sets the pact's provider states up on a bot, through its public API (see the module).

    The bot's first scenario is looked up once and reused; ``errors`` holds what the set-up in
    progress could not do.
    """

    def __init__(self, client: BotClient):
        self.client = client
        self._id_bot: str | None = None
        self.errors: list[str] = []  # what the set-up in progress could not do
        self.vacuous = ""  # why the interaction's pass would say nothing of the bot (its route is missing)
        self._handlers: list[tuple[re.Pattern, Callable[[dict], dict]]] = [
            (_template(BOT_OFFERS_A_SCENARIO), self._scenario),
            (_template(OPERATOR_CONFIGURED), self._operator),
            (_template(OPERATOR_WITHOUT_RULES), self._operator),
            (_template(NO_SUCH_OPERATOR), self._no_operator),
            (_template(QUICK_REPLIES_OFFERED), self._quick_replies),
            (_template(CONVERSATION_STARTED), self._conversation),
        ]

    def set_up(self, state: str, params: dict | None) -> tuple[dict, list[str], str]:
        """Put the bot in ``state`` as far as it goes: the values the interaction's request may use, what
        could not be done (empty when all went well), and why a pass would say nothing ("" when it would)."""
        if not state:  # an interaction without a state (the health check): nothing to prepare
            return {}, [], ""
        for pattern, handler in self._handlers:
            found = pattern.match(state)
            if found:
                self.errors, self.vacuous = [], ""
                return handler({**found.groupdict(), **(params or {})}), self.errors, self.vacuous
        raise StateError(f"no set-up is known for the provider state {state!r}")

    def _call(self, endpoint: str, method: str, path: str, body: dict | None = None, params=None):
        """One set-up call; its body, or None when it failed (the failure is recorded).

        It only has to succeed: whether its answer conforms is what interactions check.
        """
        exchange = self.client.exchange(endpoint, method, path, None, body=body, params=params)
        if exchange.status is None or not 200 <= exchange.status < 300 or exchange.error:
            self.errors.append(describe_failure(exchange))
            return None
        return exchange.body

    def id_bot(self) -> str:
        """The bot's first scenario: the one every operator of the verification is linked to."""
        if self._id_bot is None:
            scenarios = self._call("external-bots", "GET", "/external-bots")
            first = scenarios[0] if isinstance(scenarios, list) and scenarios else None
            if isinstance(first, dict) and isinstance(first.get("idBot"), str):
                self._id_bot = first["idBot"]
            else:
                if scenarios is not None:
                    self.errors.append("GET /external-bots lists no scenario with an idBot: an operator needs one")
                return NO_SCENARIO  # not remembered: the next set-up asks again
        return self._id_bot

    def _scenario(self, params: dict) -> dict:
        return {"idBot": self.id_bot()}

    def _operator(self, params: dict) -> dict:
        id_operator, id_bot = quote(params["idOperator"], safe=""), self.id_bot()
        self._call(
            "bot.save",
            "PUT",
            f"/bots/{id_operator}",
            {
                "name": "Pact verification",
                "pseudo": "Bot",
                "language": "en",
                "distributionRules": params.get("distributionRules", []),
                "external": {"idBot": id_bot},
            },
        )
        return {"idBot": id_bot}

    def _no_operator(self, params: dict) -> dict:
        """Nothing to set up (no bot has the pact's operator id), but a 404 for an unknown operator says
        something only from a bot that opens the operators it knows: one is saved and read back first."""
        known = f"ha-{uuid.uuid4().hex[:10]}"
        errors = list(self.errors)
        self._operator({"idOperator": known, "distributionRules": []})
        saved = len(self.errors) == len(errors)
        self.errors = errors  # the interaction needs no operator: a save that failed is said below
        read = self.client.exchange("bot.read", "GET", f"/bots/{known}", None)
        if read.status is None or not 200 <= read.status < 300:
            what = "an operator it has just saved" if saved else "an operator (it could not save one either)"
            self.vacuous = (
                f"the bot cannot open {what} ({describe_failure(read)}): its 404 here says nothing; without "
                "GET /bots/:idOperator, an admin cannot open the operator's settings in iAdvize"
            )
        return {}

    def _conversation(self, params: dict) -> dict:
        values = self._operator(params)
        started = (
            self._call(
                "conversations",
                "POST",
                "/conversations",
                {"idOperator": params["idOperator"], "idConversation": params["idConversation"], "history": []},
            )
            or {}
        )
        # A connector may answer with its own conversation id: iAdvize then uses that one in the path.
        ours = started.get("idConversation") if isinstance(started, dict) else None
        return {**values, "idConversation": ours if isinstance(ours, str) and ours else params["idConversation"]}

    def _quick_replies(self, params: dict) -> dict:
        values = self._conversation(params)
        answer = (
            self._call(
                "messages",
                "POST",
                f"/conversations/{quote(values['idConversation'], safe='')}/messages",
                {"idOperator": params["idOperator"], "message": visitor_text("Hi", id_message=str(uuid.uuid4()))},
            )
            or {}
        )
        replies = answer.get("replies") if isinstance(answer, dict) else None
        offered = (
            [
                q.get("value")
                for r in replies
                if isinstance(r, dict)
                for q in r.get("quickReplies") or []
                if isinstance(q, dict) and isinstance(q.get("value"), str)
            ]
            if isinstance(replies, list)
            else []
        )
        # A bot that offers none still gets a text message: the interaction then checks it answers it.
        return {**values, "quickReply": offered[0] if offered else "Yes"}


def _template(text: str) -> re.Pattern:
    pattern = re.escape(text)
    for name in re.findall(r"\{(\w+)\}", text):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>\\S+)")
    return re.compile(f"^{pattern}$")

"""What the iAdvize platform (consumer) needs from any external bot (provider).

Each :class:`Contract` is one interaction of the pact: the provider states it needs, the
request iAdvize sends, the response it needs back (with matchers loose enough for any
conformant bot: any wording, any ids, any ISO 8601 date-time form, extra fields) and the
consumer code that makes the request: ``harness.client``, exercised against Pact's mock
server. Shapes Pact cannot express (a reply's fields depend on its ``type``, a strategy's
on its name) are checked by ``verify`` against the wire model's schemas on every response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pact import generate, match

from harness.client import BotClient, BotError, message

# Provider states, in the iAdvize vocabulary: ``verify`` sets each one up through the bot's
# own public API (PUT the operator, POST the conversation), so any bot can be verified.
from harness.verify.states import (
    BOT_OFFERS_A_SCENARIO,
    CONVERSATION_STARTED,
    NO_SUCH_OPERATOR,
    OPERATOR_CONFIGURED,
    QUICK_REPLIES_OFFERED,
)
from harness.verify.states import OPERATOR_WITHOUT_RULES as OPERATOR_WITHOUT_RULES_STATE
from harness.wire.model import DATE_TIME_PATTERN, STRATEGIES

ID_CONNECTOR_VERSION = "0d9c6d1e-5f36-4a5e-9b3a-1c2d3e4f5a6b"
ID_WEBSITE = "ha-123"
SIGNATURE_PATTERN = r"^sha256=[0-9a-f]{64}$"

OPERATOR = "ha-1001"
OPERATOR_WITHOUT_RULES = "ha-1002"
UNKNOWN_OPERATOR = "ha-404404"
RULES = [
    {"id": "2f6a1c3e-8b7d-4e21-9a54-6c0d1e2f3a01", "label": "Customer service"},
    {"id": "7b3e9d12-4c6a-4f8b-b1d2-8e9f0a1b2c02", "label": "Returns desk"},
]


def date_time(example: str = "2026-11-24T10:00:00.000Z"):
    return match.regex(example, regex=DATE_TIME_PATTERN)


def url(example: str):
    return match.regex(example, regex=r"^https?://\S+$")


ANY_REPLIES = match.type([])  # an array; each reply's shape is checked against the wire model by verify

BOT_RESPONSE = {
    "idOperator": OPERATOR,
    "external": {"idBot": match.str("order-assistant"), "editorUrl": url("https://bots.example.com/order-assistant")},
    "createdAt": date_time(),
    "updatedAt": date_time(),
}


def envelope(id_conversation: str, replies=ANY_REPLIES) -> dict:
    return {
        "idConversation": match.str(id_conversation),  # iAdvize's id, or the connector's own
        "idOperator": OPERATOR,
        "replies": replies,
        "createdAt": date_time(),
        "updatedAt": date_time(),
    }


def operator_settings(name: str, rules: list[dict], id_bot=None) -> dict:
    return {
        "name": name,
        "pseudo": "Ada",
        "language": "en",
        "distributionRules": rules,
        "external": {"idBot": id_bot if id_bot is not None else "order-assistant"},
    }


# The scenario id is the provider's own: the request carries the one its state set-up found.
INJECTED_ID_BOT = match.type("order-assistant", generator=generate.provider_state("${idBot}"))


@dataclass(frozen=True)
class Contract:
    description: str
    method: str
    path: str
    status: int
    exercise: Callable[[BotClient], None]  # the consumer code making this request, with its checks
    states: tuple[tuple[str, dict], ...] = ()
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: dict | str | None = None  # the request body, possibly with matchers and generators
    content_type: str = "application/json"
    path_from_state: str | None = None  # a provider-state expression giving the path (the connector's own ids)
    response: object = None  # the response body iAdvize needs, with matchers; None: any
    public: bool = False  # called as the developer platform calls it: no signature, no query parameters


def conversation_id(n: int) -> str:
    return f"5c2b7a90-1d3e-4f6a-8b9c-0d1e2f3a4b{n:02d}"


def visitor(payload: dict, n: int, created_at="2026-11-24T10:00:00.000Z") -> dict:
    return message("visitor", payload, id_message=f"a1b2c3d4-0000-4000-8000-0000000000{n:02d}", created_at=created_at)


def text(value: str) -> dict:
    return {"contentType": "text", "value": value}


def _configured(id_operator=OPERATOR) -> tuple[str, dict]:
    return OPERATOR_CONFIGURED.format(idOperator=id_operator), {"idOperator": id_operator, "distributionRules": RULES}


MESSAGES_OF_STATE = "/conversations/${idConversation}/messages"  # the id the connector answered at start


def _started(id_conversation: str, state=CONVERSATION_STARTED) -> tuple[str, dict]:
    return (
        state.format(idConversation=id_conversation, idOperator=OPERATOR),
        {"idOperator": OPERATOR, "idConversation": id_conversation, "distributionRules": RULES},
    )


# --- the consumer code of each interaction ------------------------------------------------------


def _health(client: BotClient) -> None:
    assert client.health().body == {"status": "UP"}


def _list_scenarios(client: BotClient) -> None:
    assert client.external_bots()[0]["idBot"] == "order-assistant"


def _create_operator(client: BotClient) -> None:
    saved = client.save_bot(OPERATOR, operator_settings("Shop assistant", RULES))
    assert saved["idOperator"] == OPERATOR and saved["external"]["editorUrl"].startswith("https://")


def _update_operator(client: BotClient) -> None:
    assert client.save_bot(OPERATOR, operator_settings("Shop assistant (night)", RULES[:1]))["idOperator"] == OPERATOR


def _read_operator(client: BotClient) -> None:
    assert client.bot(OPERATOR)["external"]["idBot"] == "order-assistant"


def _read_unknown_operator(client: BotClient) -> None:
    try:
        client.bot(UNKNOWN_OPERATOR)
    except BotError as error:
        assert error.status == 404
    else:
        raise AssertionError("an unknown operator must not be answered 200")


def _availability(id_operator: str) -> Callable[[BotClient], None]:
    def poll(client: BotClient) -> None:
        assert client.availability_strategies(id_operator)[0]["strategy"] in STRATEGIES

    return poll


def _first_messages(client: BotClient) -> None:
    assert client.first_messages(OPERATOR)["replies"] == []


HISTORY = [
    visitor(text("Hi there"), 90, created_at="2017-11-22T12:04:00.762Z[Etc/UTC]"),
    message(
        "operator",
        text("Hello! How can I help?"),
        id_message="a1b2c3d4-0000-4000-8000-000000000091",
        created_at="2026-11-24T12:00:01+02:00",
    ),
]


def _start(id_conversation: str, history: list[dict]) -> Callable[[BotClient], None]:
    def start(client: BotClient) -> None:
        started = client.start_conversation(OPERATOR, id_conversation, history=history)
        assert started["replies"] == [] and started["idConversation"] == id_conversation

    return start


def _say(id_conversation: str, wire_message: dict, expect_replies=None, **extra) -> Callable[[BotClient], None]:
    def say(client: BotClient) -> None:
        answer = client.send_message(id_conversation, OPERATOR, wire_message, **extra)
        assert answer["idOperator"] == OPERATOR and isinstance(answer["replies"], list)
        if expect_replies is not None:
            assert answer["replies"] == expect_replies

    return say


def _message_body(wire_message: dict, **extra) -> dict:
    return {"idOperator": OPERATOR, "message": wire_message, **extra}


FILE = {
    "contentType": "file",
    "fileName": "photo.png",
    "mimeType": "image/png",
    "url": "https://files.example.com/conversation/photo.png",
}
ECHO = message(
    "operator",
    text("What can I do for you?"),
    id_message="a1b2c3d4-0000-4000-8000-000000000005",
    created_at="2026-11-24T10:00:01.250Z",
)
OLD_PLATFORM_OPERATOR = {"pseudo": "Ada"}  # older platform versions add `operator` beside `message`
QUICK_REPLY = {**visitor(text("Track my order"), 6, created_at="2017-11-22T12:05:00.100Z[Etc/UTC]")}
QUICK_REPLY_BODY = _message_body(
    {
        **QUICK_REPLY,
        "payload": {
            "contentType": "text",
            # the value of a quick reply the bot itself offered, found when the state was set up
            "value": match.type("Track my order", generator=generate.provider_state("${quickReply}")),
        },
    }
)


CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "the developer platform checks the bot's health",
        "GET",
        "/healthcheck",
        200,
        _health,
        response={"status": "UP"},  # this very value: the developer platform reads it
        public=True,
    ),
    Contract(
        "a request for the bot's scenarios",
        "GET",
        "/external-bots",
        200,
        _list_scenarios,
        states=((BOT_OFFERS_A_SCENARIO, {}),),
        response=match.each_like(
            {
                "idBot": match.str("order-assistant"),
                "name": match.str("Order assistant"),
                "editorUrl": url("https://bots.example.com/order-assistant"),
            }
        ),
    ),
    Contract(
        "an admin creates an operator",
        "PUT",
        f"/bots/{OPERATOR}",
        200,
        _create_operator,
        states=((BOT_OFFERS_A_SCENARIO, {}),),
        body=operator_settings("Shop assistant", RULES, INJECTED_ID_BOT),
        response=BOT_RESPONSE,
    ),
    Contract(
        "an admin updates an operator",
        "PUT",
        f"/bots/{OPERATOR}",
        200,
        _update_operator,
        states=(_configured(),),
        body=operator_settings("Shop assistant (night)", RULES[:1], INJECTED_ID_BOT),
        response=BOT_RESPONSE,
    ),
    Contract(
        "an admin opens an operator",
        "GET",
        f"/bots/{OPERATOR}",
        200,
        _read_operator,
        states=(_configured(),),
        response=BOT_RESPONSE,
    ),
    Contract(
        "an admin opens an operator the bot does not know",
        "GET",
        f"/bots/{UNKNOWN_OPERATOR}",
        404,
        _read_unknown_operator,
        states=((NO_SUCH_OPERATOR.format(idOperator=UNKNOWN_OPERATOR), {"idOperator": UNKNOWN_OPERATOR}),),
    ),
    Contract(
        "availability polling for an operator with distribution rules",
        "GET",
        "/availability-strategies",
        200,
        _availability(OPERATOR),
        states=(_configured(),),
        query={"idOperator": OPERATOR},
        response=match.each_like({"strategy": match.regex("notAvailable", regex=f"^({'|'.join(STRATEGIES)})$")}),
    ),
    Contract(
        "availability polling for an operator without distribution rules",
        "GET",
        "/availability-strategies",
        200,
        _availability(OPERATOR_WITHOUT_RULES),
        states=(
            (
                OPERATOR_WITHOUT_RULES_STATE.format(idOperator=OPERATOR_WITHOUT_RULES),
                {"idOperator": OPERATOR_WITHOUT_RULES, "distributionRules": []},
            ),
        ),
        query={"idOperator": OPERATOR_WITHOUT_RULES},
        response=match.each_like({"strategy": match.regex("notAvailable", regex=f"^({'|'.join(STRATEGIES)})$")}),
    ),
    Contract(
        "a visitor opens the chatbox (first messages)",
        "GET",
        f"/bots/{OPERATOR}/conversation-first-messages",
        200,
        _first_messages,
        states=(_configured(),),
        response={"replies": ANY_REPLIES},
    ),
    Contract(
        "a conversation is routed to the bot",
        "POST",
        "/conversations",
        200,
        _start(conversation_id(1), []),
        states=(_configured(),),
        body={"idOperator": OPERATOR, "idConversation": conversation_id(1), "history": []},
        response=envelope(conversation_id(1)),
    ),  # replies should be []: verify warns, as check does
    Contract(
        "a conversation is routed to the bot with its history",
        "POST",
        "/conversations",
        200,
        _start(conversation_id(2), HISTORY),
        states=(_configured(),),
        body={"idOperator": OPERATOR, "idConversation": conversation_id(2), "history": HISTORY},
        response=envelope(conversation_id(2)),
    ),
    Contract(
        "a visitor's text message",
        "POST",
        f"/conversations/{conversation_id(3)}/messages",
        200,
        _say(conversation_id(3), visitor(text("Hi"), 3)),
        states=(_started(conversation_id(3)),),
        body=_message_body(visitor(text("Hi"), 3)),
        response=envelope(conversation_id(3)),
        path_from_state=MESSAGES_OF_STATE,
    ),
    Contract(
        "the echo of a message the bot posted (author operator)",
        "POST",
        f"/conversations/{conversation_id(4)}/messages",
        200,
        _say(conversation_id(4), ECHO, expect_replies=[], operator=OLD_PLATFORM_OPERATOR),
        states=(_started(conversation_id(4)),),
        body=_message_body(ECHO, operator=OLD_PLATFORM_OPERATOR),
        response=envelope(conversation_id(4), replies=[]),  # anything else and the bot talks to itself
        path_from_state=MESSAGES_OF_STATE,
    ),
    Contract(
        "a visitor sends a file",
        "POST",
        f"/conversations/{conversation_id(5)}/messages",
        200,
        _say(conversation_id(5), visitor(FILE, 7)),
        states=(_started(conversation_id(5)),),
        body=_message_body(visitor(FILE, 7)),
        response=envelope(conversation_id(5)),
        path_from_state=MESSAGES_OF_STATE,
    ),
    Contract(
        "a visitor taps a quick reply",
        "POST",
        f"/conversations/{conversation_id(6)}/messages",
        200,
        _say(conversation_id(6), QUICK_REPLY),
        states=(_started(conversation_id(6), QUICK_REPLIES_OFFERED),),
        body=QUICK_REPLY_BODY,
        response=envelope(conversation_id(6)),
        path_from_state=MESSAGES_OF_STATE,
    ),
)

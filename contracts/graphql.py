"""What the reference bot needs from iAdvize's API to post proactive messages.

Consumer: ``reference_bot.proactive.GraphQLClient``; provider: the iAdvize API (the OAuth
token endpoint and the GraphQL ``chatbotMessageSend`` mutation). We cannot verify this
pact against iAdvize from here; it documents, and pins in CI, exactly what the bot sends.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from pact import match

from reference_bot.proactive import (
    PREVIEW_ACCEPT,
    GraphQLClient,
    close_action,
    quick_reply_menu,
    send_message_mutation,
    send_mutation,
    transfer_action,
)

from .platform import Contract

CONSUMER = "reference-bot"
PROVIDER = "iadvize-graphql-api"

USERNAME, PASSWORD = "bot-api-user@shop.example", "api-password"
CONVERSATION = "0f3c2a1b-6d5e-4a4b-9c8d-7e6f5a4b3c2d"
SENT = {"data": {"chatbotMessageSend": {"userErrors": []}}}


def _mutation_pattern() -> str:
    """The mutation with any conversation id, chatbot id and text: built from the code that writes it."""
    shape = re.sub(r"([{}()\[\].*+?^$|\\])", r"\\\1", send_message_mutation("CONVERSATION", 987654321, "TEXT"))
    return (
        "^"
        + shape.replace('"CONVERSATION"', r'"[^"]+"')
        .replace("987654321", r"\d+")
        .replace('"TEXT"', r'"(?:[^"\\]|\\.)*"')
        + "$"
    )


def _send(id_operator: str, text: str):
    def send(client: GraphQLClient) -> None:
        client.send_text(id_operator, CONVERSATION, text)
        assert client.token() == "example-access-token"  # fetched once, then reused

    return send


def _mutation(chatbot: int, text: str) -> dict:
    return {"query": match.regex(send_message_mutation(CONVERSATION, chatbot, text), regex=_mutation_pattern())}


RULE = "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6"
ACTIONS = {  # what the bot may post besides a text: the mutation's actionOrMessage of each
    "a quick-reply menu": quick_reply_menu("Anything else?", ["Track my order", "Talk to a human"]),
    "a transfer to a routing rule": transfer_action(RULE, 30),
    "a close": close_action(),
}


def _post(action: str):
    def send(client: GraphQLClient) -> None:
        client.send("ha-456678", CONVERSATION, action)

    return send


def _check_token(client: GraphQLClient) -> None:
    assert client.authenticated()


TOKEN_REQUEST = {"username": USERNAME, "password": PASSWORD, "grant_type": "password"}
GRAPHQL_HEADERS = {
    "Authorization": match.regex("Bearer example-access-token", regex=r"^Bearer \S+$"),
    "Accept": PREVIEW_ACCEPT,
}

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "a token request for the bot's API user",
        "POST",
        "/oauth2/token",
        200,
        lambda client: client.token(),
        states=((f"API user {USERNAME} exists", {"username": USERNAME}),),
        body=urlencode(TOKEN_REQUEST),
        content_type="application/x-www-form-urlencoded",
        response={
            "access_token": match.str("example-access-token"),
            "token_type": match.str("bearer"),
            "expires_in": match.int(86400),
        },
    ),
    Contract(
        "a proactive text message from chatbot 456678",
        "POST",
        "/graphql",
        200,
        _send("ha-456678", "Found it: your order left our warehouse yesterday."),
        states=(
            (
                f"conversation {CONVERSATION} is open with chatbot 456678",
                {"conversationId": CONVERSATION, "chatbotId": 456678},
            ),
        ),
        headers=GRAPHQL_HEADERS,
        body=_mutation(456678, "Found it: your order left our warehouse yesterday."),
        response=SENT,
    ),
    Contract(
        "a proactive text message from chatbot 789 on the SD platform",
        "POST",
        "/graphql",
        200,
        _send("sd-789", 'Your "invoice" is ready.'),
        states=(
            (
                f"conversation {CONVERSATION} is open with chatbot 789 on the SD platform",
                {"conversationId": CONVERSATION, "chatbotId": 789},
            ),
        ),
        query={"platform": "sd"},
        headers=GRAPHQL_HEADERS,
        body=_mutation(789, 'Your "invoice" is ready.'),
        response=SENT,
    ),
    Contract(
        "a token check",
        "GET",
        "/_authenticated",
        200,
        _check_token,
        states=((f"API user {USERNAME} exists", {"username": USERNAME}),),
        headers={"Authorization": GRAPHQL_HEADERS["Authorization"]},
        response={"authenticated": True},
    ),
    *(
        Contract(
            f"{what} from chatbot 456678",
            "POST",
            "/graphql",
            200,
            _post(action),
            states=(
                (
                    f"conversation {CONVERSATION} is open with chatbot 456678",
                    {"conversationId": CONVERSATION, "chatbotId": 456678},
                ),
            ),
            headers=GRAPHQL_HEADERS,
            body={"query": send_mutation(CONVERSATION, 456678, action)},
            response=SENT,
        )
        for what, action in ACTIONS.items()
    ),
)

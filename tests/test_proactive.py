"""Proactive messages through iAdvize's GraphQL API (mocked with ``responses``: no network)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import responses
from responses import matchers

from reference_bot.proactive import PREVIEW_ACCEPT, GraphQLClient, ProactiveError, chatbot_id

from .conftest import post_message, save_operator, texts, visitor

API = "https://api.iadvize.test"
TOKEN_URL = f"{API}/oauth2/token"
GRAPHQL_URL = f"{API}/graphql"
SENT_OK = {"data": {"chatbotMessageSend": {"userErrors": []}}}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def token_reply(token="tok-1", expires_in=86400):
    return responses.Response(responses.POST, TOKEN_URL, json={"access_token": token, "expires_in": expires_in})


def sent_texts(calls) -> list[str]:
    queries = [json.loads(c.request.body)["query"] for c in calls if c.request.url.startswith(GRAPHQL_URL)]
    return [q.split("chatbotSimpleTextMessage: ", 1)[1].rsplit(" } } })", 1)[0] for q in queries]


@responses.activate
def test_the_token_is_fetched_once_and_reused_until_it_expires():
    clock = Clock()
    responses.add(token_reply("tok-1", expires_in=3600))
    responses.add(responses.POST, GRAPHQL_URL, json=SENT_OK)
    client = GraphQLClient(API, "bot@shop.example", "pw", clock=clock)
    client.send_text("ha-456678", "conv-1", "one")
    client.send_text("ha-456678", "conv-1", "two")
    assert [c.request.url for c in responses.calls].count(TOKEN_URL) == 1
    form = parse_qs(responses.calls[0].request.body)
    assert form == {"username": ["bot@shop.example"], "password": ["pw"], "grant_type": ["password"]}

    clock.now += 3600  # within the last minute of the token's life: log in again
    responses.replace(responses.POST, TOKEN_URL, json={"access_token": "tok-2", "expires_in": 3600})
    client.send_text("ha-456678", "conv-1", "three")
    assert [c.request.url for c in responses.calls].count(TOKEN_URL) == 2
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok-2"


@responses.activate
def test_the_mutation_uses_the_preview_header_the_bearer_token_and_an_integer_chatbot_id():
    responses.add(token_reply())
    graphql = responses.add(
        responses.POST,
        GRAPHQL_URL,
        json=SENT_OK,
        match=[matchers.header_matcher({"Accept": PREVIEW_ACCEPT, "Authorization": "Bearer tok-1"})],
    )
    GraphQLClient(API, "u", "p").send_text("ha-456678", "c0ffee-conv", 'He said "hi"\nbye')
    assert graphql.call_count == 1
    request = graphql.calls[0].request
    assert "platform" not in request.url
    query = json.loads(request.body)["query"]
    assert "chatbotMessageSend(input: {" in query
    assert 'conversationId: "c0ffee-conv", chatbotId: 456678,' in query  # an integer, not "456678"
    assert r'chatbotSimpleTextMessage: "He said \"hi\"\nbye"' in query


@responses.activate
def test_sd_operators_go_to_the_sd_platform():
    responses.add(token_reply())
    graphql = responses.add(
        responses.POST, GRAPHQL_URL, json=SENT_OK, match=[matchers.query_param_matcher({"platform": "sd"})]
    )
    GraphQLClient(API, "u", "p").send_text("sd-1234", "conv", "hello")
    assert graphql.call_count == 1


def test_an_operator_id_without_a_number_has_no_chatbot_id():
    assert chatbot_id("ha-42") == 42
    with pytest.raises(ProactiveError) as raised:
        chatbot_id("ha-abc")
    assert not raised.value.retryable


@responses.activate
def test_a_refused_token_is_forgotten_so_the_next_try_logs_in_again():
    responses.add(token_reply("old"))
    responses.add(responses.POST, GRAPHQL_URL, status=401)
    client = GraphQLClient(API, "u", "p")
    with pytest.raises(ProactiveError, match="401"):
        client.send_text("ha-1", "conv", "x")
    responses.replace(responses.POST, TOKEN_URL, json={"access_token": "new"})
    responses.replace(responses.POST, GRAPHQL_URL, json=SENT_OK)
    client.send_text("ha-1", "conv", "x")
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer new"


@responses.activate
def test_user_errors_are_not_retried():
    responses.add(token_reply())
    responses.add(
        responses.POST,
        GRAPHQL_URL,
        json={"data": {"chatbotMessageSend": {"userErrors": [{"__typename": "ConversationClosed"}]}}},
    )
    with pytest.raises(ProactiveError, match="ConversationClosed") as raised:
        GraphQLClient(API, "u", "p").send_text("ha-1", "conv", "x")
    assert not raised.value.retryable


# --- a slow scenario step through the app and its outbox ------------------------------------


@pytest.fixture
def bot(make_bot, database):  # on both stores: an SQLite file and a PostgreSQL database
    return make_bot(DATABASE=database, IADVIZE_API_URL=API, IADVIZE_USERNAME="bot@shop.example", IADVIZE_PASSWORD="pw")


def ask_order_status(client):
    save_operator(client, id_operator="ha-456678")
    for n, text in enumerate(["Hi", "Track my order", "123456"]):
        response = post_message(client, "conv-9", visitor(text, f"m{n}"), id_operator="ha-456678")
        assert response.status_code == 200
    return response.get_json()["replies"]


def test_a_slow_step_answers_with_its_holding_message_and_queues_the_real_answer(bot):
    replies = ask_order_status(bot.test_client())
    assert texts(replies) == ["Thanks! Let me look order 123456 up in our system, it takes a few seconds."]
    outbox = bot.extensions["reference_bot"].store.outbox()
    assert [m["text"][:9] for m in outbox] == ["Found it:", "Type 'inv"]
    assert {m["id_conversation"] for m in outbox} == {"conv-9"}
    assert all(m["sent_at"] is None for m in outbox)


@responses.activate
def test_the_outbox_sends_in_order_retries_with_backoff_and_sends_each_message_once(bot):
    ask_order_status(bot.test_client())
    runtime = bot.extensions["reference_bot"]
    responses.add(token_reply())
    responses.add(responses.POST, GRAPHQL_URL, status=503)

    assert runtime.outbox.deliver_due() == 0  # iAdvize is down: nothing sent, nothing lost
    first, second = runtime.store.outbox()
    assert first["attempts"] == 1 and "503" in first["last_error"] and first["sent_at"] is None
    assert second["attempts"] == 0  # not tried: it must not overtake the first
    assert runtime.outbox.deliver_due() == 0  # backing off: not due yet
    assert len([c for c in responses.calls if c.request.url.startswith(GRAPHQL_URL)]) == 1

    with runtime.store.transaction() as tx:
        tx.execute("UPDATE outbox SET due_at = 0")  # the backoff has passed
    responses.replace(responses.POST, GRAPHQL_URL, json=SENT_OK)
    assert runtime.outbox.deliver_due() == 2
    assert runtime.outbox.deliver_due() == 0
    assert sent_texts(responses.calls)[1:] == [
        '"Found it: order 123456 left our warehouse yesterday and should arrive within 2 working days."',
        "\"Type 'invoice' to get your invoice, or 'menu' for anything else.\"",
    ]
    assert all(m["sent_at"] is not None for m in runtime.store.outbox())


def test_without_credentials_a_slow_answer_is_given_inline(make_bot):
    replies = ask_order_status(make_bot().test_client())
    assert texts(replies)[1].startswith("Found it")


@responses.activate
def test_a_message_given_up_on_no_longer_holds_back_the_next_one(bot):
    ask_order_status(bot.test_client())
    runtime = bot.extensions["reference_bot"]
    responses.add(token_reply())
    responses.add(responses.POST, GRAPHQL_URL, json={"errors": [{"message": "conversation closed"}]})
    responses.add(responses.POST, GRAPHQL_URL, json=SENT_OK)
    assert runtime.outbox.deliver_due() == 1
    first, second = runtime.store.outbox()
    assert first["failed_at"] is not None and first["sent_at"] is None and "conversation closed" in first["last_error"]
    assert second["sent_at"] is not None


@responses.activate
def test_a_token_response_without_a_token_is_retried_with_backoff(bot):
    ask_order_status(bot.test_client())
    runtime = bot.extensions["reference_bot"]
    responses.add(responses.POST, TOKEN_URL, json={"unexpected": True})
    assert runtime.outbox.deliver_due() == 0
    first = runtime.store.outbox()[0]
    assert first["attempts"] == 1 and first["claimed_until"] is None and first["failed_at"] is None
    assert first["last_error"] == "the token response has no access_token or a bad expires_in"


# --- the closed webhook -----------------------------------------------------------------------


def closed_event(id_conversation: str = "conv-9") -> dict:
    return {
        "eventId": "6f1c0d9e-1111-4a2b-9c3d-000000000001",
        "eventType": "v2.conversation.closed",
        "platform": "ha",
        "projectId": 1,
        "clientId": 1,
        "conversationId": id_conversation,
        "operatorIds": [456678],
        "channel": "CHAT",
        "createdAt": "2026-11-24T10:05:00.000Z",
        "sentAt": "2026-11-24T10:05:00.000Z",
    }


def test_the_closed_webhook_drops_what_was_not_sent_and_the_bot_stays_quiet(bot):
    client = bot.test_client()
    ask_order_status(client)
    answer = client.post("/webhooks", json=closed_event())
    assert answer.status_code == 200 and answer.get_json() == {"received": closed_event()["eventId"]}
    outbox = bot.extensions["reference_bot"].store.outbox()
    assert [(m["sent_at"], m["last_error"]) for m in outbox] == [(None, "the conversation closed")] * 2
    later = post_message(client, "conv-9", visitor("menu", "m9"), id_operator="ha-456678")
    assert later.status_code == 200 and later.get_json()["replies"] == []  # no nudge, no answer, after the close
    assert client.post("/webhooks", json={**closed_event(), "eventType": "user.updated"}).status_code == 200


def test_a_webhook_is_checked_like_any_call(make_bot):
    client = make_bot(IADVIZE_SECRET="s3cret").test_client()
    unsigned = client.post("/webhooks", json=closed_event())
    assert unsigned.status_code == 401 and unsigned.get_json()["error"] == "invalid signature"
    from harness.wire import signature

    data = json.dumps({**closed_event(), "conversationId": None}).encode()
    headers = {"x-iadvize-signature": signature.sign("s3cret", data), "Content-Type": "application/json"}
    refused = client.post("/webhooks", data=data, headers=headers)
    assert refused.status_code == 400 and "conversationId" in refused.get_json()["detail"]

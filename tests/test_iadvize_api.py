"""The local iAdvize API a bot calls, and what check makes of what a bot does with it.

The API is exercised over HTTP as a bot would call it; the bots are real servers on loopback: the
connectors of tests/connectors.py (one mistake each) and the reference bot, whose slow step answers
through the API.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests

from harness.bots import bot
from harness.client import BotClient
from harness.conformance.iadvize_api import PREVIEW_ACCEPT, IAdvizeAPI
from harness.conformance.platform import SimulatedPlatform
from harness.conformance.probes import check
from harness.conformance.rules import PlatformObservation, judge_platform
from harness.conformance.scripts import load_script, run_script
from harness.conformance.webhooks import Webhooks
from tests import connectors
from tests.conftest import RecordingBot

ROOT = Path(__file__).resolve().parents[1]
CONVERSATION = "0f3c2a1b-6d5e-4a4b-9c8d-7e6f5a4b3c2d"
PROACTIVE_WAIT = 60.0  # wall seconds at most: the platform goes on as soon as the bot has posted


@pytest.fixture
def api():
    with IAdvizeAPI({"shop-bot": "s3cret"}) as running:
        yield running


def login(api, user="shop-bot", password="s3cret") -> requests.Response:
    form = {"username": user, "password": password, "grant_type": "password"}
    return requests.post(f"{api.url}/oauth2/token", data=form, timeout=10)


def graphql(api, query: str, token: str | None, accept: str = PREVIEW_ACCEPT) -> requests.Response:
    headers = {"Accept": accept, **({"Authorization": f"Bearer {token}"} if token else {})}
    return requests.post(f"{api.url}/graphql", json={"query": query}, headers=headers, timeout=10)


def send(conversation: str, chatbot: int, action_or_message: str) -> str:
    return (
        f'mutation {{ chatbotMessageSend(input: {{conversationId: "{conversation}", chatbotId: {chatbot}, '
        f"actionOrMessage: {action_or_message}}}) {{ userErrors {{ __typename ... on UserError {{ message }} }} }} }}"
    )


def text(value: str) -> str:
    return f"{{chatbotMessage: {{chatbotSimpleTextMessage: {json.dumps(value)}}}}}"


def errors(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [e["__typename"] for e in answer.json()["data"]["chatbotMessageSend"]["userErrors"]]


def test_a_login_gives_a_token_that_the_token_check_and_graphql_accept(api):
    answer = login(api)
    assert answer.status_code == 200
    token = answer.json()
    assert set(token) == {"access_token", "token_type", "expires_in", "refresh_token"} and token["expires_in"] == 86400
    checked = requests.get(f"{api.url}/_authenticated", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert checked.status_code == 200 and checked.json() == {"authenticated": True}
    refused = requests.get(f"{api.url}/_authenticated", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert login(api, password="wrong").status_code == 401


def test_logins_past_ten_a_minute_for_one_user_are_refused_429(api):
    statuses = [login(api).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    refused = [c for c in api.calls if c.kind == "login" and c.status == 429]
    assert len(refused) == 1 and "more than 10 logins in a minute for user shop-bot" in refused[0].why


def test_a_burst_of_posts_is_taken_together_and_ends_at_a_close():
    with IAdvizeAPI({"shop-bot": "s3cret"}, burst_seconds=PROACTIVE_WAIT) as api:
        api.open(CONVERSATION, "ha-456678").visitor_wrote = True
        token = login(api).json()["access_token"]
        assert errors(graphql(api, send(CONVERSATION, 456678, text("Found it.")), token)) == []
        taken = []
        taker = threading.Thread(target=lambda: taken.append(api.take(CONVERSATION, wait=PROACTIVE_WAIT)))
        taker.start()  # it waits for the rest of the burst: what comes next, however late within the window, joins
        assert errors(graphql(api, send(CONVERSATION, 456678, text("Anything else?")), token)) == []
        assert errors(graphql(api, send(CONVERSATION, 456678, "{chatbotAction: {closeMessage: {}}}"), token)) == []
        taker.join(30)  # the close ended the burst: no waiting out the 60 s window
        assert not taker.is_alive()
    assert [[a["type"] for a in t] for t in taken] == [["message", "message", "close"]]


def test_graphql_without_a_valid_token_is_401_and_an_expired_token_too(api):
    api.open(CONVERSATION, "ha-456678").visitor_wrote = True
    assert graphql(api, send(CONVERSATION, 456678, text("hi")), None).status_code == 401
    token = login(api).json()["access_token"]
    assert errors(graphql(api, send(CONVERSATION, 456678, text("hi")), token)) == []
    api.expire_tokens()
    expired = graphql(api, send(CONVERSATION, 456678, text("again")), token)
    assert expired.status_code == 401 and expired.json() == {
        "error": "invalid_token",
        "error_description": "access token not valid",
    }
    assert api.take(CONVERSATION) == [{"type": "message", "payload": {"contentType": "text", "value": "hi"}}]


def test_every_documented_message_and_action_is_taken_in_order(api):
    api.open(CONVERSATION, "ha-456678").visitor_wrote = True
    token = login(api).json()["access_token"]
    menu = '{chatbotMessage: {chatbotMessageAttachmentInput: {quickReplyMenu: {message: "Pick", choices: ["A", "B"]}}}}'
    transfer = (
        '{chatbotAction: {transferMessage: {routingRuleId: "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6", '
        "transferOptions: {timeout: {value: 20, unit: SECONDS}}}}}"
    )
    for action in (text("Found it."), menu, transfer, "{chatbotAction: {closeMessage: {}}}"):
        assert errors(graphql(api, send(CONVERSATION, 456678, action), token)) == []
    assert api.take(CONVERSATION) == [
        {"type": "message", "payload": {"contentType": "text", "value": "Found it."}},
        {
            "type": "message",
            "payload": {"contentType": "text", "value": "Pick"},
            "quickReplies": [
                {"contentType": "text/quick-reply", "value": "A"},
                {"contentType": "text/quick-reply", "value": "B"},
            ],
        },
        {
            "type": "transfer",
            "distributionRule": "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6",
            "transferOptions": {"timeout": {"value": 20, "unit": "seconds"}},
        },
        {"type": "close"},
    ]


def test_what_the_documentation_forbids_is_refused_with_a_user_error_saying_why(api):
    conversation = api.open(CONVERSATION, "ha-456678")
    conversation.connector_id = "shop-conv-17"
    token = login(api).json()["access_token"]

    def refused(conversation_id=CONVERSATION, chatbot=456678, action=None, accept=PREVIEW_ACCEPT):
        return errors(graphql(api, send(conversation_id, chatbot, action or text("hi")), token, accept))

    assert refused() == ["VisitorHasNotWritten"]
    conversation.visitor_wrote = True
    assert refused(conversation_id="shop-conv-17") == ["ConnectorConversationId"]
    assert refused(conversation_id="5b9d1c3e-0000-4000-8000-000000000000") == ["ConversationNotFound"]
    assert refused(chatbot=1) == ["ChatbotNotOfOperator"]
    assert refused(accept="application/json") == ["PreviewHeaderMissing"]
    both = '{chatbotMessage: {chatbotSimpleTextMessage: "a"}, chatbotAction: {closeMessage: {}}}'
    assert refused(action=both) == ["OneMessageOrAction"]
    conversation.with_human = True
    assert refused() == ["ConversationWithHuman"]
    conversation.closed = True
    assert refused() == ["ConversationClosed"]
    assert api.take(CONVERSATION) == []  # nothing refused reaches the conversation
    own = next(c for c in api.calls if c.refusal == "ConnectorConversationId")
    assert CONVERSATION in own.why  # the id to use instead
    invalid = graphql(api, 'mutation { chatbotMessageSend(input: {text: "hi"}) { ok } }', token)
    assert invalid.status_code == 200 and invalid.json()["errors"]
    assert api.calls[-1].refusal == "InvalidRequest"


def test_a_routing_rule_s_availability_and_the_visitor_s_custom_data_are_read(api):
    api.rule_available = lambda rule: rule == "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6"
    api.open(CONVERSATION, "ha-456678").custom_data["email"] = "ada@example.com"
    token = login(api).json()["access_token"]
    query = (
        '{ yes: routingRule(id: "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6") { availability { chat { isAvailable } } } '
        'no: routingRule(id: "00000000-0000-4000-8000-000000000000") { availability { chat { isAvailable } } } '
        f'visitorConversationCustomData(conversationId: "{CONVERSATION}") {{ customData {{ key '
        "... on VisitorConversationCustomDataEntryString { stringValue } } } }"
    )
    data = graphql(api, query, token).json()["data"]
    assert data["yes"]["availability"]["chat"]["isAvailable"] is True
    assert data["no"]["availability"]["chat"]["isAvailable"] is False
    assert data["visitorConversationCustomData"]["customData"] == [{"key": "email", "stringValue": "ada@example.com"}]


# the rules of what a bot does through the API, each with its broken bot here (test_check checks all have one)
API_RULES = (
    "proactive-before-visitor",
    "proactive-with-human",
    "proactive-after-close",
    "proactive-refused",
    "login-rate",
    "holding-without-answer",
)


def checked(api_mistake: str):
    """check's findings (rule -> severities) on a connector making ``api_mistake`` with the local API."""
    # no 429 at 10 logins a minute: whether a run reaches it depends on the machine's speed, and its refusals on
    # the rest (test_logins_past_ten_a_minute...) would hide the rule under test
    with IAdvizeAPI(logins_per_user=1000) as api, connectors.serve(api_url=api.url, api=api_mistake) as server:
        # a bot that posts does so before it answers: the wait is only ever spent on one that never posts
        webhooks = Webhooks(f"{server.url}/webhooks")
        report = check(BotClient(server.url), api=api, proactive_wait=0.5, webhooks=webhooks)
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.rule, set()).add(finding.severity)
    return found, report


def test_a_bot_that_answers_through_the_api_as_documented_gets_no_finding():
    found, report = checked("good")
    assert found == {}, [(f.rule, f.message) for f in report.findings]
    posted = [e for c in report.conversations for e in c.events if e.purpose == "proactive"]
    assert posted and all(e.kind == "shown" for e in posted)  # shown to the visitor, then echoed
    chat = next(c for c in report.conversations if any(e.purpose == "proactive" for e in c.events))
    assert "posted   Here is what I found about" in chat.transcript()


@pytest.mark.parametrize(
    ("mistake", "rules"),
    [
        ("before-visitor", {"proactive-before-visitor": {"error"}}),
        ("with-human", {"proactive-with-human": {"error"}}),
        ("login-every-message", {"login-rate": {"warning"}}),
        ("holding-only", {"holding-without-answer": {"warning"}}),
        ("invalid-mutation", {"proactive-refused": {"error"}, "holding-without-answer": {"warning"}}),
        ("nudges-after-close", {"proactive-after-close": {"error"}}),
    ],
)
def test_each_mistake_with_the_api_is_reported_by_its_rule_only(mistake, rules):
    found, report = checked(mistake)
    assert found == rules, [(f.rule, f.message) for f in report.findings]


def test_a_message_posted_after_the_conversation_closed_is_refused_and_reported():
    with IAdvizeAPI() as api, connectors.serve(api_url=api.url) as server:
        client = BotClient(server.url)
        client.save_bot("ha-100200", {"name": "t", "distributionRules": [], "external": {"idBot": "shop"}})
        platform = SimulatedPlatform(client, "ha-100200", api=api, proactive_wait=PROACTIVE_WAIT)
        chat = platform.open_chat()
        platform.start(chat)
        platform.visitor_says(chat, "Hi")
        platform.wait(chat, 600)  # iAdvize closes the chat after 5 minutes of silence
        assert chat.closed == "inactivity"
        server.connector.post(chat.first_id, "ha-100200", "Still there?")  # the bot's nudge timer, too late
        platform.wait(chat, 1)
    refusals = [c for c in api.calls if c.refusal]
    assert [c.refusal for c in refusals] == ["ConversationClosed"]
    found = judge_platform(PlatformObservation("api", refusals[0], chat.first_id))
    assert [(f.rule, f.severity) for f in found] == [("proactive-after-close", "error")]
    assert "refused  Still there?: the conversation is closed" in chat.transcript()


def test_the_reference_bot_s_slow_step_answers_through_the_api_in_check_with_no_finding():
    scripts = [load_script(ROOT / "reference_bot" / "scripts" / "order-status.convo.yaml")]
    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings()) as url:
        report = check(BotClient(url), scripts=scripts, api=api, proactive_wait=PROACTIVE_WAIT)
    assert report.findings == [] and report.scripts == ["order status and invoice"]
    chat = report.conversations[-1]
    posted = [i for i, e in enumerate(chat.events) if e.purpose == "proactive"]
    assert posted, chat.transcript()
    found = chat.events[posted[0]]
    assert found.text.startswith("Found it: order 123456 left our warehouse")
    echo = chat.events[posted[0] + 1]  # echoed back to the bot like every message shown
    assert echo.kind == "call" and echo.purpose == "echo" and echo.exchange.ok
    assert echo.exchange.request_body["message"]["payload"]["value"] == found.reply["payload"]["value"]


SLOW_MENU = """
idBot: slow-menu
name: Slow menu
start: ask
states:
  ask:
    replies: [{text: "Type lookup"}]
    transitions: [{keywords: [lookup], goto: lookup}]
  lookup:
    slow: true
    holding: [{text: "One moment please, I'm checking."}]
    replies:
      - text: "Found two options:"
        quick_replies: [Keep it, Send it back]
      - await: 1s
      - close
"""


def test_a_slow_state_posts_its_quick_reply_menu_and_close_through_the_api(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "slow-menu.yaml").write_text(SLOW_MENU, encoding="utf-8")
    (tmp_path / "slow.convo.yaml").write_text(
        "steps:\n  - visitor: hi\n  - visitor: lookup\n"
        "    expect: {text_equals: 'Found two options:', quick_replies: [Keep it, Send it back], close: true}\n",
        encoding="utf-8",
    )
    # The menu and the close are two posts: however long a loaded machine keeps the bot between them, they
    # are one burst (a close ends a burst at once: the long window costs nothing).
    api = IAdvizeAPI(burst_seconds=PROACTIVE_WAIT)
    env = {**api_settings(api), "REFERENCE_BOT_SCENARIOS": str(tmp_path / "scenarios")}
    with api, bot(env=env) as url:
        chat = run_script(
            load_script(tmp_path / "slow.convo.yaml"), BotClient(url), api=api, proactive_wait=PROACTIVE_WAIT
        )
    posted = [e for e in chat.events if e.purpose == "proactive"]
    assert [e.kind for e in posted] == ["shown", "closed"], chat.transcript()  # the menu shown, the close run
    assert chat.closed == "bot" and "closed by the bot (posted through iAdvize's API)" in chat.transcript()
    sent = [c.action for c in api.calls if c.kind == "graphql" and c.action]
    assert [a["type"] for a in sent] == ["message", "close"]  # one call each, the await not posted
    assert [q["value"] for q in sent[0]["quickReplies"]] == ["Keep it", "Send it back"]


def api_settings(api: IAdvizeAPI) -> dict:
    return api.reference_bot_settings()


def test_the_reference_bot_s_outbox_logs_in_again_when_its_token_expired():
    script = load_script(ROOT / "reference_bot" / "scripts" / "order-status.convo.yaml")
    # one worker: its token is the one that expires (another worker would log in afresh, no 401 to see)
    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings(), workers=1) as url:
        client = BotClient(url)
        first = run_script(
            script, client, api=api, proactive_wait=PROACTIVE_WAIT
        )  # a first slow answer: the bot logs in
        # the slow step's two messages both sent (the second follows an await) before the tokens expire
        both = api.wait_until(
            lambda calls: sum(c.conversation == first.first_id and c.status == 200 for c in calls) == 2, PROACTIVE_WAIT
        )
        assert both, api.calls
        api.expire_tokens()
        chat = run_script(script, client, api=api, proactive_wait=PROACTIVE_WAIT)
    expired = [c for c in api.calls if c.status == 401]
    assert [c.conversation for c in expired] == [chat.first_id]  # refused once, for this conversation
    after = [c for c in api.calls if c.kind == "login" and c.at > expired[0].at]
    assert after and after[0].status == 200  # the bot logged in again rather than giving up
    kinds = [e.kind for e in chat.events if e.kind == "refused" or e.purpose == "proactive"]
    assert kinds[:2] == ["refused", "shown"], chat.transcript()  # refused once, then sent after a new login
    assert "a call to iAdvize's API: bad or expired token" in chat.transcript()


def test_the_reference_bot_s_outbox_retries_a_login_refused_for_the_rate_limit_and_the_transcript_says_so():
    import threading

    from harness.conformance.iadvize_api import BOT_PASSWORD, BOT_USER

    script = load_script(ROOT / "reference_bot" / "scripts" / "order-status.convo.yaml")
    with IAdvizeAPI() as api, bot(env=api.reference_bot_settings(), workers=1) as url:
        for _ in range(10):  # the user's ten logins of this minute, spent before the bot's first
            requests.post(
                f"{api.url}/oauth2/token",
                data={"grant_type": "password", "username": BOT_USER, "password": BOT_PASSWORD},
                timeout=5,
            )

        def the_minute_passes():  # once the bot was refused: its retry, a second later, gets a token
            if api.wait_until(lambda calls: any(c.kind == "login" and c.status == 429 for c in calls), PROACTIVE_WAIT):
                api.forget_logins()

        waiter = threading.Thread(target=the_minute_passes)
        waiter.start()
        chat = run_script(script, BotClient(url), api=api, proactive_wait=PROACTIVE_WAIT)
        waiter.join()
    transcript = chat.transcript()
    refused = transcript.index("refused  a login to iAdvize's API (429): more than 10 logins in a minute for user")
    assert refused < transcript.index("posted   Found it: order 123456"), transcript  # retried, then posted
    assert [c.status for c in api.calls if c.kind == "login"][-1] == 200  # the retry after the minute


class DownReceiver(RecordingBot):
    """A webhook receiver answering 500, keeping every delivery's headers and raw body."""

    def __init__(self):
        super().__init__()
        self.deliveries: list[tuple[dict, bytes]] = []

    def respond(self, handler, path: str, body: bytes) -> None:
        self.deliveries.append(({k.lower(): v for k, v in handler.headers.items()}, body))
        self.send(handler, 500, b'{"error": "down"}')


def test_webhooks_are_delivered_signed_and_retried_twice_in_simulated_time():
    from harness.wire import signature

    with DownReceiver() as receiver:
        tries = Webhooks(f"{receiver.url}/hook", secret="s3cret").deliver(
            "v2.conversation.closed", CONVERSATION, "ha-456678"
        )
    assert [(t.after, t.status) for t in tries] == [(0.0, 500), (10.0, 500), (30.0, 500)]
    headers, raw = receiver.deliveries[0]
    body = json.loads(raw)
    assert body["eventType"] == "v2.conversation.closed" and body["conversationId"] == CONVERSATION
    assert body["operatorIds"] == [456678] and body["channel"] == "CHAT"
    assert headers["x-iadvize-signature"] == signature.sign("s3cret", raw)
    assert len({h["x-iadvize-delivery"] for h, _ in receiver.deliveries}) == 3  # one delivery id per try
    assert len({h["x-iadvize-correlationid"] for h, _ in receiver.deliveries}) == 1  # one event


def test_the_reference_bot_s_client_sends_every_documented_input_the_local_api_takes():
    from reference_bot.proactive import (
        GraphQLClient,
        chatbot_id,
        close_action,
        quick_reply_menu,
        text_message,
        transfer_action,
    )

    with IAdvizeAPI() as api:
        api.open(CONVERSATION, "456678").visitor_wrote = True  # a bare operator id: its own chatbotId
        client = GraphQLClient(api.url, "shop-bot", "s3cret", timeout=10)
        assert client.authenticated() and chatbot_id("456678") == 456678
        for action in (
            text_message("Found it."),
            quick_reply_menu("Anything else?", ["Yes", "No"]),
            transfer_action("7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6", 20),
            close_action(),
        ):
            client.send("456678", CONVERSATION, action)
        api.expire_tokens()
        assert client.authenticated() is False
        taken = api.take(CONVERSATION)
    assert [r["type"] for r in taken] == ["message", "message", "transfer", "close"]
    assert [q["value"] for q in taken[1]["quickReplies"]] == ["Yes", "No"]
    assert taken[2]["transferOptions"] == {"timeout": {"value": 20, "unit": "seconds"}}

"""Every endpoint of the reference bot, its JSON checked against the committed schemas."""

from __future__ import annotations

import pytest

from .conftest import OPERATOR, RULES, assert_fits, post_message, save_operator, texts, visitor

CONVERSATION = "5a0b6c7d-0000-4000-8000-000000000001"


def start(client, id_conversation=CONVERSATION, history=None, **extra):
    body = {"idOperator": OPERATOR, "idConversation": id_conversation, **extra}
    if history is not None:
        body["history"] = history
    response = client.post("/conversations", json=body)
    assert response.status_code == 200, response.get_json()
    assert_fits("conversation.response", response.get_json())
    return response.get_json()


def say(client, text, id_conversation=CONVERSATION, **kwargs):
    response = post_message(client, id_conversation, visitor(text, **kwargs))
    assert response.status_code == 200, response.get_json()
    assert_fits("message.response", response.get_json())
    return response.get_json()


def test_external_bots_lists_every_scenario_with_an_editor_url(client):
    response = client.get("/external-bots?idConnectorVersion=c0ffee&idWebsite=ha-123")
    assert response.status_code == 200
    assert_fits("external-bots.response", response.get_json())
    bots = {b["idBot"]: b for b in response.get_json()}
    assert set(bots) == {"order-assistant", "hello"}
    assert bots["order-assistant"]["name"] == "Order assistant"
    assert bots["hello"]["editorUrl"] == "http://127.0.0.1:5000/scenarios/hello"


def test_the_editor_url_shows_the_scenario_file(client):
    response = client.get("/scenarios/hello")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "idBot: hello" in response.get_data(as_text=True)
    assert client.get("/scenarios/nope").get_json()["error"] == "unknown scenario"


def test_put_creates_then_updates_an_operator_and_get_reads_it(client):
    created = save_operator(client)
    assert_fits("bot.response", created)
    assert created["idOperator"] == OPERATOR
    assert created["external"]["idBot"] == "order-assistant"
    assert created["distributionRules"] == RULES

    updated = save_operator(client, id_bot="hello", rules=RULES[:1], name="Renamed")
    assert updated["external"]["idBot"] == "hello" and updated["name"] == "Renamed"
    assert updated["createdAt"] == created["createdAt"]

    read = client.get(f"/bots/{OPERATOR}")
    assert read.status_code == 200
    assert_fits("bot.response", read.get_json())
    assert read.get_json() == updated


def test_get_of_an_unknown_operator_is_a_json_404(client):
    response = client.get("/bots/ha-999")
    assert response.status_code == 404
    assert_fits("error.response", response.get_json())
    assert response.get_json() == {
        "error": "unknown operator",
        "detail": "no operator 'ha-999': create it with PUT /bots/ha-999",
    }


def test_put_with_an_unknown_scenario_names_the_field(client):
    response = client.put(f"/bots/{OPERATOR}", json={"external": {"idBot": "nope"}})
    assert response.status_code == 422
    assert response.get_json()["detail"].startswith("external.idBot: no scenario 'nope'")


def test_put_tolerates_extra_fields(client):
    assert save_operator(client, variables=[], anything={"x": 1})["idOperator"] == OPERATOR


def test_availability_checks_the_operators_distribution_rules(client):
    save_operator(client)
    response = client.get(f"/availability-strategies?idOperator={OPERATOR}&idWebsite=ha-123")
    assert response.status_code == 200
    assert_fits("availability-strategies.response", response.get_json())
    assert response.get_json() == [{"strategy": "atLeastOne", "distributionRulesToCheck": [r["id"] for r in RULES]}]


def test_availability_without_rules_or_for_an_always_scenario_is_custom_true(client):
    save_operator(client, rules=[])
    assert client.get(f"/availability-strategies?idOperator={OPERATOR}").get_json() == [
        {"strategy": "customAvailability", "availability": True}
    ]
    save_operator(client, "ha-102", id_bot="hello")
    assert client.get("/availability-strategies?idOperator=ha-102").get_json() == [
        {"strategy": "customAvailability", "availability": True}
    ]


def test_availability_needs_a_known_operator(client):
    assert client.get("/availability-strategies").status_code == 400
    assert client.get("/availability-strategies?idOperator=ha-404").status_code == 404


def test_first_messages_is_the_scenario_greeting(client):
    save_operator(client)
    response = client.get(f"/bots/{OPERATOR}/conversation-first-messages")
    assert response.status_code == 200
    assert_fits("first-messages.response", response.get_json())
    assert texts(response.get_json()["replies"])[0].startswith("I'm the shop's virtual assistant")


def test_a_conversation_starts_with_empty_replies_and_iadvize_s_id(client):
    save_operator(client)
    body = start(client)
    assert body["idConversation"] == CONVERSATION
    assert body["idOperator"] == OPERATOR
    assert body["replies"] == []


def test_a_conversation_starts_with_a_history_in_every_date_form(client):
    save_operator(client)
    history = [
        visitor("Hi", "h1", created_at="2017-11-22T12:04:00.762Z[Etc/UTC]"),
        visitor("Hello", "h2", role="operator", created_at="2026-11-24T10:00:00+02:00"),
    ]
    assert start(client, history=history, variables=[])["replies"] == []


def test_starting_the_same_conversation_twice_keeps_it(client):
    save_operator(client)
    first = start(client)
    say(client, "Today's offers")
    again = start(client)
    assert again["createdAt"] == first["createdAt"]
    assert say(client, "deal")["replies"][0]["payload"]["name"] == "Running headlamp"  # still in offers


def test_a_visitor_message_gets_the_scenario_s_replies(client):
    save_operator(client)
    start(client)
    body = say(client, "Hi")
    assert body["idConversation"] == CONVERSATION and body["idOperator"] == OPERATOR
    assert texts(body["replies"])[0] == "What can I do for you?"
    assert [q["value"] for q in body["replies"][0]["quickReplies"]] == [
        "Track my order",
        "Today's offers",
        "Return an item",
        "Talk to a person",
    ]
    assert [r["type"] for r in body["replies"]] == ["message", "await", "message"]


def test_the_echo_rule_an_operator_authored_message_gets_no_replies(client):
    save_operator(client)
    start(client)
    greeting = say(client, "Hi")["replies"][0]
    echo = post_message(client, CONVERSATION, visitor("x", "e1", role="operator", payload=greeting["payload"]))
    assert echo.status_code == 200
    assert_fits("message.response", echo.get_json())
    assert echo.get_json()["replies"] == []
    # and it did not move the scenario: the quick reply still works
    assert texts(say(client, "Track my order")["replies"])[0].startswith("Sure. What is your order number?")


def test_an_echo_for_a_conversation_never_started_is_still_empty(client):
    save_operator(client)
    echo = post_message(client, "never-started", visitor("Hello", "e2", role="operator"))
    assert echo.status_code == 200 and echo.get_json()["replies"] == []


def test_a_quick_reply_answer_follows_its_transition(client):
    save_operator(client)
    start(client)
    say(client, "Hi")
    assert texts(say(client, "Return an item")["replies"]) == ["Shall I show you how to send it back?"]
    carousel = say(client, "Show return options")["replies"][0]["payload"]
    assert carousel["contentType"] == "bundle/card" and len(carousel["cards"]) == 2


@pytest.mark.parametrize(
    "created_at", ["2018-07-16T13:53:57.961Z", "2026-11-24T12:00:00+02:00", "2017-11-22T12:04:00.762Z[Etc/UTC]"]
)
def test_created_at_in_every_form_and_extra_fields_are_accepted(client, created_at):
    save_operator(client)
    start(client)
    message = {**visitor("Hi", created_at=created_at), "variables": [{"key": "k", "value": "v"}]}
    response = post_message(client, CONVERSATION, message, operator={"id": 7, "pseudo": "old platform"})
    assert response.status_code == 200
    assert texts(response.get_json()["replies"])[0] == "What can I do for you?"


def test_a_non_text_visitor_payload_gets_a_polite_answer(client):
    save_operator(client)
    start(client)
    file = {"contentType": "file", "fileName": "a.png", "mimeType": "image/png", "url": "https://x.example/a.png"}
    response = post_message(client, CONVERSATION, visitor("", "f1", payload=file))
    assert response.status_code == 200
    assert "I can only read text" in texts(response.get_json()["replies"])[0]


def test_the_same_message_id_twice_answers_the_same_and_advances_once(client):
    save_operator(client)
    start(client)
    say(client, "Hi", id_message="m-1")
    first = say(client, "Track my order", id_message="m-2")
    retry = say(client, "Track my order", id_message="m-2")
    assert retry["replies"] == first["replies"]
    # one advance only: we are asked for the number, not sent to the fallback of the next state
    assert texts(say(client, "123456", id_message="m-3")["replies"])[0].startswith("Thanks! Let me look")


def test_a_message_for_an_unknown_conversation_starts_it(client):
    save_operator(client)
    body = say(client, "Hi", id_conversation="c-not-started")
    assert body["idConversation"] == "c-not-started"
    assert texts(body["replies"])[0] == "What can I do for you?"


def ask_for_a_person(client, order_number="none", email="ada@example.com", id_message=None) -> list[dict]:
    """The way to a transfer in the shipped scenario: ask, then give the order number and email it asks for."""
    say(client, "I want to talk to a person", id_message=f"{id_message}-ask" if id_message else None)
    say(client, order_number, id_message=f"{id_message}-order" if id_message else None)
    return say(client, email, id_message=id_message)


def test_a_transfer_goes_to_the_operator_s_rule_with_its_timeout_after_the_visitor_s_data(client):
    save_operator(client)
    start(client)
    body = ask_for_a_person(client, order_number="It's 123456")
    replies = body["replies"]
    assert [r["type"] for r in replies] == ["message", "await", "message", "transfer", "message", "close"]
    assert texts(replies)[1] == "Here is what I'll pass on to our team: order number: 123456; email: ada@example.com"
    assert replies[3] == {
        "type": "transfer",
        "distributionRule": RULES[0]["id"],
        "transferOptions": {"timeout": {"unit": "seconds", "value": 30}},
    }
    # what the conversation holds, answered in `variables` as iAdvize's API carried prequalified data
    assert body["variables"] == [
        {"key": "order_number", "value": "123456"},
        {"key": "email", "value": "ada@example.com"},
    ]


def test_the_variables_start_empty_and_survive_a_retry(client):
    save_operator(client)
    assert start(client)["variables"] == []
    say(client, "Track my order", id_message="m1")
    first = say(client, "654321", id_message="m2")
    assert first["variables"] == [{"key": "order_number", "value": "654321"}]
    assert say(client, "654321", id_message="m2") == first  # iAdvize retrying: the same answer


def test_an_operator_without_rules_skips_the_transfer_and_apologises(client):
    save_operator(client, rules=[])
    start(client)
    replies = ask_for_a_person(client)["replies"]
    assert "transfer" not in [r["type"] for r in replies]
    assert texts(replies)[-1].startswith("Sorry, nobody from our team is free")


def test_messages_for_an_unknown_operator_are_a_json_404(client):
    response = post_message(client, CONVERSATION, visitor("Hi"), id_operator="ha-404")
    assert response.status_code == 404 and response.get_json()["error"] == "unknown operator"


def test_healthcheck(client):
    response = client.get("/healthcheck")
    assert response.status_code == 200 and response.get_json() == {"status": "UP"}
    assert client.get("/healthcheck?idWebsite=1").get_json() == {"status": "UP"}  # parameters or not


def test_the_dialogue_function_can_be_replaced(make_bot):
    from reference_bot.dialogue import Answer

    def parrot(turn):
        return Answer(
            [
                {
                    "type": "message",
                    "payload": {"contentType": "text", "value": "You said: " + turn.message["payload"]["value"]},
                }
            ],
            state="parrot",
        )

    client = make_bot(DIALOGUE=parrot).test_client()
    save_operator(client)
    assert texts(say(client, "bonjour")["replies"]) == ["You said: bonjour"]
    echo = post_message(client, CONVERSATION, visitor("You said: bonjour", "e9", role="operator"))
    assert echo.get_json()["replies"] == []  # the echo rule holds whatever the brain


def test_a_conversation_whose_state_is_gone_starts_over(client):
    save_operator(client)
    start(client)
    say(client, "Track my order")  # in ask_order_number
    save_operator(client, id_bot="hello")  # the admin moved the operator to a scenario without that state
    assert texts(say(client, "123456")["replies"])[0].startswith("Hello! I'm a minimal demo bot")


def test_a_visitor_file_of_any_type_gets_the_polite_answer(client):
    save_operator(client)
    webp = {"contentType": "file", "fileName": "a.webp", "mimeType": "image/webp", "url": "https://x.example/a.webp"}
    response = post_message(client, CONVERSATION, visitor("", "w1", payload=webp))
    assert response.status_code == 200 and "I can only read text" in texts(response.get_json()["replies"])[0]


def test_a_file_before_any_text_does_not_skip_the_menu(client):
    save_operator(client)
    file = {"contentType": "file", "fileName": "a.png", "mimeType": "image/png", "url": "https://x.example/a.png"}
    post_message(client, CONVERSATION, visitor("", "f0", payload=file))
    assert texts(say(client, "Hi", id_message="f1")["replies"])[0] == "What can I do for you?"


def echo(client, text_value, id_message):
    response = post_message(client, CONVERSATION, visitor(text_value, id_message, role="operator"))
    assert response.status_code == 200 and response.get_json()["replies"] == []


def test_after_a_transfer_a_human_s_message_makes_the_bot_keep_quiet(client):
    save_operator(client)
    start(client)
    replies = ask_for_a_person(client, id_message="t1")["replies"]
    echo(client, texts(replies)[0], "e1")  # the bot's own message, posted back
    assert texts(say(client, "hello?", id_message="t2")["replies"])  # still the bot's conversation
    echo(client, "Hi, I'm Paul from customer service. How can I help?", "e2")  # not the bot's: a human
    assert say(client, "My parcel is late, agent", id_message="t3")["replies"] == []


def test_without_a_transfer_an_unknown_operator_message_changes_nothing(client):
    save_operator(client)
    start(client)
    say(client, "Hi", id_message="u1")
    echo(client, "something the bot never said", "e3")
    assert texts(say(client, "Today's offers", id_message="u2")["replies"])[0] == "Here are today's offers:"


def test_an_updated_at_moves_on_with_each_answer(client, monkeypatch):
    from reference_bot import conversations

    clock = ["2026-11-24T10:00:00.000Z"]  # the bot's clock, moved by the test rather than waited for
    monkeypatch.setattr(conversations, "now", lambda: clock[0])
    save_operator(client)
    first = start(client)
    clock[0] = "2026-11-24T10:00:07.250Z"
    answered = say(client, "Hi")
    assert first["updatedAt"] == "2026-11-24T10:00:00.000Z"
    assert answered["updatedAt"] == "2026-11-24T10:00:07.250Z" and answered["createdAt"] == first["createdAt"]


def test_a_dialogue_answering_what_the_api_cannot_carry_is_a_logged_500(make_bot, bot_log):
    from reference_bot.dialogue import Answer

    def sloppy(turn):
        return Answer([{"type": "message", "payload": {"contentType": "text"}}], state="x")

    client = make_bot(DIALOGUE=sloppy).test_client()
    save_operator(client)
    assert post_message(client, CONVERSATION, visitor("Hi")).status_code == 500
    assert (
        "the dialogue answered what the API cannot carry: replies[0].payload.value: is required" in bot_log.getvalue()
    )


@pytest.mark.parametrize(
    "availability, expected",
    [
        ("all", [{"strategy": "all", "distributionRulesToCheck": [r["id"] for r in RULES]}]),
        ("notAvailable", [{"strategy": "notAvailable"}]),
    ],
)
def test_a_scenario_chooses_its_availability_strategy(make_bot, tmp_path, availability, expected):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "s.yaml").write_text(
        f"idBot: s\nname: S\navailability: {availability}\nstart: a\nstates: {{a: {{replies: [{{text: Hi}}]}}}}\n",
        encoding="utf-8",
    )
    client = make_bot(SCENARIOS_DIR=str(scenarios)).test_client()
    save_operator(client, id_bot="s")
    response = client.get(f"/availability-strategies?idOperator={OPERATOR}")
    assert_fits("availability-strategies.response", response.get_json())
    assert response.get_json() == expected


def test_the_operator_s_language_picks_the_scenario_s_texts(client):
    save_operator(client, language="fr")
    assert texts(client.get(f"/bots/{OPERATOR}/conversation-first-messages").get_json()["replies"])[0].startswith(
        "Je suis l'assistant virtuel"
    )
    start(client)
    hello = say(client, "Bonjour")["replies"]
    assert texts(hello)[0] == "Que puis-je faire pour vous ?"
    assert hello[0]["quickReplies"][0]["value"] == "Suivre ma commande"
    save_operator(client, language="de")  # a language the scenario does not come in: its first one
    assert texts(say(client, "menu", id_message="m-de")["replies"])[0] == "What can I do for you?"

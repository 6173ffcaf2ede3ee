"""Availability polls answered in front of Flask (reference_bot.polls): the same answer and the same
checks as the Flask view, anything unusual left to Flask to answer and word."""

from __future__ import annotations

import pytest

from harness.wire import signature

from .conftest import OPERATOR, RULES, save_operator

SECRET = "polls-secret"


def poll(client, query: str, secret: str | None = None, **headers):
    if secret:
        headers[signature.HEADER] = signature.sign(secret, query.encode())
    return client.get(f"/availability-strategies?{query}", headers=headers)


@pytest.fixture
def pair(make_bot):
    """The same bot twice: polls answered in front of Flask (the default), and by the Flask view only."""
    front, flask_only = make_bot(), make_bot(AVAILABILITY_LOG_SECONDS=0)  # a line per poll: no front layer
    clients = front.test_client(), flask_only.test_client()
    for client in clients:
        save_operator(client)
        save_operator(client, "ha-202", rules=[])
        save_operator(client, "ha-303", id_bot="hello")
    return front, clients


def test_the_answer_is_the_flask_views_byte_for_byte(pair):
    front, (fast, flask_only) = pair
    front.view_functions["admin.availability_strategies"] = None  # had Flask answered, this would be a 500
    for id_operator in (OPERATOR, "ha-202", "ha-303"):
        ours, theirs = poll(fast, f"idOperator={id_operator}"), poll(flask_only, f"idOperator={id_operator}")
        assert (ours.status_code, ours.data) == (theirs.status_code, theirs.data) == (200, theirs.data)
        assert ours.headers["Content-Type"] == "application/json"
        assert ours.headers["X-Content-Type-Options"] == "nosniff" and ours.headers["X-Request-Id"]
    assert poll(fast, f"idOperator={OPERATOR}").get_json() == [
        {"strategy": "atLeastOne", "distributionRulesToCheck": [rule["id"] for rule in RULES]}
    ]
    assert poll(fast, f"idOperator={OPERATOR}", **{"X-Request-Id": "poll-7"}).headers["X-Request-Id"] == "poll-7"


def test_an_operator_saved_again_is_answered_with_its_new_rules(pair):
    _, (fast, _) = pair
    assert poll(fast, f"idOperator={OPERATOR}").get_json()[0]["distributionRulesToCheck"]
    save_operator(fast, rules=[])
    assert poll(fast, f"idOperator={OPERATOR}").get_json() == [{"strategy": "customAvailability", "availability": True}]


def test_what_is_not_a_usual_poll_is_answered_by_flask_as_before(pair):
    _, (fast, _) = pair
    unknown = poll(fast, "idOperator=ha-999")
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "unknown operator"
    assert poll(fast, "").get_json() == {
        "error": "missing parameter",
        "detail": "the query parameter idOperator is required",
    }
    assert poll(fast, f"idOperator={OPERATOR}&idOperator=ha-202").get_json()[0]["strategy"] == "atLeastOne"  # first


def test_signatures_and_addresses_are_checked_as_on_every_call(make_bot):
    client = make_bot(IADVIZE_SECRET=SECRET, ALLOWED_IPS="127.0.0.1").test_client()
    body = b'{"name": "Shop bot", "distributionRules": [], "external": {"idBot": "order-assistant"}}'
    headers = {signature.HEADER: signature.sign(SECRET, body), "Content-Type": "application/json"}
    assert client.put(f"/bots/{OPERATOR}", data=body, headers=headers).status_code == 200
    query = f"idOperator={OPERATOR}"
    assert poll(client, query, SECRET).status_code == 200
    other = {signature.HEADER: signature.sign(SECRET, b"idOperator=ha-202")}  # the signature of another query
    for refused in (poll(client, query), poll(client, query, "another secret"), poll(client, query, **other)):
        assert (refused.status_code, refused.get_json()["error"]) == (401, "invalid signature")
    elsewhere = client.get(
        f"/availability-strategies?{query}",
        headers={signature.HEADER: signature.sign(SECRET, query.encode())},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert (elsewhere.status_code, elsewhere.get_json()["error"]) == (403, "address not allowed")

"""The consumer suite: harness.client (and the bot's GraphQL client) against Pact's mock server."""

from __future__ import annotations

import json
import re

import pytest

from .generate import PACTS, PACTS_DIR, comparable, generate
from .platform import CONTRACTS, SIGNATURE_PATTERN

DESCRIPTIONS = [contract.description for spec in PACTS for contract in spec.contracts]


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pacts")
    return directory, generate(directory)


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_the_consumer_code_meets_its_interaction(generated, description):
    _, outcome = generated
    assert outcome[description] is None, outcome[description]


@pytest.mark.parametrize("spec", PACTS, ids=lambda spec: spec.file_name)
def test_the_committed_pacts_are_what_the_consumer_suite_writes(generated, spec):
    directory, _ = generated
    fresh, committed = directory / spec.file_name, PACTS_DIR / spec.file_name
    assert committed.exists(), f"{committed} is missing: run make pacts"
    assert comparable(fresh) == comparable(committed), f"{committed.name} is out of date: run make pacts"


def committed_platform_pact() -> dict:
    return json.loads((PACTS_DIR / PACTS[0].file_name).read_text(encoding="utf-8"))


def interaction(description: str) -> dict:
    return next(i for i in committed_platform_pact()["interactions"] if i["description"] == description)


def test_the_pacts_use_the_v4_specification():
    for spec in PACTS:
        document = json.loads((PACTS_DIR / spec.file_name).read_text(encoding="utf-8"))
        assert document["metadata"]["pactSpecification"]["version"] == "4.0"
        assert (document["consumer"]["name"], document["provider"]["name"]) == (spec.consumer, spec.provider)


def test_the_echo_must_be_answered_with_exactly_no_replies():
    response = interaction("the echo of a message the bot posted (author operator)")["response"]
    assert response["body"]["content"]["replies"] == []
    assert "$.replies" not in response.get("matchingRules", {}).get("body", {})  # no matcher: exactly []


def test_a_visitor_message_accepts_any_replies_array_and_any_date_form():
    response = interaction("a visitor's text message")["response"]
    rules = response["matchingRules"]["body"]
    assert rules["$.replies"]["matchers"] == [{"match": "type"}]
    assert rules["$.idConversation"]["matchers"] == [{"match": "type"}]
    date = rules["$.createdAt"]["matchers"][0]["regex"]
    for form in ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00.123+02:00", "2017-11-22T12:04:00.762Z[Etc/UTC]"):
        assert re.match(date, form), form
    assert not re.match(date, "24/11/2026")


def test_every_call_is_signed_and_carries_the_connector_version():
    for item in committed_platform_pact()["interactions"]:
        request = item["request"]
        if request["path"] == "/healthcheck":  # public: the developer platform calls it bare
            assert "query" not in request and "X-iAdvize-Signature" not in request.get("headers", {})
            continue
        assert set(request["query"]) >= {"idConnectorVersion", "idWebsite"}
        assert request["matchingRules"]["header"]["X-iAdvize-Signature"]["matchers"][0]["regex"] == SIGNATURE_PATTERN


def test_provider_states_speak_the_iadvize_vocabulary():
    states = {s["name"] for i in committed_platform_pact()["interactions"] for s in i.get("providerStates", [])}
    assert "operator ha-1001 is configured with distribution rules Customer service and Returns desk" in states
    assert any(s.startswith("conversation ") and s.endswith("has started with operator ha-1001") for s in states)


def test_the_platform_pact_has_every_interaction_iadvize_needs():
    assert len(CONTRACTS) == len(committed_platform_pact()["interactions"]) == 15
    methods = {(c.method, c.path.split("/")[1]) for c in CONTRACTS}
    assert methods == {
        ("GET", "healthcheck"),
        ("GET", "external-bots"),
        ("PUT", "bots"),
        ("GET", "bots"),
        ("GET", "availability-strategies"),
        ("POST", "conversations"),
    }

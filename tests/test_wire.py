"""The wire model: committed schemas stay generated from it, and it says what is wrong and where."""

from __future__ import annotations

import pytest

from harness import wire

from .conftest import SCHEMAS

TEXT = {"contentType": "text", "value": "Hello"}
LINK = {"type": "LINK", "name": "See", "url": "https://shop.example.com/p/1"}
CARD = {"contentType": "card/content", "title": "Returns", "actions": [LINK]}
OFFER = {"contentType": "product-offer", "name": "Shoes", "price": "89.90 €", "actions": [LINK]}
PAYLOADS = [
    TEXT,
    CARD,
    {"contentType": "bundle/card", "cards": [CARD, CARD]},
    OFFER,
    {"contentType": "bundle/product-offer", "offers": [OFFER]},
    {"contentType": "file", "fileName": "a.pdf", "mimeType": "application/pdf", "url": "https://x.example/a.pdf"},
]


def message_request(created_at="2026-11-24T10:00:00.000Z", role="visitor", payload=TEXT):
    return {
        "idOperator": "ha-1",
        "message": {"idMessage": "m1", "author": {"role": role}, "payload": payload, "createdAt": created_at},
    }


def test_committed_schemas_are_what_the_model_generates(tmp_path):
    written = wire.write_schemas(tmp_path)
    committed = sorted(p.name for p in SCHEMAS.glob("*.json") if p.name != "recording.v1.json")
    assert committed == sorted(p.name for p in written), "a schema was added or removed: run make schemas"
    for path in written:
        assert (SCHEMAS / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{path.name} differs from the wire model: run make schemas"
        )


def test_there_is_one_schema_per_request_and_response_body():
    assert set(wire.BODY_NAMES) == {
        "external-bots.response",
        "bot.request",
        "bot.response",
        "availability-strategies.response",
        "first-messages.response",
        "conversation.request",
        "conversation.response",
        "message.request",
        "message.response",
        "health.response",
        "webhook.request",
        "error.response",
    }


@pytest.mark.parametrize(
    "created_at",
    [
        "2018-07-16T13:53:57.961Z",
        "2026-11-24T10:00:00+02:00",
        "2017-11-22T12:04:00.762Z[Etc/UTC]",
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00.123456-05:30",
    ],
)
def test_every_date_time_form_seen_from_iadvize_is_accepted(created_at):
    assert wire.problems("message.request", message_request(created_at)) == []


@pytest.mark.parametrize("created_at", ["yesterday", "2026-11-24", "2026-11-24 10:00:00", "24/11/2026T10:00:00Z"])
def test_a_date_that_is_not_iso_8601_is_named(created_at):
    assert wire.problems("message.request", message_request(created_at)) == [
        wire.Problem("message.createdAt", f'must be an ISO 8601 date-time, got "{created_at}"')
    ]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p["contentType"])
def test_all_six_payload_types_fit_a_message_reply(payload):
    assert wire.reply_problems({"type": "message", "payload": payload}) == []


def test_a_card_without_actions_is_reported_at_its_path():
    card = {"contentType": "card/content", "title": "No actions"}
    found = wire.problems(
        "message.response",
        {
            "idConversation": "c",
            "idOperator": "ha-1",
            "createdAt": "2026-11-24T10:00:00Z",
            "updatedAt": "2026-11-24T10:00:00Z",
            "replies": [{"type": "message", "payload": {"contentType": "bundle/card", "cards": [card]}}],
        },
    )
    assert wire.Problem("replies[0].payload.cards[0].actions", "is required") in found


def test_missing_fields_are_each_named():
    found = wire.problems("conversation.request", {"history": []})
    assert set(found) == {wire.Problem("idConversation", "is required"), wire.Problem("idOperator", "is required")}


def test_an_unknown_author_role_is_named_with_the_roles_allowed():
    found = wire.problems("message.request", message_request(role="robot"))
    assert found == [wire.Problem("message.author.role", 'must be one of visitor, operator; got "robot"')]


def test_extra_fields_are_tolerated_everywhere_iadvize_adds_them():
    document = message_request()
    document["operator"] = {"id": 12}
    document["message"]["variables"] = []
    assert wire.problems("message.request", document) == []


def test_a_visitor_payload_of_an_unknown_type_is_tolerated_but_a_reply_must_be_known():
    sticker = {"contentType": "sticker", "id": 5}
    assert wire.problems("message.request", message_request(payload=sticker)) == []
    assert wire.reply_problems({"type": "message", "payload": sticker}) != []


def test_validate_raises_with_the_first_problem_as_field():
    with pytest.raises(wire.WireError) as raised:
        wire.validate("bot.request", {"external": {}})
    assert raised.value.field == "external.idBot"
    assert "external.idBot: is required" in str(raised.value)


@pytest.mark.parametrize(
    "reply, field",
    [
        ({"type": "await", "duration": {"unit": "hours", "value": 1}}, "duration.unit"),
        ({"type": "transfer"}, "distributionRule"),
        ({"type": "wave"}, "type"),
    ],
)
def test_reply_problems_point_inside_the_reply(reply, field):
    assert [p.field for p in wire.reply_problems(reply)][:1] == [field]


def test_a_visitor_file_of_any_mime_type_is_taken_but_a_reply_file_must_be_one_iadvize_shows():
    webp = {"contentType": "file", "fileName": "a.webp", "mimeType": "image/webp", "url": "https://x.example/a.webp"}
    assert wire.problems("message.request", message_request(payload=webp)) == []
    assert wire.reply_problems({"type": "message", "payload": webp}) == [
        wire.Problem(
            "payload.mimeType", 'must be one of image/gif, image/png, image/jpeg, application/pdf; got "image/webp"'
        )
    ]


def test_a_visitor_text_must_still_carry_its_value():
    assert wire.problems("message.request", message_request(payload={"contentType": "text"})) == [
        wire.Problem("message.payload.value", "is required")
    ]


def test_a_missing_field_is_told_even_behind_many_broken_items():
    history = [{"idMessage": 1}] * 200  # hundreds of problems in the array...
    found = wire.problems("conversation.request", {"idConversation": "c", "history": history})
    assert len(found) < 3 * wire.MAX_PROBLEMS  # (an error may name several fields) not all of them...
    assert found[0] == wire.Problem("idOperator", "is required")  # ...and the missing field comes first

"""Bad input gets a JSON 4xx naming the problem; surprises a JSON 500 with a request id; never HTML."""

from __future__ import annotations

import json
import sqlite3

import pytest

from reference_bot.store import SQLiteStore

from .conftest import OPERATOR, assert_fits, post_message, save_operator, visitor

MESSAGES = "/conversations/c1/messages"


@pytest.fixture
def client(app):
    client = app.test_client()
    save_operator(client)
    return client


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_fits("error.response", body)
    return body


def test_a_wrong_content_type_is_415(client):
    body = error_of(client.post(MESSAGES, data="idOperator=ha-101", content_type="text/plain"), 415)
    assert body == {"error": "unsupported content type", "detail": "expected application/json, got text/plain"}


def test_invalid_json_says_where(client):
    body = error_of(client.post(MESSAGES, data='{"idOperator": ', content_type="application/json"), 400)
    assert body["error"] == "invalid JSON" and "line 1, column 16" in body["detail"]


def test_invalid_utf8_is_named(client):
    body = error_of(client.post(MESSAGES, data=b'{"idOperator": "\xff\xfe"}', content_type="application/json"), 400)
    assert body == {"error": "invalid JSON", "detail": "the body is not valid UTF-8"}


def test_an_empty_body_is_invalid_json(client):
    assert error_of(client.post(MESSAGES, data=b"", content_type="application/json"), 400)["error"] == "invalid JSON"


def test_a_missing_field_is_named(client):
    body = error_of(client.post(MESSAGES, json={"idOperator": OPERATOR}), 400)
    assert body == {"error": "invalid body", "detail": "message: is required"}


def test_a_mistyped_field_is_named(client):
    message = {**visitor("Hi"), "idMessage": 42}
    body = error_of(post_message(client, "c1", message), 400)
    assert body["detail"] == "message.idMessage: must be a string, got 42"


def test_an_unknown_author_role_is_named(client):
    body = error_of(post_message(client, "c1", visitor("Hi", role="bot")), 400)
    assert body["detail"] == 'message.author.role: must be one of visitor, operator; got "bot"'


def test_a_body_that_is_not_an_object_is_named(client):
    body = error_of(client.post("/conversations", json=[1, 2]), 400)
    assert body["detail"] == "must be an object, got [1, 2]"


def test_deeply_nested_json_is_refused_cleanly(client):
    deep = "[" * 100_000 + "]" * 100_000
    body = error_of(client.post(MESSAGES, data=deep, content_type="application/json"), 400)
    assert body == {"error": "invalid JSON", "detail": "the body is nested too deeply"}


def test_an_oversized_body_is_413_with_the_limit(make_bot):
    client = make_bot(MAX_CONTENT_LENGTH=2048).test_client()
    message = visitor("x" * 4096)
    body = error_of(post_message(client, "c1", message), 413)
    assert body["detail"] == "the body is larger than the 2048 bytes this bot accepts"


def test_an_unknown_route_and_a_wrong_method_are_json(client):
    assert error_of(client.get("/nope"), 404)["detail"] == "no endpoint GET /nope"
    assert error_of(client.delete("/external-bots"), 405)["detail"] == "DELETE is not allowed on /external-bots"


def test_an_unexpected_exception_is_a_500_with_the_request_id_and_no_internals(make_bot, bot_log):
    def broken(turn):
        raise KeyError("internal-detail-xyz")

    client = make_bot(DIALOGUE=broken).test_client()
    save_operator(client)
    response = post_message(client, "c1", visitor("Hi"))
    body = error_of(response, 500)
    request_id = response.headers["X-Request-Id"]
    assert body == {"error": "internal error", "detail": f"logged as request {request_id}"}
    assert "internal-detail-xyz" not in response.get_data(as_text=True)
    logged = [json.loads(line) for line in bot_log.getvalue().splitlines()]
    failure = next(entry for entry in logged if entry["message"] == "unexpected error")
    assert failure["request_id"] == request_id and "internal-detail-xyz" in failure["exception"]


def test_a_failed_answer_leaves_the_conversation_where_it_was(make_bot):
    calls = []

    def flaky(turn):
        calls.append(turn.conversation.state)
        if len(calls) == 1:
            raise RuntimeError("boom")
        from reference_bot.dialogue import answer

        return answer(turn)

    client = make_bot(DIALOGUE=flaky).test_client()
    save_operator(client)
    assert post_message(client, "c1", visitor("Hi", "m1")).status_code == 500
    assert post_message(client, "c1", visitor("Hi", "m1")).status_code == 200  # iAdvize's retry is answered
    assert calls == [None, None]  # the first attempt stored nothing


def test_storage_failure_is_a_503_the_caller_may_retry(app, client, monkeypatch):
    def locked(self):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SQLiteStore, "transaction", locked)
    body = error_of(post_message(client, "c1", visitor("Hi")), 503)
    assert body == {"error": "storage unavailable", "detail": "the bot cannot reach its database; retry later"}


def test_first_messages_and_availability_need_no_database(app, client, monkeypatch):
    def no_io(self):
        raise AssertionError("the database was touched")

    monkeypatch.setattr(SQLiteStore, "connection", property(no_io))
    first = client.get(f"/bots/{OPERATOR}/conversation-first-messages")
    assert first.status_code == 200 and first.get_json()["replies"]
    assert client.get(f"/availability-strategies?idOperator={OPERATOR}").status_code == 200


def test_an_integer_too_long_to_read_is_a_400(client):
    body = error_of(
        client.post(MESSAGES, data='{"idOperator": ' + "9" * 5000 + "}", content_type="application/json"), 400
    )
    assert body["error"] == "invalid JSON" and "4300 digits" in body["detail"]


def test_a_lone_surrogate_is_a_400_not_a_storage_crash(client):
    raw = (
        '{"idOperator": "ha-101", "message": {"idMessage": "\\ud800", "author": {"role": "visitor"}, '
        '"payload": {"contentType": "text", "value": "Hi"}, "createdAt": "2026-11-24T10:00:00Z"}}'
    )
    body = error_of(client.post(MESSAGES, data=raw, content_type="application/json"), 400)
    assert body["detail"] == "the body contains an invalid character (a lone UTF-16 surrogate)"


def test_a_programming_error_in_storage_is_a_500_not_a_retry_later(app, client, monkeypatch):
    def broken(self):
        raise sqlite3.ProgrammingError("Error binding parameter 1: type 'dict' is not supported")

    monkeypatch.setattr(SQLiteStore, "transaction", broken)
    assert error_of(post_message(client, "c1", visitor("Hi")), 500)["error"] == "internal error"

"""X-iAdvize-Signature: every endpoint refuses a call that is not signed with the app's secret."""

from __future__ import annotations

import json

import pytest

from harness.wire import signature
from reference_bot import create_app

from .conftest import OPERATOR, RULES, assert_fits, bot_settings, visitor

SECRET = "s3cr3t-token-0123456789"


@pytest.fixture
def signed_app(make_bot):
    return make_bot(IADVIZE_SECRET=SECRET)


def signed(secret: str, method: str, query: str = "", body: dict | None = None) -> tuple[bytes, dict]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = {signature.HEADER: signature.sign(secret, signature.signed_part(method, query.encode(), data))}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return data, headers


def call(client, method, path, query="", body=None, secret=SECRET):
    data, headers = (
        signed(secret, method, query, body)
        if secret
        else (
            json.dumps(body).encode() if body is not None else b"",
            {"Content-Type": "application/json"} if body is not None else {},
        )
    )
    return client.open(path, method=method, query_string=query, data=data, headers=headers)


OPERATOR_BODY = {"name": "Bot", "distributionRules": RULES, "external": {"idBot": "order-assistant"}}
MESSAGE_BODY = {"idOperator": OPERATOR, "message": visitor("Hi", "m1")}
CONVERSATION_BODY = {"idOperator": OPERATOR, "idConversation": "c1", "history": []}

# Every endpoint iAdvize calls, with a request it would make once the operator exists.
ENDPOINTS = [
    ("GET", "/external-bots", "idConnectorVersion=v1&idWebsite=ha-123", None),
    ("PUT", f"/bots/{OPERATOR}", "idConnectorVersion=v1", OPERATOR_BODY),
    ("GET", f"/bots/{OPERATOR}", "idConnectorVersion=v1", None),
    ("GET", "/availability-strategies", f"idOperator={OPERATOR}&idConnectorVersion=v1", None),
    ("GET", f"/bots/{OPERATOR}/conversation-first-messages", "idConnectorVersion=v1", None),
    ("POST", "/conversations", "idConnectorVersion=v1", CONVERSATION_BODY),
    ("POST", "/conversations/c1/messages", "idConnectorVersion=v1", MESSAGE_BODY),
]


@pytest.fixture
def client(signed_app):
    client = signed_app.test_client()
    assert call(client, "PUT", f"/bots/{OPERATOR}", body=OPERATOR_BODY).status_code == 200
    return client


@pytest.mark.parametrize("method, path, query, body", ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_a_signed_call_is_served(client, method, path, query, body):
    assert call(client, method, path, query, body).status_code == 200


@pytest.mark.parametrize("method, path, query, body", ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
@pytest.mark.parametrize("secret", [None, "another-secret"], ids=["unsigned", "wrong-secret"])
def test_an_unsigned_or_wrongly_signed_call_is_refused_with_json(client, method, path, query, body, secret):
    response = call(client, method, path, query, body, secret=secret)
    assert response.status_code == 401
    assert_fits("error.response", response.get_json())
    assert response.get_json()["error"] == "invalid signature"
    assert SECRET not in response.get_data(as_text=True)


def test_a_get_is_signed_over_its_query_string(client):
    _, headers = signed(SECRET, "GET", f"idOperator={OPERATOR}")
    assert (
        client.get("/availability-strategies", query_string=f"idOperator={OPERATOR}", headers=headers).status_code
        == 200
    )
    # the same signature with one parameter changed no longer matches
    assert client.get("/availability-strategies", query_string="idOperator=ha-999", headers=headers).status_code == 401


def test_a_body_changed_by_one_byte_is_refused(client):
    data, headers = signed(SECRET, "POST", body=MESSAGE_BODY)
    tampered = data.replace(b'"Hi"', b'"Ho"')
    assert client.post("/conversations/c1/messages", data=tampered, headers=headers).status_code == 401
    assert client.post("/conversations/c1/messages", data=data, headers=headers).status_code == 200


def test_a_signature_without_its_algorithm_prefix_is_refused(client):
    data, headers = signed(SECRET, "POST", body=MESSAGE_BODY)
    headers[signature.HEADER] = headers[signature.HEADER].removeprefix("sha256=")
    assert client.post("/conversations/c1/messages", data=data, headers=headers).status_code == 401


def test_the_healthcheck_needs_no_signature_and_the_scenario_viewer_is_public_only_when_said(client, make_bot):
    assert client.get("/healthcheck").status_code == 200
    assert client.get("/scenarios/hello").status_code == 401  # a scenario's source is the bot's logic
    public = make_bot(IADVIZE_SECRET=SECRET, PUBLIC_SCENARIOS=True).test_client()
    assert public.get("/scenarios/hello").status_code == 200  # REFERENCE_BOT_PUBLIC_SCENARIOS: for editorUrl


def test_a_head_is_signed_over_its_query_string_like_a_get(client):
    from harness.wire import signature

    query = b"idConnectorVersion=v1"
    empty = signature.sign(SECRET, b"")  # what a HEAD without a body once passed with
    assert client.head(f"/external-bots?{query.decode()}", headers={signature.HEADER: empty}).status_code == 401
    good = signature.sign(SECRET, query)
    assert client.head(f"/external-bots?{query.decode()}", headers={signature.HEADER: good}).status_code == 200


def test_the_secret_never_appears_in_logs(tmp_path, bot_log):
    app = create_app(bot_settings(tmp_path, IADVIZE_SECRET=SECRET))
    client = app.test_client()
    for method, path, query, body in ENDPOINTS:
        call(client, method, path, query, body)
        call(client, method, path, query, body, secret="wrong")
    call(client, "POST", "/conversations/c1/messages", body={"broken": True})
    logged = bot_log.getvalue()
    assert logged.count('"path": "/conversations/c1/messages"') == 3  # the calls were logged...
    assert SECRET not in logged and signature.HEADER not in logged  # ...without the secret or signature


def test_without_a_secret_one_warning_says_signatures_are_not_checked(tmp_path, bot_log):
    create_app(bot_settings(tmp_path, IADVIZE_SECRET=None))
    warnings = [json.loads(line) for line in bot_log.getvalue().splitlines() if '"warning"' in line]
    assert [w["message"] for w in warnings] == ["no IADVIZE_SECRET configured: X-iAdvize-Signature is NOT checked"]


def test_with_a_secret_there_is_no_such_warning(tmp_path, bot_log):
    create_app(bot_settings(tmp_path, IADVIZE_SECRET=SECRET))
    assert "NOT checked" not in bot_log.getvalue()


def test_the_comparison_is_constant_time(monkeypatch):
    seen = []
    real = signature.hmac.compare_digest
    monkeypatch.setattr(signature.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert signature.is_valid(SECRET, signature.sign(SECRET, b"body"), b"body")
    assert not signature.is_valid(SECRET, "sha256=00", b"body")
    assert len(seen) == 2


def test_calls_may_be_limited_to_iadvize_s_documented_addresses(make_bot):
    from reference_bot.security import IADVIZE_ADDRESSES

    client = make_bot(ALLOWED_IPS="iadvize, 192.0.2.7").test_client()
    outside = client.get("/external-bots", environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert outside.status_code == 403 and "198.51.100.1" in outside.get_json()["detail"]
    for address in (*IADVIZE_ADDRESSES, "192.0.2.7"):
        assert client.get("/external-bots", environ_base={"REMOTE_ADDR": address}).status_code == 200
    # without a trusted proxy, X-Forwarded-For is the client's own word: not read, even from the loopback
    claimed = {"X-Forwarded-For": IADVIZE_ADDRESSES[0]}
    assert client.get("/external-bots", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers=claimed).status_code == 403
    assert client.get("/healthcheck", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 200  # public


@pytest.mark.parametrize("path", ["/external-bots", "/availability-strategies?idOperator=ha-1"])
def test_x_forwarded_for_is_read_only_from_a_trusted_proxy_and_only_what_it_added(make_bot, path):
    from reference_bot.security import IADVIZE_ADDRESSES

    app = make_bot(ALLOWED_IPS="iadvize", TRUSTED_PROXIES="10.0.0.5, 10.0.0.6", IADVIZE_SECRET=None)
    client = app.test_client()
    client.put("/bots/ha-1", json={"name": "x", "distributionRules": [], "external": {"idBot": "hello"}},
               environ_base={"REMOTE_ADDR": IADVIZE_ADDRESSES[0]})  # fmt: skip

    def status(peer: str, forwarded: str) -> int:
        return client.get(path, environ_base={"REMOTE_ADDR": peer}, headers={"X-Forwarded-For": forwarded}).status_code

    iadvize = IADVIZE_ADDRESSES[0]
    assert status("10.0.0.5", iadvize) == 200  # the proxy says iAdvize called it
    assert status("10.0.0.6", f"{iadvize}, 10.0.0.5") == 200  # through both proxies
    # a client that writes iAdvize's address itself: the proxy appends the real one, which is read
    assert status("10.0.0.5", f"{iadvize}, 198.51.100.1") == 403
    assert status("198.51.100.1", iadvize) == 403  # not a trusted proxy: its header is not read
    assert status("127.0.0.1", iadvize) == 403  # the loopback is no proxy unless named


def test_by_default_calls_come_from_anywhere(make_bot):
    client = make_bot(IADVIZE_SECRET=None).test_client()
    assert client.get("/external-bots", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 200

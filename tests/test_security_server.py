"""Signatures, limits and error reflection on the real server: gunicorn workers, loopback sockets.

Every endpoint refuses a call whose X-iAdvize-Signature is missing, has the wrong algorithm
prefix, was made with another secret, covers a body or query changed by one byte, or was
captured from another call and replayed; the secret shows in no answer and no log line.
"""

from __future__ import annotations

import json

import pytest
import requests

from harness.bots import EmbeddedBot
from harness.wire import signature

from .conftest import OPERATOR, assert_fits
from .test_security import ENDPOINTS, OPERATOR_BODY, SECRET

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot():
    # the session closes before the bot stops: gunicorn lingers 2 s over a connection kept alive
    with EmbeddedBot(secret=SECRET, workers=2) as running, requests.Session() as running.session:
        assert send(running, "PUT", f"/bots/{OPERATOR}", "idConnectorVersion=v1", OPERATOR_BODY).status_code == 200
        yield running


def send(
    bot,
    method: str,
    path: str,
    query: str,
    body: dict | bytes | None,
    header: str | None = "sign",
    secret: str = SECRET,
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if header == "sign":
        header = signature.sign(secret, signature.signed_part(method, query.encode(), data))
    if header is not None:
        headers[signature.HEADER] = header
    return bot.session.request(method, f"{bot.url}{path}?{query}", data=data or None, headers=headers, timeout=10)


def raw(bot, request_bytes: bytes) -> tuple[bytes, bytes]:
    """One request written byte for byte on a socket of its own, read until the bot closes it: the answer's
    status line and headers, and its body."""
    import socket

    host, port = bot.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request_bytes)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head, payload


def tampered(method: str, query: str, body: dict | None, how: str) -> tuple[str, bytes | dict | None, str | None]:
    """The request changed as ``how`` says, with the header an attacker would send: (query, body, header)."""
    data = json.dumps(body).encode() if body is not None else b""
    good = signature.sign(SECRET, signature.signed_part(method, query.encode(), data))
    if how == "missing":
        return query, body, None
    if how == "wrong-prefix":
        return query, body, good.replace("sha256=", "sha1=")
    if how == "bare-hex":
        return query, body, good.removeprefix("sha256=")
    if how == "wrong-secret":
        return query, body, signature.sign("not-" + SECRET, signature.signed_part(method, query.encode(), data))
    if how == "one-byte-changed":  # over what the signature covers: the query for a GET, else the body
        if method == "GET":
            return query[:-1] + chr(ord(query[-1]) ^ 1), body, good  # v1 -> v0: still a valid call
        return query, data.replace(b", ", b",\t", 1), good  # still valid JSON: only the signature can tell
    if how == "replayed":  # a signature captured from another, valid call
        other = signature.signed_part(method, b"idConnectorVersion=v2", json.dumps({"idOperator": "x"}).encode())
        return query, body, signature.sign(SECRET, other)
    raise ValueError(how)


HOW = ["missing", "wrong-prefix", "bare-hex", "wrong-secret", "one-byte-changed", "replayed"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("method, path, query, body", ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_every_endpoint_refuses_a_forged_call(bot, method, path, query, body, how):
    sent_query, sent_body, header = tampered(method, query, body, how)
    response = send(bot, method, path, sent_query, sent_body, header)
    assert response.status_code == 401, response.text
    assert_fits("error.response", response.json())
    assert SECRET not in response.text
    # the same call, signed as iAdvize signs it, is served: the refusal was the signature's
    assert send(bot, method, path, query, body).status_code == 200


def test_the_secret_and_signatures_appear_in_no_log_line(bot):
    send(bot, "GET", "/external-bots", "idConnectorVersion=v1", None, header="sha256=" + "0" * 64)
    send(bot, "POST", "/conversations/c-log/messages", "idConnectorVersion=v1", {"broken": True})
    logged = bot.log_path.read_text(encoding="utf-8")
    assert '"status": 401' in logged and '"path": "/conversations/c-log/messages"' in logged  # calls were logged
    assert SECRET not in logged and signature.HEADER not in logged and "sha256=" not in logged


def test_a_body_over_the_limit_is_413_and_deep_json_is_400_both_named(bot):
    big = b'{"idOperator": "' + b"x" * (1024 * 1024) + b'"}'
    # A body over the limit is answered unread and gunicorn then drops the connection (it cannot
    # say so in the answer): sent on a connection of its own, as a careful caller would.
    response = bot.session.post(
        f"{bot.url}/conversations?idConnectorVersion=v1",
        data=big,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "Connection": "close",
            signature.HEADER: signature.sign(SECRET, big),
        },
    )
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]
    deep = b"[" * 100_000 + b"]" * 100_000
    response = send(bot, "POST", "/conversations", "idConnectorVersion=v1", deep)
    assert response.status_code == 400 and response.json()["detail"] == "the body is nested too deeply"


def test_what_was_sent_comes_back_in_errors_escaped(bot):
    attack = "<script>alert(1)</script>"
    response = send(bot, "GET", f"/bots/{attack}", "idConnectorVersion=v1", None)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert attack in response.json()["detail"]  # named, so the caller sees what was wrong...
    assert "<" not in response.text and ">" not in response.text  # ...as JSON escapes, never as markup
    body = {"idOperator": OPERATOR, "idConversation": "c", "history": [{"idMessage": attack}]}
    response = send(bot, "POST", "/conversations", "idConnectorVersion=v1", body)
    assert response.status_code == 400 and "<" not in response.text


def test_a_chunked_body_over_the_limit_is_413_not_taken_for_a_forgery(bot):
    size = 1024 * 1024 + 1024
    body = b'{"idOperator": "' + b"x" * size + b'"}'
    parts = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    head, payload = raw(
        bot,
        b"POST /conversations?idConnectorVersion=v1 HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
        + f"{signature.HEADER}: {signature.sign(SECRET, body)}\r\n\r\n".encode()
        + chunks
        + b"0\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 413") and b"application/json" in head
    assert json.loads(payload)["detail"] == "the body is larger than the 1048576 bytes this bot accepts"


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /external-bots?" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: bot\r\n\r\n", 414),
        (
            b"GET /external-bots HTTP/1.1\r\nHost: bot\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(200))
            + b"\r\n",
            431,
        ),
        (b"GET /bots/\xed\xa0\x80 HTTP/1.1\r\nHost: bot\r\n\r\n", 400),  # a raw surrogate in an id
        (b"GARBAGE\r\n\r\n", 400),
    ],
    ids=["request line too long", "too many headers", "raw surrogate bytes", "no request line"],
)
def test_the_http_server_s_own_errors_are_json_like_every_answer(bot, request_bytes, status):
    head, payload = raw(bot, request_bytes)
    assert head.startswith(b"HTTP/1.1 %d" % status) and b"Content-Type: application/json" in head
    assert_fits("error.response", json.loads(payload))


def test_clients_that_trickle_their_headers_hold_no_thread_and_the_health_check_is_answered(bot):
    import socket
    import threading

    from reference_bot.worker import HEADERS_SECONDS

    host, port = bot.url.removeprefix("http://").split(":")
    trickling = [socket.create_connection((host, int(port)), timeout=30) for _ in range(8)]  # 2 workers x 2 threads
    stop = threading.Event()

    def trickle(connection) -> None:  # a byte every half second: the whole head would take minutes
        for byte in b"GET /external-bots HTTP/1.1\r\nHost: bot\r\nX-Slow: " + b"a" * 500:
            if stop.is_set():
                return
            try:
                connection.send(bytes([byte]))
            except OSError:
                return  # dropped by the bot
            stop.wait(0.5)

    threads = [threading.Thread(target=trickle, args=(c,), daemon=True) for c in trickling]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):  # while they trickle, the health check is served: no thread waits on their headers
            assert requests.get(f"{bot.url}/healthcheck", timeout=20).status_code == 200
        for connection in trickling:  # and each is dropped once its head is late
            connection.settimeout(HEADERS_SECONDS * 4)
            try:
                said = connection.recv(1024)
            except ConnectionResetError:  # closed while it was still sending: dropped too
                said = b""
            assert said == b""
    finally:
        stop.set()
        for connection in trickling:
            connection.close()


@pytest.mark.parametrize(
    "method, path, body",
    [  # each found by the raw-bytes fuzz: a 500 (a raw surrogate reached SQLite), an HTML redirect (a 308 to an
        # address built from the Host header)
        ("POST", "/conversations", b'{"idOperator": "\xed\xa0\x80", "idConversation": "c-1"}'),
        ("GET", "/bots/%2F/conversation-first-messages", None),
    ],
    ids=["raw surrogate bytes in a body", "an id of %2F"],
)
def test_what_the_raw_bytes_fuzz_found_is_answered_in_json(bot, method, path, body):
    headers = (
        {"Content-Type": "application/json", signature.HEADER: signature.sign(SECRET, body)}
        if body
        else {signature.HEADER: signature.sign(SECRET, b"idConnectorVersion=v1")}
    )
    response = bot.session.request(method, f"{bot.url}{path}?idConnectorVersion=v1", data=body, headers=headers,
                                   timeout=10, allow_redirects=False)  # fmt: skip
    assert 400 <= response.status_code < 500 and response.headers["Content-Type"] == "application/json"
    assert_fits("error.response", response.json())
    assert "Location" not in response.headers


@pytest.mark.parametrize("chunks", [b"zz\r\nab\r\n0\r\n\r\n", b"-1\r\nab\r\n0\r\n\r\n", b"2\r\nabXX0\r\n\r\n"],
                         ids=["not hexadecimal", "negative", "no CRLF after the data"])  # fmt: skip
def test_a_malformed_chunked_body_is_a_json_400_not_a_500(bot, chunks):
    head, payload = raw(
        bot,
        b"POST /conversations?idConnectorVersion=v1 HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
        + f"{signature.HEADER}: {signature.sign(SECRET, b'ab')}\r\n\r\n".encode()
        + chunks,
    )
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, head
    assert_fits("error.response", json.loads(payload))

"""The recording proxy, between a client signing like iAdvize and a real bot over HTTP; and the bot's
own recording switch. Both recordings replay to the same replies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from harness.client import BotClient, echo_of, visitor_text
from harness.traffic.proxy import RecordingProxy
from harness.traffic.recordings import Corrupt, read
from harness.traffic.replay import replay
from harness.wire.record_format import RecordingWriter

from .conftest import RULES, LoopbackServer

SECRET = "proxy-secret"


def converse(url: str, secret=SECRET) -> list[dict]:
    client = BotClient(url, secret=secret)
    client.save_bot("ha-7", {"distributionRules": RULES, "external": {"idBot": "order-assistant"}})
    client.first_messages("ha-7")
    client.start_conversation("ha-7", "conv-p")
    answers = []
    for text in ("Hi", "Today's offers"):
        answer = client.send_message("conv-p", "ha-7", visitor_text(text))
        answers.append(answer)
        for reply in answer["replies"]:
            if reply["type"] == "message":
                client.send_message("conv-p", "ha-7", echo_of(reply))
    return answers


@pytest.fixture
def signed_bot(make_bot):
    with LoopbackServer(make_bot(IADVIZE_SECRET=SECRET)) as server:
        yield server


def test_the_proxy_forwards_signed_calls_intact_and_records_them(signed_bot, tmp_path):
    proxy = RecordingProxy(signed_bot.url, str(tmp_path)).start()
    try:
        answers = converse(proxy.url)  # the bot checks every signature: they arrive as signed
    finally:
        proxy.close()
    assert answers[0]["replies"][0]["payload"]["value"] == "What can I do for you?"
    lines = list(read([tmp_path]))
    assert not [x for x in lines if isinstance(x, Corrupt)]
    assert [x["endpoint"] for x in lines][:4] == ["bot.save", "first-messages", "conversations", "messages"]
    assert {x["status"] for x in lines} == {200}
    conversation = [x for x in lines if x["conversation"] == "conv-p"]
    assert [x["seq"] for x in conversation] == list(range(len(conversation)))
    assert conversation[1]["request"]["message"]["payload"]["value"] == "Hi"
    assert conversation[1]["response"]["replies"] == answers[0]["replies"]


def test_a_recorder_that_fails_never_breaks_the_forwarding(signed_bot, tmp_path, monkeypatch):
    def disk_full(self, line):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RecordingWriter, "write", disk_full)
    proxy = RecordingProxy(signed_bot.url, str(tmp_path)).start()
    try:
        answers = converse(proxy.url)
    finally:
        proxy.close()
    assert answers[1]["replies"][2]["payload"]["contentType"] == "bundle/product-offer"
    assert proxy.recorder.failed > 0


def test_an_unreachable_bot_is_a_502_and_recorded_as_an_error(tmp_path):
    proxy = RecordingProxy("http://127.0.0.1:9", str(tmp_path)).start()
    try:
        exchange = BotClient(proxy.url).exchange("external-bots", "GET", "/external-bots", None)
    finally:
        proxy.close()
    assert exchange.status == 502 and exchange.body["error"] == "bad gateway"
    (line,) = list(read([tmp_path]))
    assert line["status"] is None and "Connection refused" in line["error"]


def test_the_recordings_of_the_proxy_and_of_the_bot_itself_replay_to_the_same_replies(make_bot, tmp_path):
    # the bot records itself, and a proxy in front of it records too
    with LoopbackServer(make_bot(RECORDINGS_DIR=str(tmp_path / "bot"))) as bot:
        proxy = RecordingProxy(bot.url, str(tmp_path / "proxy")).start()
        try:
            converse(proxy.url, secret=None)
        finally:
            proxy.close()
    own = [x for x in read([tmp_path / "bot"])]
    assert not [x for x in own if isinstance(x, Corrupt)] and len(own) == len(list(read([tmp_path / "proxy"])))
    for source in ("bot", "proxy"):
        with LoopbackServer(make_bot()) as fresh:
            summary = replay([tmp_path / source], fresh.url, tmp_path / f"out-{source}")
        assert (summary.conversations, summary.differences) == (1, 0), source


def test_the_command_refuses_a_bad_upstream(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "proxy",
            "--upstream",
            "ftp://x",
            "--record",
            str(tmp_path),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and result.stderr.splitlines()[0] == (
        "error: argument --upstream: must be a URL starting with http:// or https://, got 'ftp://x'"
    )
    assert result.stdout == ""


def test_a_hanging_bot_spoils_only_its_own_call_and_odd_bodies_are_handled(tmp_path, monkeypatch):
    import http.client
    import time as clock

    from flask import Flask, request

    from harness.traffic import proxy as proxy_module

    monkeypatch.setattr(proxy_module, "TIMEOUT_SECONDS", 0.5)
    app = Flask("upstream")
    app.add_url_rule("/hang", "hang", lambda: (clock.sleep(2), "late")[1])
    app.add_url_rule("/ok", "ok", lambda: "fine")
    app.add_url_rule("/echo", "echo", lambda: request.get_data(), methods=["POST"])
    with LoopbackServer(app) as upstream:
        proxy = RecordingProxy(upstream.url, str(tmp_path)).start()
        try:
            connection = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
            connection.request("GET", "/hang")
            hung = connection.getresponse()
            assert hung.status == 502 and b"timed out" in hung.read()
            connection.request("GET", "/ok")
            assert connection.getresponse().read() == b"fine"  # the next call on the same connection works
            connection.putrequest("POST", "/echo")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            assert connection.getresponse().read() == b"hello world"  # a chunked body arrives whole
            connection.putrequest("POST", "/echo")
            connection.putheader("Content-Length", "abc")
            connection.endheaders()
            answer = connection.getresponse()
            assert answer.status == 400 and b"is not a length" in answer.read()
        finally:
            proxy.close()


def test_the_proxy_sends_the_client_s_address_alone_never_a_chain_the_client_wrote(tmp_path):
    from flask import Flask, request

    app = Flask("upstream")
    app.add_url_rule("/who", "who", lambda: request.headers.get("X-Forwarded-For", ""))
    with LoopbackServer(app) as upstream:
        proxy = RecordingProxy(upstream.url, str(tmp_path)).start()
        try:
            assert requests.get(f"{proxy.url}/who", timeout=10).text == "127.0.0.1"
            forged = requests.get(f"{proxy.url}/who", headers={"X-Forwarded-For": "35.158.241.155"}, timeout=10)
            # the proxy is at the edge: a local client claiming iAdvize's address through it is still 127.0.0.1
            assert forged.text == "127.0.0.1"
        finally:
            proxy.close()


def test_silent_clients_are_dropped_and_connections_beyond_the_bound_get_a_503(tmp_path, monkeypatch):
    import socket

    from flask import Flask

    from harness.traffic import proxy as proxy_module

    monkeypatch.setattr(proxy_module, "CLIENT_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(proxy_module, "MAX_CLIENTS", 3)
    app = Flask("upstream")
    app.add_url_rule("/ok", "ok", lambda: "fine")
    with LoopbackServer(app) as upstream:
        proxy = RecordingProxy(upstream.url, str(tmp_path)).start()
        host, port = proxy.url.removeprefix("http://").split(":")
        try:
            silent = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]  # half a request
            for connection in silent:
                connection.sendall(b"GET /ok HTTP/1.1\r\n")
            extra = socket.create_connection((host, int(port)), timeout=10)
            extra.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(4096).startswith(b"HTTP/1.1 503")  # the three slots held: refused at once
            for connection in silent:  # each dropped after the client timeout, not held for ever
                assert connection.recv(4096) == b""
            assert requests.get(f"{proxy.url}/ok", timeout=10).text == "fine"  # their slots are free again
        finally:
            proxy.close()


def test_an_answer_too_large_to_hold_is_passed_on_whole_and_only_its_size_recorded(tmp_path, monkeypatch):
    import json

    from flask import Flask

    from harness.traffic import proxy as proxy_module

    monkeypatch.setattr(proxy_module, "RECORDED_ANSWER_BYTES", 1000)
    app = Flask("upstream")
    app.add_url_rule("/big", "big", lambda: "x" * 50_000)
    app.add_url_rule("/small", "small", lambda: {"fine": True})
    with LoopbackServer(app) as upstream:
        proxy = RecordingProxy(upstream.url, str(tmp_path)).start()
        try:
            assert requests.get(f"{proxy.url}/big", timeout=10).text == "x" * 50_000  # every byte passed on
            assert requests.get(f"{proxy.url}/small", timeout=10).json() == {"fine": True}
        finally:
            proxy.close()
    lines = [json.loads(line) for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    big = next(x for x in lines if x["path"] == "/big")
    assert big["response"] == {
        "not recorded": "an answer of 50000 bytes, over the 1000 recorded: passed on, not recorded"
    }
    assert next(x for x in lines if x["path"] == "/small")["response"] == {"fine": True}


def test_the_proxy_s_own_answers_are_json_and_it_forwards_head_and_any_byte_of_a_path(tmp_path):
    import socket

    from flask import Flask, request

    app = Flask("upstream")
    app.add_url_rule("/<path:anything>", "any", lambda anything: {"path": request.full_path}, methods=["GET", "HEAD"])
    with LoopbackServer(app) as upstream:
        proxy = RecordingProxy(upstream.url, str(tmp_path)).start()
        host, port = proxy.url.removeprefix("http://").split(":")

        def raw(request_bytes: bytes) -> bytes:
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(request_bytes)
                answer = b""
                while chunk := connection.recv(65536):
                    answer += chunk
            return answer

        try:
            head = requests.head(f"{proxy.url}/healthcheck", timeout=10)
            assert head.status_code == 200 and head.headers["Content-Type"] == "application/json"
            answer = raw(b"GET /bots/\xc3\xa9\xed\xbf\xbf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"\r\nServer:") == 1  # one Server, one Date
            assert b'"/bots/\\u00e9' in answer  # passed on, percent-encoded (http.client refuses raw bytes)
            for request_bytes, status in (
                (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
                (b"GET / HTTP/1.1\r\n" + b"X-Many: v\r\n" * 200 + b"\r\n", b"431"),
            ):
                answer = raw(request_bytes)
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 " + status) and b"application/json" in head
                assert json.loads(body)["detail"]
        finally:
            proxy.close()

"""harness.client: speaks the API as iAdvize does, and reports any bot's misbehaviour without hanging."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.client import MAX_BODY_BYTES, BotClient, BotError, echo_of, visitor_text
from harness.wire import signature

from .conftest import RULES, LoopbackServer

SECRET = "client-secret"


class FakeBot:
    """A bot that answers whatever the test tells it to, and remembers what it was sent."""

    def __init__(self):
        self.answer = lambda handler: handler.reply(200, b"[]")
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body: bytes, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake.answer(self)

            do_GET = do_PUT = do_POST = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    bot = FakeBot()
    yield bot
    bot.close()


# --- against the reference bot over loopback -----------------------------------------------


@pytest.fixture
def signed_bot(make_bot):
    with LoopbackServer(make_bot(IADVIZE_SECRET=SECRET)) as server:
        yield server


def test_all_seven_endpoints_return_validated_objects(signed_bot):
    client = BotClient(signed_bot.url, secret=SECRET)
    assert {b["idBot"] for b in client.external_bots()} == {"order-assistant", "hello"}
    saved = client.save_bot("ha-1", {"name": "Bot", "distributionRules": RULES, "external": {"idBot": "hello"}})
    assert saved["external"]["idBot"] == "hello"
    assert client.bot("ha-1")["idOperator"] == "ha-1"
    assert client.availability_strategies("ha-1") == [{"strategy": "customAvailability", "availability": True}]
    assert client.first_messages("ha-1") == {"replies": []}
    started = client.start_conversation("ha-1", "conv-1", history=[visitor_text("Hi")])
    assert (started["idConversation"], started["replies"]) == ("conv-1", [])
    answer = client.send_message("conv-1", "ha-1", visitor_text("Hi"))
    assert answer["replies"][0]["payload"]["value"].startswith("Hello! I'm a minimal demo bot")
    assert client.send_message("conv-1", "ha-1", echo_of(answer["replies"][0]))["replies"] == []


def test_an_error_answer_raises_with_its_status(signed_bot):
    with pytest.raises(BotError) as raised:
        BotClient(signed_bot.url, secret=SECRET).bot("ha-unknown")
    assert raised.value.status == 404
    assert "answered 404" in str(raised.value) and "unknown operator" in str(raised.value)


def test_without_the_secret_the_bot_refuses_the_client(signed_bot):
    with pytest.raises(BotError) as raised:
        BotClient(signed_bot.url).external_bots()
    assert raised.value.status == 401


# --- exactly as iAdvize calls ------------------------------------------------------------------


def test_every_call_carries_the_connector_version_and_website_and_is_signed(fake):
    client = BotClient(fake.url, secret=SECRET, id_connector_version="0f0e-v", id_website="ha-9")
    fake.answer = lambda h: h.reply(200, b'[{"strategy": "notAvailable"}]')
    client.availability_strategies("ha-1")
    fake.answer = lambda h: h.reply(
        200,
        json.dumps(
            {
                "idConversation": "c",
                "idOperator": "ha-1",
                "replies": [],
                "createdAt": "2026-11-24T10:00:00Z",
                "updatedAt": "2026-11-24T10:00:00Z",
            }
        ).encode(),
    )
    client.send_message("c", "ha-1", visitor_text("Hi"))

    get, post = fake.requests
    query = urlsplit(get["path"]).query
    assert parse_qs(query) == {"idConnectorVersion": ["0f0e-v"], "idWebsite": ["ha-9"], "idOperator": ["ha-1"]}
    assert signature.is_valid(SECRET, get["headers"][signature.HEADER], query.encode())
    assert urlsplit(post["path"]).path == "/conversations/c/messages"
    assert signature.is_valid(SECRET, post["headers"][signature.HEADER], post["body"])
    assert post["headers"]["Content-Type"] == "application/json"
    assert json.loads(post["body"])["message"]["author"] == {"role": "visitor"}


def test_a_signature_header_set_on_purpose_is_sent_as_it_is(fake):
    """A forged header (a probe) is never replaced by the client's own, nor dropped."""
    client = BotClient(fake.url, secret=SECRET)
    client.exchange("external-bots", "GET", "/external-bots", None, headers={"x-iadvize-signature": "sha1=abc"})
    client.exchange("external-bots", "GET", "/external-bots", None, headers={signature.HEADER: "sha256=" + "0" * 64})
    first, second = fake.requests
    assert [(k, v) for k, v in first["headers"].items() if k.lower() == "x-iadvize-signature"] == [
        ("x-iadvize-signature", "sha1=abc")
    ]
    assert second["headers"][signature.HEADER] == "sha256=" + "0" * 64


def test_the_signature_header_can_be_written_in_another_case_and_the_reference_bot_takes_it(make_bot):
    with LoopbackServer(make_bot(IADVIZE_SECRET=SECRET)) as server:
        lower = BotClient(server.url, secret=SECRET, signature_header="x-iadvize-signature")
        assert lower.external_bots()[0]["idBot"]  # accepted: header names are case-insensitive
        refused = BotClient(server.url, secret="other", signature_header="x-iadvize-signature").exchange(
            "external-bots", "GET", "/external-bots", None
        )
    assert refused.status == 401  # and still checked


def test_an_answer_that_does_not_fit_the_api_names_the_field(fake):
    fake.answer = lambda h: h.reply(200, b'[{"idBot": "x", "name": "X"}]')
    with pytest.raises(BotError) as raised:
        BotClient(fake.url).external_bots()
    assert "[0].editorUrl: is required" in str(raised.value)


def test_an_html_answer_is_not_json(fake):
    fake.answer = lambda h: h.reply(200, b"<html>oops</html>", "text/html")
    exchange = BotClient(fake.url).exchange("external-bots", "GET", "/external-bots", "external-bots.response")
    assert exchange.error == "the answer is not JSON" and exchange.body == "<html>oops</html>"


def test_a_hanging_bot_times_out_at_the_budget(fake):
    release, answered = threading.Event(), threading.Event()

    def hang(handler):
        release.wait(60)  # holds the call until the test is done with it (60 s: a hang guard only)
        answered.set()

    fake.answer = hang
    try:
        exchange = BotClient(fake.url, budget=0.5).exchange("external-bots", "GET", "/external-bots", None)
        assert exchange.error == "no complete answer within the 0.5 s iAdvize waits"
        assert fake.requests and not answered.is_set()  # it gave up while the bot still held the call
    finally:
        release.set()


def test_first_messages_has_its_own_shorter_budget(fake):
    fake.answer = lambda h: (time.sleep(1.0), h.reply(200, b'{"replies": []}'))
    client = BotClient(fake.url, budget=10, first_messages_budget=0.3)
    with pytest.raises(BotError, match=r"within the 0\.3 s"):
        client.first_messages("ha-1")


def test_a_bot_trickling_its_answer_byte_by_byte_times_out(fake):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)

    fake.answer = trickle
    exchange = BotClient(fake.url, budget=0.6).exchange("external-bots", "GET", "/external-bots", None)
    assert exchange.error == "no complete answer within the 0.6 s iAdvize waits"


def test_a_bot_that_stalls_after_its_headers_times_out(fake):
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"[")
        handler.wfile.flush()
        time.sleep(3)

    fake.answer = stall
    exchange = BotClient(fake.url, budget=0.5).exchange("external-bots", "GET", "/external-bots", None)
    assert exchange.error == "no complete answer within the 0.5 s iAdvize waits"


def test_a_bot_closing_the_connection_mid_answer_is_a_connection_failure(fake):
    def hang_up(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'[{"idBot"')
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(2)

    fake.answer = hang_up
    exchange = BotClient(fake.url).exchange("external-bots", "GET", "/external-bots", None)
    assert exchange.status is None
    assert exchange.error.startswith("connection failed (") and "IncompleteRead" in exchange.error


def test_a_gigantic_answer_is_cut_off(fake):
    fake.answer = lambda h: h.reply(200, b"[" + b"1," * (MAX_BODY_BYTES // 2 + 10) + b"1]")
    exchange = BotClient(fake.url).exchange("external-bots", "GET", "/external-bots", None)
    assert exchange.error == f"the answer is larger than {MAX_BODY_BYTES} bytes"


def test_a_closed_port_is_a_connection_failure():
    exchange = BotClient("http://127.0.0.1:9").exchange("external-bots", "GET", "/external-bots", None)
    assert exchange.status is None and exchange.error.startswith("connection failed (")
    assert "refused" in exchange.error


def test_every_exchange_is_seen_by_the_observer(fake):
    seen = []
    fake.answer = lambda h: h.reply(500, b'{"error": "boom"}')
    client = BotClient(fake.url, on_exchange=seen.append)
    with pytest.raises(BotError):
        client.external_bots()
    assert [(e.endpoint, e.status, e.body) for e in seen] == [("external-bots", 500, {"error": "boom"})]
    assert seen[0].latency_ms > 0 and seen[0].sent_at.endswith("Z")


@pytest.mark.parametrize(
    "strategies",
    [
        [{"strategy": "atLeastOne", "distributionRulesToCheck": ["r1", "r2"]}],
        [{"strategy": "all", "distributionRulesToCheck": ["r1"]}],
        [{"strategy": "notAvailable"}],
        [{"strategy": "customAvailability", "availability": False}],
    ],
    ids=lambda s: s[0]["strategy"],
)
def test_each_availability_strategy_shape_is_read(fake, strategies):
    fake.answer = lambda h: h.reply(200, json.dumps(strategies).encode())
    assert BotClient(fake.url).availability_strategies("ha-1") == strategies


@pytest.mark.parametrize(
    "strategies, field",
    [
        ([{"strategy": "atLeastOne"}], "[0].distributionRulesToCheck: is required"),
        ([{"strategy": "customAvailability"}], "[0].availability: is required"),
        ([{"strategy": "sometimes"}], "[0].strategy: must be one of"),
    ],
    ids=["atLeastOne-without-rules", "custom-without-availability", "unknown"],
)
def test_a_strategy_missing_what_its_shape_needs_is_refused(fake, strategies, field):
    fake.answer = lambda h: h.reply(200, json.dumps(strategies).encode())
    with pytest.raises(BotError, match=re.escape(field)):
        BotClient(fake.url).availability_strategies("ha-1")


def test_the_client_honours_proxy_and_ca_settings_read_once_from_the_environment(monkeypatch):
    from harness.client import environment_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "bot.internal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    through_proxy = environment_session("https://bot.example.com")
    assert through_proxy.proxies.get("https") == "http://proxy.internal:3128"
    assert through_proxy.verify == "/etc/ssl/company-ca.pem"
    assert environment_session("https://bot.internal").proxies == {}  # NO_PROXY covers it
    monkeypatch.delenv("HTTPS_PROXY")
    assert through_proxy.proxies.get("https") == "http://proxy.internal:3128"  # read once, at creation


def test_an_excerpt_reads_only_a_page_s_start_and_any_html_a_bot_sends():
    from harness.client import EXCERPT_SCAN_CHARS, Exchange, excerpt

    def page(body: str) -> Exchange:
        return Exchange("messages", "POST", "u", None, "t", body=body, content_type="text/html")

    late = "<p>" + "x " * EXCERPT_SCAN_CHARS + "</p><title>Too far</title>"
    assert "Too far" not in excerpt(page(late))  # past the part read: never looked at
    for attack in ("<" * 5_000_000, "<title" * 800_000, "<script" * 700_000, "<style></style>" * 300_000):
        said = excerpt(page(attack))  # each once froze check and verify at 100 % CPU (a quadratic regex)
        assert said.startswith("text/html") and len(said) <= 160
    assert excerpt(page("<html><head><title>Oops</title><script>var a='<b>';</script></head><body><h1>Bad gateway"
                        "</h1></body></html>")) == "text/html: Oops / Bad gateway"  # fmt: skip

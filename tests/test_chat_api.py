"""The chat page's JSON API as a script (or a curious user) calls it, without a browser: every answer JSON and
one clear line, whatever the input; settings that apply to the next conversation, all or nothing."""

from __future__ import annotations

import pytest

from harness.bots import bot
from harness.chat.app import create_app
from harness.chat.session import ChatSession
from harness.client import BotClient

OTHER = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def reference_bot():
    with bot() as url:
        yield url


@pytest.fixture
def page(reference_bot):
    session = ChatSession(BotClient(reference_bot), scenario="order-assistant")
    app = create_app(session)
    app.testing = True
    with app.test_client() as client:
        client.session = session
        yield client


def test_odd_input_is_one_json_line_never_a_500(page):
    assert page.post("/api/new").get_json() == {"ok": True}
    for path, body in (("/api/wait", b'{"seconds": NaN}'), ("/api/wait", b'{"seconds": 1e400}'),
                       ("/api/wait", b'{"seconds": "180"}')):  # fmt: skip
        answered = page.post(path, data=body, content_type="application/json")
        assert answered.status_code == 400 and answered.get_json()["error"].startswith("say which wait"), body
    assert page.get("/api/events?since=%C2%B2&apiSince=99999999999999").status_code == 200
    too_big = page.post("/api/file?name=x.png", data=b"\x89PNG" + bytes(12 * 1024 * 1024), content_type="image/png")
    assert too_big.status_code == 413 and too_big.get_json() == {
        "error": "too large: a file or a recording of up to 10 MB"
    }
    assert page.get("/api/nowhere").status_code == 404 and "error" in page.get("/api/nowhere").get_json()
    assert page.put("/api/say").status_code == 405 and "error" in page.put("/api/say").get_json()
    assert page.get("/api/calls/9999/fates").get_json() == {"error": "no call 9999 in this conversation"}


def test_a_file_s_name_is_its_own_and_its_address_serves_it(page):
    page.post("/api/new")
    sent = page.post("/api/file?name=../../etc/pass%2Fwd.png", data=b"\x89PNG-bytes", content_type="image/png")
    assert sent.get_json() == {"ok": True}
    posted = [e["request"]["message"]["payload"] for e in page.get("/api/events").get_json()["events"]
              if e["kind"] == "call" and e["purpose"] == "visitor"][-1]  # fmt: skip
    assert posted["fileName"] == "wd.png"  # no folder of the visitor's
    served = page.get(posted["url"].split("//", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert served.status_code == 200 and served.data == b"\x89PNG-bytes"


def test_rules_changed_mid_conversation_apply_to_the_next_one(page):
    page.post("/api/new")
    rules = [{"id": OTHER, "label": "Other", "available": True}]
    assert page.post("/api/settings", json={"rules": rules}).get_json() == {"ok": True}
    for said in ("I want to talk to a person", "none", "ada@example.com"):
        page.post("/api/say", json={"text": said})
    events = page.get("/api/events").get_json()["events"]
    found = {f["rule"] for e in events if e["kind"] == "call" for f in e["findings"]}
    assert any(e["kind"] == "transfer" for e in events)
    assert "transfer-unknown-rule" not in found  # the rule the bot was given when the conversation opened
    script = page.get("/api/script").get_data(as_text=True)
    assert "label: Customer service" in script and "label: Other" not in script  # the rules it was opened with
    assert page.post("/api/new").get_json() == {"ok": True}
    assert page.session.opened_with == [{"id": OTHER, "label": "Other"}]  # the next conversation has them


def test_settings_are_applied_all_or_nothing(page):
    before = page.get("/api/settings").get_json()
    answered = page.post("/api/settings", json={"language": "fr", "rules": []})
    assert answered.status_code == 409 and answered.get_json() == {
        "error": "give the operator 1 to 10 distribution rules"
    }
    assert page.get("/api/settings").get_json()["language"] == before["language"]  # nothing half applied

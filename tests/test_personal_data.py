"""Personal data in recordings: replaced by pseudonyms of the same shape, stable within a conversation, so a
redacted recording still replays and reports; files for their owner only; old ones deleted; refused calls not
kept; ``--keep-personal-data`` said first."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time

from harness.client import BotClient, echo_of, visitor_text
from harness.traffic.proxy import RecordingProxy
from harness.traffic.recordings import read
from harness.traffic.replay import replay
from harness.wire.record_format import RecordingWriter
from harness.wire.redact import Redactor

from .conftest import RULES, LoopbackServer

EMAIL, PHONE, CARD = "ada.lovelace@example.org", "06 12 34 56 78", "4111 1111 1111 1111"


def said_by(role: str, text: str) -> dict:
    return {"message": {"author": {"role": role}, "payload": {"contentType": "text", "value": text}}}


def test_each_kind_becomes_a_pseudonym_of_its_shape_the_same_within_a_conversation():
    redactor = Redactor()
    said = f"I'm {EMAIL}, call {PHONE} or +44 20 7946 0958; card {CARD}; order 654321"
    line = {"conversation": "c-1", "path": "/conversations/c-1/messages",
            "request": {"message": {"author": {"role": "visitor"}, "payload": {"contentType": "text", "value": said}}},
            "response": {"replies": [{"type": "message", "payload": {"contentType": "text",
                                                                     "value": f"Noted: {EMAIL}, order 654321"}}],
                         "variables": [{"key": "order_number", "value": "654321"}]}}  # fmt: skip
    out = redactor.line(line)
    text = out["request"]["message"]["payload"]["value"]
    for value in (EMAIL, PHONE, "+44 20 7946 0958", CARD, "654321"):
        assert value not in str(out), value
    assert out["path"] == line["path"]  # iAdvize's ids: replay matches on them
    words = text.split()
    email = next(w for w in words if "@" in w)
    assert len(email.rstrip(",")) == len(EMAIL) and email.count("@") == 1  # an email still, of its length
    order = words[-1]
    assert order.isdigit() and len(order) == 6  # still six digits: the bot's pattern still finds it
    answer = out["response"]["replies"][0]["payload"]["value"]
    assert email in answer and order in answer  # the same value, the same pseudonym, within the conversation
    assert out["response"]["variables"][0]["value"] == order
    other = redactor.line({**line, "conversation": "c-2"})
    assert other["request"]["message"]["payload"]["value"] != text  # another conversation, other pseudonyms
    assert "1111" not in text and "4111" not in text
    numbers = "my numbers: 06 12 34 56 78 06 98 76 54 32, iban FR76 3000 6000 0112"
    together = redactor.line({"conversation": "c-3", "request": said_by("visitor", numbers)})
    assert not re.search(r"06 12|98 76|3000 6000", str(together))  # run together, or not a phone: still replaced
    human = redactor.line({"conversation": "c-1", "request": said_by("operator", "Call me on 07 66 55 44 33")})
    assert "07 66 55 44 33" not in str(human)  # a human's words are searched too (no echo of the bot's)
    assert redactor.line({"conversation": "c", "request": "x" * 30_000, "response": None})["request"].startswith(
        "[30000 characters, not recorded"
    )  # too long to scan: left out, never written as it came
    # the bot's own words are not a visitor's: in the echo of its answer its support address stays, and the
    # visitor's email it holds gets the same pseudonym
    own = f"Write to help@shop.example; you: {EMAIL}"
    answered = {"replies": [{"type": "message", "payload": {"contentType": "text", "value": own}}]}
    redactor.line({"conversation": "c-1", "request": said_by("visitor", "ok"), "response": answered})
    later = redactor.line({"conversation": "c-1", "request": said_by("operator", own)})  # its echo
    assert later["request"]["message"]["payload"]["value"] == f"Write to help@shop.example; you: {email.rstrip(',')}"


def test_files_are_their_owner_s_only_and_recordings_past_their_retention_are_deleted(tmp_path):
    old = tmp_path / "proxy-20200101-00.jsonl"
    old.write_text("{}\n", encoding="utf-8")
    os.utime(old, (time.time() - 10 * 86_400,) * 2)
    zipped = tmp_path / "proxy-20200102-00.jsonl.gz"  # a format replay reads too
    zipped.write_bytes(b"")
    os.utime(zipped, (time.time() - 10 * 86_400,) * 2)
    recent = tmp_path / "proxy-recent.jsonl"
    recent.write_text("{}\n", encoding="utf-8")
    with RecordingWriter(tmp_path, "proxy", retention_days=7) as writer:
        writer.write({"v": 1})
    assert not old.exists() and not zipped.exists() and recent.exists()
    (written,) = [p for p in tmp_path.glob("proxy-2*.jsonl")]
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def converse(url: str) -> None:
    client = BotClient(url)
    client.save_bot("ha-7", {"distributionRules": RULES, "external": {"idBot": "order-assistant"}})
    client.first_messages("ha-7")
    client.start_conversation("ha-7", "conv-pii")
    for text in ("Hi", "Talk to a person", "It's 654321", f"{EMAIL}, or call me on {PHONE}"):
        for reply in client.send_message("conv-pii", "ha-7", visitor_text(text))["replies"]:
            if reply["type"] == "message":
                client.send_message("conv-pii", "ha-7", echo_of(reply))


def test_a_conversation_recorded_through_the_proxy_holds_no_email_nor_phone_and_still_replays_and_reports(
    make_bot, tmp_path
):
    from harness.analysis.report import build

    with LoopbackServer(make_bot()) as bot:
        proxy = RecordingProxy(bot.url, str(tmp_path / "recorded")).start()
        try:
            converse(proxy.url)
        finally:
            proxy.close()
    raw = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "recorded").glob("*.jsonl"))
    for value in (EMAIL, PHONE, PHONE.replace(" ", ""), "654321"):
        assert value not in raw, value  # grep finds none of them
    lines = list(read([tmp_path / "recorded"]))
    asked = [x for x in lines if x["endpoint"] == "messages" and x["request"]["message"]["author"]["role"] == "visitor"]
    assert asked[-1]["response"]["variables"]  # the bot took the pseudonyms for an email and an order number
    with LoopbackServer(make_bot(DATABASE=str(tmp_path / "fresh.sqlite3"))) as fresh:  # a bot that never saw it
        summary = replay([tmp_path / "recorded"], fresh.url, tmp_path / "results")
    assert (summary.conversations, summary.differences) == (1, 0)  # the bot answers the pseudonyms as it did
    page = build(tmp_path / "results", tmp_path / "report.html").read_text(encoding="utf-8")
    assert "transfer" in page and EMAIL not in page


def test_the_bot_s_recorder_keeps_no_refused_call_and_the_first_line_says_what_recordings_keep(make_bot, tmp_path):
    app = make_bot(RECORDINGS_DIR=str(tmp_path / "rec"), IADVIZE_SECRET="s3cret")
    client = app.test_client()
    forged = client.post("/conversations?idConnectorVersion=v1", json={"idOperator": "ha-1", "secret": EMAIL},
                         headers={"X-iAdvize-Signature": "sha256=" + "0" * 64})  # fmt: skip
    assert forged.status_code == 401
    assert "".join(p.read_text() for p in (tmp_path / "rec").glob("*.jsonl")) == ""  # nothing of it kept
    env = {**os.environ, "REFERENCE_BOT_RECORDINGS": str(tmp_path / "rec2"), "IADVIZE_SECRET": "s3cret"}
    for keep, said in (("", "personal data replaced"), ("1", "personal data KEPT")):
        started = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", "0", "--db", str(tmp_path / "db.sqlite3")],
            stdout=subprocess.PIPE, text=True, env={**env, "REFERENCE_BOT_RECORDINGS_KEEP_PERSONAL_DATA": keep},
        )  # fmt: skip
        try:
            first = started.stdout.readline()
        finally:
            started.terminate()
            started.wait(timeout=30)
        assert first.startswith("reference bot on http://") and said in first, first

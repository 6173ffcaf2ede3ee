"""Recordings: the format, its streaming reader, the seeded sample, and replay against real bots."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from harness.client import BotClient
from harness.conformance.iadvize_api import IAdvizeAPI
from harness.traffic.recordings import Corrupt, RecordingWriter, read, render_schema
from harness.traffic.replay import replay
from harness.traffic.sample import generate
from reference_bot.dialogue import Answer, answer

from .conftest import ROOT, LoopbackServer

SAMPLE = ROOT / "notebooks" / "data" / "sample.jsonl.gz"
PUBLIC_URL = "https://bot.example.com"


@pytest.fixture
def api():
    """The local iAdvize API: the sample was recorded with the bot posting its slow answers through it."""
    with IAdvizeAPI() as served:
        yield served


@pytest.fixture
def api_bot(make_bot, api):
    """Makes the reference bot as the sample recorded it: pointed at the local API, its outbox running."""

    def make(**overrides):
        return make_bot(PUBLIC_URL=PUBLIC_URL, OUTBOX_POLL_SECONDS=0.5, **api.reference_bot_settings(), **overrides)

    return make


def test_the_committed_recording_schema_is_the_one_the_code_checks():
    assert (ROOT / "contracts" / "schemas" / "recording.v1.json").read_text(encoding="utf-8") == render_schema()


def test_the_writer_starts_a_new_file_every_hour(tmp_path):
    now = [1_700_000_000.0]
    writer = RecordingWriter(tmp_path, clock=lambda: now[0])
    line = {
        "v": 1,
        "conversation": "c",
        "operator": "ha-1",
        "seq": 0,
        "endpoint": "messages",
        "method": "POST",
        "path": "/conversations/c/messages",
        "request": None,
        "status": 200,
        "response": {},
        "sent_at": "2023-11-14T22:13:20.000Z",
        "latency_ms": 3.5,
        "error": None,
    }
    writer.write(line)
    now[0] += 3600
    writer.write({**line, "seq": 1})
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["recording-20231114-22.jsonl", "recording-20231114-23.jsonl"]
    assert [r["seq"] for r in read([tmp_path])] == [0, 1]


def test_corrupt_lines_are_reported_with_file_and_line_and_the_rest_is_read(tmp_path):
    good = next(line for line in read([SAMPLE]) if line["conversation"])
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                json.dumps({**good, "v": 2}),
                json.dumps({**good, "seq": -1}),
                json.dumps(good),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    found = list(read([path]))
    assert [type(x).__name__ for x in found] == ["dict", "Corrupt", "Corrupt", "Corrupt", "dict"]
    assert [str(x) for x in found if isinstance(x, Corrupt)] == [
        f"{path}:2: not JSON (Expecting property name enclosed in double quotes)",
        f"{path}:3: recording format v2, this reader knows v1",
        f"{path}:4: seq: -1 is less than the minimum of 0",
    ]


def test_a_truncated_gzip_is_reported_not_raised(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(SAMPLE.read_bytes()[:20_000])
    found = list(read([path]))
    assert isinstance(found[-1], Corrupt) and "unreadable" in found[-1].why
    assert len([x for x in found if isinstance(x, dict)]) > 10


def make_sample(make_bot, tmp_path, conversations=12, seed=5):
    # a bot and an API of its own: the same seed gives the same conversation ids, which must be new to both
    with IAdvizeAPI() as api:
        bot = make_bot(
            PUBLIC_URL=PUBLIC_URL,
            OUTBOX_POLL_SECONDS=0.5,
            DATABASE=str(tmp_path / "bot.sqlite3"),
            **api.reference_bot_settings(),
        )
        with LoopbackServer(bot) as server:
            return generate(BotClient(server.url, id_connector_version="fixed"), conversations, seed, tmp_path, api=api)


def test_the_sample_is_the_same_for_the_same_seed_and_differs_for_another(make_bot, tmp_path):
    first = make_sample(make_bot, tmp_path / "a").read_bytes()
    assert make_sample(make_bot, tmp_path / "b").read_bytes() == first
    assert make_sample(make_bot, tmp_path / "c", seed=6).read_bytes() != first


def test_the_committed_sample_is_a_week_of_varied_conversations():
    everything = list(read([SAMPLE]))
    assert not [line for line in everything if isinstance(line, Corrupt)]
    lines = [line for line in everything if line["conversation"]]
    conversations = {line["conversation"] for line in lines}
    assert len(conversations) == 2000
    days = {line["sent_at"][:10] for line in lines}
    assert len(days) >= 7
    latencies = pd.Series([line["latency_ms"] for line in lines])
    assert latencies.quantile(0.99) > 5 * latencies.median()  # a heavy tail
    payloads = {
        json.dumps(line["request"]["message"]["payload"]["contentType"])
        for line in lines
        if line["endpoint"] == "messages"
    }
    assert '"file"' in payloads
    replies = [r["type"] for line in lines for r in (line["response"] or {}).get("replies", [])]
    assert {"await", "message", "transfer", "close"} <= set(replies)


def test_replaying_the_sample_against_the_reference_bot_reproduces_it(api_bot, api, tmp_path):
    with LoopbackServer(api_bot()) as server:
        summary = replay([SAMPLE], server.url, tmp_path, concurrency=3, limit=80, api=api)
    exchanges = pd.read_parquet(tmp_path / "exchanges.parquet")
    conversations = pd.read_parquet(tmp_path / "conversations.parquet")
    assert summary.conversations == 80 == len(conversations)
    assert summary.differences == 0 and exchanges["same"].all()
    assert set(conversations["outcome"]) >= {"resolved", "closed by bot", "escalated"}
    escalated = conversations[conversations["transfer"].notna()]
    assert (escalated["escalation_turn"] >= 1).all()
    # the step the visitor was at when asking, not the bot's own "passing you" answer
    assert not escalated["escalation_step"].str.startswith("I'm passing you").any()
    assert escalated["escalation_step"].notna().all()
    abandoned = conversations[conversations["outcome"] == "abandoned"]
    assert len(abandoned) and (abandoned["turns"] <= 1).any()
    # the visitor data the bot held: per answer, per conversation, and whether a transfer came prequalified
    assert (
        escalated["prequalified"].notna().all()
        and conversations["transfer"].isna().eq(conversations["prequalified"].isna()).all()
    )
    prequalified = escalated[escalated["prequalified"].astype(bool)]
    assert len(prequalified) and prequalified["variables"].str.contains('"email"').all()
    assert exchanges["variables"].dropna().str.contains("order_number").any()


def test_replaying_against_a_changed_bot_shows_the_differences(api_bot, api, tmp_path):
    def reworded(turn):
        said = answer(turn)
        return Answer(
            [
                {**r, "payload": {"contentType": "text", "value": "How may I help?"}}
                if r.get("payload", {}).get("value") == "What can I do for you?"
                else r
                for r in said.replies
            ],
            said.state,
            said.proactive,
            said.variables,
        )

    with LoopbackServer(api_bot(DIALOGUE=reworded)) as server:
        summary = replay([SAMPLE], server.url, tmp_path, limit=40, api=api)
    exchanges = pd.read_parquet(tmp_path / "exchanges.parquet")
    changed = exchanges[exchanges["same"] == False]  # noqa: E712 (a pandas mask)
    assert summary.differences == len(changed) > 0
    assert changed["replies"].str.contains("How may I help?").all()
    assert changed["recorded_replies"].str.contains("What can I do for you?").all()


def test_a_corrupt_line_is_skipped_and_counted_and_the_rest_replayed(api_bot, api, tmp_path):
    lines = gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()[:60]
    lines.insert(10, "{garbage")
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    told = []
    with LoopbackServer(api_bot()) as server:
        summary = replay([path], server.url, tmp_path / "out", on_skipped=told.append, api=api)
    corrupt = f"{path}:11: not JSON (Expecting property name enclosed in double quotes)"
    assert [str(c) for c in summary.skipped] == [corrupt] == [str(c) for c in told]  # told as it was met
    assert summary.conversations >= 4 and summary.failed_conversations == []
    assert "1 corrupt line skipped" in str(summary)


def test_a_missing_recording_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no recording at"):
        list(read([tmp_path / "nope.jsonl"]))


def sample_lines() -> list[str]:
    return gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()


def test_a_bad_byte_spoils_its_own_line_only(tmp_path):
    lines = [line.encode() for line in sample_lines()[:40]]
    lines[20] = lines[20][:30] + b"\xff" + lines[20][31:]
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    found = list(read([path]))
    assert [str(x) for x in found if isinstance(x, Corrupt)] == [f"{path}:21: not UTF-8"]
    assert len(found) == 40


def test_a_conversation_spread_over_two_files_is_replayed_whole(api_bot, api, tmp_path):
    lines = sample_lines()[:40]
    first = json.loads(lines[2])["conversation"]
    own = [line for line in lines if json.loads(line)["conversation"] == first]
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "a-10h.jsonl").write_text("\n".join(lines[:2] + own[:4]) + "\n", encoding="utf-8")
    (tmp_path / "rec" / "b-11h.jsonl").write_text("\n".join(own[4:]) + "\n", encoding="utf-8")
    with LoopbackServer(api_bot()) as server:
        summary = replay([tmp_path / "rec"], server.url, tmp_path / "out", api=api)
    assert (summary.conversations, summary.differences) == (1, 0)


def test_without_a_recorded_set_up_the_bot_s_operator_is_read_not_overwritten(api_bot, api, tmp_path):
    lines = [line for line in sample_lines()[2:60] if json.loads(line)["endpoint"] != "bot.save"]
    path = tmp_path / "no-setup.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = [{"id": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607", "label": "Customer service"}]
    with LoopbackServer(api_bot()) as server:
        client = BotClient(server.url)
        saved = client.save_bot(
            "ha-424242", {"name": "Staging bot", "distributionRules": rules, "external": {"idBot": "order-assistant"}}
        )
        summary = replay([path], server.url, tmp_path / "out", api=api)
        assert client.bot("ha-424242") == saved  # untouched
    assert summary.conversations >= 4 and summary.differences == 0


def test_an_odd_conversation_is_skipped_with_its_place_and_the_rest_replayed(api_bot, api, tmp_path):
    lines = sample_lines()[:60]
    records = [json.loads(line) for line in lines]
    odd = next(i for i, r in enumerate(records) if r["endpoint"] == "messages")
    records[odd]["request"]["message"]["author"] = "visitor"  # valid for the schema, not for a message
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    with LoopbackServer(api_bot()) as server:
        summary = replay([path], server.url, tmp_path / "out", api=api)
    assert summary.skipped == [] and len(summary.failed_conversations) == 1
    failed = summary.failed_conversations[0]
    assert failed.why.startswith("AttributeError: ") and str(failed).startswith(
        f"{path}:{failed.line}: conversation {records[odd]['conversation']} not replayed: AttributeError: "
    )
    assert failed.file == str(path) and summary.conversations >= 3
    assert "1 conversation failed" in str(summary)

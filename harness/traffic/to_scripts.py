"""Traffic made into conversation scripts: ``iadvize-harness scripts --from RECORDINGS``, and the
paths ``check`` explored (``check --save-scripts DIR``).

Each recorded conversation becomes one ``*.convo.yaml``: its visitor messages in order, with the
recorded gaps (so awaits and nudges play as they did), the operator as the recording set it up,
and, for each message, what the bot answered then as expectations. Replayed against the same
bot, the script passes; against a bot whose answer changed, its step fails and says how.

Exact expectations (the default) pin every reply by its place (``$.replies[N]...``): its text,
its payload's content type, its quick replies; transfers and closes too. ``loose`` keeps what a
reworded bot still honours: a piece of the first text, the quick replies offered, the payload
types, the transfer and the close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.traffic.recordings import DEFAULT_SCENARIO, Recorded, recorded_conversations, replies_of, sent_seconds
from harness.wire import text_of

LOOSE_TEXT_CHARS = 40  # how much of the first text a loose expectation keeps


@dataclass
class Written:
    """What ``write_scripts`` did: the files written, and the conversations left out, with why."""

    paths: list[Path]
    skipped: list[str]


def write_scripts(
    recordings: list, out: Path, loose: bool = False, limit: int | None = None, only: set[str] | None = None
) -> Written:
    """One script per recorded conversation (those in ``only`` when given, the first ``limit``) into ``out``."""
    operators: dict = {}
    scripts, skipped = [], []
    for recorded in recorded_conversations(recordings, [], operators):
        if only is not None and recorded.id not in only:
            continue
        if limit is not None and len(scripts) >= limit:
            break
        script = script_of(recorded, operators.get(recorded.operator), loose)
        if script is None:
            skipped.append(f"{recorded.id}: no visitor message answered in the recording")
            continue
        scripts.append(script)
    return Written(save_scripts(scripts, out), skipped)


def script_of(recorded: Recorded, settings: dict | None, loose: bool = False) -> dict | None:
    """The script of one recorded conversation (None when none of its visitor messages was answered)."""
    settings = settings or {}
    steps, last = [], None
    for line in recorded.visitor_lines:
        message, response = line["request"]["message"], line.get("response")
        if not isinstance(response, dict) or line.get("status") != 200:
            continue  # an answer that failed in the recording is no expectation of a working bot
        at = sent_seconds(line["sent_at"])
        payload = message.get("payload") or {}
        step: dict = {"visitor": payload["value"]} if payload.get("contentType") == "text" else {"payload": payload}
        if last is not None and at - last >= 1:
            step["after"] = f"{round(at - last)}s"
        step["expect"] = expectations(replies_of(response), loose)
        steps.append(step)
        last = at
    if not steps:
        return None
    first = next((s["visitor"] for s in steps if "visitor" in s), "a file")
    return {
        "name": f"recorded {recorded.id[:8]}: {first[:60]}",
        "scenario": (settings.get("external") or {}).get("idBot") or DEFAULT_SCENARIO,
        "operator": {
            "language": settings.get("language") or "en",
            "distributionRules": settings.get("distributionRules") or [],
        },
        "transfer_available": recorded.human_took_it,
        "steps": steps,
    }


def script_of_conversation(chat, rules: list[dict], language: str = "en", loose: bool = False) -> dict | None:
    """The script of a simulated conversation (one of ``check``'s probes): what its visitor said, what
    the bot answered then; None when no visitor message was answered."""
    steps, last = [], None
    for event in chat.events:
        exchange = event.exchange
        if event.kind != "call" or event.purpose != "visitor" or not exchange.ok:
            continue
        payload = exchange.request_body["message"]["payload"]
        step: dict = {"visitor": payload["value"]} if payload.get("contentType") == "text" else {"payload": payload}
        if last is not None and event.at - last >= 1:
            step["after"] = f"{round(event.at - last)}s"
        step["expect"] = expectations(replies_of(exchange.body), loose)
        steps.append(step)
        last = event.at
    if not steps:
        return None
    return {
        "name": chat.label or chat.id,
        "scenario": chat.scenario or DEFAULT_SCENARIO,
        "operator": {"language": language, "distributionRules": rules},
        "transfer_available": chat.handed_over,
        "steps": steps,
    }


def save_scripts(scripts: list[dict], out: Path) -> list[Path]:
    """The scripts written in ``out``, one file each, numbered and named by their first visitor message."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, script in enumerate(scripts, 1):
        path = out / f"{number:03d}-{_slug(script['steps'][0])}.convo.yaml"
        path.write_text(_yaml(script), encoding="utf-8")
        paths.append(path)
    return paths


def expectations(replies: list[dict], loose: bool = False) -> dict:
    """What the bot answered, as a step's ``expect``: exact (every reply by its place) or loose."""
    if not replies:
        return {"no_replies": True}
    kinds = [r.get("type") for r in replies]
    expect: dict = {"close": "close" in kinds}
    transfers = [r for r in replies if r.get("type") == "transfer"]
    if transfers:
        expect["transfer"] = {"rule": transfers[0].get("distributionRule")}
    expect.update(_loose(replies) if loose else {"jsonpath": _pinned(replies)})
    offered = [q.get("value") for r in replies for q in r.get("quickReplies") or [] if isinstance(q, dict)]
    if offered:
        expect["quick_replies"] = offered
    return expect


def _pinned(replies: list[dict]) -> dict:
    """Every reply by its place: its type, and its text or its payload's content type."""
    pinned = {}
    for index, reply in enumerate(replies):
        where = f"$.replies[{index}]"
        pinned[f"{where}.type"] = reply.get("type")
        payload = reply.get("payload") or {}
        if text_of(reply) is not None:
            pinned[f"{where}.payload.value"] = payload["value"]
        elif payload:
            pinned[f"{where}.payload.contentType"] = payload.get("contentType")
    return pinned


def _loose(replies: list[dict]) -> dict:
    """A piece of the first text, and the first payload type that is not text."""
    found = {}
    texts = [t for t in map(text_of, replies) if t is not None]
    if texts:
        found["text_contains"] = texts[0][:LOOSE_TEXT_CHARS]
    types = [(r.get("payload") or {}).get("contentType") for r in replies]
    if other := next((t for t in types if t and t != "text"), None):
        found["payload_type"] = other
    return found


def _slug(step: dict) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", str(step.get("visitor", "file")).casefold()).strip("-")
    return words[:40].rstrip("-") or "message"


def _yaml(script: dict, made: str = "from recorded traffic by `iadvize-harness scripts --from`") -> str:
    """A script as its file holds it, under a line saying where it comes from."""
    header = f"# Made {made}: what the bot answered then.\n"
    return header + yaml.safe_dump(script, sort_keys=False, allow_unicode=True, width=120)


def script_file(script: dict, made: str) -> str:
    """The text of a ``*.convo.yaml`` file holding ``script``, ``made`` saying how it was made."""
    return _yaml(script, made)

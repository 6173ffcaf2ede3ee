"""Traffic made into tests: scripts written from the committed sample pass against the bot they came
from and fail, saying what changed, against a bot whose one reply was reworded."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from harness.client import BotClient
from harness.conformance.iadvize_api import IAdvizeAPI
from harness.conformance.scripts import ScriptFailure, load_scripts, run_script
from harness.traffic.to_scripts import expectations, write_scripts
from reference_bot.dialogue import Answer, answer

from .conftest import LoopbackServer
from .test_notebooks import SAMPLE

GREETING, REWORDED = "What can I do for you?", "How may I help?"


def reworded(turn):
    said = answer(turn)
    replies = [
        {**r, "payload": {"contentType": "text", "value": REWORDED}}
        if r.get("payload", {}).get("value") == GREETING
        else r
        for r in said.replies
    ]
    return Answer(replies, said.state, said.proactive, said.variables)


def run_all(scripts, make_bot, **config) -> list[ScriptFailure]:
    failures = []
    with IAdvizeAPI() as api:  # the sample's slow answers were posted through it: so are the scripts'
        app = make_bot(OUTBOX_POLL_SECONDS=0.5, **api.reference_bot_settings(), **config)
        with LoopbackServer(app) as server:
            for script in scripts:
                try:
                    run_script(script, BotClient(server.url), api=api, proactive_wait=60)
                except ScriptFailure as failure:
                    failures.append(failure)
    return failures


def test_scripts_from_the_sample_pass_against_their_bot_and_fail_with_the_diff_against_a_reworded_one(
    make_bot, tmp_path
):
    written = write_scripts([SAMPLE], tmp_path / "scripts", limit=15)
    assert len(written.paths) == 15 and written.skipped == []
    scripts = load_scripts(tmp_path / "scripts")
    assert run_all(scripts, make_bot) == []  # the bot they came from
    failures = run_all(scripts, make_bot, DIALOGUE=reworded)
    greeted = [s for s in scripts if any(GREETING in str(step.expect) for step in s.steps)]
    assert greeted and len(failures) == len(greeted)  # each script that met the reworded reply, and only those
    problem = " ".join(failures[0].problems)
    assert f"is '{REWORDED}', expected '{GREETING}'" in problem  # the diff: what it says now, what it said


def test_loose_expectations_keep_what_a_reworded_bot_still_honours():
    replies = [
        {"type": "message", "payload": {"contentType": "text", "value": "Here are today's offers, chosen for you:"}},
        {"type": "await", "duration": {"unit": "seconds", "value": 1}},
        {"type": "message", "payload": {"contentType": "bundle/product-offer", "offers": []}},
        {
            "type": "message",
            "payload": {"contentType": "text", "value": "Want one?"},
            "quickReplies": [{"contentType": "text/quick-reply", "value": "Yes"}],
        },
    ]
    assert expectations(replies, loose=True) == {
        "close": False,
        "text_contains": "Here are today's offers, chosen for you:"[:40],
        "payload_type": "bundle/product-offer",
        "quick_replies": ["Yes"],
    }
    assert expectations([]) == {"no_replies": True}


def test_the_command_writes_the_scripts_and_says_how_to_run_them(tmp_path):
    out = tmp_path / "from-traffic"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "scripts", "--from", str(SAMPLE), "--out", str(out), "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"3 scripts written in {out}",
        f"run them: iadvize-harness check --provider-url URL --scripts {out}   (or: pytest {out})",
    ]
    first = yaml.safe_load(sorted(out.glob("*.convo.yaml"))[0].read_text(encoding="utf-8"))
    assert first["scenario"] == "order-assistant" and first["operator"]["distributionRules"]  # as set up then


@pytest.mark.parametrize("given, said", [("results", "holds replay results"), ("nowhere", "no recording at")])
def test_the_command_refuses_what_is_not_a_recording_in_one_line(tmp_path, given, said):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "exchanges.parquet").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "scripts", "--from", str(tmp_path / given), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_check_keeps_the_explored_paths_as_scripts_that_pass_against_the_bot_and_catch_a_rewording(make_bot, tmp_path):
    out = tmp_path / "explored"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--max-conversations", "6", "--save-scripts", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"scripts of the explored paths written in {out}")
    scripts = load_scripts(out)
    assert scripts and all(s.name.startswith("explore: ") for s in scripts)
    assert run_all(scripts, make_bot) == []
    assert run_all(scripts, make_bot, DIALOGUE=reworded)  # the greeting's answer reworded: caught

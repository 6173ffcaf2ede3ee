"""Conversation scripts at suite scale: includes, utterance lists, captures, built-in values, and every
broken file reported at once (by the loader, by pytest and by ``scripts --lint``)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from harness.client import BotClient
from harness.conformance.scripts import ScriptErrors, ScriptFailure, load_script, load_scripts, run_script, variants

from .conftest import ROOT, LoopbackServer


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


OPENING = """
- visitor: "Where is my parcel?"
  expect: {text_contains: "order number"}
"""


def test_an_include_puts_the_other_files_steps_there_and_they_keep_their_place(tmp_path):
    write(tmp_path, "common/opening.steps.yaml", OPENING)
    write(tmp_path, "common/thanks.convo.yaml", "name: thanks\nsteps:\n  - visitor: thanks\n")
    script = load_script(
        write(
            tmp_path,
            "order.convo.yaml",
            """
            steps:
              - include: common/opening.steps.yaml
              - visitor: "It's 123456"
              - include: common/thanks.convo.yaml
            """,
        )
    )
    assert [s.visitor for s in script.steps] == ["Where is my parcel?", "It's 123456", "thanks"]
    first = script.steps[0]
    assert (first.source, first.where, first.line) == (
        str((tmp_path / "common/opening.steps.yaml").resolve()),
        "steps[0]",
        1,
    )
    assert (script.steps[1].source, script.steps[1].line) == (str(tmp_path / "order.convo.yaml"), 3)


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a.convo.yaml": "steps: [{include: missing.steps.yaml}]\n"}, "a.convo.yaml:1: steps[0]: include: no file"),
        (
            {"a.convo.yaml": "steps:\n  - include: b.steps.yaml\n", "b.steps.yaml": "- include: a.convo.yaml\n"},
            "b.steps.yaml:1: steps[0]: include loops: a.convo.yaml -> b.steps.yaml -> a.convo.yaml",
        ),
        (
            {"a.convo.yaml": "steps:\n  - visitor: hi\n  - include: x\n    visitor: y\n"},
            "a.convo.yaml:3: steps[1]: an include step is only",
        ),
        (
            {"a.convo.yaml": "steps:\n  - visitor: hi\n  - include: p.steps.yaml\n", "p.steps.yaml": "- wait: soon\n"},
            "p.steps.yaml:1: steps[0].wait: must be a duration",
        ),
        (
            {"a.convo.yaml": "steps:\n  - visitor: hi\n  - visitor: 'my order is {order}'\n"},
            "a.convo.yaml:3: steps[1]: {order} is not captured by an earlier step",
        ),
        (
            {"a.convo.yaml": "steps:\n  - visitor: hi\n    capture: {order: '('}\n"},
            "steps[0].capture.order: '(' is not a regular",
        ),
        ({"a.convo.yaml": "steps:\n  - visitor: []\n"}, "a.convo.yaml:2: steps[0].visitor: a list of utterances"),
    ],
)
def test_a_broken_script_is_told_with_its_file_step_and_line(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ScriptErrors) as raised:
        load_scripts(tmp_path / "a.convo.yaml")
    assert message in str(raised.value)


def test_every_utterance_of_a_list_makes_a_variant_named_after_it(tmp_path):
    script = load_script(
        write(
            tmp_path,
            "ask.convo.yaml",
            """
            name: ask for a person
            steps:
              - visitor: [I want a human, agent please, can I talk to someone]
                expect: {text_contains: "e-mail"}
              - visitor: [fine, ok]
            """,
        )
    )
    made = variants(script)
    assert [v.name for v in made] == [
        "ask for a person[I want a human / fine]",
        "ask for a person[agent please / ok]",
        "ask for a person[can I talk to someone / fine]",
    ]
    assert [[s.visitor for s in v.steps] for v in made][1] == ["agent please", "ok"]
    [drawn] = variants(script, "random", seed=3)
    assert drawn.name == variants(script, "random", seed=3)[0].name and drawn.name in {v.name for v in made}


def test_pytest_makes_an_item_per_utterance_or_one_drawn_with_a_seed(pytester):
    pytester.makefile(
        ".convo.yaml",
        ask="name: ask\nsteps:\n  - visitor: [human please, agent]\n",
    )
    (pytester.path / "broken.convo.yaml").write_text("steps: [{wait: soon}]\n")
    (pytester.path / "other.convo.yaml").write_text("name: x\n")
    every = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [line for line in every.outlines if "::" in line]
    assert ids == ["ask.convo.yaml::ask[human please]", "ask.convo.yaml::ask[agent]"]
    errors = "\n".join(every.outlines)
    assert "broken.convo.yaml:1: steps[0].wait: must be a duration" in errors  # both broken files, in one run
    assert "other.convo.yaml: steps: a script is a mapping with a non-empty list of steps" in errors
    one = pytester.runpytest(
        "--collect-only", "-q", "-p", "no:cacheprovider", "--utterances", "random", "--iadvize-seed", "3"
    )
    assert len([line for line in one.outlines if "::" in line]) == 1


def test_captures_and_built_in_values_are_used_by_later_steps(tmp_path, app):
    script = load_script(
        write(
            tmp_path,
            "captured.convo.yaml",
            r"""
            name: captured
            scenario: order-assistant
            steps:
              - visitor: "Where is my parcel?"
                capture: {asked: "$.replies[0].payload.value"}
              - visitor: "It's {$random_digits(6)}"
                capture: {order: "look order (\\d{6}) up"}
                expect: {text_contains: "order {$random_digits(6)} up"}
              - visitor: "and my invoice for {order}?"
                expect: {variables: {order_number: "{order}"}}
            """,
        )
    )
    with LoopbackServer(app) as server:
        chat = run_script(script, BotClient(server.url))
    said = [e.text for e in chat.events if e.kind == "visitor"]
    digits = re.fullmatch(r"It's (\d{6})", said[1]).group(1)
    assert said[2] == f"and my invoice for {digits}?"  # the capture is the number the bot repeated


def test_a_capture_that_finds_nothing_fails_its_step(tmp_path, app):
    script = load_script(
        write(
            tmp_path,
            "nothing.convo.yaml",
            """
            scenario: order-assistant
            steps:
              - visitor: "Where is my parcel?"
                capture: {ticket: "ticket #(\\\\d+)"}
            """,
        )
    )
    with LoopbackServer(app) as server, pytest.raises(ScriptFailure) as failed:
        run_script(script, BotClient(server.url))
    assert "capture ticket: nothing in the answer matches 'ticket #(\\\\d+)'" in str(failed.value)


def lint(scripts, scenarios) -> subprocess.CompletedProcess:
    """``iadvize-harness scripts --lint SCRIPTS --scenarios SCENARIOS``, as a user runs it."""
    command = [sys.executable, "-m", "harness.cli", "scripts", "--lint", str(scripts), "--scenarios", str(scenarios)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_lint_reports_every_broken_script_and_scenario_at_once(tmp_path):
    write(tmp_path, "scripts/good.convo.yaml", "steps: [{visitor: hi}]\n")
    write(tmp_path, "scripts/a.convo.yaml", "steps:\n  - visitor: hi\n    expect: {text_contain: hi}\n")
    write(tmp_path, "scripts/deep/b.convo.yaml", "steps:\n  - visitor: 'it is {order}'\n")
    write(tmp_path, "scenarios/bad.yaml", "idBot: x\nstates: [a\n")
    done = lint(tmp_path / "scripts", tmp_path / "scenarios")
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and done.stderr == ""
    assert lines[0].startswith(
        f"{tmp_path / 'scripts' / 'a.convo.yaml'}:2: steps[0].expect.text_contain: unknown expectation"
    )
    assert lines[1].startswith(
        f"{tmp_path / 'scripts' / 'deep' / 'b.convo.yaml'}:2: steps[0]: {{order}} is not captured"
    )
    assert lines[2].startswith(f"{tmp_path / 'scenarios' / 'bad.yaml'}: line 3, column 1: not valid YAML")
    assert lines[3:] == ["3 problems found"]


def test_lint_of_the_shipped_scripts_finds_nothing():
    done = lint(ROOT / "reference_bot" / "scripts", ROOT / "reference_bot" / "scenarios")
    assert done.returncode == 0, done.stdout
    assert re.fullmatch(r"no problem: \d+ scripts \(\d+ runs\), 2 scenario files\n", done.stdout)


HOURS = """
idBot: opening-hours
name: Opening hours
start: menu
non_text:  # the answer to a file keeps the state: its quick replies are offered in every state
  - text: "I read text only."
    quick_replies: [Talk to a person]
states:
  menu:
    replies:
      - text: "What do you need?"
        quick_replies: [Opening hours, Stores]
    transitions:
      - quick_reply: opening hours   # the menu's, in other case: a transition takes it (no problem)
        goto: hours
      - quick_reply: Store           # the menu says Stores: only typing it word for word gets there
        goto: stores
      - quick_reply: Talk to a person
        goto: hours
  hours:
    replies: [{text: "9am to 7pm."}]
  stores:
    slow: true
    holding:  # offered while the slow answer is looked up
      - text: "Looking it up..."
        quick_replies: [Cancel]
    replies: [{text: "Paris and Lyon."}]
    transitions:
      - quick_reply: Cancel
        goto: menu
"""


def test_lint_reports_every_broken_state_with_its_line_and_quick_replies_no_menu_offers(tmp_path):
    write(tmp_path, "scripts/good.convo.yaml", "steps: [{visitor: hi}]\n")
    write(tmp_path, "scenarios/hours.yaml", HOURS)
    broken = (
        HOURS.replace("opening-hours", "broken")
        .replace("goto: hours", "goto: hour")
        .replace('replies: [{text: "Paris and Lyon."}]', "replies: 3")
    )
    write(tmp_path, "scenarios/broken.yaml", broken)
    done = lint(tmp_path / "scripts", tmp_path / "scenarios")
    lines = done.stdout.splitlines()
    broken_lines = (tmp_path / "scenarios" / "broken.yaml").read_text().splitlines()
    hour = 1 + next(n for n, line in enumerate(broken_lines) if "goto: hour" in line)
    three = 1 + next(n for n, line in enumerate(broken_lines) if "replies: 3" in line)
    assert done.returncode == 1, done.stdout
    # both broken states of one file said at once, each at its line; then the valid file's unoffered quick reply
    assert lines[0] == (
        f"{tmp_path / 'scenarios' / 'broken.yaml'}:{hour}: states.menu.transitions[0].goto: unknown state 'hour' "
        "(states: hours, menu, stores)"
    )
    assert lines[1].startswith(f"{tmp_path / 'scenarios' / 'broken.yaml'}:{three}: states.stores.replies: ")
    store = 1 + next(n for n, line in enumerate(HOURS.lstrip().splitlines()) if "quick_reply: Store " in line)
    assert lines[2] == (
        f"{tmp_path / 'scenarios' / 'hours.yaml'}:{store}: states.menu.transitions[1].quick_reply: 'Store' is not a "
        "quick reply offered there (offered: Opening hours, Stores, Talk to a person): a visitor can only type it"
    )
    assert lines[3:] == ["3 problems found"]  # the other case of "opening hours" is no problem


def test_lint_says_every_broken_step_of_a_script_at_once(tmp_path):
    script = write(
        tmp_path,
        "scripts/many.convo.yaml",
        """
        steps:
          - visitor: hi
            expect: {text_contain: hi}
          - visitor: "it is {order}"
          - visitor: hello
            expect: {text_equal: hello}
        """,
    )
    fixed = HOURS.replace("      - quick_reply: Store ", "      - quick_reply: Stores ")
    write(tmp_path, "scenarios/hours.yaml", fixed)
    done = lint(tmp_path / "scripts", tmp_path / "scenarios")
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout
    assert [line.split(": ")[0] for line in lines[:-1]] == [f"{script}:2", f"{script}:5"]  # each step's line
    assert "steps[0].expect.text_contain: unknown expectation" in lines[0]
    assert "steps[2].expect.text_equal: unknown expectation" in lines[1]
    assert lines[-1] == "2 problems found"
    # the captures are checked once the steps load (a broken step may be the one that captures)
    script.write_text(script.read_text().replace("text_contain", "text_contains").replace("text_equal", "text_equals"))
    lines = lint(tmp_path / "scripts", tmp_path / "scenarios").stdout.splitlines()
    assert lines[0].startswith(f"{script}:4: steps[1]: {{order}} is not captured") and lines[-1] == "1 problem found"

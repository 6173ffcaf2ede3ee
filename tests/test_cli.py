"""The command line as a new user meets it: bad URLs, typos, help, version, what serve says."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from harness.cli import _subparsers, main, parser


@pytest.mark.parametrize("command", ["verify", "check", "replay", "load", "report"])
def test_a_url_without_a_scheme_is_refused_first_with_what_to_type(command, capsys):
    args = [command, "--provider-url", "bot.example.com"] + (["x.jsonl"] if command == "replay" else [])
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2
    assert err[0] == (
        "error: argument --provider-url: must be a URL starting with http:// or https://, got 'bot.example.com' "
        "(did you mean http://bot.example.com?)"
    )
    assert err[1].startswith("--provider-url URL") and err[-1] == f"see `iadvize-harness {command} --help`"
    assert "usage:" not in "\n".join(err)  # the one option concerned, not the whole usage


def test_a_typo_in_a_flag_is_said_first_with_the_flag_meant_and_its_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--provder-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2
    assert err[0] == "error: unrecognized arguments: --provder-url (did you mean --provider-url?)"  # not its value
    assert err[1].startswith("--provider-url URL") and "the bot's base URL" in err[1]  # the flag meant, explained
    assert err[-1] == "see `iadvize-harness check --help`" and len(err) <= 4


def test_a_missing_argument_and_an_unknown_command_are_said_first(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["template"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and err[0] == "error: the following arguments are required: FOLDER"
    assert err[1].startswith("FOLDER") and err[-1] == "see `iadvize-harness template --help`"
    with pytest.raises(SystemExit) as exit_:
        main(["chekc"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2
    assert err[0].startswith("error: no command 'chekc' (did you mean check?); the commands: serve, demo, chat")
    assert err[1:] == ["see `iadvize-harness --help`"]  # the commands are in the first line already


def test_every_flag_of_every_command_says_what_it_is_for():
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in _subparsers(parser()).items()
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("iadvize-harness 0.1.0")


@pytest.mark.parametrize(
    "secret, said", [(None, "signatures NOT checked: no IADVIZE_SECRET"), ("s", "signatures checked")]
)
def test_serve_says_whether_signatures_are_checked(tmp_path, secret, said):
    env = {"PATH": "/usr/bin:/bin", **({"IADVIZE_SECRET": secret} if secret else {})}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            "1",
            "--db",
            str(tmp_path / "bot.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        first = server.stdout.readline()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert first.startswith("reference bot on http://127.0.0.1:") and first.rstrip().endswith(f"{said})")


def test_help_marks_the_commands_that_need_an_extra(capsys):
    from harness.cli import NEEDS

    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for command, extra in NEEDS.items():
        assert re.search(rf" {command} [^\[]*\[needs the {extra} extra\]", shown), command
    assert shown.count("[needs the") == len(NEEDS)  # and no other
    assert "main job" not in shown

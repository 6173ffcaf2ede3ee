"""What a new user meets when something is wrong, each said in one first line with the exit code of a command
that could not run (2): a Pact Broker nobody answers at, a pact that is not JSON, a template's bot or scripts
not where they are said to be, a folder the notebooks would overwrite."""

from __future__ import annotations

import socket

import pytest

from harness.cli import main


@pytest.fixture
def nobody():
    """A loopback address nothing listens on (a port bound, then released)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def said(capsys, args: list[str]) -> tuple[int, list[str]]:
    code = main(args)
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    "command",
    [
        ["can-i-deploy", "--version", "1", "--to-environment", "production"],
        ["record-deployment", "--version", "1", "--environment", "production"],
        ["pacts", "publish", "--consumer-version", "1"],
        ["verify", "--provider-url", "http://127.0.0.1:9"],
    ],
)
def test_a_pact_broker_nobody_answers_at_is_said_at_once(command, nobody, capsys):
    code, err = said(capsys, [*command, "--broker-url", nobody])
    assert code == 2
    assert err[0].startswith(f"error: cannot reach the Pact Broker at {nobody} (") and "refused" in err[0], err


def test_a_pact_that_is_not_json_says_where_it_breaks(tmp_path, capsys):
    (tmp_path / "iadvize.json").write_text('{"consumer": {"name": "iadvize"},\n  "interactions": [,]}\n')
    code, err = said(capsys, ["verify", "--provider-url", "http://127.0.0.1:9", "--pacts", str(tmp_path)])
    assert code == 2
    assert err[0] == (
        f"error: {tmp_path / 'iadvize.json'} is not a pact: not JSON at line 2, column 20 (Expecting value)"
    )


def test_scripts_run_says_first_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert said(capsys, ["scripts", "--run", "nowhere"]) == (
        2, ["error: nowhere: no such file or folder of conversation scripts (*.convo.yaml)"]
    )  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert said(capsys, ["scripts", "--run", "empty"]) == (
        2, ["error: no conversation script (*.convo.yaml) in empty"]
    )  # fmt: skip
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "hello.convo.yaml").write_text("name: hello\nsteps:\n  - visitor: Hi\n")
    code, err = said(capsys, ["scripts", "--run", "scripts", "--bot", "mybott"])
    assert code == 2 and err[0].startswith("error: mybott is neither a folder here nor an installed package")
    (tmp_path / "notabot").mkdir()
    code, err = said(capsys, ["serve", "--bot", "notabot"])
    assert code == 2 and err == [
        f"error: notabot is not a bot made with `iadvize-harness template`: no serve.py in {tmp_path / 'notabot'}"
    ]
    code, err = said(capsys, ["scripts", "--run", "empty", "--lint", "empty"])
    assert code == 2 and err[0].startswith("error: --run and --lint do not go together")


def test_the_notebooks_are_copied_out_but_never_over_a_file(tmp_path, capsys):
    assert main(["notebooks", str(tmp_path / "nb")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"copied 2 notebooks and the sample recording they read into {tmp_path / 'nb'}"
    code, err = said(capsys, ["notebooks", str(tmp_path / "nb")])
    assert code == 2 and err == [
        f"error: {tmp_path / 'nb' / 'replay-conversations.ipynb'} exists: give an empty or new folder (nothing is "
        "overwritten)"
    ]


def test_scripts_of_another_bot_run_against_the_default_one_say_why(tmp_path):
    import subprocess
    import sys

    (tmp_path / "b.convo.yaml").write_text("name: bikes\nscenario: bike-shop\nsteps:\n  - visitor: Hi\n")
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "b.convo.yaml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ran.returncode == 1
    assert "no scenario 'bike-shop'" in ran.stdout
    assert "(these scripts ran against the embedded reference bot, the default: for your bot, give --iadvize-bot" in (
        ran.stdout
    )


@pytest.mark.parametrize("command", ["check", "verify"])
def test_a_bot_nobody_answers_at_is_the_first_line_and_nothing_before_it(command, nobody, capsys):
    code = main([command, "--provider-url", nobody])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""  # no header printed before the error
    assert captured.err.splitlines()[0].startswith(f"error: cannot reach the bot at {nobody}: connection failed (")


def test_the_readme_shows_what_template_prints(tmp_path, capsys, monkeypatch):
    import re

    from .conftest import ROOT

    monkeypatch.chdir(tmp_path)
    assert main(["template", ".", "--name", "mybot"]) == 0
    printed = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"\n```\n(copied the reference bot into mybot.*?)```", readme, re.S).group(1)
    assert shown == printed
    assert (tmp_path / "pytest.ini").read_text().endswith("addopts = --iadvize-bot mybot\n")


def test_the_chat_page_on_a_port_taken_is_said_before_any_bot_starts(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = said(capsys, ["chat", "--port", str(port)])
    assert code == 2 and err == [
        f"error: cannot serve the chat page on port {port}: Address already in use (--port 0 takes a free one)"
    ]


def test_a_health_check_address_that_is_neither_a_path_nor_a_url_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--provider-url", "http://127.0.0.1:9", "--healthcheck-url", "127.0.0.1:8080/health"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and err[0] == (
        "error: argument --healthcheck-url: must be a path such as /health, or an http(s) URL, got "
        "'127.0.0.1:8080/health'"
    )


def test_scripts_run_against_a_bot_nobody_answers_at_is_one_error(tmp_path, nobody):
    import subprocess
    import sys

    (tmp_path / "s").mkdir()
    for name in ("one", "two"):
        (tmp_path / "s" / f"{name}.convo.yaml").write_text(f"name: {name}\nsteps: [{{visitor: Hi}}]\n")
    ran = subprocess.run([sys.executable, "-m", "harness.cli", "scripts", "--run", "s", "--provider-url", nobody],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stdout.count(f"cannot reach the bot at {nobody}") == 1, ran.stdout  # once, not once per script
    assert "Warning" not in ran.stdout + ran.stderr  # nothing but what the user needs


def test_a_pact_folder_may_hold_other_json_and_a_broker_s_credentials_are_not_said(tmp_path, nobody, capsys):
    import shutil

    from .conftest import ROOT

    for pact in (ROOT / "contracts" / "pacts").glob("*.json"):
        shutil.copy(pact, tmp_path)
    (tmp_path / "tsconfig.json").write_text("{ // a comment: JSON5, not JSON\n}\n")
    (tmp_path / "sub.json").mkdir()
    code, err = said(capsys, ["verify", "--provider-url", nobody, "--pacts", str(tmp_path)])
    assert code == 2 and err[0].startswith(f"error: cannot reach the bot at {nobody}")  # the pacts were fine
    secret_url = nobody.replace("http://", "http://user:s3cret@")
    code, err = said(capsys, ["can-i-deploy", "--broker-url", secret_url, "--version", "1", "--to-environment", "p"])
    assert code == 2 and err == [f"error: cannot reach the Pact Broker at {nobody} (connection refused)"]


def test_template_refuses_the_name_of_an_installed_module_and_scripts_run_ignores_the_project_s_addopts(
    tmp_path, capsys, monkeypatch
):
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    code, err = said(capsys, ["template", ".", "--name", "requests"])
    assert code == 2 and err == [
        "error: --name 'requests' would hide the module of that name: choose another (e.g. mybot)"
    ]
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--cov=myapp"\n')
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "hi.convo.yaml").write_text("name: hi\nscenario: hello\nsteps: [{visitor: Hi}]\n")
    ran = subprocess.run([sys.executable, "-m", "harness.cli", "scripts", "--run", "s"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr  # no --cov asked of it


def test_a_broker_that_wants_credentials_is_reachable_and_one_that_answers_nothing_is_not(nobody):
    from harness.verify.broker_client import unreachable

    from .conftest import LoopbackServer

    def locked(environ, start_response):  # a broker asking for its token: it answers, its client will log in
        start_response("401 Unauthorized", [("Content-Type", "application/json")])
        return [b'{"error": "authentication required"}']

    with LoopbackServer(locked) as broker:
        assert unreachable(broker.url) is None
    assert unreachable(nobody) == f"cannot reach the Pact Broker at {nobody} (connection refused)"

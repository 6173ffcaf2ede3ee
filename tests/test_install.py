"""The tool as users get it: a wheel built from the sdist, installed into fresh venvs, run from empty folders.

Nothing here uses this checkout's venv or files but the wheel built from it: the core install must run
``verify``, ``check`` and conversation scripts with the data it carries; ``[analysis]`` adds ``sample``,
``replay`` and ``report``; a command whose extra is missing says so in one line. A copy of the template
under another name runs on the core install alone and serves its own scenarios.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.conformance.scripts import load_scripts, variants

from .conftest import once_per_run

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "instance",
    ".pytest_cache",
    ".ruff_cache",
    "results",
    "report.html",
)
INSTALL_SECONDS = 900  # a cold pip cache downloads the analysis stack (pandas, pyarrow, matplotlib, jupyter)
RUN_SECONDS = 300

pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_SECONDS + RUN_SECONDS)]


def run(command: list, cwd: Path, timeout: float = RUN_SECONDS, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("IADVIZE_SECRET", "PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build(dist: Path) -> None:
    """The wheel and the sdist ``python -m build`` makes (the wheel from the sdist) of a copy of the sources
    (symlinks kept)."""
    source = dist / "source" / "iadvize-harness"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIPPED)
    ok(run([sys.executable, "-m", "build", "--outdir", dist, source], source, INSTALL_SECONDS))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built once per run and shared by the workers that install it."""
    dist = once_per_run(tmp_path_factory, "dist", build)
    assert len(list(dist.glob("*.tar.gz"))) == 1
    return next(dist.glob("*.whl"))


def venv(tmp_path_factory, name: str, requirement: str) -> Path:
    """The ``bin`` folder of a fresh venv holding ``requirement``, made once per run and shared by the workers."""

    def make(folder: Path) -> None:
        # --no-compile: what a test runs is compiled as it is imported; the rest of each package need not be
        ok(run([sys.executable, "-m", "venv", folder / "venv"], folder))
        ok(
            run(
                [folder / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-compile", requirement],
                folder,
                INSTALL_SECONDS,
            )
        )  # fmt: skip

    return once_per_run(tmp_path_factory, name, make) / "venv" / "bin"


@pytest.fixture(scope="session")
def core(wheel, tmp_path_factory) -> Path:
    return venv(tmp_path_factory, "core-install", str(wheel))


@pytest.fixture(scope="session")
def analysis(wheel, tmp_path_factory) -> Path:
    return venv(tmp_path_factory, "analysis-install", f"{wheel}[analysis]")


def runs(folder: Path) -> int:
    """How many test items pytest makes of the scripts there: one per utterance of their lists."""
    return sum(len(variants(script)) for script in load_scripts(folder))


def installed(bin_dir: Path) -> set[str]:
    listed = ok(run([bin_dir / "python", "-m", "pip", "list", "--format", "json"], bin_dir))
    return {package["name"].lower() for package in json.loads(listed)}


def test_the_wheel_and_the_sdist_carry_the_data_the_commands_read(wheel, tmp_path):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "harness/data/pacts/iadvize-platform-external-bot.json",
        "harness/data/openapi.yaml",
        "harness/data/schemas/message.request.json",
        "harness/data/notebooks/replay-conversations.ipynb",
        "harness/data/notebooks/data/sample.jsonl.gz",
        "reference_bot/scenarios/order-assistant.yaml",
        "reference_bot/scripts/handover.convo.yaml",
        "reference_bot/scripts/common/greeting.steps.yaml",  # included by the scripts
        "reference_bot/README.md",
    ):
        assert shipped in names, shipped
    assert not any(name.startswith(("tests/", "contracts/", "benchmarks/")) for name in names)


def test_the_core_install_verifies_and_checks_from_an_empty_folder(core, tmp_path):
    assert not installed(core) & {"pandas", "pyarrow", "matplotlib", "papermill", "locust", "ipykernel"}
    verified = ok(run([core / "iadvize-harness", "verify"], tmp_path))
    assert re.match(r"(\d+) passed, 0 failed — the embedded reference bot at http://127\.0\.0\.1:\d+\n", verified), (
        verified
    )
    checked = ok(run([core / "iadvize-harness", "check"], tmp_path))
    assert checked.startswith("0 errors, 0 warnings in ") and "; no finding" in checked, checked
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_the_core_install_runs_a_folder_of_conversation_scripts_with_pytest(core, tmp_path):
    scripts = tmp_path / "scripts"
    shutil.copytree(ROOT / "reference_bot" / "scripts", scripts)
    result = run([core / "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", scripts], tmp_path)
    shipped = runs(scripts)
    assert result.returncode == 0 and f"{shipped} passed" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("command", "extra"), [("replay", "analysis"), ("report", "analysis"), ("demo", "analysis"), ("load", "load")]
)
def test_a_command_of_a_missing_extra_says_which_to_install_in_one_line(core, tmp_path, command, extra):
    result = run([core / "iadvize-harness", command, *(["x.jsonl"] if command == "replay" else [])], tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"pip install 'iadvize-harness[{extra}]'" in result.stderr, result.stderr


@pytest.mark.first  # the run's longest: a venv of pandas, matplotlib and Jupyter, then every command
def test_the_analysis_install_samples_replays_and_reports_from_an_empty_folder(analysis, tmp_path):
    assert "locust" not in installed(analysis)
    sampled = ok(run([analysis / "iadvize-harness", "sample", "--conversations", "12"], tmp_path))
    assert sampled.splitlines() == [
        "recording 12 conversations with the embedded reference bot into sample.jsonl.gz (seed 7; Ctrl-C stops)",
        "12 conversations recorded in sample.jsonl.gz",
    ]
    assert (tmp_path / "sample.jsonl.gz").stat().st_size

    replayed = ok(run([analysis / "iadvize-harness", "replay", "sample.jsonl.gz", "--out", "results"], tmp_path))
    assert replayed.startswith("Replaying against the embedded reference bot at http://127.0.0.1:"), replayed
    assert replayed.splitlines()[1].startswith("replayed 12 conversations"), replayed
    assert (tmp_path / "results" / "conversations.parquet").stat().st_size  # what report --results reads
    # The shipped notebooks and sample are found without a path; the report opens in a real browser. (A report
    # of one's own results runs the same notebooks: tests/test_notebooks.py reports them from a checkout.)
    ok(run([analysis / "iadvize-harness", "report", "--limit", "5", "--out", "sample-report.html"], tmp_path))
    dom = rendered(tmp_path / "sample-report.html", tmp_path)
    assert "Replay recorded conversations" in dom and "Response times, KPIs and escalations" in dom
    assert dom.count("<img") >= 3 and "Traceback" not in dom


def rendered(page: Path, tmp_path: Path) -> str:
    from tests.test_notebooks import CHROMIUM_FLAGS

    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: `make test` installs Debian's chromium package"
    dom = run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()], tmp_path
    )
    return ok(dom)


SCENARIO = """\
idBot: opening-hours
name: Opening hours
availability: always
greeting:
  - text: "I'm the store's bot: ask me about opening hours."
start: ask
states:
  ask:
    replies:
      - text: "Which store?"
        quick_replies: [Paris, Lyon]
    transitions:
      - quick_reply: Paris
        goto: paris
      - quick_reply: Lyon
        goto: lyon
    fallback:
      - text: "Please pick Paris or Lyon."
  paris:
    replies: [{text: "Paris: 9am to 7pm, Monday to Saturday."}]
  lyon:
    replies: [{text: "Lyon: 10am to 8pm, every day."}]
"""


def started(
    command: list, cwd: Path, said=r" on (http://\S+)", stream: str = "stdout", env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """A server started in its own process group, and the URL it prints (on ``stream``) once it listens."""
    clean = {k: v for k, v in os.environ.items() if k not in ("IADVIZE_SECRET", "PYTHONPATH", "VIRTUAL_ENV")}
    pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: subprocess.PIPE}
    process = subprocess.Popen(
        [str(part) for part in command], cwd=cwd, text=True, env={**clean, **(env or {})}, start_new_session=True,
        **pipes,
    )  # fmt: skip
    output, found = getattr(process, stream), None
    with selectors.DefaultSelector() as selector:  # a deadline for a server that never says it listens
        selector.register(output, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while not found and time.monotonic() < deadline and selector.select(timeout=deadline - time.monotonic()):
            line = output.readline()
            if not line:
                break
            found = re.search(said, line)
    assert found, f"the server printed no URL: {command}"
    return process, found.group(1)


def test_the_template_copied_under_another_name_serves_its_own_scenarios_on_the_core_install(core, tmp_path):
    project = tmp_path / "shop-bot"
    project.mkdir()
    told = ok(run([core / "iadvize-harness", "template", ".", "--name", "shopbot"], project))
    assert "`python -m shopbot.serve` and `pytest` (pytest.ini names the bot)" in told
    package = project / "shopbot"
    assert not list(package.rglob("__pycache__")) and "reference_bot" not in (package / "README.md").read_text()
    (package / "scenarios" / "opening-hours.yaml").write_text(SCENARIO, encoding="utf-8")
    (package / "scripts" / "opening-hours.convo.yaml").write_text(
        "name: Paris hours\nscenario: opening-hours\nsteps:\n"
        "  - visitor: Paris\n    expect: {text_contains: '9am to 7pm'}\n",
        encoding="utf-8",
    )
    # The copy's scripts, its new one included, against the copy the plugin starts: plain pytest in the bot's
    # venv, the pytest.ini `template` wrote naming the bot (as `template` says).
    tested = run([core / "pytest", "-p", "no:cacheprovider", "-q"], project)
    scripts = runs(package / "scripts")
    assert tested.returncode == 0 and f"{scripts} passed" in tested.stdout, tested.stdout + tested.stderr
    # the README's example of the plugin's fixtures, as written there, passes in the bot's venv
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(# mybot/tests/test_handover.py.*?)```", readme, re.S).group(1)
    (package / "tests").mkdir()
    (package / "tests" / "test_handover.py").write_text(example, encoding="utf-8")
    tested = run([core / "pytest", "-p", "no:cacheprovider", "-q", "shopbot/tests"], project)
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout + tested.stderr
    # As the copy's README says: run it from the project folder (the copy is not installed).
    process, url = started([core / "python", "-m", "shopbot.serve", "--port", "0", "--workers", "2"], project)
    try:
        listed = {s["idBot"] for s in requests.get(f"{url}/external-bots", timeout=10).json()}
        assert listed == {"hello", "order-assistant", "opening-hours"}  # its own, not the installed template's
        # (check against a copy: the pipx test runs it, as template prints it)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert (project / "instance" / "shopbot.sqlite3").exists()  # its state beside it, named after it
    # In production, as the README says: plain gunicorn on the copy's WSGI entry point.
    # it logs "Listening at: URL" once bound: requests wait on the socket while its workers load the app
    process, url = started([core / "gunicorn", "--bind", "127.0.0.1:0", "shopbot.wsgi:app"], project,
                           said=r"Listening at: (http://\S+)", stream="stderr")  # fmt: skip
    try:
        listed = requests.get(f"{url}/external-bots", timeout=60).json()
        assert {s["idBot"] for s in listed} == {"hello", "order-assistant", "opening-hours"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_a_pipx_install_makes_a_bot_from_the_template_and_every_step_it_prints_works(core, tmp_path):
    """pipx exposes the command alone: a venv whose Python is not on PATH, only `iadvize-harness` linked into a
    folder of PATH. The template's next steps, run as printed (the port only made free), then a scenario and a
    script of the developer's own."""
    exposed = tmp_path / "bin"
    exposed.mkdir()
    (exposed / "iadvize-harness").symlink_to(core / "iadvize-harness")
    pipx = {"PATH": f"{exposed}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    project = tmp_path / "project"
    project.mkdir()
    told = ok(run(["iadvize-harness", "template", "."], project, env=pipx))
    steps = [line.split("  # ")[0].strip() for line in told.splitlines() if line.startswith("  ")]
    assert [step.split()[:2] for step in steps] == [["iadvize-harness", "serve"], ["iadvize-harness", "check"],
                                                    ["iadvize-harness", "scripts"]], told  # fmt: skip
    serve, check, scripts = steps
    assert "--port 8080" in serve and "http://127.0.0.1:8080" in check
    process, url = started(serve.replace("--port 8080", "--port 0").split(), project, env=pipx)
    try:
        checked = ok(run(check.replace("http://127.0.0.1:8080", url).split(), project, env=pipx))
        assert checked.startswith("0 errors, 0 warnings in "), checked
        ran = ok(run(scripts.split(), project, env=pipx))
        assert f"{runs(project / 'mybot' / 'scripts')} passed" in ran, ran
        (project / "mybot" / "scenarios" / "opening-hours.yaml").write_text(SCENARIO, encoding="utf-8")
        (project / "mybot" / "scripts" / "opening-hours.convo.yaml").write_text(
            "name: Paris hours\nscenario: opening-hours\nsteps:\n"
            "  - visitor: Paris\n    expect: {text_contains: '9am to 7pm'}\n",
            encoding="utf-8",
        )
        ran = ok(run(scripts.split(), project, env=pipx))
        assert f"{runs(project / 'mybot' / 'scripts')} passed" in ran and "opening-hours.convo.yaml ." in ran, ran
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    # the core's other promises from pipx: the notebooks copied out, a sample recorded
    ok(run(["iadvize-harness", "notebooks", "nb"], project, env=pipx))
    for name in ("replay-conversations.ipynb", "response-times-and-escalations.ipynb", "data/sample.jsonl.gz"):
        assert (project / "nb" / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes(), name
    sampled = ok(run(["iadvize-harness", "sample", "--conversations", "3", "--out", "s"], project, env=pipx))
    assert sampled.splitlines()[-1] == "3 conversations recorded in s/sample.jsonl.gz", sampled
    # a bot that does not start is one error, said once, not once per script
    (project / "mybot" / "scenarios" / "broken.yaml").write_text("states: [\n", encoding="utf-8")
    broken = run(scripts.split(), project, env=pipx)
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert broken.stdout.count("did not start") == 1 and "broken.yaml" in broken.stdout, broken.stdout

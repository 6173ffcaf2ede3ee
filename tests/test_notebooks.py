"""The notebooks run end to end on a real Jupyter kernel, and the report opens in a real browser."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from harness.analysis import report
from harness.analysis.explorer import PER_PAGE
from harness.analysis.report import NOTEBOOKS, NOTEBOOKS_DIR, build, execute
from harness.traffic.replay import CONVERSATION_COLUMNS, EXCHANGE_COLUMNS, replay

from .conftest import ROOT, LoopbackServer, once_per_run

SAMPLE = ROOT / "notebooks" / "data" / "sample.jsonl.gz"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
pytestmark = pytest.mark.slow


def every_tenth_conversation(path: Path) -> Path:
    """The committed sample thinned to one conversation in ten (200 of 2,000), set-up lines kept: every day,
    scenario, operator and outcome is still there, so every chart and table is drawn as with the whole
    sample, at a tenth of the replay."""
    order: dict[str, int] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as recorded, path.open("w", encoding="utf-8") as kept:
        for line in recorded:
            conversation = json.loads(line)["conversation"]
            if conversation is None or order.setdefault(conversation, len(order)) % 10 == 0:
                kept.write(line)
    return path


def replayed(folder: Path) -> None:
    """A tenth of the committed sample replayed against the reference bot, its tables in ``folder/results``."""
    from reference_bot import create_app

    from .conftest import bot_settings

    recording = every_tenth_conversation(folder / "sample.jsonl")
    app = create_app(bot_settings(folder, PUBLIC_URL="https://bot.example.com"))
    with LoopbackServer(app) as server:
        summary = replay([recording], server.url, folder / "results", concurrency=4)
    started = pd.read_parquet(folder / "results" / "conversations.parquet", columns=["started_at"])["started_at"]
    assert summary.conversations == 200 and started.dt.date.nunique() == 7  # every day of the sample


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    """One replay for the notebooks and the report, made once per run and shared by the workers (read only)."""
    return once_per_run(tmp_path_factory, "notebooks-results", replayed) / "results"


def images(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_committed_notebooks_hold_no_outputs(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_the_replay_notebook_replays_the_sample_itself_and_draws(tmp_path):
    executed = execute("replay-conversations.ipynb", {"recordings": str(SAMPLE), "limit": 60}, tmp_path)
    assert images(executed) >= 1
    text = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "replayed 60 conversations" in text and "class='chat'" in text
    assert "0 replies differ from the recording" in text  # the slow answers posted through the local API, as recorded


def test_the_response_times_notebook_draws_every_chart(results, tmp_path):
    executed = execute("response-times-and-escalations.ipynb", {"results": str(results)}, tmp_path)
    # KPIs per day, latency per endpoint, over time, funnel, time to escalation, where conversations end, paths
    assert images(executed) == 7
    text = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "one run only: give a second run's results (report --compare-with RESULTS_DIR)" in text  # not two halves
    assert "without a human" in text and "2 s for the greeting" in text  # the glossary's definitions
    assert re.search(r"<td>\d+\.\d %</td>", text) and "0.58" not in text  # shares as percentages
    assert "recorded: when the conversations were recorded; replayed: the bot under test" in text  # which latency


def test_two_runs_are_compared_with_their_names_and_the_conversations_whose_outcome_changed(results, tmp_path):
    parameters = {"results": str(results), "compare_with": str(results), "names": "v1,v2"}
    executed = execute("response-times-and-escalations.ipynb", parameters, tmp_path)
    text = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "<th>v1</th>" in text and "<th>v2</th>" in text and "0 pts" in text
    assert "0 conversations changed outcome" in text  # the same run twice


def test_the_report_is_one_offline_page_of_charts_without_code(results, tmp_path, caplog):
    steps = []
    page = build(results, tmp_path / "report.html", progress=lambda text, step: steps.append((text, step)))
    page = page.read_text(encoding="utf-8")
    assert steps == [(f"report: executing {name} ({n} of 2)", name) for n, name in enumerate(NOTEBOOKS, 1)] + [
        ("report: exporting the HTML page", "export")
    ]
    assert "unknown parameter" not in caplog.text  # each notebook is given the parameters it declares
    assert page.count('src="data:image/png;base64,') == 8  # every chart of both notebooks, embedded
    assert "import " not in page and "metrics.load" not in page  # code cells hidden
    assert 'src="http' not in page  # nothing fetched: opens offline
    # the slow calls, listed: as many as the tables hold over their budget, recounted here from the rows
    exchanges = pd.read_parquet(results / "exchanges.parquet")
    budget = exchanges["endpoint"].astype(str).map(lambda e: 2_000 if e == "first-messages" else 10_000)
    over = int((exchanges["recorded_latency_ms"].fillna(exchanges["latency_ms"]) > budget).sum())
    assert "<h2" in page and "Slow calls" in page
    assert re.search(r"\d+ conversations asked for a human; \d+ never got a transfer", page)
    assert re.search(r"[1-9]\d* visitor messages? not understood, \d+ different texts?", page)
    assert f"{over} calls over their budget" in page if over else "none: every call within its budget" in page


def test_the_report_opens_in_headless_chromium_and_shows_its_charts(results, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: `make test` installs Debian's chromium package"
    page = build(results, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=True,
    )
    pixels = imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (3000, 1100)
    ink = (pixels.mean(axis=2) < 0.5).mean(axis=1)  # dark pixels per row: text, axes, bars
    assert (ink > 0.01).sum() > 600  # charts and tables down the page, not a blank or error page


def test_a_report_of_nothing_says_so(tmp_path):
    from harness.analysis.report import ReportError

    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    summary = replay([tmp_path / "empty.jsonl"], "http://127.0.0.1:9", tmp_path / "results")
    assert summary.conversations == 0 and list((tmp_path / "results").iterdir()) == []  # no empty tables written
    with pytest.raises(ReportError, match=r"holds no conversations\.parquet: not a replay's output folder"):
        build(tmp_path / "results", tmp_path / "report.html")
    with pytest.raises(ReportError, match=r"holds no conversations\.parquet"):
        build(tmp_path / "nowhere", tmp_path / "report.html")
    empty = tmp_path / "empty-tables"  # as an older replay left them
    empty.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=EXCHANGE_COLUMNS), empty / "exchanges.parquet")
    pq.write_table(pa.Table.from_pylist([], schema=CONVERSATION_COLUMNS), empty / "conversations.parquet")
    with pytest.raises(ReportError, match="holds no replayed conversation"):
        build(empty, tmp_path / "report.html")


def test_the_report_command_prints_no_kernel_warning(tmp_path):
    """Run as a user runs it (from the repository, the committed sample): the page, and nothing to worry about."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "IADVIZE_SECRET")}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", "--limit", "20", "--out", str(tmp_path / "report.html")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert [line for line in lines if "warning" in line.lower()] == [], lines
    assert result.stdout == f"report written to {tmp_path / 'report.html'} (open it in a browser)\n"
    said = result.stderr.splitlines()  # the replay's summary, and progress if it ran for long enough
    assert any(line.startswith("replayed 20 conversations, ") for line in said), said
    assert said[0] == "Replaying against the embedded reference bot at " + said[0].rsplit(" ", 1)[1]
    assert all(line.startswith(("replayed 20 conversations, ", "replay: ", "report: ")) for line in said[1:]), said
    assert (tmp_path / "report.html").stat().st_size > 0


def test_a_kernel_that_dies_is_one_line_with_its_last_words_and_its_own_output_never_reaches_the_terminal(
    tmp_path, monkeypatch, capfd
):
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell("results = ''", metadata={"tags": ["parameters"]}),
        # what the kernel process writes itself (its stderr as launched, not a cell's output), then it dies
        nbformat.v4.new_code_cell("import os\nos.write(2, b'out of memory, say')\nos._exit(3)"),
    ]
    nbformat.write(notebook, tmp_path / "dies.ipynb")
    monkeypatch.setattr(report, "NOTEBOOKS_DIR", tmp_path)
    with pytest.raises(report.ReportError) as raised:
        execute("dies.ipynb", {"results": "x"}, tmp_path)
    assert str(raised.value) == "dies.ipynb: the Jupyter kernel died; its last words: out of memory, say"
    assert "out of memory" not in capfd.readouterr().err  # the kernel's own output went to its log


def test_replay_refuses_a_concurrency_of_zero():
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "replay", "x.jsonl", "--concurrency", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "must be a whole number of 1 or more, got '0'" in result.stderr


def dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    """The page as headless Chromium built it (its DOM, serialised, scripts run): what a reader's browser shows.
    A script error on the page fails the test: Chromium logs it as an uncaught error of the console."""
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: `make test` installs Debian's chromium package"
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile-dom'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri() + (f"#{fragment}" if fragment else ""),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    errors = [line for line in done.stderr.splitlines() if ":CONSOLE" in line and "Uncaught" in line]
    assert errors == [], errors
    return done.stdout


def asking_less(scenarios: Path) -> Path:
    """The shipped scenarios, their handover no longer asking for the order number: straight to the email."""
    import yaml

    scenarios.mkdir()
    for source in (ROOT / "reference_bot" / "scenarios").glob("*.yaml"):
        data = yaml.safe_load(source.read_text("utf-8"))
        if source.stem == "order-assistant":
            email = data["states"]["ask_email"]
            data["states"]["handover"] = {**email, "replies": [{"text": {
                "en": "I'll pass you to a person from our customer service. What email address can they write back to?",
                "fr": "Je vous passe un conseiller du service client. À quelle adresse e-mail peut-il vous répondre ?",
            }}]}  # fmt: skip
        (scenarios / source.name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return scenarios


def test_the_report_compares_a_version_whose_handover_asks_less_in_the_browser(tmp_path):
    from reference_bot import create_app

    from .conftest import bot_settings

    for name, scenarios in (("v1", None), ("v2", asking_less(tmp_path / "v2-scenarios"))):
        (tmp_path / name).mkdir()
        settings = {"SCENARIOS_DIR": str(scenarios)} if scenarios else {}
        app = create_app(bot_settings(tmp_path / name, PUBLIC_URL="https://bot.example.com", **settings))
        with LoopbackServer(app) as server:
            replay([SAMPLE], server.url, tmp_path / f"{name}-results", limit=60)
    # v2 is this run, v1 (the version in production) the baseline
    page = build(tmp_path / "v2-results", tmp_path / "report.html", tmp_path / "v1-results", names="v2,v1")
    shown = dom(page, tmp_path)
    assert "<th>v1</th>" in shown and "<th>v2</th>" in shown and "change: v2 minus v1" in shown
    rows = {name: pd.read_parquet(tmp_path / f"{name}-results" / "conversations.parquet") for name in ("v1", "v2")}
    # the change is this run's figure minus the baseline's
    change = rows["v2"]["transfer"].notna().mean() - rows["v1"]["transfer"].notna().mean()
    points = f"{change * 100:+.1f} pts" if change else "0 pts"
    assert re.search(rf"<th>escalation</th>(\s*<td>[^<]*</td>){{2}}\s*<td>{re.escape(points)}</td>", shown)
    outcomes = {name: dict(zip(r["conversation"], r["outcome"], strict=True)) for name, r in rows.items()}
    changed = sum(outcome != outcomes["v2"][c] for c, outcome in outcomes["v1"].items())
    assert f"{changed} conversations changed outcome" in shown
    # the answers that differ, side by side, by state: the order-number question gone from v2
    assert re.search(r"\d+ answers differ, in \d+ states", shown)
    assert "<del>" in shown and "<ins>" in shown and "What email address can they write back to?" in shown
    # the visitor data handed to humans: v2 carries the order number only when the visitor gave it before
    held = {name: sum("order_number" in json.loads(v) for v in r["transfer_variables"].dropna())
            for name, r in rows.items()}  # fmt: skip
    data = re.search(r"<th>order_number</th>\s*<td>(\d+)</td>\s*<td>(\d+)</td>", shown)
    assert data and (int(data.group(1)), int(data.group(2))) == (held["v1"], held["v2"]) and held["v1"] > held["v2"]
    # every analysis a team acts on, present and not empty
    asked = re.search(r"(\d+) conversations asked for a human; (\d+) never got a transfer", shown)
    assert asked and int(asked.group(1)) > 0
    missed = re.search(r"(\d+) visitor messages? not understood, (\d+) different texts?", shown)
    assert missed and int(missed.group(1)) > 0
    assert re.search(r"\d+ calls over their budget", shown)
    assert "KPIs per topic" in shown and "Track my order" in shown  # a topic's row
    assert "of the transfers the bot asked, the share a human took" in shown  # the glossary, whole
    # the conversation index: a row per conversation, each holding its chat to open
    assert shown.count('<details class="conversation"') == 60
    row = re.search(r'<details class="conversation" id="([^"]+)"><summary>(.*?)</summary>(.*?)</details>', shown, re.S)
    assert re.match(
        r"[0-9a-f]{8} \| (resolved|escalated|abandoned|closed by bot|transfer failed|not understood) "
        r"\| order-assistant \| \d+ turns? \| ",
        row.group(2),
    )
    assert 'class="chat"' in row.group(3)
    # a link to a row opens it, in the browser, with no server
    opened = dom(page, tmp_path, fragment=row.group(1))
    assert f'<details class="conversation" id="{row.group(1)}" open="">' in opened
    budgets = r"first-messages: \d+ of \d+ calls \(2 s budget\); messages: \d+ of \d+ calls \(10 s budget\)"
    assert re.search(budgets, shown)  # each endpoint against its own budget
    assert "Where conversations end" in shown and "Paths through quick replies" in shown


def test_in_jupyter_the_explorer_s_filters_and_pages_are_widgets(tmp_path):
    executed = execute(
        "replay-conversations.ipynb", {"recordings": str(SAMPLE), "limit": 20, "interactive": True}, tmp_path
    )
    kinds = {kind for c in executed.cells for o in c.get("outputs", []) for kind in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in kinds  # ipywidgets: filters, a page number, the page
    widgets = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    labels = {w["state"].get("description") for w in widgets}
    assert {"outcome", "scenario", "visitor said", "bot said", "a call over its budget", "replies differ",
            "a rule broken", "page"} <= labels  # fmt: skip
    budget = next(w for w in widgets if w["state"].get("description") == "a call over its budget")
    assert budget["state"]["_options_labels"] == ["", "as recorded", "as replayed"]
    # the conversation drawn as a chat is also opened in the chat page, to play again (harness.chat in the kernel)
    frames = [o["data"]["text/html"] for c in executed.cells for o in c.get("outputs", []) if "text/html" in
              o.get("data", {}) and o["data"]["text/html"].startswith('<iframe src="http://127.0.0.1:')]  # fmt: skip
    assert len(frames) == 1 and 'title="chat with the bot"' in frames[0]
    pages = [w["state"]["value"] for w in widgets if w["model_name"] == "HTMLModel"]
    first = f"<p>page 1 of {20 // PER_PAGE}: conversations 1-{PER_PAGE} of 20</p>"  # drawn before any filter is used
    assert len(pages) == 1 and pages[0].startswith(first)

"""The notebooks run end to end on a real Jupyter kernel, and the report opens in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from harness.analysis.report import NOTEBOOKS, NOTEBOOKS_DIR, build, execute
from harness.traffic.replay import CONVERSATION_COLUMNS, EXCHANGE_COLUMNS, replay

from .conftest import ROOT, LoopbackServer

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


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The committed sample replayed once against the reference bot, for the notebooks and the report."""
    from reference_bot import create_app

    from .conftest import bot_settings

    folder = tmp_path_factory.mktemp("results")
    app = create_app(bot_settings(folder, PUBLIC_URL="https://bot.example.com"))
    with LoopbackServer(app) as server:
        replay([SAMPLE], server.url, folder, concurrency=4)  # all 2,000 conversations
    return folder


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
    assert images(executed) == 5  # latency per endpoint, over time, escalation rate, funnel, time to escalation
    text = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "first half" in text and "second half" in text  # the two-run comparison


def test_the_report_is_one_offline_page_of_charts_without_code(results, tmp_path, caplog):
    steps = []
    page = build(results, tmp_path / "report.html", progress=lambda text, step: steps.append((text, step)))
    page = page.read_text(encoding="utf-8")
    assert steps == [(f"report: executing {name} ({n} of 2)", name) for n, name in enumerate(NOTEBOOKS, 1)] + [
        ("report: exporting the HTML page", "export")
    ]
    assert "unknown parameter" not in caplog.text  # each notebook is given the parameters it declares
    assert page.count('src="data:image/png;base64,') == 6  # every chart of both notebooks, embedded
    assert "import " not in page and "metrics.load" not in page  # code cells hidden
    assert 'src="http' not in page  # nothing fetched: opens offline


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


def test_replay_refuses_a_concurrency_of_zero():
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "replay", "x.jsonl", "--concurrency", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "must be a whole number of 1 or more, got '0'" in result.stderr

"""``iadvize-harness report``: the notebooks, executed headlessly, as one self-contained HTML page.

Both notebooks run on a real Jupyter kernel (papermill) with the same replay results, then
nbconvert exports them with code cells hidden and figures embedded as images, so the page
opens offline in any browser.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("replay-conversations.ipynb", "response-times-and-escalations.ipynb")
_REMOTE_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)


class ReportError(Exception):
    pass


def execute(notebook: str, parameters: dict, workdir: Path):
    """Run one notebook with ``parameters`` on a fresh kernel; returns the executed notebook."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = papermill.inspect_notebook(str(NOTEBOOKS_DIR / notebook))  # only these: papermill warns of others
    parameters = {name: value for name, value in parameters.items() if name in declared}
    try:
        return papermill.execute_notebook(str(NOTEBOOKS_DIR / notebook), str(workdir / notebook),
                                          parameters=parameters, cwd=str(NOTEBOOKS_DIR), kernel_name="python3",
                                          progress_bar=False, log_output=False)
    except PapermillExecutionError as error:
        raise ReportError(f"{notebook} failed in cell {error.exec_count}: {error.ename}: {error.evalue}") from None


def build(results: Path, out: Path, compare_with: Path | None = None) -> Path:
    """The HTML report of a replay's results (a folder with exchanges.parquet and conversations.parquet)."""
    import nbformat
    import pandas as pd
    from nbconvert import HTMLExporter

    try:
        replayed = len(pd.read_parquet(Path(results) / "conversations.parquet", columns=["conversation"]))
    except (OSError, ValueError) as error:
        raise ReportError(f"{results} is not a replay's output folder ({error})") from None
    if replayed == 0:
        raise ReportError(f"{results} holds no replayed conversation: nothing to report")

    parameters = {"results": str(Path(results).resolve()),
                  "compare_with": str(Path(compare_with).resolve()) if compare_with else ""}
    with tempfile.TemporaryDirectory(prefix="report-") as workdir:
        executed = [execute(name, parameters, Path(workdir)) for name in NOTEBOOKS]
    combined = nbformat.v4.new_notebook(cells=[cell for book in executed for cell in book.cells
                                               if "injected-parameters" not in cell.metadata.get("tags", [])
                                               and "parameters" not in cell.metadata.get("tags", [])],
                                        metadata=executed[0].metadata)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(combined)
    html = _REMOTE_SCRIPT.sub("", html)  # nothing to fetch: the page must open offline
    html = html.replace("<title>Notebook</title>", "<title>iAdvize bot: conversations, response times and "
                                                   "escalations</title>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out

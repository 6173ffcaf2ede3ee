"""``iadvize-harness report``: the notebooks, executed headlessly, as one self-contained HTML page.

Both notebooks run on a real Jupyter kernel (papermill) with the same replay results, then
nbconvert exports them with code cells hidden and figures embedded as images, so the page
opens offline in any browser.

The kernel starts quiet: over Unix sockets (ipykernel warns of plain TCP otherwise), with
``-Xfrozen_modules=off`` and ``PYDEVD_DISABLE_FILE_VALIDATION=1`` (debugpy, which ipykernel loads,
warns of frozen modules otherwise), and the deprecation warnings of the Jupyter machinery are not
shown while it runs. The kernel's own output (its log, not the cells') goes to a file, told only if
the kernel dies: Jupyter interrupts a kernel as it shuts it down, and the kernel may then log an
"ERROR | KeyboardInterrupt caught in kernel" that is no error of the report. Nothing here prints:
``progress`` is told which notebook runs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from harness import resources
from harness.progress import silent

NOTEBOOKS_DIR = resources.notebooks()
NOTEBOOKS = ("replay-conversations.ipynb", "response-times-and-escalations.ipynb")
_REMOTE_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)


JUPYTER_MODULES = r"(papermill|nbclient|nbconvert|nbformat|jupyter_client|jupyter_core|ipykernel|traitlets|zmq)"
KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # debugpy: no "frozen modules" warning at kernel start


class ReportError(Exception):
    """A report that cannot be built: not a replay's output folder, nothing replayed, or a notebook that failed."""

    pass


def _kernel_manager(log):
    """The kernel manager class papermill starts the notebooks' kernels with: one that starts quiet.

    ``log`` (an open file) receives what the kernel process itself writes to its stdout and stderr.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _unix_sockets(self) -> str:
            # Unix sockets, not TCP ports: a free port picked for the kernel (bound, then released) can be taken
            # by another server before the kernel binds it. ipykernel warns of plain TCP, not of these, which
            # only this user can open.
            return "ipc"

        @default("ip")
        def _socket_prefix(self) -> str:
            # an absolute path in a folder of this kernel's own (its sockets are named PREFIX-1 to PREFIX-5)
            self.sockets = tempfile.mkdtemp(prefix="iadvize-kernel-")
            return os.path.join(self.sockets, "kernel")

        def cleanup_ipc_files(self) -> None:
            super().cleanup_ipc_files()
            shutil.rmtree(getattr(self, "sockets", ""), ignore_errors=True)

        def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            if command and command[0] == sys.executable:  # a Python kernel: no frozen modules for debugpy
                command.insert(1, "-Xfrozen_modules=off")
            return command

        async def start_kernel(self, **kwargs):
            env = {**(kwargs.pop("env", None) or os.environ), **KERNEL_ENV}
            return await super().start_kernel(env=env, stdout=log, stderr=log, **kwargs)

    return QuietKernelManager


def execute(notebook: str, parameters: dict, workdir: Path):
    """Run one notebook with ``parameters`` on a fresh kernel; returns the executed notebook."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    declared = papermill.inspect_notebook(str(NOTEBOOKS_DIR / notebook))  # only these: papermill warns of others
    parameters = {name: value for name, value in parameters.items() if name in declared}
    # the log: what the kernel process writes itself; the warnings: the Jupyter machinery's own deprecations
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log, warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=JUPYTER_MODULES)
        try:
            return papermill.execute_notebook(
                str(NOTEBOOKS_DIR / notebook),
                str(workdir / notebook),
                parameters=parameters,
                cwd=str(NOTEBOOKS_DIR),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                kernel_manager_class=_kernel_manager(log),
            )
        except PapermillExecutionError as error:
            raise ReportError(f"{notebook} failed in cell {error.exec_count}: {error.ename}: {error.evalue}") from None
        except DeadKernelError:
            log.seek(0)
            said = [line.strip() for line in log.read()[-4000:].splitlines() if line.strip()][-3:]
            words = f"; its last words: {' | '.join(said)}" if said else ""
            raise ReportError(f"{notebook}: the Jupyter kernel died{words}") from None


def build(results: Path, out: Path, compare_with: Path | None = None, progress=silent, names: str = "") -> Path:
    """The HTML report of a replay's results (a folder with exchanges.parquet and conversations.parquet).

    With ``compare_with`` (a second run's folder), both runs are compared, named by ``names`` ("A,B").
    ``progress(text, step=...)`` is told which notebook runs ("report: executing NAME (1 of 2)").
    """
    import nbformat
    import pandas as pd
    from nbconvert import HTMLExporter

    try:
        replayed = len(pd.read_parquet(Path(results) / "conversations.parquet", columns=["conversation"]))
    except (OSError, ValueError) as error:
        if not (Path(results) / "conversations.parquet").exists():
            raise ReportError(
                f"{results} holds no conversations.parquet: not a replay's output folder, or a "
                "replay that replayed nothing"
            ) from None
        raise ReportError(f"{results} is not a replay's output folder ({error})") from None
    if replayed == 0:
        raise ReportError(f"{results} holds no replayed conversation: nothing to report")

    parameters = {
        "results": str(Path(results).resolve()),
        "compare_with": str(Path(compare_with).resolve()) if compare_with else "",
        "names": names,
        "interactive": False,  # widgets do not work in a static page: the index opens each conversation instead
    }
    executed = []
    with tempfile.TemporaryDirectory(prefix="report-") as workdir:
        for number, name in enumerate(NOTEBOOKS, 1):
            progress(f"report: executing {name} ({number} of {len(NOTEBOOKS)})", step=name)
            executed.append(execute(name, parameters, Path(workdir)))
    progress("report: exporting the HTML page", step="export")
    combined = nbformat.v4.new_notebook(
        cells=[
            cell
            for book in executed
            for cell in book.cells
            if "injected-parameters" not in cell.metadata.get("tags", [])
            and "parameters" not in cell.metadata.get("tags", [])
        ],
        metadata=executed[0].metadata,
    )
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(combined)
    html = _REMOTE_SCRIPT.sub("", html)  # nothing to fetch: the page must open offline
    html = html.replace(
        "<title>Notebook</title>", "<title>iAdvize bot: conversations, response times and escalations</title>"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out

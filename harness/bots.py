"""The bot under test: the URL given, or the embedded reference bot started as a real server process.

``bot(url)`` is the one way every command, the demo, the notebooks and the tests get a bot. The
embedded one runs ``python -m reference_bot.serve --port 0`` in its own process group, is known by the
URL the server prints, and is ready once ``/healthcheck`` answers. ``kill()`` is a real SIGKILL of the
whole group (master and workers), for restart tests.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

START_SECONDS = 30.0


class BotProcessError(RuntimeError):
    """The embedded bot did not start (the message ends with the tail of its log)."""


def _dies_with_us():
    """What the bot's process runs before it starts, on Linux: it is sent SIGTERM when the process that started
    it dies, however it dies (a notebook's kernel killed, a test run cut): no bot is ever left running alone.
    (Linux ties it to the starting thread: only the main thread's bots get it.)"""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None).prctl  # looked up here: between fork and exec, only the call itself runs
    except (OSError, AttributeError):
        return None

    def die_with_parent() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG

    return die_with_parent


def bot_package(spec: str, base: Path | None = None) -> tuple[str, Path | None]:
    """Which bot package ``spec`` names, and the folder to import it from: a package name (``reference_bot``,
    or a copy of the template in ``base``, the current folder by default) or a copy's folder (``./mybot``).
    Raises ValueError, its message the line to show, when it is neither."""
    base = base or Path.cwd()
    folder = Path(spec).expanduser()
    folder = folder if folder.is_absolute() else base / folder
    if spec.isidentifier() and not folder.is_dir():  # an installed package: the reference bot, or a copy
        if importlib.util.find_spec(spec) is None:
            raise ValueError(f"{spec} is neither a folder here nor an installed package: give a bot's folder "
                             "(made with `iadvize-harness template`), e.g. ./mybot")  # fmt: skip
        return spec, None
    if not (folder / "serve.py").is_file() or not (folder / "__init__.py").is_file():
        raise ValueError(f"{spec} is not a bot made with `iadvize-harness template`: no serve.py in {folder}")
    name = folder.resolve().name
    if not name.isidentifier():
        raise ValueError(f"{spec}: the folder's name, {name!r}, is not a package name (letters, digits and _)")
    return name, folder.resolve().parent


@contextmanager
def bot(
    url: str | None = None,
    *,
    secret: str | None = None,
    workers: int = 2,
    env: dict | None = None,
    package: str | None = None,
) -> Iterator[str]:
    """Yield the bot's base URL: ``url`` when given, else an embedded bot's (the reference bot, or the copy of
    it ``package`` names: see :func:`bot_package`), stopped at the end.

    ``secret`` makes the embedded bot check signatures; raises :class:`BotProcessError` when it cannot start,
    ValueError when ``package`` is no bot.
    """
    if url:
        yield url
        return
    with EmbeddedBot(secret=secret, workers=workers, env=env, package=package or "reference_bot") as embedded:
        yield embedded.url


class EmbeddedBot:
    """The reference bot under gunicorn in a process of its own, on a free loopback port."""

    def __init__(
        self,
        database: str | os.PathLike | None = None,
        secret: str | None = None,
        scenarios: str | os.PathLike | None = None,
        workers: int = 2,
        env: dict | None = None,
        log_path: str | os.PathLike | None = None,
        package: str = "reference_bot",
    ):
        """``package``: the bot to run, the reference bot or a copy of it (its name, or its folder: see
        :func:`bot_package`; raises ValueError when it is neither)."""
        self._tmp = tempfile.TemporaryDirectory(prefix="iadvize-bot-")
        database = str(database or Path(self._tmp.name) / "bot.sqlite3")
        self.database = database if "://" in database else os.path.abspath(database)  # it may run elsewhere
        self.log_path = Path(log_path or Path(self._tmp.name) / "bot.log")
        self.secret, self.scenarios, self.workers = secret, scenarios, workers
        self.env = env or {}
        self.package, self.import_from = bot_package(package)
        self.url: str | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        """Start the server and return its base URL once it answers ``/healthcheck``."""
        command = [
            sys.executable,
            "-m",
            f"{self.package}.serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            self.database,
            "--workers",
            str(self.workers),
        ]
        if self.scenarios:
            command += ["--scenarios", os.path.abspath(self.scenarios)]
        env = {**os.environ, **self.env}
        if self.import_from is not None:  # a copy's folder: its parent is where Python finds it
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.import_from), env.get("PYTHONPATH")) if p)
        env.pop("IADVIZE_SECRET", None)
        if self.secret:
            env["IADVIZE_SECRET"] = self.secret  # by environment: never on a command line others can read
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=self.import_from,  # `python -m` looks in the current folder first: a copy there, not another
                start_new_session=True,
                preexec_fn=_dies_with_us() if threading.current_thread() is threading.main_thread() else None,
            )
        self.url = self._read_url()
        self._wait_healthy()
        return self.url

    def _read_url(self) -> str:
        deadline = time.monotonic() + START_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = self.process.stdout.readline().decode()
                    if not line:
                        break
                    if " on http" in line:
                        self._drain_stdout()
                        return line.split(" on ", 1)[1].split()[0]
                if self.process.poll() is not None:
                    break
        self.stop()
        raise BotProcessError(f"{self._named()} did not start:\n{self.log_tail()}")

    def _drain_stdout(self) -> None:
        # Whatever the server prints later goes to the log: a pipe nobody reads would block it once full.
        def copy(stream, path):
            with open(path, "ab") as log:
                for line in iter(stream.readline, b""):
                    log.write(line)
                    log.flush()

        threading.Thread(target=copy, args=(self.process.stdout, self.log_path), daemon=True).start()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BotProcessError(f"{self._named()} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/healthcheck", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise BotProcessError(f"{self._named()} never answered /healthcheck:\n{self.log_tail()}")

    def _named(self) -> str:
        return "the reference bot" if self.package == "reference_bot" else f"the bot {self.package}"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log (its stderr), for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL master and workers at once: nothing gets to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM master and workers, and SIGKILL them if they are not gone within 15 s."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        """Stop the server and remove its temporary folder (database and log)."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> EmbeddedBot:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

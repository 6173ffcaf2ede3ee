"""A real PostgreSQL server for the tests: Debian's binaries, a cluster in a temporary folder, a free port.

``initdb`` and the server refuse to run as root: as root, they run as the ``postgres`` user that Debian's
package creates (``runuser``). The server listens on 127.0.0.1 only, and on a socket in its own folder.
Each test gets a database of its own (``new_database``). ``make test`` installs the package (``make
postgresql``); without it the tests that need it fail, naming the command.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

START_TIMEOUT_SECONDS = 60


def binaries() -> Path:
    """The folder of Debian's PostgreSQL programs (the newest installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: make postgresql (Debian's postgresql package)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``start()``, ``stop()``, ``restart()``; ``url(name)`` for a database of it; ``new_database()``."""

    def __init__(self):
        self.bin = binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="iadvize-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._names = itertools.count(1)
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            cwd=self.folder,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        """Starts the server and waits until it accepts connections (pg_ctl -w)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stops the server at once (``-m fast``: connections are cut, committed work is kept)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"bot_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)

    def query(self, url: str, sql: str, params=()) -> list[dict]:
        """The rows of one statement on the database of ``url`` (what the tests inspect)."""
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as connection:
            cursor = connection.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def wait_for_lock_waiter(self, url: str, timeout: float = 30.0) -> None:
        """Returns once a session of the database of ``url`` waits for a lock (what a test synchronises on)."""
        with psycopg.connect(url, autocommit=True) as connection:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                waiting = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                if waiting:
                    return
                time.sleep(0.01)
        raise AssertionError(f"no session waited for a lock within {timeout:g} s")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

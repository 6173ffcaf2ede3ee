"""The store in one SQLite file: the embedded default, for one machine.

WAL mode lets several gunicorn workers read while one writes; a transaction is ``BEGIN IMMEDIATE``,
which takes the file's write lock first, so it also serialises two deliveries of one conversation (no
row locks needed). ``synchronous=NORMAL`` in WAL mode survives a killed process (only a power cut can
lose the last commits).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import closing, contextmanager

from .base import Store, tables


class SQLiteStore(Store):
    """One SQLite file; a connection per thread, opened on first use in that thread and process."""

    UNAVAILABLE = (sqlite3.OperationalError,)  # locked, read-only, disk full: conditions that pass

    def __init__(self, path: str, busy_timeout: float = 5.0):
        self.path = str(path)
        self.description = self.path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                with closing(self._connect()) as connection:
                    connection.execute("PRAGMA journal_mode=WAL")  # outside any transaction, as SQLite requires
                self.migrate()
                return
            except sqlite3.OperationalError as error:
                # Switching a new file to WAL ignores the busy timeout: workers starting
                # together may find it locked for a moment.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection; a new one after a fork, or once a file opened read-only can be written."""
        # A connection must not cross a fork (gunicorn forks workers), hence the pid check. And SQLite
        # opens a file it cannot write (read-only disk, immutable file) read-only for good: such a
        # connection is replaced as soon as the file can be written again, or the bot would answer 503
        # until restarted.
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or (local.read_only and os.access(self.path, os.W_OK)):
            local.read_only = not os.access(self.path, os.W_OK)  # before connecting: a race errs towards a retry
            local.connection = self._connect()
            local.pid = os.getpid()
        return local.connection

    @contextmanager
    def reading(self):
        """This thread's connection (SQLite reads outside a transaction see the last commit)."""
        yield self.connection

    @contextmanager
    def transaction(self):
        """``BEGIN IMMEDIATE``: takes the write lock first, so read-modify-write cannot interleave."""
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException as error:
            connection.execute("ROLLBACK")
            if getattr(error, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                self._local.read_only = True  # opened read-only after all: try a new connection next time
            raise
        try:
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:  # a COMMIT that failed (disk full...) leaves it open: close it
                connection.execute("ROLLBACK")
            raise

    def _prepare_schema(self, tx) -> None:
        for statement in tables():  # BEGIN IMMEDIATE already keeps other workers out
            tx.execute(statement)

    def _columns(self, tx, table: str) -> set[str]:
        return {row["name"] for row in tx.execute(f"PRAGMA table_info({table})")}

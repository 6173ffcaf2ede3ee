"""The store in one SQLite file: the embedded default, for one machine.

WAL mode lets several gunicorn workers read while one writes; a transaction is ``BEGIN IMMEDIATE``,
which takes the file's write lock first, so it also serialises two deliveries of one conversation (no
row locks needed). ``synchronous=NORMAL`` in WAL mode survives a killed process (only a power cut can
lose the last commits).

Writers queue before SQLite sees them: the threads of a process on a lock, the processes on an
``flock`` of ``<file>.lock``. SQLite's own wait for its write lock sleeps 1, 2, 5, 10... ms whatever
the holder needs (about 0.1 ms for one of our transactions): under concurrent messages that back-off
was most of the latency's tail. The queue only orders writers; SQLite's lock still guarantees
correctness (without the lock file, say on a read-only folder, it works as before).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import closing, contextmanager, suppress

from .base import Store, tables

CHECKPOINT_SECONDS = 1.0  # how often the write-ahead log is copied back into the file (it grows until then)


class SQLiteStore(Store):
    """One SQLite file; a connection per thread, opened on first use in that thread and process."""

    UNAVAILABLE = (sqlite3.OperationalError,)  # locked, read-only, disk full: conditions that pass

    def __init__(self, path: str, busy_timeout: float = 5.0):
        self.path = str(path)
        self.description = self.path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._writers = threading.Lock()  # this process's writers, one at a time
        self._checkpointer: int | None = None  # the process whose thread writes the log back into the file
        self._closed = threading.Event()  # ends that thread
        # Not before the store is open: `serve` opens it (to migrate) in gunicorn's master, then forks. A thread
        # inside SQLite at the fork would leave the workers' SQLite believing they hold file locks they do not
        # hold (locks are not inherited), and concurrent writers would corrupt the file.
        self._serving = False
        self._lock_file: tuple[int, int | None] | None = None  # (pid, descriptor of <file>.lock or None)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if self.path != ":memory:" and not os.path.exists(self.path):
            # its owner's only (SQLite gives its -wal and -shm files the same mode): it holds what visitors gave
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                with closing(self._connect()) as connection:
                    connection.execute("PRAGMA journal_mode=WAL")  # outside any transaction, as SQLite requires
                self.migrate()
                self._serving = True
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
        # No checkpoint inside a commit: the one that crossed 1,000 pages of log would write them back and
        # fsync the file while every other writer waits (the tail of the latency); _checkpoints does it aside.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    def _checkpoints(self) -> None:
        """Every ``CHECKPOINT_SECONDS``, copies the log back into the file, beside the writers (PASSIVE)."""
        with closing(self._connect()) as connection:
            while not self._closed.wait(CHECKPOINT_SECONDS):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:  # locked, disk full...: the next round tries again
                    continue

    def _start_checkpoints(self) -> None:
        if self._serving and self._checkpointer != os.getpid():  # one thread per process, started after any fork
            self._checkpointer = os.getpid()
            threading.Thread(target=self._checkpoints, name="sqlite-checkpoints", daemon=True).start()

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

    def _lock_descriptor(self) -> int | None:
        """This process's descriptor of ``<file>.lock`` (an flock must not be shared across a fork)."""
        if self._lock_file is None or self._lock_file[0] != os.getpid():
            try:
                descriptor = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                descriptor = None  # a folder we cannot create it in: SQLite's lock alone
            self._lock_file = (os.getpid(), descriptor)
        return self._lock_file[1]

    @contextmanager
    def _queued(self):
        """Waits for this writer's turn: other threads, then other processes (polled every 0.5 ms at most)."""
        if not self._writers.acquire(timeout=self.busy_timeout):
            raise sqlite3.OperationalError("database is locked: a write of this process did not end")
        try:
            descriptor, deadline, pause = self._lock_descriptor(), time.monotonic() + self.busy_timeout, 0.00005
            while descriptor is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError("database is locked: another process is writing") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.0005)
            try:
                yield
            finally:
                if descriptor is not None:
                    with suppress(OSError):
                        fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            self._writers.release()

    @contextmanager
    def transaction(self):
        """``BEGIN IMMEDIATE``: takes the write lock first, so read-modify-write cannot interleave."""
        self._start_checkpoints()
        with self._queued():
            yield from self._transaction()

    def _transaction(self):
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

    def close(self) -> None:
        """Ends the checkpoint thread, and closes this thread's connection (``serve`` closes the store it migrated
        with before forking: no connection may cross a fork)."""
        self._closed.set()
        local = self._local
        if getattr(local, "pid", None) == os.getpid() and getattr(local, "connection", None) is not None:
            local.connection.close()
            local.connection, local.pid = None, None

    def _prepare_schema(self, tx) -> None:
        for statement in tables():  # BEGIN IMMEDIATE already keeps other workers out
            tx.execute(statement)

    def _columns(self, tx, table: str) -> set[str]:
        return {row["name"] for row in tx.execute(f"PRAGMA table_info({table})")}

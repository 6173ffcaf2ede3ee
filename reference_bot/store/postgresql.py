"""The store on a PostgreSQL server, shared by several instances of the bot (psycopg 3 and its pool).

What SQLite gets from its single write lock, PostgreSQL gets from row locks: a visitor message locks its
conversation's row (``SELECT ... FOR UPDATE``) before checking what was answered and storing its answer,
so deliveries of one conversation on two instances apply one after the other; the outbox is claimed with
``FOR UPDATE SKIP LOCKED``, so each proactive message is sent by one instance. The schema is created and
migrated at start-up under an advisory lock, so instances starting together migrate once.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from .base import Store, StoreError, tables
from .schema import in_postgresql

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - depends on the install
    psycopg = None

# The pool logs each failed reconnection on its own, in plain text; the bot's 503s already say it, in JSON.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

MIGRATION_LOCK = 0x1AD71CE  # pg_advisory_xact_lock key: one instance migrates at a time
CONNECT_TIMEOUT_SECONDS = 3  # a server that does not answer: give up and answer 503 rather than hang
POOL_TIMEOUT_SECONDS = 2.0  # how long a request waits for a connection of the pool (then 503)
RECONNECT_SECONDS = 1.0  # below POOL_TIMEOUT_SECONDS: a request waiting for a connection sees a fresh attempt
STATEMENT_TIMEOUT_MS = 10_000  # no statement of ours takes long: one that does is stuck on something


def without_password(url: str) -> str:
    """The URL as it may be printed and logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))


class _Session:
    """A pooled connection speaking the store's ``?`` placeholders (psycopg's are ``%s``)."""

    __slots__ = ("connection",)

    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql: str, params=()):
        return self.connection.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql: str, rows):
        with self.connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)


def _configure(connection) -> None:
    connection.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")


class PostgreSQLStore(Store):
    """A pool of connections to one PostgreSQL database, opened in this process (after any fork)."""

    FOR_UPDATE = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, pool_size: int = 5, migrate: bool = True):
        """``migrate``: connect now, and create or migrate the schema (raises when the server cannot be used);
        without it (a gunicorn worker of ``serve``, which migrated before forking) nothing waits for the
        server: a worker started while it is down boots, answers 503 meanwhile, and uses it once it is back."""
        if psycopg is None:
            raise StoreError(
                "a postgresql:// database needs psycopg: pip install 'iadvize-harness[postgresql]' "
                "(or psycopg[binary] and psycopg-pool beside a copy of the template)"
            )
        self.UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)  # down, restarting, unreachable, pool empty
        self.url, self.description = url, without_password(url)
        options = {"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if migrate:  # a server out of reach or a wrong password: the driver's reason, rather than a pool timeout
            psycopg.connect(url, **options).close()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=options,
            configure=_configure,
            # A connection the server dropped (a restart) is replaced when taken, not failed on: the first
            # call after the server is back is answered.
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_SECONDS,
            # The pool retries a connection the server refused with a growing backoff (1, 2, 4... s): given up
            # after a second, the next request asks for one at once, so a server back is used from then on.
            reconnect_timeout=RECONNECT_SECONDS,
            name="reference-bot",
            open=True,
        )
        if not migrate:
            return
        try:
            self.migrate()
        except BaseException:
            self.pool.close()
            raise

    @contextmanager
    def reading(self):
        """A pooled connection in autocommit: each read sees what is committed."""
        with self.pool.connection() as connection:
            yield _Session(connection)

    @contextmanager
    def transaction(self):
        """A transaction on a pooled connection (read committed; row locks where the queries ask)."""
        with self.pool.connection() as connection, connection.transaction():
            yield _Session(connection)

    def close(self) -> None:
        self.pool.close()

    def _prepare_schema(self, tx) -> None:
        tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        for statement in tables():
            tx.execute(self._ddl(statement))

    _ddl = staticmethod(in_postgresql)

    def _columns(self, tx, table: str) -> set[str]:
        rows = tx.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row["column_name"] for row in rows}

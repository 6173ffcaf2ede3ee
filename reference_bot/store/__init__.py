"""The bot's state: one interface (:class:`Store`), in an SQLite file or on a PostgreSQL server.

``open_store(database)`` picks the implementation: a ``postgresql://`` URL (or ``postgres://``) runs on
PostgreSQL, shared by several instances of the bot; anything else is the path of an SQLite file.
"""

from __future__ import annotations

from .base import Conversation, Operator, OutboxMessage, Store, StoreError
from .sqlite import SQLiteStore

__all__ = ["Conversation", "Operator", "OutboxMessage", "SQLiteStore", "Store", "StoreError", "open_store"]

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def is_postgresql(database: str) -> bool:
    """Whether ``database`` is a PostgreSQL URL rather than a file path."""
    return str(database).startswith(POSTGRESQL_SCHEMES)


def open_store(database: str, pool_size: int = 5, migrated: bool = False) -> Store:
    """The store of ``database``: a PostgreSQL URL, or an SQLite file path; its schema created or migrated.

    ``pool_size`` bounds the connections a PostgreSQL store opens (per process). ``migrated``: the schema was
    migrated already (by ``serve``, before forking its workers), so a PostgreSQL store does not wait for the
    server to open.
    """
    if is_postgresql(database):
        from .postgresql import PostgreSQLStore  # psycopg is needed only there

        return PostgreSQLStore(database, pool_size=pool_size, migrate=not migrated)
    return SQLiteStore(database)

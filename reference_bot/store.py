"""The bot's state in one SQLite file: operators, conversations, processed messages, outbox.

WAL mode lets several gunicorn workers read while one writes; every change that must be
atomic (a visitor message advancing a conversation, its replies remembered for retries,
proactive messages queued) happens in one ``BEGIN IMMEDIATE`` transaction, which also
serialises two deliveries of the same conversation. ``synchronous=NORMAL`` in WAL mode
survives a killed process (only a power cut can lose the last commits).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    id_operator TEXT PRIMARY KEY,
    settings    TEXT NOT NULL,           -- JSON: name, pseudo, language, distributionRules, idBot
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id_conversation TEXT PRIMARY KEY,    -- the iAdvize id: the connector uses it as its own
    id_operator     TEXT NOT NULL,
    state           TEXT,                -- scenario state; NULL until the first visitor message
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 0,  -- +1 per answer: two answers never both apply
    handed_over     INTEGER NOT NULL DEFAULT 0,  -- a human took over after a transfer: the bot is quiet
    closed          INTEGER NOT NULL DEFAULT 0,  -- iAdvize said it closed (webhook): nothing more is sent
    variables       TEXT NOT NULL DEFAULT '{}'   -- JSON: the visitor data the scenario asked for, by name
);
CREATE TABLE IF NOT EXISTS messages (
    id_conversation TEXT NOT NULL,
    id_message      TEXT NOT NULL,
    replies         TEXT NOT NULL,       -- JSON: what was answered, answered again on a retry
    PRIMARY KEY (id_conversation, id_message)
);
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    id_conversation TEXT NOT NULL,
    id_operator     TEXT NOT NULL,
    text            TEXT NOT NULL,       -- a message's text ('' for an action): the echo rule knows it as the bot's
    reply           TEXT,                -- JSON: the wire reply to post (NULL in older rows: the text)
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          REAL NOT NULL,       -- unix time of the next attempt
    claimed_until   REAL,                -- a worker is sending it until then
    sent_at         REAL,
    failed_at       REAL,                -- given up: no longer holds back the conversation's later messages
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, due_at);
"""
# Columns added since the first release: (table, column, definition), added to older files at start-up.
MIGRATIONS = (
    ("conversations", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("conversations", "handed_over", "INTEGER NOT NULL DEFAULT 0"),
    ("outbox", "failed_at", "REAL"),
    ("conversations", "closed", "INTEGER NOT NULL DEFAULT 0"),
    ("conversations", "variables", "TEXT NOT NULL DEFAULT '{}'"),
    ("outbox", "reply", "TEXT"),
)


@dataclass(frozen=True)
class Operator:
    """A bot operator as ``PUT /bots/:idOperator`` saved it.

    ``settings`` hold its name, pseudo, language, distributionRules and idBot.
    """

    id_operator: str
    settings: dict
    created_at: str
    updated_at: str

    @property
    def id_bot(self) -> str:
        """The idBot of the scenario the operator is linked to."""
        return self.settings["idBot"]

    @property
    def distribution_rules(self) -> list[dict]:
        """The distribution rules the admin chose for transfers (empty when none)."""
        return self.settings.get("distributionRules", [])


@dataclass(frozen=True)
class Conversation:
    """One conversation: its scenario ``state``, its version (+1 per answer), whether a human took it over.

    ``state`` is None until the first visitor message; ``variables`` hold the visitor data given so far.
    """

    id_conversation: str
    id_operator: str
    state: str | None
    created_at: str
    updated_at: str
    version: int = 0
    handed_over: bool = False
    closed: bool = False
    variables: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class OutboxMessage:
    """A proactive message or action claimed for sending (``reply``, a wire reply); ``attempts`` counts its
    failed tries."""

    id: int
    id_conversation: str
    id_operator: str
    text: str
    attempts: int
    reply: dict = dataclasses.field(default_factory=dict)


class Store:
    """One SQLite file; a connection per thread, opened on first use in that thread and process."""

    def __init__(self, path: str, busy_timeout: float = 5.0):
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._initialise()
                return
            except sqlite3.OperationalError as error:
                # Switching a new file to WAL ignores the busy timeout: workers starting
                # together may find it locked for a moment.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _initialise(self) -> None:
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
            for table, column, definition in MIGRATIONS:
                if column not in {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

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

    # --- operators -------------------------------------------------------------------------

    def save_operator(self, id_operator: str, settings: dict, now: str) -> Operator:
        """Creates or updates the operator (keeping its ``createdAt``) and returns it as stored."""
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO operators (id_operator, settings, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id_operator) DO UPDATE SET settings = excluded.settings, "
                "updated_at = excluded.updated_at",
                (id_operator, json.dumps(settings), now, now),
            )
            row = tx.execute("SELECT * FROM operators WHERE id_operator = ?", (id_operator,)).fetchone()
        return _operator(row)

    def operator(self, id_operator: str) -> Operator | None:
        """The operator saved under this id, or None."""
        row = self.connection.execute("SELECT * FROM operators WHERE id_operator = ?", (id_operator,)).fetchone()
        return _operator(row) if row else None

    def operators(self) -> dict[str, Operator]:
        """Every saved operator, by idOperator."""
        return {r["id_operator"]: _operator(r) for r in self.connection.execute("SELECT * FROM operators")}

    # --- conversations (changes inside ``transaction()``; reads may use ``connection``) -------

    @staticmethod
    def conversation(tx, id_conversation: str) -> Conversation | None:
        """The conversation, read through ``tx`` (a transaction or the plain connection), or None."""
        row = tx.execute("SELECT * FROM conversations WHERE id_conversation = ?", (id_conversation,)).fetchone()
        return Conversation(**{**dict(row), "variables": json.loads(row["variables"])}) if row else None

    @staticmethod
    def start_conversation(tx, id_conversation: str, id_operator: str, now: str) -> Conversation:
        """Create the conversation, or return it untouched when iAdvize sends it again."""
        tx.execute(
            "INSERT INTO conversations (id_conversation, id_operator, state, created_at, updated_at) "
            "VALUES (?, ?, NULL, ?, ?) ON CONFLICT (id_conversation) DO NOTHING",
            (id_conversation, id_operator, now, now),
        )
        return Store.conversation(tx, id_conversation)

    @staticmethod
    def move_conversation(
        tx, conversation: Conversation, state: str | None, now: str, variables: dict | None = None
    ) -> Conversation | None:
        """The conversation moved to ``state`` (its variables now ``variables``, when given); None when
        another answer moved it since it was read."""
        variables = conversation.variables if variables is None else variables
        moved = tx.execute(
            "UPDATE conversations SET state = ?, variables = ?, updated_at = ?, version = version + 1 "
            "WHERE id_conversation = ? AND version = ?",
            (state, json.dumps(variables), now, conversation.id_conversation, conversation.version),
        )
        if moved.rowcount != 1:
            return None
        return dataclasses.replace(
            conversation, state=state, variables=variables, updated_at=now, version=conversation.version + 1
        )

    @staticmethod
    def hand_over(tx, id_conversation: str, now: str) -> None:
        """Marks the conversation as taken over by a human: the bot keeps quiet in it from now on.

        Its version moves too, so an answer worked out meanwhile is not stored.
        """
        # version + 1: a bot answer worked out meanwhile no longer applies (it is worked out again: silence)
        tx.execute(
            "UPDATE conversations SET handed_over = 1, updated_at = ?, version = version + 1 WHERE id_conversation = ?",
            (now, id_conversation),
        )

    @staticmethod
    def close(tx, id_conversation: str, now: str) -> int:
        """Marks the conversation closed and drops its proactive messages not sent yet; returns how many.

        Its version moves too, so an answer worked out meanwhile is not stored.
        """
        tx.execute(
            "UPDATE conversations SET closed = 1, updated_at = ?, version = version + 1 WHERE id_conversation = ?",
            (now, id_conversation),
        )
        dropped = tx.execute(
            "UPDATE outbox SET failed_at = ?, claimed_until = NULL, last_error = 'the conversation closed' "
            "WHERE id_conversation = ? AND sent_at IS NULL AND failed_at IS NULL",
            (time.time(), id_conversation),
        )
        return dropped.rowcount

    @staticmethod
    def sent(tx, id_conversation: str) -> tuple[set[str], bool]:
        """The texts the bot posted in this conversation, and whether it asked for a transfer."""
        texts, transferred = set(), False
        for row in tx.execute("SELECT replies FROM messages WHERE id_conversation = ?", (id_conversation,)):
            for reply in json.loads(row["replies"]):
                transferred = transferred or reply.get("type") == "transfer"
                if reply.get("type") == "message" and reply["payload"].get("contentType") == "text":
                    texts.add(reply["payload"]["value"])
        texts.update(
            r["text"] for r in tx.execute("SELECT text FROM outbox WHERE id_conversation = ?", (id_conversation,))
        )
        return texts, transferred

    @staticmethod
    def answered(tx, id_conversation: str, id_message: str) -> list[dict] | None:
        """The replies already answered to this message, or None when it was never answered."""
        row = tx.execute(
            "SELECT replies FROM messages WHERE id_conversation = ? AND id_message = ?", (id_conversation, id_message)
        ).fetchone()
        return json.loads(row["replies"]) if row else None

    @staticmethod
    def remember(tx, id_conversation: str, id_message: str, replies: list[dict]) -> None:
        """Stores the replies answered to this message, to answer them again when iAdvize retries it."""
        tx.execute(
            "INSERT INTO messages (id_conversation, id_message, replies) VALUES (?, ?, ?)",
            (id_conversation, id_message, json.dumps(replies)),
        )

    @staticmethod
    def enqueue(tx, id_conversation: str, id_operator: str, replies: list[dict | str]) -> None:
        """Queues ``replies`` (wire replies, or texts) as proactive messages and actions of the conversation,
        due now, to be sent in order."""
        replies = [
            {"type": "message", "payload": {"contentType": "text", "value": r}} if isinstance(r, str) else r
            for r in replies
        ]
        tx.executemany(
            "INSERT INTO outbox (id_conversation, id_operator, text, reply, due_at) VALUES (?, ?, ?, ?, ?)",
            [
                (id_conversation, id_operator, (r.get("payload") or {}).get("value", ""), json.dumps(r), time.time())
                for r in replies
            ],
        )

    # --- outbox ----------------------------------------------------------------------------

    def claim_next(self, lease: float = 30.0) -> OutboxMessage | None:
        """The oldest due message whose conversation has nothing older pending, leased to us."""
        now = time.time()
        with self.transaction() as tx:
            row = tx.execute(
                "SELECT * FROM outbox AS o WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) "
                "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.id_conversation = o.id_conversation "
                "                AND p.sent_at IS NULL AND p.failed_at IS NULL AND p.id < o.id) "
                "ORDER BY id LIMIT 1",
                (now, now),
            ).fetchone()
            if row is None:
                return None
            tx.execute("UPDATE outbox SET claimed_until = ? WHERE id = ?", (now + lease, row["id"]))
        reply = (
            json.loads(row["reply"])
            if row["reply"]
            else {"type": "message", "payload": {"contentType": "text", "value": row["text"]}}
        )
        return OutboxMessage(row["id"], row["id_conversation"], row["id_operator"], row["text"], row["attempts"], reply)

    def mark_sent(self, message_id: int) -> None:
        """Marks the outbox message sent and ends its lease."""
        with self.transaction() as tx:
            tx.execute("UPDATE outbox SET sent_at = ?, claimed_until = NULL WHERE id = ?", (time.time(), message_id))

    def retry_later(self, message_id: int, delay: float, error: str) -> None:
        """Counts a failed try and makes the message due again in ``delay`` seconds, ending its lease."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, due_at = ?, claimed_until = NULL, "
                "last_error = ? WHERE id = ?",
                (time.time() + delay, error[:500], message_id),
            )

    def give_up(self, message_id: int, error: str) -> None:
        """Counts a failed try and stops trying the message, so the conversation's later messages may go."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, failed_at = ?, claimed_until = NULL, "
                "last_error = ? WHERE id = ?",
                (time.time(), error[:500], message_id),
            )

    def outbox(self) -> list[dict]:
        """Every outbox message, oldest first, as plain rows (what tests inspect)."""
        return [dict(r) for r in self.connection.execute("SELECT * FROM outbox ORDER BY id")]


def _operator(row) -> Operator:
    return Operator(row["id_operator"], json.loads(row["settings"]), row["created_at"], row["updated_at"])

"""What the bot keeps, and the queries that keep it, written once for both databases.

Operators, conversations (scenario state, version, visitor data), the replies answered to each visitor
message (answered again when iAdvize retries) and the outbox of proactive messages. Every change that must
be atomic (a visitor message advancing a conversation, its replies remembered, proactive messages queued)
happens inside one ``transaction()``; the two implementations (:mod:`.sqlite`, :mod:`.postgresql`) say
how a transaction is taken and which rows it locks.
"""

from __future__ import annotations

import dataclasses
import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .schema import MIGRATIONS, TABLES, VERSION


class StoreError(RuntimeError):
    """A database the bot cannot start with (a newer schema, a driver missing); the message says what to do."""


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
    """The queries; a subclass gives the connections, transactions and locks of its database.

    ``tx`` arguments are what ``transaction()`` yields (changes) or ``reading()`` yields (reads only): an
    object with ``execute(sql, params)`` taking ``?`` placeholders, whose rows read by column name.
    """

    # The errors that mean the database cannot be reached or is busy for now: answered 503, iAdvize retries.
    UNAVAILABLE: tuple[type[BaseException], ...] = ()
    FOR_UPDATE = ""  # the suffix that locks the rows a SELECT reads, until the transaction ends ("": no row locks)
    SKIP_LOCKED = ""  # the suffix that locks them, skipping rows another transaction holds
    description = ""  # what ``serve`` prints: the file, or the server without its password

    def transaction(self) -> AbstractContextManager:
        """A transaction: committed when the block ends, rolled back when it raises."""
        raise NotImplementedError

    def reading(self) -> AbstractContextManager:
        """A connection for reads outside any transaction (each read sees what is committed)."""
        raise NotImplementedError

    def close(self) -> None:
        """Closes the connections (before a fork, at exit)."""

    def _columns(self, tx, table: str) -> set[str]:
        raise NotImplementedError

    @staticmethod
    def _ddl(sql: str) -> str:
        """``sql`` (SQLite's dialect) in this database's types."""
        return sql

    def _prepare_schema(self, tx) -> None:
        """Inside the migration's transaction: keep other instances out of it, then create missing tables."""
        raise NotImplementedError

    def migrate(self) -> int:
        """Creates the tables and applies the migrations this database has not had; returns its version.

        Raises StoreError for a database a newer bot migrated (its rows may mean what this one does not know).
        """
        with self.transaction() as tx:
            self._prepare_schema(tx)
            row = tx.execute("SELECT version FROM schema_version").fetchone()
            version = row["version"] if row else 0
            if version > VERSION:
                raise StoreError(
                    f"the database {self.description} has schema version {version}, newer than this bot's "
                    f"({VERSION}): run the newer bot, or give this one another database"
                )
            for table, column, definition in MIGRATIONS[version:]:
                if column not in self._columns(tx, table):
                    tx.execute(self._ddl(f"ALTER TABLE {table} ADD COLUMN {column} {definition}"))
            if row is None:
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (VERSION,))
            elif version < VERSION:
                tx.execute("UPDATE schema_version SET version = ?", (VERSION,))
        return VERSION

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
        with self.reading() as reads:
            row = reads.execute("SELECT * FROM operators WHERE id_operator = ?", (id_operator,)).fetchone()
        return _operator(row) if row else None

    def operators(self) -> dict[str, Operator]:
        """Every saved operator, by idOperator."""
        with self.reading() as reads:
            return {r["id_operator"]: _operator(r) for r in reads.execute("SELECT * FROM operators")}

    # --- conversations (changes inside ``transaction()``; reads may use ``reading()``) --------

    def lock_conversation(self, tx, id_conversation: str) -> None:
        """Holds the conversation's row until the transaction ends, so that deliveries of one conversation on
        several instances apply one after the other (nothing to do where a transaction locks everything)."""
        if self.FOR_UPDATE:
            tx.execute("SELECT 1 FROM conversations WHERE id_conversation = ?" + self.FOR_UPDATE, (id_conversation,))

    @staticmethod
    def conversation(tx, id_conversation: str) -> Conversation | None:
        """The conversation, or None."""
        row = tx.execute("SELECT * FROM conversations WHERE id_conversation = ?", (id_conversation,)).fetchone()
        return Conversation(**{**dict(row), "variables": json.loads(row["variables"])}) if row else None

    def start_conversation(self, tx, id_conversation: str, id_operator: str, now: str) -> Conversation:
        """Create the conversation, or return it untouched when iAdvize sends it again."""
        tx.execute(
            "INSERT INTO conversations (id_conversation, id_operator, state, created_at, updated_at) "
            "VALUES (?, ?, NULL, ?, ?) ON CONFLICT (id_conversation) DO NOTHING",
            (id_conversation, id_operator, now, now),
        )
        return self.conversation(tx, id_conversation)

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
        tx.execute(
            "UPDATE conversations SET handed_over = 1, updated_at = ?, version = version + 1 WHERE id_conversation = ?",
            (now, id_conversation),
        )

    @staticmethod
    def close_conversation(tx, id_conversation: str, now: str) -> int:
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
        """The oldest due message whose conversation has nothing older pending, leased to us.

        Another instance claiming at the same moment skips the row this one locked (and, since that row is
        still pending, every later message of its conversation): each message is sent by one instance.
        """
        now = time.time()
        with self.transaction() as tx:
            row = tx.execute(
                "SELECT * FROM outbox AS o WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) "
                "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.id_conversation = o.id_conversation "
                "                AND p.sent_at IS NULL AND p.failed_at IS NULL AND p.id < o.id) "
                "ORDER BY id LIMIT 1" + self.SKIP_LOCKED,
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
        """Every outbox message, oldest first, as plain rows (what tests and operators inspect)."""
        with self.reading() as reads:
            return [dict(r) for r in reads.execute("SELECT * FROM outbox ORDER BY id")]


def statements(sql: str) -> list[str]:
    """The statements of a script such as ``TABLES`` (no semicolon inside them)."""
    return [s.strip() for s in sql.split(";") if s.strip()]


def tables() -> list[str]:
    """The statements that create the tables, in SQLite's dialect."""
    return statements(TABLES)


def _operator(row) -> Operator:
    return Operator(row["id_operator"], json.loads(row["settings"]), row["created_at"], row["updated_at"])

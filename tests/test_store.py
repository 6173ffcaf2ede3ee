"""The store, on both its databases: an SQLite file and a real PostgreSQL server (``database`` fixture).

The same tests run on each; what only PostgreSQL does (row locks held across connections, an outbox
claimed by several instances at once) is tested on it alone, below.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reference_bot.store import StoreError, open_store
from reference_bot.store.schema import MIGRATIONS, VERSION, in_postgresql


@pytest.fixture
def store(database):
    opened = open_store(database)
    yield opened
    opened.close()


def started(store, id_conversation="c1", id_operator="op-1"):
    with store.transaction() as tx:
        return store.start_conversation(tx, id_conversation, id_operator, "2026-12-01T10:00:00.000Z")


def test_an_operator_saved_again_keeps_when_it_was_created(store):
    store.save_operator("op-1", {"idBot": "a"}, "2026-12-01T10:00:00.000Z")
    again = store.save_operator("op-1", {"idBot": "b"}, "2026-12-01T11:00:00.000Z")
    assert (again.id_bot, again.created_at, again.updated_at) == ("b", "2026-12-01T10:00:00.000Z", again.updated_at)
    assert again.updated_at == "2026-12-01T11:00:00.000Z"
    assert store.operator("op-1") == again and store.operator("nobody") is None
    assert list(store.operators()) == ["op-1"]


def test_a_conversation_sent_again_is_left_as_it_is(store):
    first = started(store)
    with store.transaction() as tx:
        store.move_conversation(tx, first, "menu", "2026-12-01T10:01:00.000Z", {"email": "a@b.example"})
    again = started(store)
    assert (again.state, again.version, again.variables) == ("menu", 1, {"email": "a@b.example"})


def test_an_answer_worked_out_from_an_old_version_is_not_stored(store):
    read = started(store)
    with store.transaction() as tx:
        moved = store.move_conversation(tx, read, "one", "t1")
    with store.transaction() as tx:
        stale = store.move_conversation(tx, read, "other", "t2")  # read before the first move
    with store.reading() as reads:
        now = store.conversation(reads, "c1")
    assert (moved.version, stale, now.state, now.version) == (1, None, "one", 1)


def test_replies_remembered_are_answered_again_and_tell_what_the_bot_sent(store):
    started(store)
    replies = [
        {"type": "message", "payload": {"contentType": "text", "value": "Let me find someone"}},
        {"type": "transfer", "distributionRule": "rule-1"},
    ]
    with store.transaction() as tx:
        store.remember(tx, "c1", "m1", replies)
        store.enqueue(tx, "c1", "op-1", ["Your order has shipped"])
    with store.reading() as reads:
        assert store.answered(reads, "c1", "m1") == replies
        assert store.answered(reads, "c1", "m2") is None
        assert store.sent(reads, "c1") == ({"Let me find someone", "Your order has shipped"}, True)


def test_the_outbox_sends_a_conversations_messages_in_order_one_at_a_time(store):
    started(store, "c1"), started(store, "c2")
    with store.transaction() as tx:
        store.enqueue(tx, "c1", "op-1", ["first", "second"])
        store.enqueue(tx, "c2", "op-1", ["other"])
    one = store.claim_next()
    two = store.claim_next()  # c1's second waits for its first: the next due is c2's
    assert (one.text, two.text, store.claim_next()) == ("first", "other", None)
    store.mark_sent(one.id)
    three = store.claim_next()
    assert three.text == "second" and three.reply["payload"]["value"] == "second"
    store.retry_later(three.id, 0.0, "iAdvize answered 502")
    retried = store.claim_next()
    assert (retried.id, retried.attempts) == (three.id, 1)
    store.give_up(retried.id, "refused")
    rows = {r["text"]: r for r in store.outbox()}
    assert rows["first"]["sent_at"] is not None and rows["second"]["failed_at"] is not None
    assert rows["second"]["last_error"] == "refused" and rows["other"]["sent_at"] is None


def test_a_claimed_message_is_another_senders_once_its_lease_has_run_out(store):
    started(store)
    with store.transaction() as tx:
        store.enqueue(tx, "c1", "op-1", ["hello"])
    assert store.claim_next(lease=-1).text == "hello"  # a sender killed mid-send: its lease is over
    assert store.claim_next(lease=30).text == "hello"
    assert store.claim_next() is None


def test_closing_a_conversation_drops_what_it_had_not_sent(store):
    started(store)
    with store.transaction() as tx:
        store.enqueue(tx, "c1", "op-1", ["a", "b"])
    store.mark_sent(store.claim_next().id)
    with store.transaction() as tx:
        assert store.close_conversation(tx, "c1", "t") == 1
    with store.reading() as reads:
        assert store.conversation(reads, "c1").closed
    assert store.claim_next() is None


def test_senders_at_once_send_each_message_exactly_once(store):
    for n in range(8):
        started(store, f"c{n}")
        with store.transaction() as tx:
            store.enqueue(tx, f"c{n}", "op-1", [f"c{n} one", f"c{n} two", f"c{n} three"])
    sent, lock = [], threading.Lock()

    def sender():
        deadline = time.monotonic() + 60  # a hang guard: every message is sent long before
        while time.monotonic() < deadline:
            message = store.claim_next()
            if message is None:
                with store.reading() as reads:  # none due: done only when nothing at all is pending
                    pending = reads.execute("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()
                if pending["n"] == 0:
                    return
                continue
            with lock:
                sent.append(message.text)
            store.mark_sent(message.id)
        raise AssertionError("messages were still pending after 60 s")

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(sender) for _ in range(4)]:
            future.result(timeout=60)
    assert sorted(sent) == sorted(f"c{n} {k}" for n in range(8) for k in ("one", "two", "three"))
    for n in range(8):  # and in order within each conversation
        assert [t for t in sent if t.startswith(f"c{n} ")] == [f"c{n} one", f"c{n} two", f"c{n} three"]


def test_the_schema_version_is_kept_and_reopening_changes_nothing(database, store):
    with store.reading() as reads:
        assert [dict(r) for r in reads.execute("SELECT version FROM schema_version")] == [{"version": VERSION}]
    reopened = open_store(database)
    with reopened.reading() as reads:
        assert [dict(r) for r in reads.execute("SELECT version FROM schema_version")] == [{"version": VERSION}]
    reopened.close()


def test_a_database_a_newer_bot_migrated_is_refused_with_what_to_do(database, store):
    with store.transaction() as tx:
        tx.execute("UPDATE schema_version SET version = ?", (VERSION + 1,))
    with pytest.raises(StoreError) as refused:
        open_store(database)
    assert str(refused.value).endswith(
        f"has schema version {VERSION + 1}, newer than this bot's ({VERSION}): "
        "run the newer bot, or give this one another database"
    )


def test_a_database_of_the_first_release_is_migrated_at_start(database, request):
    """Tables without the columns added since, and no schema_version: every migration is applied."""
    added = {(table, column) for table, column, _ in MIGRATIONS}
    first = {
        "conversations": "id_conversation TEXT PRIMARY KEY, id_operator TEXT NOT NULL, state TEXT, "
        "created_at TEXT NOT NULL, updated_at TEXT NOT NULL",
        "outbox": "id INTEGER PRIMARY KEY, id_conversation TEXT NOT NULL, id_operator TEXT NOT NULL, "
        "text TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due_at REAL NOT NULL, claimed_until REAL, "
        "sent_at REAL, last_error TEXT",
    }
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as connection:
            for table, columns in first.items():
                connection.execute(f"CREATE TABLE {table} ({in_postgresql(columns)})")
            connection.execute("INSERT INTO conversations VALUES ('old', 'op-1', 'menu', 't', 't')")
    else:
        with sqlite3.connect(database) as connection:
            for table, columns in first.items():
                connection.execute(f"CREATE TABLE {table} ({columns})")
            connection.execute("INSERT INTO conversations VALUES ('old', 'op-1', 'menu', 't', 't')")
    store = open_store(database)
    request.addfinalizer(store.close)
    with store.reading() as reads:
        old = store.conversation(reads, "old")
        assert {(t, c) for t, c in added if c in store._columns(reads, t)} == added
    assert (old.state, old.version, old.variables, old.closed) == ("menu", 0, {}, 0)
    started(store, "new")
    with store.transaction() as tx:
        store.enqueue(tx, "new", "op-1", [{"type": "close"}])
    assert store.claim_next().reply == {"type": "close"}


# --- PostgreSQL only: what several instances sharing the server rely on ----------------------------


def test_a_locked_conversation_waits_for_the_other_transaction_to_commit(postgres_server):
    store = open_store(postgres_server.new_database())
    try:
        started(store)
        holding, order = threading.Event(), []

        def second():
            with store.transaction() as tx:
                store.lock_conversation(tx, "c1")  # waits here for the first transaction
                order.append(("second sees version", store.conversation(tx, "c1").version))

        with store.transaction() as tx:
            store.lock_conversation(tx, "c1")
            store.move_conversation(tx, store.conversation(tx, "c1"), "moved", "t")
            holding.set()
            waiter = threading.Thread(target=second)
            waiter.start()
            postgres_server.wait_for_lock_waiter(store.url)  # the second transaction is blocked on the row
            order.append("first commits")
        waiter.join(timeout=30)
        assert order == ["first commits", ("second sees version", 1)]
    finally:
        store.close()


def test_a_new_sqlite_file_and_its_log_are_readable_by_their_owner_only(tmp_path):
    import os
    import stat

    store = open_store(str(tmp_path / "bot.sqlite3"))
    started(store)  # a write: the log (-wal) and its index (-shm) exist now
    files = sorted(p.name for p in tmp_path.glob("bot.sqlite3*"))
    assert files == ["bot.sqlite3", "bot.sqlite3-shm", "bot.sqlite3-wal", "bot.sqlite3.lock"]
    for name in files:  # it holds what visitors gave: nobody else reads it
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    store.close()

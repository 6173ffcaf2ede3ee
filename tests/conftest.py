"""Shared fixtures: the reference bot as a Flask test client, or served on loopback in a thread."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from werkzeug.serving import make_server

from reference_bot import create_app
from reference_bot.logs import JsonFormatter

# Fuzzing (tests/test_fuzz.py, tests/test_openapi_fuzz.py): make test runs a small sample, the same
# every time (derandomised); make fuzz chooses the large profile with --hypothesis-profile=fuzz.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=_QUIET
)
settings.register_profile("fuzz", max_examples=1700, deadline=None, database=None, suppress_health_check=_QUIET)
settings.load_profile("ci")

pytest_plugins = ["pytester"]  # to run the conversation-script plugin as a user would

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "contracts" / "schemas"

OPERATOR = "ha-101"
RULES = [
    {"id": "11111111-1111-4111-8111-111111111111", "label": "Customer service"},
    {"id": "22222222-2222-4222-8222-222222222222", "label": "Returns desk"},
]


def committed_schema(body: str) -> Draft202012Validator:
    """The schema file as committed under contracts/schemas/, not the one in memory."""
    return Draft202012Validator(json.loads((SCHEMAS / f"{body}.json").read_text(encoding="utf-8")))


def assert_fits(body: str, document) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in committed_schema(body).iter_errors(document)]
    assert not errors, f"{body} does not fit the committed schema: {errors}"


def bot_settings(tmp_path: Path, **overrides) -> dict:
    settings = {
        "TESTING": True,
        "DATABASE": str(tmp_path / "bot.sqlite3"),
        "OPERATORS_REFRESH_SECONDS": 0,  # no background threads in unit tests
        "OUTBOX_POLL_SECONDS": 0,
        "IADVIZE_SECRET": None,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_bot(tmp_path):
    made = []

    def make(**overrides):
        made.append(create_app(bot_settings(tmp_path, **overrides)))
        return made[-1]

    yield make
    for app in made:  # a PostgreSQL store holds a pool of connections: give them back to the server
        bot = app.extensions["reference_bot"]
        if bot.outbox is not None:
            bot.outbox.stop()
        bot.operators.stop()
        bot.store.close()


def once_per_run(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` run once per test run, whatever the number of pytest-xdist workers: the first worker
    to get here makes it, under a file lock, in a folder every worker sees; the others wait and reuse it."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's base folder sits in the run's
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch):
    """Tables fit the terminal's width: every test sees the same one, whatever runs it (a pipe, a tty,
    pytest-xdist's workers, which say 80), and the commands it starts inherit it."""
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole run (started on first use), in a temporary folder."""
    from .postgres import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """The ``DATABASE`` setting of a new, empty store: an SQLite file, then a database on the real server."""
    if request.param == "sqlite":
        return str(tmp_path / "bot.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def app(make_bot):
    return make_bot()


@pytest.fixture
def client(app):
    return app.test_client()


def save_operator(client, id_operator=OPERATOR, id_bot="order-assistant", rules=RULES, **extra):
    body = {
        "name": "Shop bot",
        "pseudo": "Ada",
        "language": "en",
        "distributionRules": rules,
        "external": {"idBot": id_bot},
        **extra,
    }
    response = client.put(f"/bots/{id_operator}", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def visitor(text, id_message=None, created_at="2026-11-24T10:00:00.000Z", role="visitor", payload=None):
    return {
        "idMessage": id_message or f"m-{abs(hash((text, role))) % 10**9}",
        "author": {"role": role},
        "payload": payload or {"contentType": "text", "value": text},
        "createdAt": created_at,
    }


def post_message(client, id_conversation, message, id_operator=OPERATOR, **extra):
    return client.post(
        f"/conversations/{id_conversation}/messages", json={"idOperator": id_operator, "message": message, **extra}
    )


def texts(replies):
    return [r["payload"]["value"] for r in replies if r["type"] == "message" and r["payload"]["contentType"] == "text"]


@pytest.fixture
def bot_log():
    """Every line the reference bot logs during the test, formatted exactly as on stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("reference_bot")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


class LoopbackServer:
    """A WSGI app on 127.0.0.1 in a thread: real sockets, no process to manage."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)  # quick shutdown

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class RecordingBot:
    """A bot on 127.0.0.1 that records each call (method, path without the query) and lets a subclass
    answer it in :meth:`respond`; a handler that hangs waits on ``release``, set when the bot closes."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                bot.requests.append((self.command, path))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the caller gave up
                    bot.respond(self, path, body)

            do_GET = do_PUT = do_POST = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def respond(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def send(handler, status: int, body: bytes, content_type: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def served(app):
    with LoopbackServer(app) as server:
        yield server


def pytest_collection_modifyitems(items):
    # Under xdist (--dist worksteal) each worker starts at the head of its share of the collection: the
    # longest tests collected first start at once, rather than begin near the end and finish it alone.
    items.sort(key=lambda item: item.get_closest_marker("first") is None)  # stable: file order otherwise


def pytest_terminal_summary(terminalreporter):
    """How many generated cases the fuzz tests sent, and how many got a 5xx (``make fuzz`` reports it); under
    ``make test``, the wall time since make started, install included (the bound is in CONTRIBUTING.md)."""
    fuzz = sys.modules.get("tests.test_fuzz")
    if fuzz is not None and fuzz.CASES["cases"]:
        terminalreporter.write_line(
            f"fuzz: {fuzz.CASES['cases']} generated cases, {fuzz.CASES['requests']} requests "
            f"sent to the bot, {fuzz.CASES['5xx']} answered with a 5xx"
        )
    started = os.environ.get("IADVIZE_MAKE_STARTED", "")
    if started.isdigit():
        minutes, seconds = divmod(round(time.time() - int(started)), 60)
        terminalreporter.write_line(
            f"make test: {minutes} min {seconds:02d} s since make started, install included (bound: 7 min on 2 cores)"
        )

"""The bot's runner: gunicorn, several workers, one SQLite file, the URL printed once it listens.

``python -m reference_bot.serve --port 8080`` (or ``iadvize-harness serve``, which calls this). A copy of
the template under another name runs the same way: ``python -m mybot.serve``. Plain gunicorn works too:
``gunicorn 'mybot.wsgi:app'``; this runner adds the checks done once before the workers start.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from gunicorn.app.base import BaseApplication

# Measured on 2 cores (benchmarks/NOTES.md): one worker per core plus one, of 2 threads each, answered as
# many messages and polls as 5 x 4 with half the tail (16 connections: message p99 17 ms against 26 ms); more
# threads only queue more writers and GIL waits. A brain that waits on the network (an LLM, an NLU service)
# needs more threads: README, "How much one instance carries".
DEFAULT_THREADS = 2


def default_workers() -> int:
    """How many gunicorn workers to run by default: one per core plus one, at most 9."""
    return min((os.cpu_count() or 1) + 1, 9)


class _ReferenceBotServer(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Called in every worker after the fork (no preload): each builds its own app,
        # connections and background threads, none of which survive a fork.
        from reference_bot import create_app

        return create_app()


def listen(host: str, port: int) -> socket.socket:
    """Bind before gunicorn starts, so port 0 works and the URL printed is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def prepare_database(database: str) -> str | None:
    """Creates the file or the tables (or migrates them) once, before the workers share them; returns what
    to print of the database, or None once the reason it cannot be used is said in one line."""
    from .store import StoreError, is_postgresql, open_store

    try:
        store = open_store(database)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    except Exception as error:  # unreachable server, wrong password, unwritable file: the driver says which
        where = "PostgreSQL" if is_postgresql(database) else database
        reason = " ".join(str(error).split()) or type(error).__name__
        print(f"error: cannot use the database {where}: {reason}", file=sys.stderr)
        return None
    store.close()  # no connection may cross the fork into the workers
    return store.description


def _said(settings: dict) -> str:
    """What the first line says of the bot's settings: signatures, and what its recordings keep."""
    said = "signatures checked" if settings["IADVIZE_SECRET"] else "signatures NOT checked: no IADVIZE_SECRET"
    if settings["RECORDINGS_DIR"]:
        kept = settings["RECORDINGS_KEEP_PERSONAL_DATA"]
        said += f"; recording in {settings['RECORDINGS_DIR']}, " + (
            "personal data KEPT (REFERENCE_BOT_RECORDINGS_KEEP_PERSONAL_DATA)" if kept else "personal data replaced"
        )
    return said


def _checked_settings(database: str | None) -> dict | None:
    """The settings the workers will read, and their scenarios, checked once: bad ones said clearly (None),
    rather than in a loop of failing workers; a quick-reply transition no menu offers, warned about."""
    from flask import Flask

    from .config import ConfigError, check_database, defaults, from_environment
    from .scenario import ScenarioError, load_directory, unoffered_quick_replies

    try:
        if database:
            check_database(database, "--db")
        settings = {**defaults(Flask(__package__).instance_path), **from_environment()}
        loaded = load_directory(settings["SCENARIOS_DIR"])
    except (ConfigError, ScenarioError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    for scenario in loaded.values():  # loads, but a visitor cannot tap what the transition waits for
        for problem in unoffered_quick_replies(scenario):
            print(f"warning: {problem}", file=sys.stderr)
    return settings


def serve(
    host: str,
    port: int,
    database: str | None,
    scenarios: str | None,
    secret: str | None,
    workers: int,
    threads: int = DEFAULT_THREADS,
    reload: bool = False,
) -> int:
    """Runs the bot with gunicorn until stopped; returns 0, or 2 for settings it cannot start with.

    Settings, scenarios, database and port are checked once, before any worker starts. The
    settings reach the workers as environment variables, set in this process. Prints the URL
    once it listens.
    """

    from . import NO_SECRET_WARNING
    from .logs import configure
    from .store import is_postgresql

    # The bot reads its settings from the environment in each worker.
    for variable, value in (
        ("REFERENCE_BOT_DATABASE", database),
        ("REFERENCE_BOT_SCENARIOS", scenarios),
        ("IADVIZE_SECRET", secret),
        ("REFERENCE_BOT_RELOAD_SCENARIOS", "1" if reload else None),
    ):
        if value:
            absolute = variable in ("IADVIZE_SECRET", "REFERENCE_BOT_RELOAD_SCENARIOS") or is_postgresql(value)
            os.environ[variable] = value if absolute else os.path.abspath(value)
    settings = _checked_settings(database)
    if settings is None:
        return 2
    database = prepare_database(settings["DATABASE"])
    if database is None:
        return 2
    if not is_postgresql(settings["DATABASE"]):
        os.environ["REFERENCE_BOT_DATABASE"] = os.path.abspath(settings["DATABASE"])
    os.environ["REFERENCE_BOT_DATABASE_MIGRATED"] = "1"
    try:
        sock = listen(host, port)
    except OSError as error:
        print(f"error: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return 2
    if not settings["IADVIZE_SECRET"]:  # once here, rather than once per worker; after what would stop it
        if not sys.stderr.isatty():  # for the logs; on a terminal the line below says it already
            configure(settings["LOG_LEVEL"]).warning(NO_SECRET_WARNING)
        os.environ["REFERENCE_BOT_WARN_WITHOUT_SECRET"] = "0"
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"
    os.environ.setdefault("REFERENCE_BOT_PUBLIC_URL", url)
    print(f"{__package__.replace('_', ' ')} on {url} ({workers} workers, {database}, {_said(settings)})", flush=True)
    _ReferenceBotServer(
        {
            "bind": [f"fd://{sock.fileno()}"],
            "workers": workers,
            "worker_class": f"{__package__}.worker.JsonErrorsWorker",  # gthread, its own errors in JSON
            "threads": threads,
            "timeout": 30,
            "graceful_timeout": 10,
            # gunicorn closes idle connections after 2 s by default; a caller reusing one at that moment
            # gets a reset (seen under load). Outlive the usual 60 s idle timeout of load balancers instead.
            "keepalive": 75,
            "accesslog": None,  # the bot writes its own structured access log
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"iadvize-{__package__.replace('_', '-')}",
        }
    ).run()
    return 0


def options() -> argparse.ArgumentParser:
    """The runner's options, shared with ``iadvize-harness serve`` (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)"
    )
    options.add_argument("--port", type=int, default=5000, help="0 picks a free port (default 5000)")
    options.add_argument(
        "--db",
        metavar="FILE",
        help="the SQLite file of operators and conversations (default: reference-bot.sqlite3, a copy's named "
        "after it, in the app's instance folder: instance/ beside a copy of the template, "
        "<venv>/var/reference_bot-instance/ when installed)",
    )
    options.add_argument("--scenarios", help="directory of scenario YAML files (default: the shipped ones)")
    options.add_argument("--secret", help="iAdvize app secret; prefer the IADVIZE_SECRET environment variable")
    options.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help=f"gunicorn worker processes (default {default_workers()}: one per core plus one, at most 9)",
    )
    options.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"threads per worker (default {DEFAULT_THREADS}; more for a brain that waits on the network)",
    )
    options.add_argument(
        "--reload",
        action="store_true",
        help="read the scenario files again when they change (while you edit them; a file that does not load "
        "keeps the last good scenarios, its problem shown by `iadvize-harness chat`)",
    )
    return options


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve until stopped; 2 for settings the bot cannot start with."""
    args = argparse.ArgumentParser(
        prog=f"python -m {__package__}.serve", parents=[options()], description="Run the bot with gunicorn."
    ).parse_args(argv)
    return serve(args.host, args.port, args.db, args.scenarios, args.secret, args.workers, args.threads, args.reload)


if __name__ == "__main__":
    sys.exit(main())

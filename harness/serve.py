"""``iadvize-harness serve``: the reference bot under gunicorn, several workers, one SQLite file."""

from __future__ import annotations

import os
import socket
import sys

from gunicorn.app.base import BaseApplication


def default_workers() -> int:
    # gunicorn's rule of thumb, capped: each worker holds its own operators cache and threads.
    return min(2 * (os.cpu_count() or 1) + 1, 9)


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


def serve(host: str, port: int, database: str | None, scenarios: str | None, secret: str | None,
          workers: int, threads: int = 4) -> int:
    from reference_bot.config import ConfigError, from_environment
    from reference_bot.scenario import ScenarioError, load_directory

    # The bot reads its settings from the environment in each worker.
    for variable, value in (("REFERENCE_BOT_DATABASE", database), ("REFERENCE_BOT_SCENARIOS", scenarios),
                            ("IADVIZE_SECRET", secret)):
        if value:
            os.environ[variable] = os.path.abspath(value) if variable != "IADVIZE_SECRET" else value
    try:  # refuse bad settings once, clearly, rather than in a loop of failing workers
        settings = from_environment()
        if "SCENARIOS_DIR" in settings:
            load_directory(settings["SCENARIOS_DIR"])
    except (ConfigError, ScenarioError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        sock = listen(host, port)
    except OSError as error:
        print(f"error: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return 2
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"
    os.environ.setdefault("REFERENCE_BOT_PUBLIC_URL", url)
    print(f"reference bot on {url} ({workers} workers)", flush=True)
    _ReferenceBotServer({
        "bind": [f"fd://{sock.fileno()}"],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,  # the bot writes its own structured access log
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "iadvize-reference-bot",
    }).run()
    return 0

"""Bot overhead: POST /conversations/:id/messages on the reference bot vs a bare Flask endpoint
answering the same JSON, both under the same gunicorn settings, the same sequential load."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid

import requests

from harness.client import visitor_text
from reference_bot.serve import DEFAULT_THREADS

from .common import Ratio

GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", str(DEFAULT_THREADS)]  # `serve --workers 2`


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _latencies(session: requests.Session, url: str, requests_: int) -> list[float]:
    """Each visitor message timed, in a conversation started first (untimed), as iAdvize does."""
    found = []
    for _ in range(requests_):
        id_conversation = str(uuid.uuid4())
        session.post(
            f"{url}/conversations",
            json={"idOperator": "ha-1", "idConversation": id_conversation, "history": []},
            timeout=10,
        ).raise_for_status()
        body = {"idOperator": "ha-1", "message": visitor_text("Hi")}
        started = time.perf_counter()
        session.post(f"{url}/conversations/{id_conversation}/messages", json=body, timeout=10).raise_for_status()
        found.append((time.perf_counter() - started) * 1000)
    return found


def run(bot_url: str, requests_: int = 300, rounds: int = 5) -> list[Ratio]:
    port = _free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", "benchmarks.bare_app:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bare_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(bare_url, timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        session = requests.Session()
        session.put(f"{bot_url}/bots/ha-1", json={"external": {"idBot": "order-assistant"}}, timeout=10)
        ours, floor = [], []
        for _ in range(rounds):  # alternating, so both sides share the machine's moods
            ours += _latencies(session, bot_url, requests_)
            floor += _latencies(session, bare_url, requests_)
    finally:
        os.killpg(bare.pid, signal.SIGTERM)
        bare.wait(timeout=10)
    p50 = statistics.median(ours) / statistics.median(floor)
    p99 = statistics.quantiles(ours, n=100)[98] / statistics.quantiles(floor, n=100)[98]
    detail = f"{rounds} x {requests_} sequential visitor messages per side"
    return [
        Ratio(
            "bot overhead p50",
            p50,
            "<= 1.3",
            f"{detail}: {statistics.median(ours):.2f} ms vs {statistics.median(floor):.2f} ms",
        ),
        Ratio("bot overhead p99", p99, "<= 1.3", detail),
    ]

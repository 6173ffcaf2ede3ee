"""Concurrent load with wrk: the reference bot as ``python -m reference_bot.serve`` runs it by default (its
workers and threads, signatures checked) vs a bare Flask app under the same gunicorn settings.

Two loads, 16 connections each: iAdvize's availability poll (``GET /availability-strategies``, once a second
per operator) across 64 operators, and visitor messages spread over 256 conversations started first. wrk runs
two threads, 8 connections each (``-t2 -c16``): one per core of the 2-core machine the targets were set on.
A wrk thread is one event loop using a fraction of a core, but with a single one, descheduled behind five
workers, it stalls all 16 connections at once: it measured the floor's message p50 at 3.1 ms instead of
2.0 ms (4 threads: 2.2 ms). The connections are kept alive, as an HTTP client's pool keeps them (serve sets a
75 s keepalive for this): each stays with the worker that accepted it, and a gthread worker accepts all it
can, so which worker holds how many of the 16 is drawn anew at each wrk run (all 16 on one worker happens,
and halves the throughput), on both sides; hence several short rounds and their median.

Every request is signed as iAdvize signs it (``X-iAdvize-Signature``), so the bot checks each one. wrk's
LuaJIT has no HMAC: the availability query string is fixed per operator, so its 64 signatures are computed
here; a message body differs per request (its ``idMessage`` must, or the bot answers from its retry cache),
so the bodies are numbered, built in Lua from the same format string as here, and their signatures computed
here beforehand, one per line of a file the script reads. The floor gets the same requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.wire import signature

from .bare_app import RULES
from .common import Ratio

CONNECTIONS = 16
# Paced: each connection waits this long after an answer before its next message, so 16 connections offer
# at most 800 messages/s, about a third of what the bot answers on 2 cores: latency then is each message's
# own work, not the queue in front of a saturated server (where latency is 16 / throughput).
PACE_MS = 20
WRK_THREADS = 2
OPERATORS = 64
CONVERSATIONS = 256
SECRET = "bench-secret"
ID_BOT = "order-assistant"  # availability atLeastOne: with distribution rules, answers the rules to check
# One visitor message, as Python's % and Lua's string.format both write it: operator, number.
MESSAGE = (
    '{"idOperator":"%s","message":{"idMessage":"m-%d","author":{"role":"visitor"},'
    '"payload":{"contentType":"text","value":"Hi"},"createdAt":"2026-11-24T10:00:00.000Z"}}'
)

# Shared by both scripts: a counter per wrk thread (request number id, id + threads, ...), and done()
# printing one parseable line: percentiles in microseconds, errors, and the next unused request number.
LUA_COMMON = """
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
count = 0
function done(summary, latency, requests)
  local used = 0
  for _, t in ipairs(threads) do
    used = math.max(used, t:get("id") + t:get("count") * #threads)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%%d duration_us=%%d p50_us=%%.1f p99_us=%%.1f non2xx=%%d socket=%%d timeout=%%d used=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write, e.timeout, used))
end
"""
LUA_AVAILABILITY = """
local polls = {%(polls)s}
local formatted = {}
function init(args)
  for i, poll in ipairs(polls) do
    formatted[i] = wrk.format("GET", poll[1], {["X-iAdvize-Signature"] = poll[2]})
  end
end
function request()
  local i = id + count * %(threads)d
  count = count + 1
  return formatted[i %% #formatted + 1]
end
"""
LUA_MESSAGES = """
local conversations = {%(conversations)s}
local operators = {%(operators)s}
local signatures = {}
local offset = 0
function init(args)
  offset = tonumber(args[1])
  for line in io.lines("%(signatures)s") do signatures[#signatures + 1] = line end
end
function request()
  local n = offset + id + count * %(threads)d
  count = count + 1
  local j = n %% #conversations
  local body = string.format('%(message)s', operators[j %% #operators + 1], n)
  local headers = {["Content-Type"] = "application/json",
                   ["X-iAdvize-Signature"] = signatures[n %% #signatures + 1]}
  return wrk.format("POST", "/conversations/" .. conversations[j + 1] .. "/messages", headers, body)
end
"""
LUA_PACED = """
function delay()
  return %(pace)d
end
"""


class WrkMissing(RuntimeError):
    pass


def require_wrk() -> str:
    """The path of wrk, or WrkMissing saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing("the concurrent benchmarks need wrk: `make wrk` installs Debian's package")
    return found


def serve_defaults() -> tuple[int, int]:
    """The workers and threads ``python -m reference_bot.serve`` runs with when given neither."""
    from reference_bot.serve import options

    defaults = options().parse_args([])
    return defaults.workers, defaults.threads


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        """SIGTERM to the server's process group (master and workers), SIGKILL after 15 s."""
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _wait_until_up(server: Server, log: Path, timeout: float = 30) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            requests.get(f"{server.url}/healthcheck", timeout=1)
            return server
        except requests.RequestException:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server at {server.url} did not start: {log.read_text(errors='replace')[-2000:]}")


def start_bot(directory: Path, workers: int | None = None, threads: int | None = None) -> Server:
    """``python -m reference_bot.serve --port 0`` with IADVIZE_SECRET set: its own defaults unless told."""
    tuning = [*(["--workers", str(workers)] if workers else []), *(["--threads", str(threads)] if threads else [])]
    out, log = directory / "bot.out", directory / "bot.log"  # bot.log: its JSON access log, one line per call
    command = [sys.executable, "-m", "reference_bot.serve", "--port", "0", "--db", str(directory / "bot.sqlite3")]
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, *tuning],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "IADVIZE_SECRET": SECRET},
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while not (found := re.search(r"on (http://\S+) .*signatures checked", out.read_text())):
        if process.poll() is not None or time.monotonic() > deadline:
            Server(process, "").stop()
            raise RuntimeError(f"the bot did not start, signatures checked: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return _wait_until_up(Server(process, found.group(1)), log)


def start_floor(directory: Path, workers: int, threads: int) -> Server:
    """benchmarks.bare_app under gunicorn with what serve gives its workers (class, threads, timeouts, keepalive)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = directory / "floor.log"
    settings = ["--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "10", "--keep-alive", "75"]
    settings += ["--workers", str(workers), "--threads", str(threads), "--log-level", "warning"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *settings, "--bind", f"127.0.0.1:{port}", "benchmarks.bare_app:app"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    return _wait_until_up(Server(process, f"http://127.0.0.1:{port}"), log)


def _post(session: requests.Session, url: str, method: str, document: dict) -> None:
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", signature.HEADER: signature.sign(SECRET, body)}
    session.request(method, url, data=body, headers=headers, timeout=10).raise_for_status()


def operator_ids() -> list[str]:
    return [f"ha-{100_000 + i}" for i in range(OPERATORS)]


def conversation_ids() -> list[str]:
    return [f"00000000-0000-4000-8000-{j:012d}" for j in range(CONVERSATIONS)]


def prepare(url: str) -> None:
    """Saves the operators (with distribution rules) and starts the conversations, all untimed and signed."""
    session = requests.Session()
    operators = operator_ids()
    rules = [{"id": rule, "label": f"Rule {i}"} for i, rule in enumerate(RULES)]
    for id_operator in operators:
        document = {"name": "Bench bot", "pseudo": "Ada", "language": "en", "distributionRules": rules}
        _post(session, f"{url}/bots/{id_operator}", "PUT", {**document, "external": {"idBot": ID_BOT}})
    for j, id_conversation in enumerate(conversation_ids()):
        start = {"idOperator": operators[j % OPERATORS], "idConversation": id_conversation, "history": []}
        _post(session, f"{url}/conversations", "POST", start)


def _lua_strings(values: list[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)


def write_scripts(directory: Path, messages: int) -> tuple[Path, Path, Path]:
    """The wrk scripts (availability, messages, paced messages), and the signatures of ``messages`` numbered
    message bodies."""
    polls = []
    for id_operator in operator_ids():
        query = f"idOperator={id_operator}"
        polls.append(f'{{"/availability-strategies?{query}", "{signature.sign(SECRET, query.encode())}"}}')
    common = {"threads": WRK_THREADS}
    availability = directory / "availability.lua"
    availability.write_text((LUA_COMMON + LUA_AVAILABILITY) % {**common, "polls": ", ".join(polls)})
    operators, key = operator_ids(), SECRET.encode()
    with (directory / "signatures.txt").open("w") as lines:
        for n in range(messages):
            body = (MESSAGE % (operators[n % CONVERSATIONS % OPERATORS], n)).encode()
            lines.write(signature.PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest() + "\n")
    script, paced = directory / "messages.lua", directory / "messages-paced.lua"
    names = {"conversations": _lua_strings(conversation_ids()), "operators": _lua_strings(operators)}
    values = {**common, **names, "signatures": directory / "signatures.txt", "message": MESSAGE, "pace": PACE_MS}
    script.write_text((LUA_COMMON + LUA_MESSAGES) % values)
    paced.write_text((LUA_COMMON + LUA_MESSAGES + LUA_PACED) % values)
    return availability, script, paced


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    used: int  # request numbers 0 .. used-1 were (or may have been) sent


def wrk(url: str, script: Path, seconds: int, offset: int = 0) -> Run:
    """One wrk run of ``script`` against ``url``: 16 connections, its latency distribution; non-2xx answers fail."""
    command = [require_wrk(), f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["--latency", "-s", str(script), url, "--", str(offset)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    fields = {key: float(value) for key, value in (pair.split("=") for pair in found.group(1).split())}
    if fields["non2xx"] or fields["socket"] or fields["timeout"]:
        raise RuntimeError(f"wrk against {url}: errors, not a benchmark: {found.group(1)}\n{done.stdout}")
    return Run(
        fields["requests"] / fields["duration_us"] * 1e6,
        fields["p50_us"] / 1000,
        fields["p99_us"] / 1000,
        int(fields["used"]),
    )


class Messages:
    """Message runs; those against the bot are numbered on from the last: it must never see an idMessage twice
    (the floor, which remembers nothing, starts from 0 each time)."""

    def __init__(self, bot: Server, available: int):
        self.bot, self.available, self.next = bot, available, 0

    def __call__(self, url: str, script: Path, seconds: int) -> Run:
        if url != self.bot.url:
            return wrk(url, script, seconds)
        run = wrk(url, script, seconds, self.next)
        self.next += run.used
        if self.next > self.available:
            raise RuntimeError(f"{self.next:,} messages sent to the bot but {self.available:,} signed: sign more")
        return run


def measure(
    directory: Path, bot: Server, floor: Server, seconds: int, rounds: int, messages: int, warm_up: bool = True
) -> tuple[list[Run], ...]:
    """The loads on both sides, alternating, after a one-second warm-up of each (untimed; the smoke pass, which
    only shows that the runs work, skips it): availability, messages as fast as answered, paced messages."""
    availability, script, paced = write_scripts(directory, messages)
    send = Messages(bot, messages)
    for side in (bot, floor) if warm_up else ():
        wrk(side.url, availability, 1)
        send(side.url, script, 1)
    polls_bot, polls_floor, sent_bot, sent_floor, paced_bot, paced_floor = [], [], [], [], [], []
    for _ in range(rounds):
        polls_bot.append(wrk(bot.url, availability, seconds))
        polls_floor.append(wrk(floor.url, availability, seconds))
    for _ in range(rounds):
        sent_bot.append(send(bot.url, script, seconds))
        sent_floor.append(send(floor.url, script, seconds))
    for _ in range(rounds):
        paced_bot.append(send(bot.url, paced, seconds))
        paced_floor.append(send(floor.url, paced, seconds))
    return polls_bot, polls_floor, sent_bot, sent_floor, paced_bot, paced_floor


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def run(seconds: int = 3, rounds: int = 7, messages: int = 300_000, warm_up: bool = True) -> list[Ratio]:
    """Availability throughput and message latency (p50, p99) at 16 connections, bot / floor."""
    require_wrk()
    workers, threads = serve_defaults()
    with tempfile.TemporaryDirectory(prefix="bench-concurrent-") as name:
        directory = Path(name)
        bot = start_bot(directory)
        try:
            floor = start_floor(directory, workers, threads)
            try:
                prepare(bot.url)
                measured = measure(directory, bot, floor, seconds, rounds, messages, warm_up)
            finally:
                floor.stop()
        finally:
            bot.stop()
    setting = (
        f"wrk -t{WRK_THREADS} -c{CONNECTIONS}, {rounds} x {seconds} s per side, {workers} workers x {threads} threads"
    )
    polls_bot, polls_floor, sent_bot, sent_floor, paced_bot, paced_floor = measured
    rps = _median(polls_bot, "rps"), _median(polls_floor, "rps")
    p50 = _median(sent_bot, "p50_ms"), _median(sent_floor, "p50_ms")
    p99 = _median(sent_bot, "p99_ms"), _median(sent_floor, "p99_ms")
    sent = f"{_median(sent_bot, 'rps'):,.0f} vs {_median(sent_floor, 'rps'):,.0f} messages/s"
    paced50 = _median(paced_bot, "p50_ms"), _median(paced_floor, "p50_ms")
    paced99 = _median(paced_bot, "p99_ms"), _median(paced_floor, "p99_ms")
    pace = f"{_median(paced_bot, 'rps'):,.0f} vs {_median(paced_floor, 'rps'):,.0f} messages/s"
    return [
        Ratio(
            "concurrent availability throughput",
            rps[0] / rps[1],
            ">= 0.95",
            f"{setting}, signed polls of {OPERATORS} operators: {rps[0]:,.0f} vs {rps[1]:,.0f} requests/s",
        ),
        Ratio(
            "concurrent message p50",
            p50[0] / p50[1],
            "<= 1.3",
            f"{setting}, signed, {CONVERSATIONS} conversations: {p50[0]:.2f} ms vs {p50[1]:.2f} ms ({sent})",
        ),
        Ratio("concurrent message p99", p99[0] / p99[1], "<= 2", f"same runs: {p99[0]:.2f} ms vs {p99[1]:.2f} ms"),
        Ratio(
            "concurrent message p50, paced",
            paced50[0] / paced50[1],
            "<= 1.3",
            f"the same, each connection pausing {PACE_MS} ms after an answer: {paced50[0]:.2f} ms vs "
            f"{paced50[1]:.2f} ms ({pace})",
        ),
        Ratio(
            "concurrent message p99, paced",
            paced99[0] / paced99[1],
            "<= 2",
            f"same runs: {paced99[0]:.2f} ms vs {paced99[1]:.2f} ms",
        ),
    ]

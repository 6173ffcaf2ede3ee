"""``iadvize-harness load``: iAdvize-shaped traffic on a bot, through Locust running headless.

The command saves the operators first (``PUT /bots``, as an admin would), then runs Locust
with :mod:`harness.load.locustfile` in a child process (Locust patches the standard library
with gevent when imported: it stays out of this process), reads the summary the master writes
and judges it: any error, or any call over its budget (2 s first messages, 10 s otherwise),
makes the exit code 1. While Locust runs, ``run`` reports the elapsed seconds to its
``progress`` callback (step ``"load"``), about once a second.

Distributed: ``load --expect-workers N`` is the master; on each other machine
``load --worker --master-host HOST`` runs a worker, with ``IADVIZE_SECRET`` in its environment.

Sizing: ``load --ramp`` runs one such test per step, each with more operators and chats, until a
step breaks its budget (:mod:`harness.load.ramp`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import render
from harness.client import BotClient, BotError, new_operator_id, preflight
from harness.load.plan import Plan
from harness.progress import silent

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GRACE_SECONDS = 60  # beyond the planned duration, for Locust to start, stop and write its summary
WORKERS_WAIT_SECONDS = 60  # how long a master waits for its workers before giving up


class LoadError(RuntimeError):
    """The load test could not run (the bot refused to set up, Locust failed): exit code 2."""


@dataclass
class LoadResult:
    """What a load test measured: Locust's statistics and errors per endpoint, the plan, each load process's share."""

    endpoints: list[dict]
    errors: list[dict]
    workers: int = 0
    plan: dict = field(default_factory=dict)  # the plan as Locust received it (Plan.describe)
    processes: list[dict] = field(default_factory=list)  # per load process: its index, operators and phases

    @property
    def failed_calls(self) -> int:
        """The calls that failed, over every endpoint."""
        return sum(row["errors"] for row in self.endpoints)

    @property
    def over_budget(self) -> int:
        """The calls that took longer than their iAdvize budget, over every endpoint."""
        return sum(row["over_budget"] for row in self.endpoints)

    @property
    def passed(self) -> bool:
        """True when calls were made and none failed or went over its budget."""
        return bool(self.endpoints) and not self.failed_calls and not self.over_budget

    def report(self) -> str:
        """The result as the terminal shows it: a table of the endpoints, the errors, then the verdict."""
        header = ("endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "budget", "over budget")
        rows = [
            (
                r["endpoint"],
                r["requests"],
                f"{r['rps']:.2f}",
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["errors"],
                f"{r['budget_s']:g} s" if r["budget_s"] else "-",
                r["over_budget"],
            )
            for r in self.endpoints
        ]
        lines = [render.table(header, rows)]
        for error in self.errors:
            lines.append(f"error: {error['endpoint']}: {error['error']} ({error['occurrences']} times)")
        if not self.endpoints:
            lines.append("no call was made: is the duration long enough?")
        verdict = (
            "within budget, no error"
            if self.passed
            else (
                f"FAILED: {render.count(self.failed_calls, 'error')}, "
                f"{render.count(self.over_budget, 'call')} over their budget"
            )
        )
        return "\n".join([*lines, verdict])

    def as_dict(self) -> dict:
        """The result as ``--json`` writes it: the verdict, then what the summary of Locust holds."""
        return {
            "passed": self.passed,
            "endpoints": self.endpoints,
            "errors": self.errors,
            "workers": self.workers,
            "plan": self.plan,
            "processes": self.processes,
        }


def save_operators(client: BotClient, count: int, first: int = 1) -> tuple[str, ...]:
    """Create ``count`` operators on the bot's scenarios (round robin), each with one distribution rule.

    They are named ``Load test <first>``, ``Load test <first + 1>``...: a ramp's next step adds to the last one's.
    """
    try:
        scenarios = [s["idBot"] for s in client.external_bots()]
        if not scenarios:
            raise LoadError("the bot lists no scenario (GET /external-bots answered [])")
        operators = tuple(new_operator_id() for _ in range(count))
        for index, id_operator in enumerate(operators, start=first - 1):
            client.save_bot(
                id_operator,
                {
                    "name": f"Load test {index + 1}",
                    "pseudo": "Load",
                    "language": "en",
                    "distributionRules": [{"id": str(uuid.uuid4()), "label": "Customer service"}],
                    "external": {"idBot": scenarios[index % len(scenarios)]},
                },
            )
    except BotError as error:
        raise LoadError(f"could not save the load test's operators: {error}") from None
    return operators


def run(
    provider_url: str,
    operators: int = 5,
    conversations_per_minute: float = 10,
    duration: float = 60,
    secret: str | None = None,
    csv_prefix: str | None = None,
    think_time: tuple[float, float] = (5, 20),
    messages: int = 4,
    expect_workers: int = 0,
    master_port: int = 5557,
    say=None,
    progress=silent,
    saved: tuple[str, ...] = (),
) -> LoadResult:
    """Plan, run Locust headless and return its outcome; raise :class:`LoadError` when it cannot run.

    ``say(line)`` is told the plan once it is made (nothing is printed here); ``progress(text,
    step="load")`` is called about once a second while Locust runs; if it has a ``done()`` (a
    :class:`harness.progress.Progress`), that is called once Locust has finished. ``saved``: operators
    saved on the bot already (by a ramp's earlier step), polled first; only the ones missing are saved.
    """
    say = say or (lambda line: None)
    client = BotClient(provider_url, secret=secret)
    _, stopped = preflight(client)  # a refused signature is said once, before any operator is saved
    if stopped:
        raise LoadError(stopped)
    kept = tuple(saved[:operators])
    added = save_operators(client, operators - len(kept), len(kept) + 1) if operators > len(kept) else ()
    plan = Plan(
        kept + added,
        conversations_per_minute,
        think_time,
        messages,
        client.id_connector_version,
        client.id_website,
        max(1, expect_workers),
    )
    with tempfile.TemporaryDirectory(prefix="iadvize-load-") as scratch:
        summary = Path(scratch) / "summary.json"
        users = plan.visitors  # the operators are polled by each process's own greenlets, not by users
        command = [
            *_locust(),
            "--headless",
            "--host",
            provider_url.rstrip("/"),
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{max(1, round(duration))}s",
            "--only-summary",
            *plan.locust_options(),
            "--iadvize-summary",
            str(summary),
        ]
        if csv_prefix:
            command += ["--csv", csv_prefix]
        if expect_workers:
            command += [
                "--master",
                "--expect-workers",
                str(expect_workers),
                "--master-bind-port",
                str(master_port),
                "--expect-workers-max-wait",
                str(WORKERS_WAIT_SECONDS),
            ]
            say(
                f"waiting for {expect_workers} workers on port {master_port}: on each, run "
                f"iadvize-harness load --worker --master-host <this machine>"
            )
        say(
            f"{len(plan.operators)} operators polled every second, {conversations_per_minute:g} conversations "
            f"per minute ({plan.visitors} visitors), for {duration:g} s"
        )
        log = Path(scratch) / "locust.log"
        timeout = duration + GRACE_SECONDS + (WORKERS_WAIT_SECONDS if expect_workers else 0)
        try:
            _run_locust(command, secret, log, timeout, duration, progress)
        finally:
            getattr(progress, "done", lambda: None)()
        if not summary.exists():
            raise LoadError("Locust stopped without a summary:\n" + _tail(log))
        data = json.loads(summary.read_text(encoding="utf-8"))
    return LoadResult(data["endpoints"], data["errors"], data["workers"], data["plan"], data["processes"])


def run_worker(master_host: str, master_port: int = 5557, secret: str | None = None) -> int:
    """A Locust worker for a master started with ``load --expect-workers``; Locust's exit code."""
    command = [*_locust(), "--worker", "--master-host", master_host, "--master-port", str(master_port)]
    return subprocess.run(command, env=_environment(secret), check=False).returncode


def _locust() -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]


def _environment(secret: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "IADVIZE_SECRET"}
    if secret:
        env["IADVIZE_SECRET"] = secret  # by environment: a command line is readable by every user of the machine
    return env


def _run_locust(command: list[str], secret: str | None, log: Path, timeout: float, duration: float, progress) -> None:
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=_environment(secret))
        started = time.monotonic()
        try:
            while True:
                elapsed = time.monotonic() - started
                if elapsed >= timeout:
                    raise LoadError(f"Locust did not finish within {timeout:g} s:\n" + _tail(log))
                progress(f"load: {elapsed:.0f} of {duration:g} s", step="load")
                try:
                    process.wait(timeout=min(1.0, timeout - elapsed))
                    return
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if process.poll() is None:  # timed out, or interrupted (Ctrl-C): no Locust left behind
                process.kill()
                process.wait()


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

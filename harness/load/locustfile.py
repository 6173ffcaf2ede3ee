"""Locust users shaped like iAdvize's traffic to one connector (run by ``iadvize-harness load``).

- every operator's availability polled once per second (``GET /availability-strategies``), each
  at its own moment in the second: each load process (Locust worker) polls its own share of the
  operators, every ``workers``-th one from its index, in greenlets of its own;
- ``Visitor`` users open chats at the planned rate: first messages, ``POST /conversations``,
  then visitor messages with human think time; every ``message`` reply the bot posts is
  echoed back to it as iAdvize does (author ``operator``), and a tapped quick reply comes
  back as its value, like a visitor's tap.

The plan travels as ``--iadvize-*`` options, which a Locust master forwards to its workers;
the secret comes from ``IADVIZE_SECRET`` (never a command line). On the master (or a
single process) the summary is written as JSON to ``--iadvize-summary`` when Locust quits:
the statistics, and what was decided: the plan as Locust received it, and for each load
process its index, its share of the operators and the phases it drew (the processes report
theirs to the master with their statistics).

Every call carries ``X-Request-Id: load-w<process index>-<n>``, so that a bot's logs tell which
load process made each call (the reference bot logs it as ``request_id``).
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import time
import uuid
from collections import Counter
from urllib.parse import quote, urlencode

import gevent
from locust import HttpUser, events, task
from locust.clients import HttpSession
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from harness import wire
from harness.client import echo_of, visitor_text
from harness.load.plan import ENDPOINTS, Plan, secret_from_environment
from harness.wire import signature

SECRET = secret_from_environment()
OVER_BUDGET: Counter[str] = Counter()  # per endpoint name, in this process since the last report to the master
TIMED_OUT: Counter[str] = Counter()  # the same, for the calls given up at their budget (failed, and over it)
# What this process decided: its index, its share of the operators, the phase of each poller and of
# each visitor (seconds). A worker sends it whole when it starts and with every report; the master
# keeps the last one of each worker.
PROCESS: dict = {"worker": 0, "operators": [], "poll_phases": [], "visitor_phases": []}
PROCESSES: dict[str, dict] = {}  # on the master: by worker client id
_call_numbers = itertools.count(1)


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    Plan.add_locust_options(parser)


@events.init.add_listener
def _receive_processes(environment, **_kwargs) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("iadvize_process", _keep_process)


def _keep_process(environment, msg, **_kwargs) -> None:
    PROCESSES[msg.node_id] = msg.data  # a later one (with more visitor phases) replaces an earlier one


def _snapshot() -> dict:
    return {key: list(value) if isinstance(value, list) else value for key, value in PROCESS.items()}


_pollers: list[gevent.Greenlet] = []


@events.test_start.add_listener
def _start_polling(environment, **_kwargs) -> None:
    """This process's share of the operators, each polled once a second from its own phase."""
    if isinstance(environment.runner, MasterRunner):
        return  # the master only counts; its workers poll
    plan = Plan.from_locust(environment.parsed_options)
    index = getattr(environment.runner, "worker_index", 0) if plan.workers > 1 else 0
    share = list(plan.operators[index :: plan.workers])
    phases = [random.random() for _ in share]  # not every operator in the same millisecond
    PROCESS.update(worker=index, operators=share, poll_phases=phases, visitor_phases=[])
    for id_operator, phase in zip(share, phases, strict=True):
        session = HttpSession(environment.host, request_event=environment.events.request, user=None)
        _pollers.append(gevent.spawn(_poll, session, plan, id_operator, phase))
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("iadvize_process", _snapshot())  # at once, not at the next report


@events.test_stopping.add_listener
def _stop_polling(**_kwargs) -> None:
    gevent.killall(_pollers, block=False)
    _pollers.clear()


def _poll(session, plan: Plan, id_operator: str, phase: float) -> None:
    gevent.sleep(phase)
    due = time.monotonic()
    while True:
        call(
            session,
            plan,
            "availability-strategies",
            "GET",
            "/availability-strategies",
            "availability-strategies.response",
            params={"idOperator": id_operator},
        )
        due += 1.0
        gevent.sleep(max(0.0, due - time.monotonic()))


@events.request.add_listener
def _budget(name, response_time, exception=None, **_kwargs) -> None:
    budget = ENDPOINTS.get(name)
    if budget is not None and response_time > budget * 1000:  # a time-out, too, lasts past the budget
        OVER_BUDGET[name] += 1


@events.report_to_master.add_listener
def _send_budget(client_id, data) -> None:
    data["iadvize_over_budget"] = dict(OVER_BUDGET)
    data["iadvize_timed_out"] = dict(TIMED_OUT)
    OVER_BUDGET.clear()
    TIMED_OUT.clear()
    if PROCESS["operators"] or PROCESS["visitor_phases"]:  # once this worker has started
        data["iadvize_process"] = _snapshot()  # with the visitor phases drawn since


@events.worker_report.add_listener
def _merge_budget(client_id, data) -> None:
    OVER_BUDGET.update(data.get("iadvize_over_budget", {}))
    TIMED_OUT.update(data.get("iadvize_timed_out", {}))
    if "iadvize_process" in data:
        PROCESSES[client_id] = data["iadvize_process"]


@events.quitting.add_listener
def _write_summary(environment, **_kwargs) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _final_csv(environment)
    if not environment.parsed_options.iadvize_summary:
        return
    rows = []
    for (name, _method), entry in sorted(environment.stats.entries.items()):
        rows.append(
            {
                "endpoint": name,
                "requests": entry.num_requests,
                "errors": entry.num_failures,
                "rps": round(entry.total_rps, 2),
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p95_ms": entry.get_response_time_percentile(0.95),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "max_ms": round(entry.max_response_time or 0, 1),
                "budget_s": ENDPOINTS.get(name),
                "over_budget": OVER_BUDGET.get(name, 0),
                "timeouts": TIMED_OUT.get(name, 0),  # among the errors, and among the calls over budget
            }
        )
    errors = [
        {"endpoint": e.name, "error": str(e.error), "occurrences": e.occurrences}
        for e in environment.stats.errors.values()
    ]
    errors.sort(key=lambda e: -e["occurrences"])
    master = isinstance(environment.runner, MasterRunner)
    workers = len(environment.runner.clients) if master else 0
    options = environment.parsed_options
    processes = sorted(PROCESSES.values(), key=lambda p: p["worker"]) if master else [PROCESS]
    with open(options.iadvize_summary, "w", encoding="utf-8") as out:
        json.dump(
            {
                "endpoints": rows,
                "errors": errors[:20],
                "workers": workers,
                "plan": Plan.from_locust(options).describe(options.num_users),
                "processes": processes,
            },
            out,
            indent=2,
        )


def _final_csv(environment) -> None:
    """Locust refreshes its CSV files every second or so: its last snapshot misses the end of the run."""
    prefix = environment.parsed_options.csv_prefix
    if not prefix:
        return
    table = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (("stats", table.requests_csv), ("failures", table.failures_csv)):
        with open(f"{prefix}_{suffix}.csv", "w", newline="", encoding="utf-8") as out:
            write(csv.writer(out))


def _timed_out(error) -> bool:
    return "timeout" in type(error).__name__.lower()  # requests' ReadTimeout, ConnectTimeout...


def call(
    session,
    plan: Plan,
    name: str,
    method: str,
    path: str,
    response_body: str,
    *,
    params: dict | None = None,
    body: dict | None = None,
):
    """One call, signed and named as iAdvize makes it; the parsed answer when it is a conformant 2xx,
    else None (recorded as an error with its reason)."""
    query = urlencode({"idConnectorVersion": plan.connector_version, "idWebsite": plan.website, **(params or {})})
    data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
    headers = {"Accept": "application/json", "X-Request-Id": f"load-w{PROCESS['worker']}-{next(_call_numbers)}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if SECRET:
        headers[signature.HEADER] = signature.sign(SECRET, signature.signed_part(method, query.encode(), data))
    budget = ENDPOINTS[name]
    with session.request(
        method, f"{path}?{query}", data=data or None, headers=headers, name=name, timeout=budget, catch_response=True
    ) as response:
        if response.error is not None:
            if _timed_out(response.error):
                TIMED_OUT[name] += 1
                response.failure(f"no answer within the {budget:g} s iAdvize waits")
            else:
                response.failure(f"connection failed ({type(response.error).__name__})")
            return None
        if not 200 <= response.status_code < 300:
            response.failure(f"answered {response.status_code}")
            return None
        try:
            answer = response.json()
        except ValueError:
            response.failure("the answer is not JSON")
            return None
        problems = wire.problems(response_body, answer)
        if problems:
            response.failure(f"the answer does not fit the API: {problems[0]}")
            return None
        return answer


class Visitor(HttpUser):
    """One chat after another, at the pace that gives the planned conversations per minute."""

    def on_start(self) -> None:
        """Reads the plan, then waits for this visitor's moment in the pace: visitors spawned together stay apart."""
        self.plan = Plan.from_locust(self.environment.parsed_options)
        # Visitors are spawned together: each opens its chats from its own moment in the pace, and keeps
        # that phase (Locust's constant_pacing counts from the spawn, which would line them up again).
        phase = random.uniform(0, self.plan.pacing)
        PROCESS["visitor_phases"].append(phase)
        gevent.sleep(phase)
        self.due = time.monotonic()

    def wait_time(self) -> float:
        """The seconds until this visitor's next chat is due, keeping its phase."""
        self.due += self.plan.pacing
        return max(0.0, self.due - time.monotonic())

    def call(self, *args, **kwargs):
        """One call as iAdvize makes it, through this user's session (see the module's ``call``)."""
        return call(self.client, self.plan, *args, **kwargs)

    @task
    def chat(self) -> None:
        """One chat: the greeting, ``POST /conversations``, then up to ``messages`` visitor messages with think time.

        Every message reply is echoed back. The next visitor message is one of the quick replies
        offered, when there are some; the chat ends early on a failed call, a transfer or a close.
        """
        id_operator = random.choice(self.plan.operators)
        operator_path = quote(id_operator, safe="")
        # a greeting that fails or comes late is not shown; the chat goes on without it, as on iAdvize
        self.call(
            "first-messages", "GET", f"/bots/{operator_path}/conversation-first-messages", "first-messages.response"
        )
        started = self.call(
            "conversations",
            "POST",
            "/conversations",
            "conversation.response",
            body={"idOperator": id_operator, "idConversation": str(uuid.uuid4()), "history": []},
        )
        if started is None:
            return
        path = f"/conversations/{quote(started['idConversation'], safe='')}/messages"
        said = "Hi"
        for _ in range(random.randint(1, self.plan.messages)):
            answer = self.call(
                "messages (visitor)",
                "POST",
                path,
                "message.response",
                body={"idOperator": id_operator, "message": visitor_text(said)},
            )
            if answer is None:
                return
            offered = []
            for reply in answer["replies"]:
                if reply["type"] == "message":
                    self.call(
                        "messages (echo)",
                        "POST",
                        path,
                        "message.response",
                        body={"idOperator": id_operator, "message": echo_of(reply)},
                    )
                    offered += [q["value"] for q in reply.get("quickReplies") or []]
            if any(reply["type"] in ("transfer", "close") for reply in answer["replies"]):
                return  # handed to humans or closed: the bot's part of the chat is over
            gevent.sleep(random.uniform(*self.plan.think_time))
            said = random.choice(offered) if offered else random.choice(VISITOR_LINES)


VISITOR_LINES = (
    "Where is my order?",
    "Do you ship to Belgium?",
    "I want to return a jacket",
    "ok thanks",
    "What sizes do you have?",
    "Can I talk to someone?",
)

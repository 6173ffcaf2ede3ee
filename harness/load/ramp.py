"""``iadvize-harness load --ramp``: the load stepped up until a step breaks its budget, for sizing.

Each step is one load test (:func:`harness.load.run`, one Locust run) with more operators and more
chats than the last; the ramp ends at the first step that is not within budget, at a limit, or
after ``max_steps``, and the last step within budget is what the bot carries.

One Locust run per step rather than one run shaped by Locust's ``LoadTestShape``: a shape only
changes the number of users, while a step here also changes the operators polled (saved on the bot
first, then polled by greenlets started with the test) and the visitors' pacing, which the plan fixes
when Locust starts; a run per step also gives each step statistics of its own (a shape's would
need resetting between steps, the over-budget counts with them) and the same summary as a normal
run. The price is a Locust start, a second or two, per step. A step reuses the operators the last
one saved and saves only the ones it adds.

Within budget, for sizing: for every endpoint, at most ``100 - SIZING_PERCENTILE`` % of its calls over
its budget (its p99 within the budget, counted exactly rather than read from Locust's rounded
percentiles; a call given up at the budget, a time-out, is one of them), and no other failed call (an
error status, an answer that does not fit the API, a connection refused). A normal run, by contrast,
fails on a single call over its budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from harness import render
from harness.load import LoadError, LoadResult, run
from harness.load.plan import ENDPOINTS
from harness.progress import silent

SIZING_PERCENTILE = 99  # a step is within budget when each endpoint's p99 is within its budget
DEFAULT_MAX_STEPS = 10
# The report's columns of latency: the worst p50 and p99 of the endpoints of each family.
FAMILIES = {
    "availability": ("availability-strategies",),
    "first-messages": ("first-messages",),
    "chat": ("conversations", "messages (visitor)", "messages (echo)"),
}

LEGEND = (
    "ms: p50/p99 of the slowest endpoint of each (chat: conversations, messages); "
    "a time-out is over budget, not an error"
)


@dataclass(frozen=True)
class Ramp:
    """The steps: the first (``operators``, ``conversations_per_minute``), what each step adds, and the limits."""

    operators: int
    conversations_per_minute: float
    step_operators: int
    step_rate: float
    limit_operators: int | None = None
    limit_rate: float | None = None
    max_steps: int = DEFAULT_MAX_STEPS

    def problem(self) -> str | None:
        """What makes these steps impossible, in one line (as the options say it), or None."""
        if self.step_operators < 0 or self.step_rate < 0:
            return "--step-operators and --step-rate cannot be negative: the ramp steps the load up"
        if not self.step_operators and not self.step_rate:
            return "nothing to step up: --step-operators and --step-rate are both 0"
        if self.max_steps < 1:
            return "--max-steps must be 1 or more"
        return _limit_problem(
            "--limit-operators", self.limit_operators, "--operators", self.operators, self.step_operators
        ) or _limit_problem(
            "--limit-rate", self.limit_rate, "--conversations-per-minute", self.conversations_per_minute, self.step_rate
        )

    def levels(self):
        """Each step's ``(operators, conversations per minute, the limit it reaches or None)``, in order.

        A step that would pass a limit is run at the limit, and is the last.
        """
        for index in range(self.max_steps):
            operators = self.operators + index * self.step_operators
            rate = round(self.conversations_per_minute + index * self.step_rate, 6)  # no 0.30000000000000004
            reached = []
            if self.limit_operators is not None and operators >= self.limit_operators:
                operators = self.limit_operators
                reached.append(f"--limit-operators {self.limit_operators:g}")
            if self.limit_rate is not None and rate >= self.limit_rate:
                rate = self.limit_rate
                reached.append(f"--limit-rate {self.limit_rate:g}")
            yield operators, rate, " and ".join(reached) or None
            if reached:
                return


def _limit_problem(flag: str, limit: float | None, first_flag: str, first: float, step: float) -> str | None:
    if limit is None:
        return None
    if limit < first:
        return f"{flag} {limit:g} is below {first_flag} {first:g}, the first step: raise it, or lower {first_flag}"
    if limit > first and not step:
        step_flag = "--step-operators" if flag == "--limit-operators" else "--step-rate"
        return f"{flag} {limit:g} is never reached: {step_flag} is 0, so {first_flag} stays {first:g}"
    return None


def judge(result: LoadResult) -> list[dict]:
    """What keeps one step from being within budget, per endpoint (``endpoint`` None: no call at all); [] if nothing."""
    if not result.endpoints:
        return [{"endpoint": None, "problem": "no call was made: make --step-duration longer"}]
    problems = []
    allowed = (100 - SIZING_PERCENTILE) / 100
    for row in result.endpoints:
        name, calls, over = row["endpoint"], row["requests"], row["over_budget"]
        if row["budget_s"] and over > calls * allowed:
            problems.append(
                {
                    "endpoint": name,
                    "problem": f"{name}: {over} of {calls} calls over its {row['budget_s']:g} s budget "
                    f"(p{SIZING_PERCENTILE} over it: more than {allowed:.0%} of the calls)",
                }
            )
        failed = row["errors"] - row.get("timeouts", 0)  # a time-out is a call over budget, counted above
        if failed > 0:
            problems.append({"endpoint": name, "problem": f"{name}: {render.count(failed, 'failed call')}"})
    return problems


@dataclass
class Step:
    """One step of the ramp: the load it ran, what Locust measured, and what keeps it from being within budget."""

    number: int
    operators: int
    conversations_per_minute: float
    duration: float
    result: LoadResult
    problems: list[dict] = field(default_factory=list)

    @property
    def within_budget(self) -> bool:
        """No endpoint over its budget at the sizing percentile, and no failed call."""
        return not self.problems

    @property
    def calls_per_second(self) -> float:
        """The calls answered per second, over every endpoint, as Locust measured them."""
        return round(sum(row["rps"] for row in self.result.endpoints), 2)

    @property
    def over_budget(self) -> int:
        """The calls over their budget, time-outs included."""
        return self.result.over_budget

    @property
    def errors(self) -> int:
        """The failed calls other than time-outs (those are over budget)."""
        return sum(row["errors"] - row.get("timeouts", 0) for row in self.result.endpoints)

    def level(self) -> str:
        """``10 operators, 20 conversations/min``."""
        return f"{render.count(self.operators, 'operator')}, {self.conversations_per_minute:g} conversations/min"

    def latency(self, family: str) -> str:
        """The worst p50 and p99 (ms) of a family's endpoints, ``12/48``; ``-`` when none was called."""
        rows = [row for row in self.result.endpoints if row["endpoint"] in FAMILIES[family]]
        if not rows:
            return "-"
        return f"{max(row['p50_ms'] for row in rows):g}/{max(row['p99_ms'] for row in rows):g}"

    def verdict(self) -> str:
        """The step's outcome in one line, as the progress says it."""
        if self.within_budget:
            return f"step {self.number}: within budget, {self.calls_per_second:g} calls/s"
        return f"step {self.number}: over budget: " + "; ".join(p["problem"] for p in self.problems)

    def as_dict(self) -> dict:
        """The step as ``--json`` writes it."""
        return {
            "step": self.number,
            "operators": self.operators,
            "conversations_per_minute": self.conversations_per_minute,
            "duration": self.duration,
            "calls_per_second": self.calls_per_second,
            "within_budget": self.within_budget,
            "problems": [p["problem"] for p in self.problems],
            "result": self.result.as_dict(),
        }


@dataclass
class RampResult:
    """The steps run and why the ramp stopped: ``budget`` (a step broke it), ``limit``, ``max-steps`` or ``error``."""

    ramp: Ramp
    steps: list[Step]
    stopped: str
    why: str
    error: str | None = None  # a step that could not run (the ramp then stops, exit code 2)

    @property
    def last_within_budget(self) -> Step | None:
        """The last step within budget (every step before the one that broke was), or None."""
        good = [step for step in self.steps if step.within_budget]
        return good[-1] if good else None

    def report(self) -> str:
        """The terminal's report: one row per step, the problems of the step that broke, why it stopped, the verdict."""
        header = (
            "step",
            "operators",
            "conv/min",
            "calls/s",
            *(f"{family} ms" for family in FAMILIES),
            "over budget",
            "errors",
            "within budget",
        )
        rows = [
            (
                step.number,
                step.operators,
                f"{step.conversations_per_minute:g}",
                f"{step.calls_per_second:g}",
                *(step.latency(family) for family in FAMILIES),
                step.over_budget,
                step.errors,
                "yes" if step.within_budget else "no",
            )
            for step in self.steps
        ]
        lines = [render.table(header, rows), LEGEND] if self.steps else []
        for step in self.steps:
            lines += [f"step {step.number}: {p['problem']}" for p in step.problems]
            if not step.within_budget:
                lines += [
                    f"step {step.number} error: {e['endpoint']}: {e['error']} ({e['occurrences']} times)"
                    for e in step.result.errors
                ]
        lines.append(f"stopped: {self.why}")
        return "\n".join([*lines, self.verdict()])

    def verdict(self) -> str:
        """The last line: the last step within budget, or what to lower when the first step already broke."""
        good = self.last_within_budget
        if good is not None:
            return f"last step within budget: {good.level()} ({good.calls_per_second:g} calls/s)"
        if not self.steps:
            return "no step was run"
        first = self.steps[0]
        broken = {p["endpoint"] for p in first.problems}
        if broken == {None}:
            advice = "make --step-duration longer"
        elif broken == {"availability-strategies"}:  # only the polls: one a second per operator
            advice = f"lower --operators (now {first.operators})"
        elif "availability-strategies" not in broken:
            advice = f"lower --conversations-per-minute (now {first.conversations_per_minute:g})"
        else:
            advice = (
                f"lower --operators (now {first.operators}) and --conversations-per-minute "
                f"(now {first.conversations_per_minute:g})"
            )
        return f"no step within budget: the first, {first.level()}, already breaks it; {advice}"

    def as_dict(self) -> dict:
        """The ramp as ``--json`` writes it: the rule, every step, why it stopped and the last step within budget."""
        good = self.last_within_budget
        return {
            "rule": {
                "percentile": SIZING_PERCENTILE,
                "budgets_s": dict(ENDPOINTS),
                "within_budget": f"every endpoint's p{SIZING_PERCENTILE} within its budget (time-outs are over it), "
                "and no other failed call",
            },
            "steps": [step.as_dict() for step in self.steps],
            "stopped": self.stopped,
            "why": self.why,
            "error": self.error,
            "last_within_budget": None
            if good is None
            else {
                "step": good.number,
                "operators": good.operators,
                "conversations_per_minute": good.conversations_per_minute,
                "calls_per_second": good.calls_per_second,
            },
        }


class _StepProgress:
    """The progress of one step's run, named after the step (a new step is shown at once)."""

    def __init__(self, progress, number: int):
        self.progress, self.number = progress, number

    def __call__(self, text: str, step: str | None = None) -> None:
        self.progress(f"ramp step {self.number}, {text}", step=f"ramp step {self.number}")

    def done(self) -> None:
        getattr(self.progress, "done", lambda: None)()


def ramp(
    provider_url: str,
    steps: Ramp,
    duration: float = 60,
    secret: str | None = None,
    csv_prefix: str | None = None,
    think_time: tuple[float, float] = (5, 20),
    messages: int = 4,
    say=None,
    progress=silent,
) -> RampResult:
    """Run the steps in turn, ``duration`` seconds each, until one is not within budget or the ramp ends.

    Raises :class:`LoadError` when the steps are impossible or the first cannot run; a later step that
    cannot run stops the ramp with ``error`` set. ``say(line)`` is told each step's plan and verdict;
    ``progress`` is called while each step runs (see :func:`harness.load.run`). ``csv_prefix``: each step's
    Locust statistics as ``<prefix>-step<n>_stats.csv``...
    """
    if problem := steps.problem():
        raise LoadError(problem)
    say = say or (lambda line: None)
    done: list[Step] = []
    saved: tuple[str, ...] = ()
    stopped, why, error = "max-steps", f"--max-steps {steps.max_steps} reached", None
    for number, (operators, rate, limit) in enumerate(steps.levels(), start=1):
        try:
            result = run(
                provider_url,
                operators,
                rate,
                duration,
                secret,
                f"{csv_prefix}-step{number}" if csv_prefix else None,
                think_time,
                messages,
                say=partial(_said, say, number),
                progress=_StepProgress(progress, number),
                saved=saved,
            )
        except LoadError as problem:
            if not done:
                raise
            stopped, why, error = "error", f"step {number} could not run", f"step {number} could not run: {problem}"
            break
        saved = tuple(result.plan.get("operators", ()))
        step = Step(number, operators, rate, duration, result, judge(result))
        done.append(step)
        say(step.verdict())
        if not step.within_budget:
            stopped, why = "budget", f"step {number} broke its budget"
            break
        if limit:
            stopped, why = "limit", f"{limit} reached"
            break
    return RampResult(steps, done, stopped, why, error)


def _said(say, number: int, line: str) -> None:
    say(f"step {number}: {line}")

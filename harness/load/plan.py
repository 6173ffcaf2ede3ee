"""The shape of one load test, shared by the command that plans it and the Locust users that run it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from harness.client import BUDGET_SECONDS, FIRST_MESSAGES_BUDGET_SECONDS

# The request names of the report, with the budget iAdvize gives each (seconds).
ENDPOINTS = {
    "availability-strategies": BUDGET_SECONDS,
    "first-messages": FIRST_MESSAGES_BUDGET_SECONDS,
    "conversations": BUDGET_SECONDS,
    "messages (visitor)": BUDGET_SECONDS,
    "messages (echo)": BUDGET_SECONDS,
}
CALLS_SECONDS = 1.0  # what a visitor turn's own calls are assumed to take, when sizing the visitor pool


def secret_from_environment() -> str | None:
    """The app's secret from ``IADVIZE_SECRET``, or None when it is unset or empty."""
    return os.environ.get("IADVIZE_SECRET") or None


@dataclass(frozen=True)
class Plan:
    """The shape of one load test: the operators, the conversation rate, how visitors talk, and what the calls carry."""

    operators: tuple[str, ...]
    conversations_per_minute: float
    think_time: tuple[float, float] = (5.0, 20.0)  # seconds a visitor takes to type the next message
    messages: int = 4  # at most this many visitor messages per conversation (1 to this, uniformly)
    connector_version: str = ""
    website: str = "ha-123"
    workers: int = 1  # Locust worker processes sharing the users (1: a single process)

    @property
    def visitors(self) -> int:
        """Visitor users needed so that a new chat can start on time while earlier ones still run."""
        longest = self.messages * (self.think_time[1] + CALLS_SECONDS)
        return max(1, math.ceil(self.conversations_per_minute / 60 * longest) + 1)

    @property
    def pacing(self) -> float:
        """Seconds between the starts of two chats of one visitor user."""
        return self.visitors * 60 / self.conversations_per_minute

    def describe(self, visitors: int | None = None) -> dict:
        """The plan as the summary records it (``visitors``: the users Locust was actually given)."""
        return {
            "operators": list(self.operators),
            "workers": self.workers,
            "conversations_per_minute": self.conversations_per_minute,
            "think_time": list(self.think_time),
            "messages": self.messages,
            "visitors": self.visitors if visitors is None else visitors,
            "pacing": self.pacing,
        }

    # --- as Locust options: a master forwards them to its workers --------------------------------

    @staticmethod
    def add_locust_options(parser) -> None:
        """Adds the plan's ``--iadvize-*`` options, and ``--iadvize-summary``, to Locust's parser."""
        parser.add_argument("--iadvize-operators", default="", include_in_web_ui=False)
        parser.add_argument("--iadvize-conversations-per-minute", type=float, default=1.0, include_in_web_ui=False)
        parser.add_argument("--iadvize-think-time", default="5-20", include_in_web_ui=False)
        parser.add_argument("--iadvize-messages", type=int, default=4, include_in_web_ui=False)
        parser.add_argument("--iadvize-connector-version", default="", include_in_web_ui=False)
        parser.add_argument("--iadvize-website", default="ha-123", include_in_web_ui=False)
        parser.add_argument("--iadvize-workers", type=int, default=1, include_in_web_ui=False)
        parser.add_argument("--iadvize-summary", default="", include_in_web_ui=False)

    def locust_options(self) -> list[str]:
        """The plan as ``--iadvize-*`` options for Locust's command line."""
        low, high = self.think_time
        options = {
            "operators": ",".join(self.operators),
            "conversations-per-minute": self.conversations_per_minute,
            "think-time": f"{low:g}-{high:g}",
            "messages": self.messages,
            "connector-version": self.connector_version,
            "website": self.website,
            "workers": self.workers,
        }
        return [f"--iadvize-{name}={value}" for name, value in options.items()]  # "=": values may start with "-"

    @classmethod
    def from_locust(cls, options) -> Plan:
        """The plan from Locust's parsed ``--iadvize-*`` options."""
        return cls(
            tuple(filter(None, options.iadvize_operators.split(","))),
            options.iadvize_conversations_per_minute,
            think_time(options.iadvize_think_time),
            options.iadvize_messages,
            options.iadvize_connector_version,
            options.iadvize_website,
            options.iadvize_workers,
        )


def think_time(text: str) -> tuple[float, float]:
    """``"5-20"`` (a range of seconds) or ``"3"`` (always 3 s)."""
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise ValueError(f"think time {text!r} is not seconds or a range of seconds such as 5-20") from None
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise ValueError(f"think time {text!r}: the range must go from a low to a higher number of seconds")
    return bounds

"""What one running bot holds: scenarios, store, operators, the dialogue function, the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from harness.wire.model import utc_iso

from .errors import ApiError
from .operators import OperatorDirectory
from .proactive import OutboxWorker
from .scenario import Scenario
from .store import Operator, Store


@dataclass
class Runtime:
    """What one running bot holds, in ``app.extensions``; ``runtime()`` finds it."""

    scenarios: dict[str, Scenario]
    store: Store
    operators: OperatorDirectory
    dialogue: Callable
    outbox: OutboxWorker | None

    def operator(self, id_operator: str) -> Operator:
        """The operator from memory, or a 404 that tells the caller how to create it."""
        operator = self.operators.get(id_operator)
        if operator is None:
            raise ApiError(
                404, "unknown operator", f"no operator {id_operator!r}: create it with PUT /bots/{id_operator}"
            )
        return operator

    def scenario_of(self, operator: Operator) -> Scenario:
        """The scenario the operator is linked to, in the operator's language (one operator speaks one),
        or a 409 when this bot no longer has that scenario."""
        scenario = self.scenarios.get(operator.id_bot)
        if scenario is None:  # the scenario file was removed since the operator was saved
            raise ApiError(
                409,
                "unknown scenario",
                f"operator {operator.id_operator!r} uses scenario {operator.id_bot!r}, "
                "which this bot no longer has; PUT the operator with another external.idBot",
            )
        return scenario.in_language(operator.settings.get("language"))


def runtime() -> Runtime:
    """The Runtime of the current app (in a request or app context)."""
    return current_app.extensions[__package__]


def now() -> str:
    """Timestamps as iAdvize writes them: UTC, milliseconds, ``Z``."""
    return utc_iso()

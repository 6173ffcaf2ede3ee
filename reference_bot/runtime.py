"""What one running bot holds: scenarios, store, operators, the dialogue function, the outbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from harness.wire.model import utc_iso

from .errors import ApiError
from .operators import OperatorDirectory
from .proactive import OutboxWorker
from .scenario import Scenario, ScenarioError, load_directory
from .store import Operator, Store

log = logging.getLogger(__package__)


class ScenarioFolder:
    """The scenarios of a folder; with ``watch`` (``serve --reload``), read again when its files change (looked
    at once a second at most). A file that no longer loads leaves the last good scenarios in place, and its
    problem in ``problem`` (``GET /scenario-problem`` tells it, and the chat page shows it)."""

    def __init__(self, directory: Path, scenarios: dict[str, Scenario], watch: bool = False):
        self.directory, self.current, self.watch = Path(directory), scenarios, watch
        self.problem: str | None = None
        self._seen, self._looked = self._files(), time.monotonic()

    def get(self) -> dict[str, Scenario]:
        """The scenarios now, read again first if the folder's files changed."""
        if self.watch and time.monotonic() - self._looked >= 1.0:
            self._looked = time.monotonic()
            files = self._files()
            if files != self._seen:
                self._seen = files
                try:
                    self.current, self.problem = load_directory(self.directory), None
                    log.info("scenario files read again", extra={"path": str(self.directory)})
                except ScenarioError as error:
                    self.problem = str(error)  # said in the log too: the terminal serve runs in shows it
                    log.warning(f"scenario files not read again, the last good ones go on: {error}")
        return self.current

    def _files(self) -> tuple:
        """Each scenario file's name and when it was last written: what tells a change."""
        found = [*self.directory.glob("*.yaml"), *self.directory.glob("*.yml")]
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in found if p.exists()))


@dataclass
class Runtime:
    """What one running bot holds, in ``app.extensions``; ``runtime()`` finds it."""

    folder: ScenarioFolder
    store: Store
    operators: OperatorDirectory
    dialogue: Callable
    outbox: OutboxWorker | None

    @property
    def scenarios(self) -> dict[str, Scenario]:
        """The scenarios, by idBot (read again on a change with ``serve --reload``)."""
        return self.folder.get()

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

"""Operators kept in memory, so the hot paths never wait on the database.

``conversation-first-messages`` has a 2 s budget and ``availability-strategies`` is polled
about once per second per operator: both read this directory only. It is loaded from
the store at start-up, written through on ``PUT /bots/:idOperator``, and refreshed in the
background so that every gunicorn worker sees an operator saved by another one.
"""

from __future__ import annotations

import logging
import threading

from .store import Operator, Store

log = logging.getLogger(__name__)


class OperatorDirectory:
    """Every operator in memory, loaded from the store at creation.

    With ``refresh_seconds`` above 0, a daemon thread reloads them from the store that often.
    """

    def __init__(self, store: Store, refresh_seconds: float = 2.0):
        self.store = store
        self.refresh_seconds = refresh_seconds
        try:
            self._operators: dict[str, Operator] = store.operators()
        except store.UNAVAILABLE as error:  # a worker started while the database is down: the refresh fills it
            log.warning("operators not loaded yet: %s", " ".join(str(error).split()))
            self._operators = {}
        self._stop = threading.Event()
        if refresh_seconds > 0:
            threading.Thread(target=self._refresh_forever, name="operators", daemon=True).start()

    def get(self, id_operator: str) -> Operator | None:
        """The operator, or None; one not in memory yet (saved by another worker) is read from the store."""
        operator = self._operators.get(id_operator)
        if operator is None:  # saved by another worker since the last refresh? one indexed read to know
            operator = self.store.operator(id_operator)
            if operator is not None:
                self.put(operator)
        return operator

    def known(self, id_operator: str) -> Operator | None:
        """The operator if this process has it in memory, without asking the store."""
        return self._operators.get(id_operator)

    def put(self, operator: Operator) -> None:
        """Keeps ``operator`` in memory, in place of what was known of it."""
        # Replace the whole dict rather than mutate it: readers in other threads never see a partial update.
        self._operators = {**self._operators, operator.id_operator: operator}

    def refresh(self) -> None:
        """Reloads every operator from the store, keeping any copy in memory newer than the stored one."""
        fresh = self.store.operators()
        # A put() that landed while the snapshot was read is newer than the snapshot: keep it.
        for id_operator, known in self._operators.items():
            if id_operator not in fresh or fresh[id_operator].updated_at < known.updated_at:
                fresh[id_operator] = known
        self._operators = fresh

    def stop(self) -> None:
        """Ends the refresh thread; the directory keeps its last copy."""
        self._stop.set()

    def _refresh_forever(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a locked or missing file must not kill the thread: keep the last copy
                log.exception("refreshing operators failed")

"""What a long command is doing, shown while it runs.

On a terminal: one status line, rewritten in place (what it is doing, counts, elapsed).
Elsewhere (CI logs, pipes): plain lines, no carriage returns, one every few seconds at most
and none in the first few seconds (a quick run prints nothing but its result); a new step
is shown at once, once that time has passed. Library code never prints: it takes a
callback, and the command passes a :class:`Progress`.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time


class Progress:
    """Call it with what is happening now; ``done()`` clears the status line."""

    def __init__(self, stream=None, every: float = 5.0, tty: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every  # seconds between two plain lines about the same step
        self.started = time.monotonic()
        self._last_plain = self.started  # quiet for the first ``every`` seconds
        self._step: str | None = None
        self._shown = False
        self._lock = threading.Lock()  # replay reports from several threads

    def __call__(self, text: str, step: str | None = None) -> None:
        """``text`` is the whole status; ``step`` names the phase (a new step prints at once)."""
        now = time.monotonic()
        line = f"{text} ({now - self.started:.0f} s)"
        with self._lock:
            if self.tty:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self.stream.write("\r\033[K" + line[:width])
                self._shown = True
            elif now - self.started >= self.every and (
                now - self._last_plain >= self.every
                or (step is not None and step != self._step and now - self._last_plain >= 1.0)
            ):
                self.stream.write(line + "\n")
                self._last_plain = now
            self._step = step if step is not None else self._step
            self.stream.flush()

    def done(self) -> None:
        """Clears the status line on a terminal; elsewhere there is nothing to clear."""
        with self._lock:
            if self.tty and self._shown:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self._shown = False


def silent(text: str, step: str | None = None) -> None:
    """The progress callback of library calls nobody watches."""

"""What long commands print while they run: a status line on a terminal, a few plain lines elsewhere."""

from __future__ import annotations

import io

from harness import progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_are_few_and_none_in_a_quick_run(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()
    show = progress.Progress(out, every=5.0, tty=False)
    for second in range(4):  # a quick run: nothing but its result will be printed
        clock.now = 100.0 + second
        show(f"step {second}", step=str(second))
    assert out.getvalue() == ""
    clock.now = 105.0
    show("working, 3 done", step="a")
    clock.now = 105.5  # a new step half a second later waits; the same step waits five seconds
    show("working, 4 done", step="b")
    clock.now = 106.6
    show("still b", step="b")
    clock.now = 106.7
    show("now c", step="c")
    assert out.getvalue().splitlines() == ["working, 3 done (5 s)", "now c (7 s)"]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_one_line_rewritten_then_cleared():
    out = io.StringIO()
    show = progress.Progress(out, tty=True)
    show("replay: 1 conversations")
    show("replay: 2 conversations")
    show.done()
    assert out.getvalue().count("\r\033[K") == 3 and out.getvalue().endswith("\r\033[K")
    assert "replay: 2 conversations (0 s)" in out.getvalue()

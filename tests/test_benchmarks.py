"""A smoke pass of every benchmark: they run and report a ratio against their target."""

from __future__ import annotations

import pytest

from benchmarks import concurrent, run
from benchmarks.common import Ratio, alternate, results_table


def test_alternate_takes_the_median_of_each_side():
    values = iter([1.0, 10.0, 3.0, 30.0, 2.0, 20.0])
    assert alternate(lambda: next(values), lambda: next(values), 3) == (2.0, 20.0)


def test_a_ratio_knows_whether_its_target_is_met():
    assert Ratio("x", 0.95, ">= 0.9", "").met and not Ratio("y", 1.6, "<= 1.5", "").met
    assert Ratio("z", 3.0, "n/a", "").met is None
    assert "| y | 1.60 | <= 1.5 | NO |" in results_table([Ratio("y", 1.6, "<= 1.5", "m")])


def test_without_wrk_make_bench_says_make_wrk(monkeypatch):
    monkeypatch.setattr(concurrent.shutil, "which", lambda name: None)
    with pytest.raises(concurrent.WrkMissing, match="`make wrk`"):
        run.main(smoke=True)


@pytest.mark.slow
def test_every_benchmark_runs_in_smoke_mode(capsys):
    assert run.main(smoke=True) == 0
    table = capsys.readouterr().out
    for name in (
        "harness overhead",
        "harness overhead, tuned floor",
        "virtual time",
        "metrics at scale",
        "bot overhead p50",
        "bot overhead p99",
        "concurrent availability throughput",
        "concurrent message p50",
        "concurrent message p99",
        "replay memory",
        "verification",
        "metrics at 0.04 M exchanges",  # the smoke pass runs the scale rows small: 10 M in make bench
        "report tables at 0.02 M exchanges",
        "report tables at 0.04 M exchanges",
        "report tables peak memory at 0.04 M exchanges",
    ):
        assert f"| {name} |" in table

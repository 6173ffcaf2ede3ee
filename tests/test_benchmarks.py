"""A smoke pass of every benchmark: they run and report a ratio against their target."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.common import Ratio, alternate, results_table


def test_alternate_takes_the_median_of_each_side():
    values = iter([1.0, 10.0, 3.0, 30.0, 2.0, 20.0])
    assert alternate(lambda: next(values), lambda: next(values), 3) == (2.0, 20.0)


def test_a_ratio_knows_whether_its_target_is_met():
    assert Ratio("x", 0.95, ">= 0.9", "").met and not Ratio("y", 1.6, "<= 1.5", "").met
    assert Ratio("z", 3.0, "n/a", "").met is None
    assert "| y | 1.60 | <= 1.5 | NO |" in results_table([Ratio("y", 1.6, "<= 1.5", "m")])


def test_without_wrk_make_bench_says_make_wrk_in_one_line(tmp_path):
    (tmp_path / "python").symlink_to(sys.executable)  # a PATH holding Python and nothing else
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert (done.returncode, done.stderr) == (
        1,
        "error: the concurrent benchmarks need wrk: `make wrk` installs Debian's package\n",
    )


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
        "concurrent message p50, paced",
        "concurrent message p99, paced",
        "replay memory",
        "verification",
        "metrics at 0.04 M exchanges",  # the smoke pass runs the scale rows small: 10 M in make bench
        "report tables at 0.02 M exchanges",
        "report tables at 0.04 M exchanges",
        "report tables peak memory at 0.04 M exchanges",
    ):
        assert f"| {name} |" in table

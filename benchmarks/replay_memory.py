"""Replay memory: peak RSS replaying 10x the recordings vs 1x (streaming keeps it flat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from harness.traffic.recordings import Corrupt, read

from .common import Ratio
from .virtual_time import SAMPLE


def write_recording(path: Path, conversations: int, copies: int) -> None:
    """``conversations`` of the sample, ``copies`` times over, each copy a week later with new ids."""
    base, seen = [], []
    for line in read([SAMPLE]):
        if isinstance(line, Corrupt):
            continue
        if line["conversation"] is not None and line["conversation"] not in seen:
            if len(seen) == conversations:
                break
            seen.append(line["conversation"])
        line.pop("_source", None)
        base.append(line)
    with open(path, "w", encoding="utf-8") as out:
        for copy in range(copies):
            for line in base:
                moved = dict(line)
                if moved["conversation"]:
                    moved["conversation"] = f"{moved['conversation']}-{copy}"
                when = datetime.fromisoformat(moved["sent_at"].replace("Z", "+00:00")) + timedelta(weeks=copy)
                moved["sent_at"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                out.write(json.dumps(moved) + "\n")


def peak_rss_mb(recording: Path, bot_url: str) -> float:
    """Peak resident memory of a `replay` process, from the kernel's accounting of the child."""
    with tempfile.TemporaryDirectory() as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "replay",
                str(recording),
                "--provider-url",
                bot_url,
                "--out",
                out,
                "--concurrency",
                "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"replay exited with {child.returncode}")
    return usage.ru_maxrss / 1024


def run(bot_url: str, conversations: int = 200) -> Ratio:
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder) / "x1.jsonl", Path(folder) / "x10.jsonl"
        write_recording(small, conversations, 1)
        write_recording(large, conversations, 10)
        one, ten = peak_rss_mb(small, bot_url), peak_rss_mb(large, bot_url)
    return Ratio(
        "replay memory",
        ten / one,
        "<= 1.2",
        f"peak RSS {ten:.0f} MB for {10 * conversations} conversations vs {one:.0f} MB for {conversations}",
    )

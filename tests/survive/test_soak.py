"""A short run of ``bench/soak.py`` (the benchmark's run is 10 minutes): the lunch rush of
bench/api_latency.py against the real daemon process, sampling its memory and descriptors.
Every call must be answered; the growth figures are the benchmark's to judge on a full run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.pcscd
def test_a_short_soak_answers_every_call_and_ends_with_the_summary_line() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "6", "--every", "0.5"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    found = re.fullmatch(
        r"soak: calls=(\d+) errors=(\d+) rss_growth_mb=(-?\d+\.\d) fds_growth=(-?\d+)", lines[-1]
    )
    assert found is not None, done.stdout[-3000:] + done.stderr[-3000:]
    calls, errors = int(found[1]), int(found[2])
    assert errors == 0, done.stdout
    assert calls > 500, done.stdout  # 8 tills at 25 calls/s for 6 s: ~1200 planned
    samples = [x for x in lines if re.fullmatch(r"\s+\d+\.\d\s+\d+\.\d\s+\d+", x)]
    assert len(samples) >= 5, done.stdout  # the daemon's RSS and fds were sampled through it
    assert done.returncode in (0, 1), done.stdout  # 1: a growth target missed on a busy box


def test_a_bad_duration_is_refused_naming_the_flag() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--seconds" in done.stderr

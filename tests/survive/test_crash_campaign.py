"""A short run of ``bench/crash_campaign.py`` (the benchmark's run is 300 kills): ``kill -9`` of
the real daemon at random moments under POS load, restarted each time; nothing acknowledged
lost, nothing applied twice, every unknown outcome settled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CAMPAIGN = Path(__file__).resolve().parents[2] / "bench" / "crash_campaign.py"


@pytest.mark.pcscd
def test_ten_kills_lose_nothing_and_double_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), "--kills", "10", "--seed", "7"],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    found = re.fullmatch(
        r"crash_campaign: kills=(\d+) acknowledged=(\d+) lost=(\d+) doubled=(\d+) "
        r"unresolved=(\d+)",
        lines[-1],
    )
    assert found is not None, done.stdout[-3000:] + done.stderr[-3000:]
    kills, acknowledged, lost, doubled, unresolved = (int(g) for g in found.groups())
    assert (kills, lost, doubled, unresolved) == (10, 0, 0, 0), done.stdout
    assert acknowledged > 10, done.stdout
    assert done.returncode == 0, done.stdout
    mid = next(x for x in lines if x.startswith("  of them a few ms after a debit"))
    assert int(mid.split()[-1]) > 0, mid  # some kills did land in the middle of a debit
    settled = [int(x.split()[-1]) for x in lines if x.startswith("unknown outcome, then ")]
    assert sum(settled) > 0, done.stdout  # calls cut by the kills, each settled afterwards


def test_a_bad_kill_count_is_refused_naming_the_flag() -> None:
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), "--kills", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--kills" in done.stderr

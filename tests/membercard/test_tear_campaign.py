"""A short run of ``bench/tear_campaign.py`` over refunds and cancelled top-ups (the long run
is the benchmark's: ``--ops refund,cancel_topup --trials 10000``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CAMPAIGN = Path(__file__).resolve().parents[2] / "bench" / "tear_campaign.py"


def test_refunds_and_cancels_torn_at_random_apdus_are_old_or_new() -> None:
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), "--ops", "refund,cancel_topup", "--trials", "80",
         "--scenarios", "2", "--seed", "16"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found = re.fullmatch(r"tear_campaign: trials=(\d+) violations=(\d+) .*", last)
    assert found is not None, last
    assert found.groups() == ("80", "0")
    for op in ("refund", "cancel_topup"):  # both ran, and both outcomes were reached
        line = next(x for x in done.stdout.splitlines() if x.startswith(f"{op} "))
        old, new = (int(n) for n in re.findall(r"(?:old|new)=\s*(\d+)", line))
        assert old > 0, line
        assert new > 0, line


def test_an_unknown_operation_is_refused_naming_the_flag() -> None:
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), "--ops", "refund,rebate", "--trials", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--ops: rebate" in done.stderr

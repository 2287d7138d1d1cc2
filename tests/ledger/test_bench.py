"""bench/ledger_ingest.py runs end to end (a short, slow run: its figures are the bench's to
report on a quiet machine, not a test's to assert)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ledger_ingest.py"


def test_a_short_ingest_run_prints_its_table_and_summary_line() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--stores", "2", "--rate", "200", "--seconds", "1.5"],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"ledger_ingest: events_per_s=\d+ visible_p99_ms=[\d.]+ online_check_p50_ms=[\d.]+ "
        r"online_check_p99_ms=[\d.]+",
        last,
    ), last
    assert "divergences flagged" in done.stdout
    assert re.search(r"divergences flagged\s+0\n", done.stdout)  # honest stores: no flags

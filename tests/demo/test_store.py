"""The simulated store that `make run` shows, run as a store person would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_demo_store_passes_its_options_on(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "carddaemon-demo"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "receipt.png").is_file()
    assert str(tmp_path / "receipt.png") in done.stdout
    out = done.stdout
    assert "value block: 12345 (adr 4)" in out  # the technician's decoded sector
    assert "opening balance ¥500.00" in out
    assert "balance ¥388.35" in out  # ¥500.00 - ¥111.65
    assert "WRITE_UNCONFIRMED" in out  # the card pulled mid-write
    # settled from the card alone, and the retry did not charge twice
    assert "balance ¥368.35 read from the card alone" in out
    assert "replayed the recorded outcome -> ¥368.35" in out
    assert "FF FF FF FF FF FF" not in out

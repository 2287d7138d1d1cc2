"""The simulated store that `make run` shows, run as a store person would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_demo_store_passes_its_options_on(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "carddaemon-demo"), "--out", str(tmp_path / "r.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"]  # a file, not a folder
    assert f"preview: {tmp_path / 'r.png'}" in done.stdout
    out = done.stdout
    assert "value block: 12345 (adr 4)" in out  # the technician's decoded sector
    assert "opening balance ¥500.00" in out
    # the sale: ¥123.50 less the 金卡's 15 %, debited from the card, the receipt from the journal
    assert "sale 0042: ¥123.50 less ¥18.53 (金卡: pays 85% of the price)" in out
    assert "paid ¥104.97 from stored value" in out
    assert "balance ¥395.03" in out  # ¥500.00 - ¥104.97
    assert "for card operation demo-sale-0042 (member block from the journal)" in out
    assert "WRITE_UNCONFIRMED" in out  # the card pulled mid-write
    # settled from the card alone, and the retry did not charge twice
    assert "balance ¥375.03 read from the card alone" in out
    assert "replayed the recorded outcome -> ¥375.03" in out
    assert "FF FF FF FF FF FF" not in out
    # the scanner gun: the POS sees the payment code, the technician only a masked one
    assert re.search(r" 134567890123456789 +1345\*{10}6789  \[WECHAT_PAY\]", out), out
    # the scan table cuts nothing: the whole GS1 label in the POS column
    assert " 0106901234567892<GS>10LOT2026<GS>3103000750 0106901234567892<GS>" in out
    assert "…" not in out
    assert done.stderr == ""  # the story ends without a warning


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "carddaemon-demo"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_out_is_a_file_in_a_folder_that_exists(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "r.png"
    done = _demo("--out", str(missing))
    assert done.returncode == 2
    assert f"--out {missing}: the folder {missing.parent} does not exist" in done.stderr
    assert not missing.parent.exists()  # nothing made
    done = _demo("story", "--out", str(tmp_path))
    assert done.returncode == 2
    assert f"--out {tmp_path}: is a folder; name the PNG file to write" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_demo_store_runs_from_its_config_file_through_the_station() -> None:
    """`make run` builds the store with Station.from_config on demo/store.toml, nothing else."""
    import ast

    source = (Path(__file__).resolve().parents[2] / "demo" / "store.py").read_text("utf-8")
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "from_config" in calls
    assert "SimReader(" not in source  # no hand-built reader beside the station

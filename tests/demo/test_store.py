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
    assert "134567890123456789             1345**********6789  [WECHAT_PAY]" in out
    assert "ERROR" not in done.stderr
    assert "WARNING" not in done.stderr


def test_demo_store_refuses_an_out_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "r.png"
    target.write_bytes(b"not a folder")
    done = subprocess.run(
        [str(BIN / "carddaemon-demo"), "--out", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--out" in done.stderr
    assert "not a folder" in done.stderr
    assert target.read_bytes() == b"not a folder"


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

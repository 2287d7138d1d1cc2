"""``carddaemon-demo chain``: two real stations (the demo store with ``[ledger]``) on one
private chain ledger; the dump restored at store B is caught, online and offline."""

from __future__ import annotations

import pytest

from demo.chain import main


def test_the_chain_demo_catches_the_rollback_online(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "store B: REFUSED 150.00 元 - COUNTER_ROLLBACK" in out
    assert "store A: hotlist pulled back; card 04C4A1B2 blocked here: chain hotlist" in out
    assert out.rstrip().endswith("caught: the rollback between two stores")


def test_the_chain_demo_offline_is_bounded_then_caught(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--offline"]) == 0
    out = capsys.readouterr().out
    assert "store B: pays 150.00 元 (offline floor limit 200.00 元 per day)" in out
    assert "LEDGER_REQUIRED" in out
    assert "HISTORY_FORKED" in out
    assert out.rstrip().endswith("caught: the rollback between two stores")

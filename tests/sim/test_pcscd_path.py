"""The private pcscd starts whatever PATH the test run inherits (cron, sanitised CI shells)."""

from __future__ import annotations

import pytest

from sim.pcscd import PrivatePcscd


@pytest.mark.pcscd
def test_private_pcscd_starts_when_path_leaves_out_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # cron's default: no /usr/sbin, where pcscd is
    with PrivatePcscd(["Path Check"], debug=False) as pcscd:
        assert pcscd.running
        assert "not found" not in pcscd.log_tail()
    assert not pcscd.running

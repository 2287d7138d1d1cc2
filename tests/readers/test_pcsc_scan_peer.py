"""A real peer agrees: pcsc-tools' ``pcsc_scan``, through the private pcscd, names our card."""

from __future__ import annotations

import re
import subprocess

import pytest

from daemon.readers.atr import card_type
from sim.store import transport_card
from tests.pcscd_stack import Stack

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _pcsc_scan(stack: Stack, *args: str) -> str:
    assert stack.pcscd is not None
    done = subprocess.run(
        ["pcsc_scan", *args],
        env=stack.pcscd.client_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return _ANSI.sub("", done.stdout)


@pytest.mark.pcscd
@pytest.mark.parametrize("stack", ["pcsc"], indirect=True)
def test_pcsc_scan_lists_our_readers(stack: Stack) -> None:
    out = _pcsc_scan(stack, "-r")
    assert stack.name(0) in out
    assert stack.name(1) in out


@pytest.mark.pcscd
@pytest.mark.parametrize("stack", ["pcsc"], indirect=True)
def test_pcsc_scan_names_the_simulated_card_mifare_classic_1k(stack: Stack) -> None:
    state = stack.insert(0, transport_card())
    out = _pcsc_scan(stack, "-t", "1")  # quit after one second
    atr_hex = state.atr.hex(" ").upper()
    assert f"ATR: {atr_hex}" in out
    assert "NXP/Philips MIFARE Classic 1K (as per PCSC std part3)" in out
    assert card_type(state.atr) == "MIFARE Classic 1K"  # and we agree with it

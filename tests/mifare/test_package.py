"""The package surface: curated, importable, and free of reader/hardware imports."""

from __future__ import annotations

import subprocess
import sys

import daemon.mifare as mifare


def test_every_public_name_resolves() -> None:
    for name in mifare.__all__:
        assert getattr(mifare, name) is not None, name
    assert len(set(mifare.__all__)) == len(mifare.__all__)


def test_importing_mifare_pulls_in_no_reader_or_hardware_module() -> None:
    code = (
        "import sys, daemon.mifare\n"
        "bad = [m for m in sys.modules if m.startswith(('daemon.readers', 'smartcard', 'usb', "
        "'serial', 'sim'))]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""

"""Importing the daemon (printers included) must not load usb, serial, escpos or Pillow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_loads_no_hardware_library() -> None:
    code = (
        "import sys, daemon, daemon.printers\n"
        "from daemon.printers import PrinterConfig, ReceiptEncoder, get_profile\n"
        "ReceiptEncoder(get_profile('zh-80')).text_line('苹果')\n"
        "PrinterConfig.from_mapping('p', {'backend': 'usb', 'usb_vendor': 1, 'usb_product': 2})\n"
        "bad = [m for m in ('usb', 'serial', 'escpos', 'PIL') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_backend_module_is_imported_on_first_use() -> None:
    code = (
        "import sys\n"
        "from daemon.printers import PrinterConfig, create_backend\n"
        "b = create_backend(PrinterConfig(id='p', backend='network'))\n"
        "print(type(b).__name__, 'daemon.printers.connectors' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["NetworkBackend", "True"]


def test_simulated_printer_core_is_independent_of_the_daemon() -> None:
    """The decoder must not share code with the encoder it checks, or a bug would be mirrored.
    What drives the daemon's printing layer lives in the ``demo`` package."""
    import ast

    core = ["tokenizer", "decoder", "device", "model", "transports", "render", "usb", "__main__"]
    for name in core:
        tree = ast.parse((ROOT / "sim" / "printer" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            assert not any(m.split(".")[0] == "daemon" for m in modules), f"{name}: {modules}"

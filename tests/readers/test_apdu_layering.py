"""The APDU layer stays light and layered: no pyscard/pyusb on import, never daemon.mifare."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import daemon.readers

READERS = pathlib.Path(daemon.readers.__file__).parent
MINE = ["apdu.py", "status.py", "dialects.py", "trace.py", "fallback.py", "storage.py"]


def test_importing_the_package_loads_no_driver_library() -> None:
    code = (
        "import sys, daemon.readers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('smartcard', 'usb', 'sim')"
        " or m.startswith('daemon.mifare')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_apdu_layer_never_imports_mifare() -> None:
    for name in MINE:
        tree = ast.parse((READERS / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                assert not module.startswith("daemon.mifare"), f"{name} imports {module}"
                assert not module.startswith(("smartcard", "sim")), f"{name} imports {module}"


def test_curated_exports_resolve() -> None:
    for name in daemon.readers.__all__:
        assert getattr(daemon.readers, name) is not None

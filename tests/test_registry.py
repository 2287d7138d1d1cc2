"""The one backend registry: names, entry points, errors that name the config key, lazy imports."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from daemon import registry
from daemon.errors import ConfigError
from daemon.printers.backend import PrinterBackend, PrinterConfig, create_backend
from daemon.scanners.base import ScannerBackend

ROOT = Path(__file__).resolve().parents[1]
READER_METHODS = ("from_config", "list_readers", "connect", "wait_for_change", "cancel", "close")
INTERFACES: dict[str, type] = {
    "printers": PrinterBackend,
    "scanners": ScannerBackend,
}


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed distribution (a dist-info on ``sys.path``) with entry points that
    point at a missing module, at something that is not a class, and at a built-in name."""
    dist = tmp_path / "carddaemon_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: carddaemon-test-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[carddaemon.backends.printers]\n"
        "broken = carddaemon_no_such_module:Printer\n"
        "[carddaemon.backends.scanners]\n"
        "notaclass = json:dumps\n"
        "twin = sim.scanners.backend:SimScanner\n"
        "[carddaemon.backends.readers]\n"
        "pcsc = sim.backend:SimBackend\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    yield tmp_path
    registry.clear_cache()


def test_unknown_name_names_the_key_and_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        registry.load("printers", "laser", key="printers.front.backend")
    assert err.value.key == "printers.front.backend"
    assert "'laser'" in str(err.value)
    assert "known: network, serial, sim, usb" in str(err.value)


def test_unknown_printer_backend_in_a_table_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        PrinterConfig.from_mapping("front", {"backend": "laser"})
    assert err.value.key == "printers.front.backend"
    assert "network, serial, sim, usb" in str(err.value)


def test_unimportable_backend_is_a_config_error_not_an_import_error(plugin: Path) -> None:
    assert "broken" in registry.names("printers")
    with pytest.raises(ConfigError) as err:
        create_backend(PrinterConfig(id="front", backend="broken"))
    assert err.value.key == "printers.front.backend"
    text = str(err.value)
    assert "No module named 'carddaemon_no_such_module'" in text
    assert "known: broken, network, serial, sim, usb" in text
    assert "Traceback" not in text
    assert "\n" not in text


def test_an_entry_point_that_is_not_a_class_is_refused(plugin: Path) -> None:
    with pytest.raises(ConfigError, match="not a class") as err:
        registry.load("scanners", "notaclass", key="scanners.x.backend")
    assert err.value.key == "scanners.x.backend"


def test_a_package_adds_names_but_cannot_take_over_a_built_in(plugin: Path) -> None:
    assert registry.target("scanners", "twin") == "sim.scanners.backend:SimScanner"
    assert registry.target("readers", "pcsc") == "daemon.readers.pcsc:PcscBackend"
    assert registry.names("readers") == ("pcsc", "sim")


def test_the_simulator_registers_its_backends_by_entry_point() -> None:
    for kind, where in (
        ("readers", "sim.backend:SimBackend"),
        ("printers", "sim.printer.backend:SimPrinterBackend"),
        ("scanners", "sim.scanners.backend:SimScanner"),
    ):
        found = {ep.name: ep.value for ep in entry_points(group=f"carddaemon.backends.{kind}")}
        assert found.get("sim") == where, "run: .venv/bin/pip install -e . --no-deps"
        assert "sim" in registry.names(kind)
        assert not registry.is_builtin(kind, "sim")
        assert registry.target(kind, "sim") == where


def test_the_daemon_source_never_names_a_simulated_backend() -> None:
    """No ``"sim"`` name and no ``"sim.module:Class"`` target: the simulator registers itself."""
    pattern = re.compile(r"""["']sim["']|["']sim(\.\w+)*:\w+""")
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in sorted((ROOT / "daemon").rglob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        # the CLI's `carddaemon sim …` verb is a client of the SimulatorService, not a backend
        if pattern.search(line) and "add_parser(" not in line
    ]
    assert offenders == []


def test_every_registered_backend_loads_and_implements_its_interface() -> None:
    for kind in registry.KINDS:
        for name in registry.names(kind):
            cls = registry.load(kind, name, key=f"{kind}.backend")
            if kind == "readers":  # a Protocol: check the methods it names
                for method in READER_METHODS:
                    assert callable(getattr(cls, method, None)), (name, method)
            else:
                assert issubclass(cls, INTERFACES[kind]), (kind, name)


def test_an_unknown_device_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="printer"):
        registry.names("printer")


def test_importing_the_daemon_and_listing_names_imports_no_backend() -> None:
    code = (
        "import sys\n"
        "import daemon, daemon.registry, daemon.config, daemon.printers, daemon.scanners\n"
        "import daemon.readers.backends\n"
        "from daemon import registry\n"
        "print([registry.names(k) for k in registry.KINDS])\n"
        "roots = ('smartcard', 'usb', 'serial', 'escpos', 'evdev', 'sim')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'sim'" in done.stdout  # the names came from entry points without importing sim

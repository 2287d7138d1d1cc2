"""The import rules that keep the layers honest, checked on the source (AST), every module.

* ``daemon/`` never imports the simulator (``sim``) nor the demo store (``demo``): the product
  must run, and be importable, on a store PC where neither is installed;
* ``sim/`` is hardware *below* the daemon's transports: it may use the daemon's error tree and
  the small interface types it implements (connection, framing, backend interfaces), never the
  card application, the MIFARE codecs or the station — else a daemon bug could be mirrored by the
  simulator and every test would still pass;
* ``daemon/readers/`` and ``daemon/mifare/`` never import each other;
* only ``demo/`` (above the daemon) combines ``daemon`` and ``sim`` freely, and nothing imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: what the simulator may import from the daemon: errors and the interfaces it implements
SIM_MAY_USE = (
    "daemon.errors",
    "daemon.readers.connection",
    "daemon.readers.framing",
    "daemon.readers.backends",
    "daemon.printers.backend",
    "daemon.scanners.base",
)


def _imports(path: Path, package: str | None = None) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, as absolute dotted names (relative imports resolved;
    ``from a import b`` counts as ``a.b``, since ``b`` may be a module)."""
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def _violations(
    top: str, bad: tuple[str, ...], allowed: tuple[str, ...] = (), *, root: Path = ROOT
) -> list[str]:
    found = []
    for path in sorted((root / top).rglob("*.py")):
        package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
        for line, module in _imports(path, package):
            if _matches(module, bad) and not _matches(module, allowed):
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_the_product_never_imports_the_simulator_or_the_demo() -> None:
    assert _violations("daemon", ("sim", "demo")) == []


def test_the_simulator_uses_only_errors_and_interfaces_of_the_daemon() -> None:
    assert _violations("sim", ("daemon", "demo"), SIM_MAY_USE) == []


def test_readers_and_mifare_never_import_each_other() -> None:
    assert _violations("daemon/readers", ("daemon.mifare",)) == []
    assert _violations("daemon/mifare", ("daemon.readers",)) == []


def test_benchmarks_build_through_the_product_not_the_demo() -> None:
    assert _violations("bench", ("demo", "tests"), ("demo.sample", "demo.folder")) == []


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import sim.card\n", True),
        ("from sim import card\n", True),
        ("from sim.card import SimCard\n", True),
        ("from ..sim import card\n", False),  # daemon.sim.card: not the simulator
        ("from . import sim\n", False),  # daemon.readers.sim
        ("import demo.store\n", True),
        ("def f() -> None:\n    from sim.reader import SimReader\n", True),  # lazy import
        ("from daemon.errors import CardAbsent\n", False),
    ],
)
def test_the_checker_sees_every_import_form(tmp_path: Path, source: str, caught: bool) -> None:
    """The rules are only as good as the import walk: every form must be seen."""
    (tmp_path / "daemon" / "readers").mkdir(parents=True)
    (tmp_path / "daemon" / "readers" / "probe.py").write_text(source, encoding="utf-8")
    found = _violations("daemon", ("sim", "demo"), root=tmp_path)
    assert bool(found) is caught, found


def test_the_sim_rule_catches_a_codec_import(tmp_path: Path) -> None:
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "chip.py").write_text(
        "from daemon.errors import CardAbsent\nfrom daemon.mifare.value import decode\n",
        encoding="utf-8",
    )
    assert _violations("sim", ("daemon",), SIM_MAY_USE, root=tmp_path) == [
        "sim/chip.py:2 imports daemon.mifare.value.decode"
    ]

"""pyproject.toml says what the code needs: the runtime dependencies are exactly the libraries
daemon/ imports, the checked tools are held to a minor version, and `make` installs the
simulator's extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _name(requirement: str) -> str:
    found = _NAME.match(requirement)
    assert found is not None, requirement
    return found[0].lower().replace("_", "-")


def _imported(folder: str) -> set[str]:
    """Top-level modules imported anywhere in ``folder`` (google.* by its second part)."""
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                found.add(".".join(parts[:2]) if parts[0] == "google" else parts[0])
    return {m for m in found if m.split(".")[0] not in sys.stdlib_module_names}


def _distributions(modules: set[str]) -> set[str]:
    owners = packages_distributions()
    dists: set[str] = set()
    for module in modules - {"daemon", "sim", "demo"}:
        if module == "google.protobuf":
            dists.add("protobuf")
        elif module == "google.rpc":
            dists.add("googleapis-common-protos")
        else:
            assert module in owners, f"{module} is imported but installed by no distribution"
            dists.update(d.lower().replace("_", "-") for d in owners[module])
    return dists


def test_runtime_dependencies_are_what_the_daemon_imports() -> None:
    declared = {_name(r) for r in PROJECT["project"]["dependencies"]}
    assert declared == _distributions(_imported("daemon"))


def test_the_simulator_and_demo_need_only_their_extra() -> None:
    declared = {_name(r) for r in PROJECT["project"]["dependencies"]}
    extra = {_name(r) for r in PROJECT["project"]["optional-dependencies"]["sim"]}
    needed = _distributions(_imported("sim") | _imported("demo"))
    assert needed <= declared | extra, needed - declared - extra


def test_checked_tools_are_held_to_a_minor_version() -> None:
    test = {_name(r): r for r in PROJECT["project"]["optional-dependencies"]["test"]}
    for tool in ("ruff", "mypy", *(n for n in test if n.startswith("types-"))):
        bound = re.search(r"<\s*(\d+)\.(\d+)(?:\.\d+)?\s*$", test[tool].split("#")[0].strip())
        assert bound is not None, f"{test[tool]!r} has no upper bound"
        low = re.search(r">=\s*(\d+)\.(\d+)", test[tool])
        assert low is not None, test[tool]
        assert (int(bound[1]), int(bound[2])) == (int(low[1]), int(low[2]) + 1), test[tool]


def test_make_installs_the_simulator_extra() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install -q -e '.[test,sim]'" in makefile

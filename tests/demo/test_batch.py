"""Batch issuing onto simulated cards (``python -m demo.batch``), and the rule that moved it
here: the product never imports the simulator."""

from __future__ import annotations

import ast
import csv
import os
from pathlib import Path

import pytest

from daemon.keystore import KeyPurpose
from demo.batch import main

ROOT = Path(__file__).resolve().parents[2]


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys.toml"
    keys.write_text("".join(
        f'[{p.value}]\ncurrent = 1\n1 = "{os.urandom(32).hex()}"\n' for p in KeyPurpose
    ))  # fmt: skip
    os.chmod(keys, 0o600)
    return keys


def test_batch_module_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path)
    path = _csv(tmp_path / "in.csv", ["member_id", "1", "2", "3"])
    code = main(["--keys", str(keys), "--journal", str(tmp_path / "j.db"), "--csv", str(path),
                 "--results", str(tmp_path / "r.csv"), "--cards", "3"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr()
    assert "issued=3" in out.out
    assert "[##############################] 3/3 3 issued" in out.err  # the progress bar
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as fh:
        results = list(csv.DictReader(fh))
    assert [(r["member_id"], r["status"]) for r in results] == [
        ("1", "issued"), ("2", "issued"), ("3", "issued"),
    ]  # fmt: skip
    assert all(len(r["uid"]) == 8 for r in results)
    os.chmod(keys, 0o644)
    assert main(["--keys", str(keys), "--journal", str(tmp_path / "j.db"), "--csv", str(path),
                 "--results", str(tmp_path / "r.csv"), "--cards", "3"]) == 2  # fmt: skip
    assert "0644" in capsys.readouterr().err


def test_batch_uses_the_configured_tiers_and_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo/store.toml has four tiers and a 5000 yuan cap; the built-in defaults have five
    tiers and a 100 000 yuan cap, so both rows would pass with the defaults."""
    path = _csv(tmp_path / "in.csv", ["member_id,tier,balance", "1,4,0", "2,0,600000"])
    args = ["--keys", str(_keys(tmp_path)), "--journal", str(tmp_path / "j.db"),
            "--csv", str(path), "--results", str(tmp_path / "r.csv"), "--cards", "2"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "line 2 tier: 4 is not in the tier table (0 普通会员, 1 银卡, 2 金卡, 3 白金卡)" in err
    assert "line 3 balance: 600000 fen is above the card cap" in err
    assert "tier: tier" not in err
    assert not (tmp_path / "r.csv").exists()  # nothing issued from a file with a bad row


def test_demo_batch_needs_its_own_keys_and_journal(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", ["member_id", "1"])
    with pytest.raises(SystemExit) as info:
        main(["--csv", str(path), "--results", str(tmp_path / "r.csv"), "--cards", "1"])
    assert info.value.code == 2


def test_daemon_never_imports_the_simulator() -> None:
    """AST walk over daemon/**/*.py: no ``import sim...`` nor ``from sim... import``."""
    found = []
    for path in sorted((ROOT / "daemon").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name == "sim" or name.startswith("sim.")
            ]
    assert found == []

"""The technician CLI (`carddaemon`) and the simulator CLI (`carddaemon-sim`), as run by a user."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.cli import main as carddaemon
from sim import dumps
from sim.pcscd import PrivatePcscd
from sim.store import transport_card

BIN = Path(sys.executable).parent


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert carddaemon(["version"]) == 0
    assert capsys.readouterr().out.startswith("carddaemon 0.")


def test_decode_prints_the_card_and_never_its_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "card.mfd"
    dumps.save(transport_card(bytes.fromhex("A1B2C3D4")), path)
    assert carddaemon(["decode", str(path)]) == 0
    out = capsys.readouterr().out
    assert "MIFARE Classic 1K" in out
    assert "A1 B2 C3 D4" in out
    assert "FF FF FF FF FF FF" not in out  # transport keys are in the file, never on screen


def test_decode_rejects_a_file_that_is_no_card_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello")
    assert carddaemon(["decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"carddaemon decode: FILE {path}: line 1: does not read as mct")
    assert "expected a raw image of 320, 1024 or 4096 bytes" in err


def test_decode_refuses_an_oversized_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(300_000))
    assert carddaemon(["decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "300000 bytes is larger than any card dump" in err


def test_unknown_backend_names_the_config_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert carddaemon(["readers", "--local", "--backend", "bogus"]) == 2
    assert "readers.backend" in capsys.readouterr().err


def test_sim_serve_rejects_a_bad_uid() -> None:
    done = subprocess.run(
        [str(BIN / "carddaemon-sim"), "serve", "--uid", "zz"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--uid" in done.stderr


@pytest.mark.pcscd
def test_probe_a_card_served_by_carddaemon_sim_through_real_pcscd(
    private_pcscd: PrivatePcscd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    slot = private_pcscd.slots[0]
    server = subprocess.Popen(
        [str(BIN / "carddaemon-sim"), "serve", "--uid", "0A0B0C0D", "--port", str(slot.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 15
        code = 1
        while time.monotonic() < deadline:
            code = carddaemon(["probe", "--reader", slot.reader_name, "--rounds", "5"])
            if code == 0:
                break
            time.sleep(0.3)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "0A 0B 0C 0D" in out
        assert "MIFARE Classic 1K" in out
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_check_config_accepts_the_example_and_names_the_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).parents[2] / "docs" / "carddaemon.example.toml"
    keys = tmp_path / "keys.toml"
    keys.write_text(
        "".join(f'[{p}]\ncurrent = 1\n1 = "{"ab" * 32}"\n' for p in ("card_a", "card_b", "mac")),
        encoding="utf-8",
    )
    keys.chmod(0o600)
    text = example.read_text(encoding="utf-8").replace("/etc/carddaemon/keys.toml", str(keys))
    good = tmp_path / "good.toml"
    good.write_text(text, encoding="utf-8")
    assert carddaemon(["check-config", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: ok"
    keys.chmod(0o644)
    assert carddaemon(["check-config", str(good)]) == 2
    err = capsys.readouterr().err
    assert str(keys) in err
    assert "ab" * 32 not in err
    keys.chmod(0o600)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('backend = "pcsc"', 'backend = "pcsx"', 1), encoding="utf-8")
    assert carddaemon(["check-config", str(bad)]) == 2
    assert "readers.backend" in capsys.readouterr().err

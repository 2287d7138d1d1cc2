"""`readers`, `read` and `sim` (gRPC clients) against `carddaemon serve` as a real process;
the socket chosen by the command, --socket, $CARDDAEMON_SOCKET; no daemon is exit 3."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from daemon.cli import _client
from daemon.cli import main as carddaemon
from tests.cli.conftest import BIN, Served, Store


def run(served: Served, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = carddaemon(["--socket", str(served.socket("pos")), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readers_read_and_sim_over_one_socket(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    served = store.served
    code, out, _ = run(served, "readers", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["READER", "STATE", "UID"]
    assert [line.split()[0] for line in lines[2:]] == ["readers/back", "readers/front"]
    assert all(" empty " in line for line in lines[2:])  # a bare serve: cards in the drawer
    code, out, _ = run(served, "sim", "present", "readers/front", "gold", capsys=capsys)
    assert (code, out.strip()) == (0, "presented gold (9E1A4B01) on readers/front")
    code, out, _ = run(served, "readers", capsys=capsys)
    front = out.splitlines()[3].split()
    assert front[:6] == ["readers/front", "card", "present", "9E1A4B01", "MIFARE", "Classic"]
    code, out, _ = run(served, "read", "front", capsys=capsys)
    assert code == 0
    assert "member       8860000000017" in out
    assert "tier         金卡 (pays 85% of the price)" in out
    assert "balance      ¥500.00" in out
    assert "points       2345" in out
    assert "valid until  " in out
    assert "(active)" in out
    code, out, _ = run(served, "sim", "cards", capsys=capsys)
    assert code == 0
    assert [line.split()[:3] for line in out.splitlines()][:2] == [
        ["gold", "9E1A4B01", "readers/front"],
        ["silver", "9E1A4B02", "(in"],
    ]
    code, out, _ = run(served, "sim", "swap", "front", "silver", capsys=capsys)
    assert out.splitlines() == ["removed gold", "presented silver on readers/front"]
    code, out, _ = run(served, "sim", "remove", "front", capsys=capsys)
    assert (code, out.strip()) == (0, "removed silver from front")
    code, out, _ = run(served, "sim", "remove", "front", capsys=capsys)
    assert (code, out.strip()) == (0, "no card on front")


def test_a_refusal_names_what_the_user_typed_and_exits_1_or_2(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    served = store.served
    code, _, err = run(served, "read", "readers/front", capsys=capsys)
    assert code == 1
    assert err.startswith("carddaemon read: CARD_ABSENT: no card on ")
    assert "Traceback" not in err
    code, _, err = run(served, "sim", "present", "front", "platinum", capsys=capsys)
    assert code == 2  # the user's input: an unknown card
    assert err.startswith("carddaemon sim present: DEVICE_NOT_FOUND: CARD 'platinum': ")
    assert "gold, silver, blank, blank-2" in err
    code, _, err = run(served, "read", "side", capsys=capsys)
    assert code == 2
    assert err.startswith("carddaemon read: DEVICE_NOT_FOUND: READER 'side': no such reader")
    assert "readers: readers/back, readers/front" in err
    # another role's socket: the guard's reason, and which socket was used
    code = carddaemon(["--socket", str(served.socket("issuer")), "read", "front"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ROLE_NOT_ALLOWED" in err
    assert str(served.socket("issuer")) in err


def test_the_socket_comes_from_the_environment_as_a_real_command(store: Store) -> None:
    served = store.served
    done = subprocess.run(
        [str(BIN / "carddaemon"), "readers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CARDDAEMON_SOCKET": str(served.socket("technician"))},
    )
    assert done.returncode == 0, done.stderr
    assert "readers/front" in done.stdout


def test_no_daemon_names_the_socket_and_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "run" / "pos.sock"
    assert carddaemon(["--socket", str(missing), "readers"]) == 3
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "make run" in err
    assert "Traceback" not in err
    # a socket file nobody listens on (a daemon that crashed)
    import socket

    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))
    monkeypatch.setenv("CARDDAEMON_SOCKET", str(stale))
    assert carddaemon(["sim", "cards"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"carddaemon sim cards: no daemon on {stale}")


def test_each_command_calls_its_own_roles_socket_in_the_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CARDDAEMON_SOCKET", raising=False)
    monkeypatch.delenv("CARDDAEMON_RUN_DIR", raising=False)
    monkeypatch.setattr(_client, "DEFAULT_RUN_DIR", tmp_path)  # /run/carddaemon on a store PC
    assert carddaemon(["read", "front"]) == 3
    assert f"no daemon on {tmp_path / 'pos.sock'}" in capsys.readouterr().err
    assert carddaemon(["readers"]) == 3
    assert f"no daemon on {tmp_path / 'technician.sock'}" in capsys.readouterr().err
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("CARDDAEMON_RUN_DIR", str(elsewhere))
    assert carddaemon(["readers"]) == 3
    assert f"no daemon on {elsewhere / 'technician.sock'}" in capsys.readouterr().err
    assert carddaemon(["--run-dir", str(tmp_path / "given"), "read", "x"]) == 3
    assert f"no daemon on {tmp_path / 'given' / 'pos.sock'}" in capsys.readouterr().err


# --- readers and watch as subprocesses against one served store ---------------------------------

GOLDEN = Path(__file__).with_name("golden")


def test_readers_table_json_and_watch(store: Store) -> None:
    assert store.run("sim", "present", "front", "gold").code == 0
    try:
        table = store.run("readers")
        assert (table.code, table.out) == (0, (GOLDEN / "readers.txt").read_text(encoding="utf-8"))
        listed = store.run("readers", "--json")
        assert listed.code == 0
        front = {r["name"]: r for r in listed.json()["readers"]}["readers/front"]
        assert front["state"] == "STATE_CARD_PRESENT"
        assert front["card"]["uid"] == "9E1A4B01"
        assert front["card"]["atr"] == "3B8F8001804F0CA000000306030001000000006A"  # hex, not base64
        watched = store.run("watch", "front", "--json", "--count", "1")
        assert watched.code == 0
        (event,) = watched.lines()
        assert event["header"]["snapshot"] is True
        assert event["snapshot"]["reader"]["card"]["uid"] == "9E1A4B01"
        text = store.run("watch", "--count", "2")
        assert [line.split("  ")[-1] for line in text.out.splitlines()] == [
            "readers/back now: empty [acr122u]",
            "readers/front now: card present card 9E1A4B01 [acr1252u]",
        ]
        unknown = store.run("watch", "side")
        assert unknown.code == 2
        assert unknown.err.strip() == (
            "carddaemon watch: READER 'side': no such reader on this PC "
            "(readers: readers/back, readers/front)"
        )
    finally:
        store.run("sim", "remove", "front")

"""``carddaemon decode``, ``convert``, ``check-config`` and the local ``probe``/``readers`` as a
user runs them: subprocesses, their exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from daemon.cli import main as carddaemon
from tests.api.conftest import BIN

CARDDAEMON = str(BIN / "carddaemon")
DATA = Path(__file__).resolve().parents[1] / "mifare" / "data"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "carddaemon.example.toml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CARDDAEMON, *args], capture_output=True, text=True, timeout=30, check=False
    )


def run_here(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same command in this process (the refusals: quicker than a new interpreter)."""
    code = carddaemon(list(args))
    seen = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, seen.out, seen.err)


def test_decode_folds_factory_sectors_and_all_shows_them() -> None:
    done = run("decode", str(DATA / "purse.pm3.json"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == f"{DATA / 'purse.pm3.json'}: proxmark-json dump"
    assert len(lines) < 40
    assert (
        "Sectors 2-15: factory state: transport access FF 07 80, GPB 69, transport keys, empty"
        in lines
    )
    assert "value block: 1234567 (adr 4)" in done.stdout
    assert "blocks 4-5     110  read A|B  write B  incr B  decr/transfer/restore A|B" in done.stdout
    assert "read back non-zero" not in done.stdout  # a Proxmark dump holds its keys
    everything = run("decode", "--all", str(DATA / "purse.pm3.json"))
    assert everything.returncode == 0
    assert len(everything.stdout.splitlines()) > 150


def test_decode_json_is_one_document_without_keys() -> None:
    done = run("decode", "--json", str(DATA / "purse.mct"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["format"], doc["card"], doc["uid"]) == ("mct", "MIFARE Classic 1K", "5A3C9E01")
    assert doc["problems"] == []
    sector1 = doc["sectors"][1]
    assert sector1["trailer"]["access_bits"] == "48778B"
    assert sector1["trailer"]["key_a"] == "public: sample key"
    assert [b["kind"] for b in sector1["blocks"]] == ["value", "value", "data", "trailer"]
    assert doc["sectors"][5]["folded_as"].startswith("factory state")
    assert "C0C1C2" not in done.stdout
    assert "FFFFFFFFFFFF" not in done.stdout


def test_a_private_key_in_a_dump_is_never_printed(tmp_path: Path) -> None:
    key = secrets.token_bytes(6)
    raw = bytearray((DATA / "sim-purse.mfd").read_bytes())
    raw[7 * 16 : 7 * 16 + 6] = key
    path = tmp_path / "card.bin"
    path.write_bytes(raw)
    for args in (("decode", str(path)), ("decode", "--all", "--json", str(path))):
        done = run(*args)
        assert done.returncode == 0, done.stderr
        for shown in (key.hex(), key.hex().upper(), key.hex(" ").upper()):
            assert shown not in done.stdout
    assert "key A private key (not shown)" in run("decode", str(path)).stdout


def test_a_broken_block_0_is_reported_then_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = bytearray((DATA / "sim-purse.mfd").read_bytes())
    raw[4] ^= 0xFF
    path = tmp_path / "cloned.mfd"
    path.write_bytes(raw)
    done = run("decode", str(path))
    assert done.returncode == 1
    assert "block 0 error: BCC_MISMATCH" in done.stdout
    assert done.stderr.startswith(f"carddaemon decode: {path}: 1 problem(s): block 0: BCC_MISMATCH")
    as_json = run_here(capsys, "decode", "--json", str(path))
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["problems"][0]["where"] == "block 0"


def test_a_closed_pipe_ends_decode_quietly(tmp_path: Path) -> None:
    big = tmp_path / "card4k.mct"
    lines = []
    for s in range(40):
        lines.append(f"+Sector: {s}")
        count = 4 if s < 32 else 16
        lines += ["00" * 16] * (count - 1) + ["FFFFFFFFFFFFFF078069FFFFFFFFFFFF"]
    lines[1] = "5A3C9E01F9980200480E1527430B0010"  # SAK 98 (18 + 0x80), ATQA of a 4K
    big.write_text("\n".join(lines) + "\n", encoding="ascii")
    with subprocess.Popen(
        [CARDDAEMON, "decode", "--all", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # `| head -1`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=30)
    assert first.startswith(str(big).encode())
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert code == 0


def test_device_files_and_pipes_are_refused_at_once(tmp_path: Path) -> None:
    done = run("decode", "/dev/zero")
    assert done.returncode == 2
    assert done.stderr == "carddaemon decode: FILE /dev/zero: is a device file, not a dump file\n"
    fifo = tmp_path / "dump.mfd"
    os.mkfifo(fifo)
    done = run("decode", str(fifo))
    assert done.returncode == 2
    assert "is a named pipe, not a dump file" in done.stderr


def test_an_unknown_file_says_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "card"
    path.write_bytes(b"\x00" * 4075)
    done = run("decode", str(path))
    assert done.returncode == 2
    assert "is not a card dump: expected a raw image of 320, 1024 or 4096 bytes" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_here(capsys, "decode", "--format", "nfc", str(path))
    assert done.returncode == 2
    assert "--format: invalid choice: 'nfc'" in done.stderr


def test_a_misnamed_dump_is_read_by_its_content(tmp_path: Path) -> None:
    path = tmp_path / "card.bin"
    path.write_bytes((DATA / "purse.eml").read_bytes())
    done = run("decode", str(path))
    assert done.returncode == 0, done.stderr
    assert "note: named *.bin but holds a dump in eml format" in done.stdout


def test_convert_writes_another_format_and_refuses_a_bad_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "card.mct"
    done = run("convert", str(DATA / "purse.pm3.json"), str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (DATA / "purse.mct").read_bytes()
    again = run_here(capsys, "convert", str(DATA / "purse.eml"), str(out))
    assert again.returncode == 2
    assert "exists; add --force" in again.stderr
    assert run_here(capsys, "convert", "--force", str(DATA / "purse.eml"), str(out)).returncode == 0
    missing = run_here(
        capsys, "convert", str(DATA / "purse.eml"), str(tmp_path / "nope" / "card.mct")
    )
    assert missing.returncode == 2
    assert f"the directory '{tmp_path / 'nope'}' does not exist" in missing.stderr
    unnamed = run_here(capsys, "convert", str(DATA / "purse.eml"), str(tmp_path / "card"))
    assert unnamed.returncode == 2
    assert "give --to" in unnamed.stderr
    to_dir = run_here(
        capsys, "decode", "--out", str(tmp_path), "--to", "eml", str(DATA / "purse.eml")
    )
    assert to_dir.returncode == 2
    assert "is a directory; name the file to write" in to_dir.stderr
    partial = tmp_path / "partial.mfd"
    done = run("decode", "--out", str(partial), str(DATA / "purse-partial.mct"))
    assert done.returncode == 0, done.stderr
    assert "note: mfd cannot mark blocks not read: 56 written as 00" in done.stderr
    assert partial.stat().st_size == 1024


def _keys(path: Path) -> Path:
    body = "".join(
        f'[{p}]\ncurrent = 1\n1 = "{secrets.token_hex(32)}"\n' for p in ("card_a", "card_b", "mac")
    )
    path.write_text(body, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_check_config_lists_every_mistake_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = _keys(tmp_path / "keys.toml")
    text = EXAMPLE.read_text(encoding="utf-8").replace("/etc/carddaemon/keys.toml", str(keys))
    text = text.replace('dialect = "acr1252u"', 'dialect = "acr999"\nqueue_sise = 8')
    text = text.replace("port = 9100", "port = 70000")
    conf = tmp_path / "carddaemon.toml"
    conf.write_text(text, encoding="utf-8")
    done = run("check-config", str(conf))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"carddaemon check-config: {conf}: 3 mistake(s)",
        "  readers.front.queue_sise: unknown key; did you mean 'queue_size'? valid keys here: "
        "match, dialect, queue_size, job_deadline_ms",
        "  readers.front.dialect: unknown reader dialect 'acr999' (known: auto, acr122u, "
        "acr1252u, omnikey, identiv, generic)",
        "  printers.receipt.port: must be an integer in 1..65535, got 70000",
    ]
    as_json = run_here(capsys, "check-config", "--json", str(conf))
    assert as_json.returncode == 2
    keys_listed = [m["key"] for m in json.loads(as_json.stdout)["mistakes"]]
    assert keys_listed == [
        "readers.front.queue_sise",
        "readers.front.dialect",
        "printers.receipt.port",
    ]


def test_check_config_refuses_a_symlinked_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _keys(tmp_path / "real.toml")
    link = tmp_path / "keys.toml"
    link.symlink_to(real)
    text = EXAMPLE.read_text(encoding="utf-8").replace("/etc/carddaemon/keys.toml", str(link))
    conf = tmp_path / "carddaemon.toml"
    conf.write_text(text, encoding="utf-8")
    done = run("check-config", str(conf))
    assert done.returncode == 2
    assert f"daemon.keystore_file: key file {link} is a symbolic link (to {real})" in done.stderr
    good = conf.read_text(encoding="utf-8").replace(str(link), str(real))
    conf.write_text(good, encoding="utf-8")
    ok = run_here(capsys, "check-config", str(conf))
    assert (ok.returncode, ok.stdout) == (0, f"{conf}: ok\n")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--gen2"], "--gen2 writes block 0: only with --station issuing (given --station"),
        (["--gen2", "--station", "issuing"], "add --allow-block0-write"),
        (["--allow-block0-write"], "--allow-block0-write is only for --gen2"),
        (["--rounds", "5000"], "--rounds 5000: give 0..1000 round trips"),
        (["--rounds", "many"], "--rounds: invalid int value: 'many'"),
    ],
)
def test_local_probe_errors_name_the_flags_typed(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_here(capsys, "probe", "--backend", "sim", *args)
    assert done.returncode == 2
    assert said in done.stderr
    assert "allow_block0_write" not in done.stderr
    assert "latency_rounds" not in done.stderr


def test_local_readers_of_the_simulator_say_where_they_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = run_here(capsys, "readers", "--local", "--backend", "sim")
    assert done.returncode == 2
    assert "--backend sim: its readers exist only inside the process that simulates them" in (
        done.stderr
    )
    assert "`carddaemon readers`" in done.stderr

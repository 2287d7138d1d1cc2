"""Keystore: file permissions, systemd credentials, key derivation, secrecy of key bytes."""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import stat
from pathlib import Path

import pytest

from daemon.errors import KeystoreError
from daemon.keystore import CardKey, KeyPurpose, Keystore, derive_card_key

UID = bytes.fromhex("A1B2C3D4")


def _key_toml(keys: dict[str, dict[int, bytes]], current: dict[str, int]) -> str:
    out = []
    for purpose, versions in keys.items():
        out.append(f"[{purpose}]")
        out.append(f"current = {current[purpose]}")
        for v, raw in versions.items():
            out.append(f'{v} = "{raw.hex()}"')
    return "\n".join(out) + "\n"


Masters = dict[str, dict[int, bytes]]  # purpose -> version -> master key


@pytest.fixture
def masters() -> Masters:
    return {p.value: {1: secrets.token_bytes(32), 2: secrets.token_bytes(32)} for p in KeyPurpose}


def _write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_file_0600_loads_and_versions_are_ordered(tmp_path: Path, masters: Masters) -> None:
    cur = {"card_a": 2, "card_b": 1, "mac": 2}
    ks = Keystore.from_file(_write(tmp_path / "keys.toml", _key_toml(masters, cur), 0o600))
    assert ks.current_version(KeyPurpose.CARD_A) == 2
    assert ks.versions(KeyPurpose.CARD_B) == (1, 2)
    assert ks.master(KeyPurpose.MAC, 2).reveal() == masters["mac"][2]


def test_json_file_and_mode_0400_accepted(tmp_path: Path, masters: Masters) -> None:
    doc = {
        p: {"current": 1, **{str(v): k.hex() for v, k in vs.items()}} for p, vs in masters.items()
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o400)
    assert Keystore.from_file(path).current_version(KeyPurpose.MAC) == 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_file_refused_naming_file_and_mode(
    tmp_path: Path, masters: Masters, mode: int
) -> None:
    path = _write(tmp_path / "keys.toml", _key_toml(masters, dict.fromkeys(masters, 1)), mode)
    with pytest.raises(KeystoreError) as info:
        Keystore.from_file(path)
    text = str(info.value)
    assert str(path) in text
    assert f"{mode:04o}" in text
    for versions in masters.values():
        for raw in versions.values():
            assert raw.hex() not in text.lower()


def test_file_owned_by_another_user_refused(tmp_path: Path, masters: Masters) -> None:
    path = _write(tmp_path / "keys.toml", _key_toml(masters, dict.fromkeys(masters, 1)), 0o600)
    os.chown(path, 4242, -1)  # the suite runs as root; a daemon user would not own this
    with pytest.raises(KeystoreError, match="owned by uid 4242"):
        Keystore.from_file(path)


def test_symlink_and_missing_file_refused(tmp_path: Path, masters: Masters) -> None:
    real = _write(tmp_path / "real.toml", _key_toml(masters, dict.fromkeys(masters, 1)), 0o600)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    with pytest.raises(KeystoreError, match=r"link\.toml is a symbolic link \(to .*real\.toml\)"):
        Keystore.from_file(link)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone.toml")
    with pytest.raises(KeystoreError, match="is a symbolic link"):
        Keystore.from_file(dangling)
    with pytest.raises(KeystoreError, match=r"nope\.toml"):
        Keystore.from_file(tmp_path / "nope.toml")


def test_a_named_pipe_or_a_directory_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "keys.toml"
    os.mkfifo(fifo, 0o600)  # nobody writes it: opening it for reading would block the start
    with pytest.raises(KeystoreError, match="is not a regular file \\(a named pipe\\)"):
        Keystore.from_file(fifo)
    folder = tmp_path / "keys.d"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeystoreError, match="a directory"):
        Keystore.from_file(folder)


def test_a_huge_key_file_is_refused_unread(tmp_path: Path) -> None:
    big = _write(tmp_path / "big.toml", "#" * 70_000 + "\n", 0o600)
    with pytest.raises(KeystoreError, match="70001 bytes"):
        Keystore.from_file(big)


def test_malformed_file_errors_never_quote_content(tmp_path: Path, masters: Masters) -> None:
    secret_hex = masters["mac"][1].hex()
    bad_toml = f'[mac]\ncurrent = 1\n1 = "{secret_hex}\n'  # unterminated string
    with pytest.raises(KeystoreError, match="not valid TOML") as info:
        Keystore.from_file(_write(tmp_path / "a.toml", bad_toml, 0o600))
    assert secret_hex not in str(info.value)
    bad_hex = _key_toml(masters, dict.fromkeys(masters, 1)).replace(
        secret_hex, secret_hex[:-1] + "Z"
    )
    with pytest.raises(KeystoreError, match=r"\[mac\] version 1 is not valid hex") as info:
        Keystore.from_file(_write(tmp_path / "b.toml", bad_hex, 0o600))
    assert secret_hex[:20] not in str(info.value)


def test_missing_purpose_current_version_and_short_key(tmp_path: Path, masters: Masters) -> None:
    only_two = {k: v for k, v in masters.items() if k != "card_b"}
    with pytest.raises(KeystoreError, match=r"missing table \[card_b\]"):
        Keystore.from_file(
            _write(tmp_path / "a.toml", _key_toml(only_two, dict.fromkeys(masters, 1)), 0o600)
        )
    with pytest.raises(KeystoreError, match="current version 7 is not defined"):
        Keystore.from_file(
            _write(
                tmp_path / "b.toml", _key_toml(masters, {"card_a": 7, "card_b": 1, "mac": 1}), 0o600
            )
        )
    short = dict(masters, mac={1: b"\x01" * 8})
    with pytest.raises(KeystoreError, match=r"must be 16\.\.64 bytes, got 8"):
        Keystore.from_file(
            _write(tmp_path / "c.toml", _key_toml(short, dict.fromkeys(masters, 1)), 0o600)
        )


def test_systemd_credentials_directory(
    tmp_path: Path, masters: Masters, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "carddaemon-keys", _key_toml(masters, dict.fromkeys(masters, 1)), 0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert Keystore.load().source.endswith("carddaemon-keys")
    cred = tmp_path / "carddaemon-keys"
    os.chown(cred, 0, 4242)  # systemd may grant the service user access by ACL
    os.chmod(cred, 0o440)
    assert Keystore.load().current_version(KeyPurpose.MAC) == 1
    os.chmod(cred, 0o462)
    with pytest.raises(KeystoreError, match="writable by others"):
        Keystore.load()
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(KeystoreError, match="CREDENTIALS_DIRECTORY"):
        Keystore.load()


def test_derivation_is_deterministic_and_separates_uid_group_type_version() -> None:
    ks = Keystore.generate()
    a = ks.card_key(UID, sector_group=1, key_type="A").reveal()
    assert a == ks.card_key(UID, sector_group=1, key_type="A").reveal()
    assert len(a) == 6
    others = {
        ks.card_key(bytes.fromhex("A1B2C3D5"), sector_group=1, key_type="A").reveal(),
        ks.card_key(UID, sector_group=0, key_type="A").reveal(),
        ks.card_key(UID, sector_group=1, key_type="B").reveal(),
    }
    assert a not in others
    assert len(others) == 3
    master = ks.master(KeyPurpose.CARD_A, 1).reveal()
    assert derive_card_key(master, UID, 1, "A") == a


def test_derived_key_in_dictionary_is_rejected() -> None:
    probe = Keystore.generate()
    weak = probe.card_key(UID, sector_group=1, key_type="A").reveal()
    masters = {p: {1: probe.master(p, 1).reveal()} for p in KeyPurpose}
    ks = Keystore(masters, dict.fromkeys(KeyPurpose, 1), weak_keys={weak})
    with pytest.raises(KeystoreError, match="well-known dictionary key") as info:
        ks.card_key(UID, sector_group=1, key_type="A")
    assert weak.hex() not in str(info.value).lower()
    ks.card_key(UID, sector_group=1, key_type="B")  # the other key is fine


def test_keys_never_in_repr_str_or_logs(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, masters: Masters
) -> None:
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path / "keys.toml", _key_toml(masters, dict.fromkeys(masters, 1)), 0o600)
    ks = Keystore.from_file(path)
    key = ks.card_key(UID, sector_group=1, key_type="A")
    assert isinstance(key, CardKey)
    shown = " ".join(
        [repr(ks), str(ks), repr(key), str(key), f"{key}", repr(ks.master(KeyPurpose.MAC, 1))]
    )
    assert "****" in repr(key)
    assert key.reveal().hex() not in shown.lower()
    for versions in masters.values():
        for raw in versions.values():
            assert raw.hex() not in shown.lower()
            assert raw.hex() not in caplog.text.lower()
    with pytest.raises(TypeError):
        pickle.dumps(key)


@pytest.mark.parametrize("version", [0, 256])
def test_key_versions_outside_one_byte_are_refused(
    tmp_path: Path, masters: Masters, version: int
) -> None:
    """A version is written on the card in one byte (MAC block byte 0, sector 3 GPB): 1..255."""
    secret = masters["mac"][1]
    bad = dict(masters, mac={version: secret})
    path = _write(
        tmp_path / "k.toml", _key_toml(bad, {"card_a": 1, "card_b": 1, "mac": version}), 0o600
    )
    with pytest.raises(KeystoreError, match=rf"\[mac\] version {version} not in 1\.\.255") as info:
        Keystore.from_file(path)
    assert secret.hex() not in str(info.value)
    assert str(path) in str(info.value)


def test_a_created_key_file_loads_and_is_never_overwritten(tmp_path: Path) -> None:
    path = Keystore.create_file(tmp_path / "keys.toml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = Keystore.load(path)
    assert {p: first.current_version(p) for p in KeyPurpose} == dict.fromkeys(KeyPurpose, 1)
    before = path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        Keystore.create_file(path)
    assert path.read_bytes() == before
    second = Keystore.load(Keystore.create_file(tmp_path / "other.toml"))
    uid = bytes.fromhex("04A7E3C2")
    a1 = first.card_key(uid, sector_group=1, key_type="A")
    a2 = second.card_key(uid, sector_group=1, key_type="A")
    assert a1 != a2  # fresh masters every time

"""Dumps: raw .mfd and JSON round trips, and malformed files rejected by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.errors import InvalidArgument
from sim import dumps
from sim.store import gen2_card, set_sector, seven_byte_card, transport_card
from tests.sim.helpers import KEY_A, KEY_B


@pytest.mark.parametrize("size", ["mini", "1k", "4k"])
def test_mfd_round_trip(tmp_path: Path, size: str) -> None:
    card = transport_card(size=size)  # type: ignore[arg-type]
    set_sector(card, 1, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("08778F"))
    path = tmp_path / "card.mfd"
    dumps.save(card, path)
    assert path.stat().st_size == {"mini": 320, "1k": 1024, "4k": 4096}[size]
    loaded = dumps.load(path)
    assert (loaded.memory, loaded.uid, loaded.size) == (card.memory, card.uid, card.size)
    assert loaded.block(7)[:6] == KEY_A  # the dump keeps the real keys


def test_mfd_seven_byte_uid_and_variant(tmp_path: Path) -> None:
    card = seven_byte_card()
    dumps.save_mfd(card, tmp_path / "c.bin")
    loaded = dumps.load(tmp_path / "c.bin", variant="gen2")
    assert loaded.uid == bytes.fromhex("04A1B2C3D4E5F6")
    assert loaded.variant == "gen2"


def test_json_round_trip(tmp_path: Path) -> None:
    card = gen2_card(size="4k")
    set_sector(card, 35, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("7F0788"))
    path = tmp_path / "card.json"
    dumps.save(card, path)
    doc = json.loads(path.read_text())
    assert doc["uid"] == "11223344"
    assert doc["variant"] == "gen2"
    assert doc["size"] == "4k"
    assert doc["keys"][35] == {"sector": 35, "a": KEY_A.hex().upper(), "b": KEY_B.hex().upper()}
    assert doc["blocks"][0] == "1122334444180200" + "6263646566676869".upper()
    loaded = dumps.load(path)
    assert (loaded.memory, loaded.variant) == (card.memory, "gen2")


def _doc() -> dict[str, object]:
    return dumps.to_json(transport_card())


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d.update(format="other"), "format", "carddaemon-sim-card"),
        (lambda d: d.update(version=9), "version", "unsupported"),
        (lambda d: d.update(size="2k"), "size", "2k"),
        (lambda d: d.update(variant="gen9"), "variant", "gen9"),
        (lambda d: d.update(uid="1122"), "uid", "4 or 7"),
        (lambda d: d.update(uid="55667788"), "uid", "block 0"),
        (lambda d: d["blocks"].pop(), "blocks", "63 blocks"),
        (lambda d: d["blocks"].__setitem__(7, "zz" * 16), r"blocks\[7\]", "not hexadecimal"),
        (lambda d: d["blocks"].__setitem__(5, "00" * 15), r"blocks\[5\]", "15 bytes"),
        (lambda d: d["keys"][3].update(b="000000000000"), r"keys\[3\]\.b", "sector 3"),
    ],
)
def test_json_bad_fields_named(tmp_path: Path, mutate: object, field: str, message: str) -> None:
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "card.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match=rf"card\.json: {field}.*{message}"):
        dumps.load(path)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "short.mfd").write_bytes(bytes(1000))
    with pytest.raises(InvalidArgument, match="1000 bytes is not a MIFARE Classic image"):
        dumps.load(tmp_path / "short.mfd")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"broken\.json: is not valid JSON"):
        dumps.load(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InvalidArgument, match="top level must be a JSON object"):
        dumps.load(tmp_path / "list.json")
    with pytest.raises(InvalidArgument, match="unknown dump suffix"):
        dumps.save(transport_card(), tmp_path / "card.txt")
    with pytest.raises(InvalidArgument, match="unknown dump suffix"):
        dumps.load(tmp_path / "card.txt")

"""Dump files: every format read and written, the format found from the content, and every bad
file refused naming the file and what was expected.

Fixtures (tests/mifare/data/): ``sim-purse.mfd`` and ``sim-purse.sim.json`` are made by the
simulator (tests/mifare/make_dump_fixtures.py, through sim/dumps.py); ``purse.eml``,
``purse.pm3.json``, ``purse.mct`` and ``purse-partial.mct`` were written by hand from the
formats' descriptions (Proxmark3 emulator memory and JSON dump, MIFARE Classic Tool text) for
the same card.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument
from daemon.mifare.dumpfile import CardImage, read_dump_bytes
from daemon.mifare.dumpformats import EXPECTED, FORMATS, parse, write
from daemon.mifare.dumptext import dump_document, format_folded, problems
from daemon.mifare.geometry import CardSize
from tests.mifare.make_dump_fixtures import purse_card

DATA = Path(__file__).resolve().parent / "data"
MFD = (DATA / "sim-purse.mfd").read_bytes()
FULL = {
    "sim-purse.mfd": "mfd",
    "sim-purse.sim.json": "carddaemon-json",
    "purse.eml": "eml",
    "purse.pm3.json": "proxmark-json",
    "purse.mct": "mct",
}


def _read(name: str) -> CardImage:
    path = DATA / name
    return parse(read_dump_bytes(path), str(path))


def test_the_simulator_fixture_is_the_card_it_describes() -> None:
    assert purse_card().memory == MFD  # regenerate with tests/mifare/make_dump_fixtures.py


@pytest.mark.parametrize(("name", "format"), FULL.items())
def test_every_format_reads_the_same_card(name: str, format: str) -> None:
    image = _read(name)
    assert image.format == format
    assert image.size is CardSize.CLASSIC_1K
    assert image.data == MFD
    assert image.unread == frozenset()
    assert image.uid == bytes.fromhex("5A3C9E01")
    assert all(image.keys_known(s) == (True, True) for s in range(16))
    assert image.notes == ()


@pytest.mark.parametrize("name", FULL)
@pytest.mark.parametrize("format", FORMATS)
def test_every_fixture_round_trips_through_every_format(name: str, format: str) -> None:
    image = _read(name)
    content, lost = write(image, format)
    assert lost == []  # a whole image with its keys loses nothing anywhere
    back = parse(content, "no-suffix")  # found from the content alone
    assert back.format == format
    assert (back.data, back.unread, back.uid_length) == (image.data, image.unread, 4)
    assert write(back, format)[0] == content  # stable: writing again gives the same bytes


def test_the_raw_and_eml_writers_give_the_fixture_bytes() -> None:
    image = _read("purse.pm3.json")
    assert write(image, "mfd")[0] == MFD
    assert write(image, "eml")[0] == (DATA / "purse.eml").read_bytes()
    assert write(image, "mct")[0] == (DATA / "purse.mct").read_bytes()


def test_a_partial_mct_dump_keeps_what_it_does_not_know() -> None:
    image = _read("purse-partial.mct")
    assert image.format == "mct"
    assert image.unread == frozenset(range(8, 64))  # sectors 2-15 left out
    assert image.keys_known(1) == (True, False)  # key B "------------"
    assert image.sectors_read() == [0, 1]
    for format in ("mct", "carddaemon-json", "proxmark-json"):
        back = parse(write(image, format)[0], "x")
        assert back.unread == image.unread, format
        assert back.keys_known(1) == (True, False), format
        assert back.data == image.data, format
    _, lost = write(image, "mfd")
    assert lost == [
        "mfd cannot mark blocks not read: 56 written as 00",
        "mfd cannot mark unknown keys: those of 1 sector(s) written as 00",
    ]
    text = format_folded(image.decode())
    assert "keys in the file: key A public: sample key, key B not in the file" in text
    assert "****** | 48 77 8B | 69 | ------" in text
    assert "Sectors 2-15: not read" in text
    assert "C0 C1" not in text  # nor a public key's bytes


def test_file_keys_are_keys_not_read_back_anomalies() -> None:
    """MCT and Proxmark dumps hold the keys: no "key A read back non-zero" for them."""
    for name in FULL:
        dump = _read(name).decode()
        assert problems(dump) == [], name
        assert "read back non-zero" not in format_folded(dump, show_all=True)
    from_card = CardImage.from_blocks(CardSize.CLASSIC_1K, _blocks(MFD))  # keys=None: a READ
    expected = []
    for s in range(16):
        expected.append(f"sector {s}: key A read back non-zero (a genuine chip returns zeros)")
        if s == 1:  # 48 77 8B: key B not readable, so a chip returns zeros for it
            expected.append("sector 1: key B read back non-zero although not readable")
    assert [str(p) for p in problems(from_card.decode())] == expected


def _blocks(raw: bytes) -> dict[int, bytes]:
    return {n: raw[n * 16 : n * 16 + 16] for n in range(len(raw) // 16)}


def test_a_dump_made_from_a_card_holds_no_key() -> None:
    read_back = bytearray(MFD)
    for t in range(3, 64, 4):  # a chip returns zeros for key A (and an unreadable key B)
        read_back[t * 16 : t * 16 + 6] = bytes(6)
    read_back[7 * 16 + 10 : 7 * 16 + 16] = bytes(6)
    blocks = {n: b for n, b in _blocks(bytes(read_back)).items() if n < 8}
    image = CardImage.from_blocks(CardSize.CLASSIC_1K, blocks)  # what DumpCard returned
    mct = write(image, "mct")[0].decode()
    assert mct.splitlines()[4] == "------------FF078069------------"
    assert "+Sector: 2" not in mct
    own = parse(write(image, "carddaemon-json")[0], "x")
    assert own.keys_known(0) == (False, False)
    assert problems(image.decode()) == []


def test_a_misnamed_file_is_read_by_its_content(tmp_path: Path) -> None:
    wrong = tmp_path / "card.json"
    shutil.copy(DATA / "purse.eml", wrong)
    image = parse(read_dump_bytes(wrong), str(wrong))
    assert image.format == "eml"
    assert image.notes == ("named *.json but holds a dump in eml format",)
    assert image.data == MFD


def test_a_forced_format_that_does_not_fit_says_why() -> None:
    with pytest.raises(InvalidArgument, match=r"purse\.eml: is not text|purse\.eml: .*JSON"):
        parse((DATA / "purse.eml").read_bytes(), "purse.eml", "proxmark-json")
    with pytest.raises(InvalidArgument, match="--format: 'nfc' is not one of mfd, eml"):
        parse(MFD, "x.mfd", "nfc")


BAD = {
    "truncated.mfd": (MFD[:1000], ["does not read as mfd", "1000 bytes", EXPECTED]),
    "short.eml": (
        b"".join(MFD[n * 16 : n * 16 + 16].hex().encode() + b"\n" for n in range(63)),
        ["63 block lines", "20, 64 or 256"],
    ),
    "badhex.eml": (
        (DATA / "purse.eml").read_bytes().replace(b"87d6", b"87zz", 1),
        ["line 5", "32 hex digits"],
    ),
    "notes.txt": (b"hello\n", ["does not read as mct", "+Sector", EXPECTED]),
    "random": (bytes(range(256)) * 3, ["is not a card dump", EXPECTED]),
    "ultra.json": (
        b'{"Created": "proxmark3", "FileType": "mfu", "blocks": {"0": "00"}}',
        ["FileType", "'mfu' is not a MIFARE Classic dump"],
    ),
    "other.json": (b'{"hello": 1}', ["neither a Proxmark3 dump", "nor a carddaemon dump"]),
    "broken.json": (b'{"format": "carddaemon-dump", ', ["not valid JSON (line 1)"]),
    "oneblock.mct": (
        b"+Sector: 0\n" + MFD[:16].hex().encode() + b"\n",
        ["sector 0", "1 blocks", "has 4"],
    ),
    "headless.mct": (b"00" * 16 + b"\n+Sector: 0\n", ["line 1", "+Sector: N"]),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_dump_names_the_file_and_what_is_wrong(name: str) -> None:
    content, shown = BAD[name]
    with pytest.raises(InvalidArgument) as err:
        parse(content, name)
    assert str(err.value).startswith(f"INVALID_ARGUMENT: {name}"), str(err.value)
    for text in shown:
        assert text in str(err.value), f"{text!r} not in {err.value}"


def test_device_files_pipes_and_huge_files_are_refused_unread(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="/dev/zero: is a device file, not a dump file"):
        read_dump_bytes(Path("/dev/zero"))
    fifo = tmp_path / "card.mfd"
    os.mkfifo(fifo)  # nobody writes: a blocking open would wait forever
    with pytest.raises(InvalidArgument, match="is a named pipe, not a dump file"):
        read_dump_bytes(fifo)
    with pytest.raises(InvalidArgument, match="is a directory"):
        read_dump_bytes(tmp_path)
    huge = tmp_path / "huge.bin"
    huge.write_bytes(bytes(300_000))
    with pytest.raises(InvalidArgument, match="300000 bytes is larger than any card dump"):
        read_dump_bytes(huge)
    with pytest.raises(InvalidArgument, match=r"nope\.mfd: cannot open \(No such file"):
        read_dump_bytes(tmp_path / "nope.mfd")


def test_factory_sectors_fold_unless_all() -> None:
    dump = _read("sim-purse.mfd").decode()
    folded = format_folded(dump)
    full = format_folded(dump, show_all=True)
    assert len(full.splitlines()) > 150
    assert len(folded.splitlines()) < 40
    assert (
        "Sectors 2-15: factory state: transport access FF 07 80, GPB 69, transport keys" in folded
    )
    assert "value block: 1234567 (adr 4)" in folded
    assert "text 'Member 0001'" in folded
    assert "(14 alike sector(s) folded; --all shows every block)" in folded
    assert "Sector 15 (blocks 60-63)" in full


def test_a_broken_block_0_is_a_problem() -> None:
    raw = bytearray(MFD)
    raw[4] ^= 0xFF  # BCC
    dump = parse(bytes(raw), "x.mfd").decode()
    assert [p.where for p in problems(dump)] == ["block 0"]
    assert "BCC_MISMATCH" in str(problems(dump)[0])


def test_a_torn_value_block_and_a_dead_sector_are_problems() -> None:
    raw = bytearray(MFD)
    raw[5 * 16] ^= 0x01  # value copy 1 differs
    raw[11 * 16 + 6 : 11 * 16 + 9] = bytes(3)  # sector 2: malformed access bits
    found = [str(p) for p in problems(parse(bytes(raw), "x.mfd").decode())]
    assert len(found) == 2, found
    assert found[0].startswith("block 5: NOT a valid value block")
    assert found[1].startswith("sector 2: ")
    assert "dead sector" in found[1]


def test_the_json_document_names_every_sector_and_never_a_key() -> None:
    doc = dump_document(_read("purse-partial.mct").decode(), file="p.mct")
    assert doc["file"] == "p.mct"
    assert (doc["card"], doc["uid"], doc["problems"]) == ("MIFARE Classic 1K", "5A3C9E01", [])
    assert [f["code"] for f in doc["block0"]["findings"]] == ["SAK_HIGH_BIT"]
    assert len(doc["sectors"]) == 16
    one = doc["sectors"][1]
    assert (one["trailer"]["key_a"], one["trailer"]["key_b"]) == (
        "public: sample key",
        "not in the file",
    )
    assert one["blocks"][3]["hex"] == "******|48778B|69|------"
    assert one["trailer"]["rules"][0]["permissions"]["incr"] == "B"
    assert doc["sectors"][9]["folded_as"] == "not read"
    assert doc["sectors"][9]["blocks"][0]["hex"] is None
    assert "C0C1C2C3C4C5" not in json.dumps(doc)


_SAMPLES = [(DATA / name).read_bytes() for name in (*FULL, "purse-partial.mct")]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(range(len(_SAMPLES))),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3)), max_size=4),
    st.sampled_from(["x.mfd", "x.eml", "x.json", "x.mct", "x", "x.txt"]),
)
def test_any_damaged_dump_reads_or_is_refused_naming_the_file(
    sample: int, edits: list[tuple[int, bytes]], name: str
) -> None:
    raw = bytearray(_SAMPLES[sample])
    for at, new in edits:
        at %= len(raw)
        raw[at : at + len(new)] = new
    refused: InvalidArgument | None = None
    try:
        parse(bytes(raw), name).decode().format_text()  # whatever reads, decodes
    except InvalidArgument as exc:
        refused = exc
    assert refused is None or refused.field.startswith(name), str(refused)

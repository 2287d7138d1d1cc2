"""Golden exact-bytes tests for the PC/SC Part 3 storage-card builders, and their bad input."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidArgument
from daemon.readers import apdu
from daemon.readers.apdu import CommandKind, KeyType
from daemon.readers.connection import Response

KEY = bytes.fromhex("A1B2C3D4E5F6")


def test_golden_bytes_of_every_builder() -> None:
    built = [
        apdu.get_uid(),
        apdu.load_key(KEY, 0),
        apdu.load_key(KEY, 1),
        apdu.load_key(KEY, 0, structure=0x20),
        apdu.general_authenticate(8, KeyType.A, 0),
        apdu.general_authenticate(63, KeyType.B, 1),
        apdu.general_authenticate(255, 0x61, 0),
        apdu.authenticate_obsolete(8, KeyType.A, 0),
        apdu.authenticate_obsolete(4, KeyType.B, 1),
        apdu.read_binary(4),
        apdu.read_binary(4, 0x30),
        apdu.update_binary(5, bytes(range(16))),
    ]
    assert [apdu.to_hex(c.apdu) for c in built] == [
        "FF CA 00 00 00",  # GET DATA UID
        "FF 82 00 00 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY volatile slot 0
        "FF 82 00 01 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY volatile slot 1
        "FF 82 20 00 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY non-volatile slot 0 (OMNIKEY)
        "FF 86 00 00 05 01 00 08 60 00",  # GENERAL AUTHENTICATE block 8 key A slot 0
        "FF 86 00 00 05 01 00 3F 61 01",  # GENERAL AUTHENTICATE block 63 key B slot 1
        "FF 86 00 00 05 01 00 FF 61 00",  # GENERAL AUTHENTICATE block 255 (4K) key B slot 0
        "FF 88 00 08 60 00",  # AUTHENTICATE (obsolete) block 8 key A slot 0
        "FF 88 00 04 61 01",  # AUTHENTICATE (obsolete) block 4 key B slot 1
        "FF B0 00 04 10",  # READ BINARY block 4
        "FF B0 00 04 30",  # READ BINARY blocks 4..6 (multi-block)
        "FF D6 00 05 10 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F",  # UPDATE BINARY block 5
    ]


def test_descriptions_name_command_and_arguments() -> None:
    assert apdu.general_authenticate(8, KeyType.A, 0).describe() == (
        "GENERAL AUTHENTICATE block 8 key A slot 0"
    )
    assert apdu.read_binary(4, 0x30).describe() == "READ BINARY blocks 4..6"
    assert apdu.update_binary(7, bytes(16)).describe() == "UPDATE BINARY block 7"
    assert apdu.get_uid().describe() == "GET DATA UID"
    assert apdu.load_key(KEY, 1).describe() == "LOAD KEY structure 0x00 slot 1"


def test_kinds_and_mutating_flag() -> None:
    assert apdu.update_binary(4, bytes(16)).mutating
    assert apdu.update_binary(4, bytes(16)).kind is CommandKind.WRITE
    for cmd in (apdu.get_uid(), apdu.load_key(KEY, 0), apdu.read_binary(4)):
        assert not cmd.mutating
    assert apdu.general_authenticate(4, KeyType.A, 0).block == 4


def test_load_key_bytes_never_shown() -> None:
    cmd = apdu.load_key(KEY, 0)
    assert cmd.masked_hex() == "FF 82 00 00 06 ** ** ** ** ** **"
    for text in (repr(cmd), cmd.describe(), cmd.masked_hex(), str(cmd)):
        assert "A1" not in text
        assert "a1b2" not in text.lower()


def test_trailer_write_masks_keys_but_keeps_access_bits() -> None:
    trailer = (
        bytes.fromhex("A1B2C3D4E5F6") + bytes.fromhex("FF078069") + bytes.fromhex("112233445566")
    )
    cmd = apdu.update_binary(7, trailer)
    assert cmd.masked_hex() == (
        "FF D6 00 07 10 ** ** ** ** ** ** FF 07 80 69 ** ** ** ** ** **"  # UPDATE BINARY trailer 7
    )
    assert "A1" not in repr(cmd)
    # a data block is shown in full
    assert apdu.update_binary(6, trailer).masked_hex().endswith("11 22 33 44 55 66")


def test_trailer_read_declares_key_ranges_of_its_response() -> None:
    assert apdu.read_binary(3).response_secret == ((0, 6), (10, 16))
    assert apdu.read_binary(4).response_secret == ()
    assert apdu.read_binary(1, 0x30).response_secret == ((32, 38), (42, 48))


@pytest.mark.parametrize(
    ("block", "trailer"),
    [
        (0, False),
        (3, True),
        (7, True),
        (63, True),
        (127, True),
        (128, False),
        (143, True),
        (255, True),
    ],
)
def test_is_trailer_for_1k_and_4k_geometry(block: int, trailer: bool) -> None:
    assert apdu.is_trailer(block) is trailer


def test_mask_hex_without_secret_is_plain_hex() -> None:
    assert apdu.mask_hex(b"\x01\xab", ()) == "01 AB"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: apdu.load_key(b"\x00" * 5, 0), "key"),
        (lambda: apdu.load_key("FFFFFFFFFFFF", 0), "key"),  # type: ignore[arg-type]
        (lambda: apdu.load_key(KEY, 256), "slot"),
        (lambda: apdu.load_key(KEY, -1), "slot"),
        (lambda: apdu.load_key(KEY, 0, structure=0x100), "key_structure"),
        (lambda: apdu.general_authenticate(256, KeyType.A, 0), "block"),
        (lambda: apdu.general_authenticate(-1, KeyType.A, 0), "block"),
        (lambda: apdu.general_authenticate(4, 0x62, 0), "key_type"),
        (lambda: apdu.general_authenticate(4, KeyType.A, 300), "slot"),
        (lambda: apdu.general_authenticate(True, KeyType.A, 0), "block"),
        (lambda: apdu.general_authenticate("4", KeyType.A, 0), "block"),  # type: ignore[arg-type]
        (lambda: apdu.authenticate_obsolete(4, 0x00, 0), "key_type"),
        (lambda: apdu.read_binary(4, 15), "length"),
        (lambda: apdu.read_binary(4, 24), "length"),
        (lambda: apdu.read_binary(4, 64), "length"),
        (lambda: apdu.read_binary(254, 48), "block"),
        (lambda: apdu.update_binary(4, bytes(15)), "data"),
        (lambda: apdu.update_binary(4, b""), "data"),
        (lambda: apdu.update_binary(4, bytes(64)), "data"),
        (lambda: apdu.update_binary(4, "x" * 16), "data"),  # type: ignore[arg-type]
        (lambda: apdu.update_binary(255, bytes(32)), "block"),
    ],
)
def test_bad_arguments_raise_typed_error_naming_the_field(build: object, field: str) -> None:
    assert callable(build)
    with pytest.raises(InvalidArgument) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_key_bytes_never_in_validation_errors() -> None:
    with pytest.raises(InvalidArgument) as info:
        apdu.load_key(bytes.fromhex("A1B2C3D4E5"), 0)
    assert "A1" not in str(info.value).upper().replace("INVALID_ARGUMENT", "")


def test_response_repr_shows_no_data_bytes() -> None:
    key_b = bytes.fromhex("B0B1B2B3B4B5")
    trailer = bytes(6) + bytes.fromhex("FF078069") + key_b  # key B readable: read back in clear
    response = Response(trailer, 0x9000)
    assert repr(response) == "Response(16 data bytes, SW 90 00)"
    assert "B0" not in f"{response!r} {response}"

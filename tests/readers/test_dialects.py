"""Reader dialects: exact bytes per family, detection from names/firmware, config override."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from daemon.errors import ConfigError, InvalidArgument, ReaderBadResponse, ReaderUnsupported
from daemon.readers import dialects
from daemon.readers.apdu import Command, KeyType, to_hex
from daemon.readers.connection import Response
from daemon.readers.dialects import (
    ACR122U,
    ACR1252U,
    GENERIC,
    IDENTIV,
    OMNIKEY,
    Dialect,
    ValueOp,
)
from daemon.readers.status import ACS_TABLE, PCSC_TABLE

KEY = bytes.fromhex("A1B2C3D4E5F6")


def hexes(*commands: object) -> list[str]:
    out = []
    for c in commands:
        assert hasattr(c, "apdu")
        out.append(to_hex(c.apdu))
    return out


def test_acs_acr1252u_commands() -> None:
    d = ACR1252U
    assert hexes(
        d.load_key(KEY, 0),
        d.load_key(KEY, 1),
        d.authenticate(8, KeyType.A, 0),
        d.authenticate(9, KeyType.B, 1),
        d.read(4),
        d.read(4, 3),
        d.read(8, 2),
        d.write(4, bytes(16)),
        d.value_read(5),
        d.value_store(5, 100),
        d.value_store(5, -2),
        d.value_change(ValueOp.INCREMENT, 5, 0x0102),
        d.value_change(ValueOp.DECREMENT, 5, 1),
        d.value_restore(5, 6),
        d.firmware(),
        d.feedback_command(True),
        d.feedback_command(False),
    ) == [
        "FF 82 00 00 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY volatile slot 0
        "FF 82 00 01 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY volatile slot 1
        "FF 86 00 00 05 01 00 08 60 00",  # GENERAL AUTHENTICATE block 8 key A slot 0
        "FF 86 00 00 05 01 00 09 61 01",  # GENERAL AUTHENTICATE block 9 key B slot 1
        "FF B0 00 04 10",  # READ BINARY block 4
        "FF B0 00 04 30",  # READ BINARY blocks 4..6 (multiple-block mode)
        "FF B0 00 08 20",  # READ BINARY blocks 8..9
        "FF D6 00 04 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",  # UPDATE BINARY block 4
        "FF B1 00 05 04",  # READ VALUE block 5
        "FF D7 00 05 05 00 00 00 00 64",  # STORE VALUE block 5 = 100 (MSB first)
        "FF D7 00 05 05 00 FF FF FF FE",  # STORE VALUE block 5 = -2
        "FF D7 00 05 05 01 00 00 01 02",  # INCREMENT block 5 by 258 (+TRANSFER)
        "FF D7 00 05 05 02 00 00 00 01",  # DECREMENT block 5 by 1 (+TRANSFER)
        "FF D7 00 05 02 03 06",  # RESTORE block 5 + TRANSFER to block 6
        "FF 00 48 00 00",  # GET FIRMWARE
        "FF 00 40 A0 04 01 01 01 01",  # LED/BUZZER success: green blink, short beep
        "FF 00 40 50 04 02 02 02 01",  # LED/BUZZER failure: red blinks, two beeps
    ]


def test_acs_acr122u_reads_one_block_at_a_time() -> None:
    assert to_hex(ACR122U.read(4).apdu) == "FF B0 00 04 10"  # READ BINARY block 4
    with pytest.raises(InvalidArgument, match="count"):
        ACR122U.read(4, 2)
    assert ACR122U.status_table is ACS_TABLE


def test_omnikey_commands() -> None:
    d = OMNIKEY
    assert hexes(
        d.load_key(KEY, 0),
        d.authenticate(8, KeyType.A, 0),
        d.read(8),
        d.value_change(ValueOp.INCREMENT, 5, 0x0102),
        d.value_change(ValueOp.DECREMENT, 5, 100),
    ) == [
        "FF 82 20 00 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY structure 20 slot 0
        "FF 86 00 00 05 01 00 08 60 00",  # GENERAL AUTHENTICATE block 8 key A slot 0
        "FF B0 00 08 10",  # READ BINARY block 8
        "FF D4 00 05 04 02 01 00 00",  # INCREMENT block 5 by 258 (LSB first)
        "FF D8 00 05 04 64 00 00 00",  # DECREMENT block 5 by 100 (LSB first)
    ]
    assert d.native_value_ops() == {ValueOp.INCREMENT, ValueOp.DECREMENT}
    builds: tuple[Callable[[], Command], ...] = (
        lambda: d.value_read(5),
        lambda: d.value_store(5, 1),
        lambda: d.firmware(),
    )
    for build in builds:
        with pytest.raises(ReaderUnsupported, match="OMNIKEY"):
            build()
    with pytest.raises(ReaderUnsupported, match="value restore"):
        d.value_restore(5, 6)
    with pytest.raises(ReaderUnsupported, match="LED"):
        d.feedback_command(True)
    assert d.status_table is PCSC_TABLE


def test_identiv_loads_key_by_type_and_authenticates_with_key_number_01() -> None:
    d = IDENTIV
    assert hexes(
        d.load_key(KEY, 0, KeyType.A),
        d.load_key(KEY, 0, KeyType.B),
        d.authenticate(8, KeyType.A, 0),
        d.authenticate(8, KeyType.B, 0),
    ) == [
        "FF 82 00 60 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY P2 = key type A
        "FF 82 00 61 06 A1 B2 C3 D4 E5 F6",  # LOAD KEY P2 = key type B
        "FF 86 00 00 05 01 00 08 60 01",  # GENERAL AUTHENTICATE block 8 key A (key number 01)
        "FF 86 00 00 05 01 00 08 61 01",  # GENERAL AUTHENTICATE block 8 key B (key number 01)
    ]
    # FF B1 means READ SECTOR on Identiv: never sent as a value read
    assert d.native_value_ops() == frozenset()
    with pytest.raises(ReaderUnsupported, match="value read"):
        d.value_read(5)
    with pytest.raises(InvalidArgument, match="key_type"):
        d.load_key(KEY, 0, 0x62)


def test_generic_has_only_part3() -> None:
    assert GENERIC.native_value_ops() == frozenset()
    assert to_hex(GENERIC.load_key(KEY, 1).apdu) == "FF 82 00 01 06 A1 B2 C3 D4 E5 F6"
    with pytest.raises(ReaderUnsupported, match="value increment"):
        GENERIC.value_change(ValueOp.INCREMENT, 4, 1)
    with pytest.raises(ReaderUnsupported, match="firmware"):
        GENERIC.firmware()


def test_obsolete_authenticate_form() -> None:
    d = Dialect("old", "old reader", 0x00, (0, 1), PCSC_TABLE, obsolete_authenticate=True)
    assert to_hex(d.authenticate(8, KeyType.B, 1).apdu) == "FF 88 00 08 61 01"  # AUTHENTICATE


@pytest.mark.parametrize(
    ("dialect", "slot"), [(ACR1252U, 2), (ACR122U, 0x20), (OMNIKEY, 2), (IDENTIV, 1)]
)
def test_unusable_key_slot_is_refused_before_sending(dialect: Dialect, slot: int) -> None:
    with pytest.raises(ReaderUnsupported, match=f"key slot {slot} is not usable"):
        dialect.load_key(KEY, slot)
    with pytest.raises(ReaderUnsupported, match=f"key slot {slot}"):
        dialect.authenticate(4, KeyType.A, slot)


def test_value_argument_validation() -> None:
    with pytest.raises(InvalidArgument, match="amount"):
        ACR1252U.value_change(ValueOp.INCREMENT, 5, -1)
    with pytest.raises(InvalidArgument, match="amount"):
        ACR1252U.value_change(ValueOp.DECREMENT, 5, 2**31)
    with pytest.raises(InvalidArgument, match="amount"):
        ACR1252U.value_change(ValueOp.DECREMENT, 5, True)
    with pytest.raises(InvalidArgument, match="value"):
        ACR1252U.value_store(5, 2**31)
    with pytest.raises(InvalidArgument, match="op"):
        ACR1252U.value_change(ValueOp.STORE, 5, 1)
    with pytest.raises(InvalidArgument, match="block"):
        ACR1252U.value_read(256)
    with pytest.raises(InvalidArgument, match="target"):
        ACR1252U.value_restore(5, 256)
    with pytest.raises(InvalidArgument, match="spans a trailer"):
        ACR1252U.read(2, 2)
    with pytest.raises(InvalidArgument, match="count"):
        ACR1252U.read(4, 4)


def test_parse_value_and_firmware() -> None:
    cmd = ACR1252U.value_read(5)
    assert ACR1252U.parse_value(Response(bytes.fromhex("FFFFFFFE"), 0x9000), cmd, "r") == -2
    assert ACR1252U.parse_value(Response(bytes.fromhex("00000064"), 0x9000), cmd, "r") == 100
    with pytest.raises(ReaderBadResponse, match=r"'r': READ VALUE block 5: expected 4 value bytes"):
        ACR1252U.parse_value(Response(b"\x00\x00", 0x9000), cmd, "r")
    fw = ACR122U.firmware()
    # ACR122U: bare ASCII, no SW; the transport splits the last two characters off as "SW"
    assert ACR122U.parse_firmware(Response.from_bytes(b"ACR122U201"), fw, "r") == "ACR122U201"
    assert (
        ACR1252U.parse_firmware(Response(b"ACR1252U_V202.2", 0x9000), fw, "r") == "ACR1252U_V202.2"
    )
    for garbage in (
        Response(b"", 0x9000),
        Response(b"\x00\x01\x02", 0x9000),
        Response(b"A" * 70, 0x9000),
    ):
        with pytest.raises(ReaderBadResponse, match="GET FIRMWARE"):
            ACR122U.parse_firmware(garbage, fw, "r")


def test_feedback_answer_is_90_xx() -> None:
    assert ACR122U.feedback_accepted(Response(b"", 0x9002))
    assert not ACR122U.feedback_accepted(Response(b"", 0x6300))


@pytest.mark.parametrize(
    ("reader_name", "expected"),
    [
        ("ACS ACR122U PICC Interface 00 00", ACR122U),
        ("ACS ACR1252 1S CL Reader PICC 00 00", ACR1252U),
        ("ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00", ACR1252U),
        ("ACS ACR1255U-J1 PICC Interface 00 00", ACR1252U),
        ("HID Global OMNIKEY 5422CL Smartcard Reader 00 00", OMNIKEY),
        ("HID Global OMNIKEY 5022 Smart Card Reader 00 00", OMNIKEY),
        ("OMNIKEY CardMan 5x21-CL 0", OMNIKEY),
        ("Identiv uTrust 3720 Contactless Reader 0", IDENTIV),
        ("Identive CLOUD 3700 F Contactless Reader 0", IDENTIV),
        ("Virtual PCD 00 00", GENERIC),
        ("", GENERIC),
    ],
)
def test_detection_from_reader_name(reader_name: str, expected: Dialect) -> None:
    assert dialects.detect_dialect(reader_name) is expected


def test_detection_from_firmware_when_name_says_nothing() -> None:
    assert dialects.detect_dialect("Virtual PCD 00 00", "ACR122U201") is ACR122U
    assert dialects.detect_dialect("Virtual PCD 00 00", "ACR1252U_V202.2") is ACR1252U
    assert dialects.detect_dialect("Virtual PCD 00 00", "XYZ 1.0") is GENERIC


def test_config_override_wins_over_detection() -> None:
    name = "Virtual PCD 00 00"
    assert dialects.select_dialect(name, override="acr1252u") is ACR1252U
    assert dialects.select_dialect(name, override=" OMNIKEY ") is OMNIKEY
    assert dialects.select_dialect(name, override="auto") is GENERIC
    assert dialects.select_dialect("ACS ACR122U PICC Interface 00 00") is ACR122U
    assert (
        dialects.select_dialect("ACS ACR122U PICC Interface 00 00", override="generic") is GENERIC
    )


def test_unknown_dialect_name_names_the_config_key() -> None:
    with pytest.raises(ConfigError) as info:
        dialects.select_dialect(
            "Virtual PCD 00 00", override="acr999", config_key="readers.front.dialect"
        )
    assert info.value.key == "readers.front.dialect"
    assert "acr999" in str(info.value)
    assert "acr1252u" in str(info.value)


def test_every_dialect_is_registered_by_name() -> None:
    assert set(dialects.DIALECTS) == {"acr122u", "acr1252u", "omnikey", "identiv", "generic"}
    assert repr(ACR122U) == "Dialect('acr122u')"

"""Status-word mapping: every SW of the reference (mifare.md §1.4), per command kind and dialect."""

from __future__ import annotations

import pytest

from daemon.errors import (
    BlockNotFound,
    CardAccessDenied,
    CardAuthFailed,
    CardCommandFailed,
    CardDaemonError,
    CardDataCorrupt,
    ReaderBadResponse,
    ReaderUnsupported,
)
from daemon.readers import apdu, status
from daemon.readers.apdu import KeyType
from daemon.readers.connection import Response

READER = "ACS ACR1252 1S CL Reader PICC 00 00"
READ = apdu.read_binary(8)
WRITE = apdu.update_binary(8, bytes(16))
AUTH = apdu.general_authenticate(8, KeyType.A, 0)
LOAD = apdu.load_key(bytes.fromhex("A1B2C3D4E5F6"), 0)

# SW, error after READ/UPDATE, error after GENERAL AUTHENTICATE/LOAD KEY, ambiguous for writes
SW_TABLE: list[tuple[int, type[CardDaemonError], type[CardDaemonError], bool]] = [
    (0x6282, ReaderBadResponse, ReaderBadResponse, False),  # end of data before Le
    (0x6300, CardCommandFailed, CardCommandFailed, True),  # no information given / ACS catch-all
    (0x6382, ReaderUnsupported, ReaderUnsupported, False),  # card key not supported
    (0x6383, ReaderUnsupported, ReaderUnsupported, False),  # reader key not supported
    (0x6384, ReaderUnsupported, ReaderUnsupported, False),  # plain transmission not supported
    (0x6385, ReaderUnsupported, ReaderUnsupported, False),  # secured transmission not supported
    (0x6386, ReaderUnsupported, ReaderUnsupported, False),  # volatile memory not available
    (0x6387, ReaderUnsupported, ReaderUnsupported, False),  # non-volatile memory not available
    (0x6388, ReaderUnsupported, ReaderUnsupported, False),  # key number not valid
    (0x6389, ReaderUnsupported, ReaderUnsupported, False),  # key length not correct
    (0x6581, BlockNotFound, BlockNotFound, True),  # memory failure / no such block
    (0x6700, ReaderUnsupported, ReaderUnsupported, False),  # wrong length
    (0x6981, ReaderUnsupported, ReaderUnsupported, False),  # command incompatible
    (0x6982, CardAccessDenied, CardAuthFailed, False),  # security status not satisfied
    (0x6983, CardAuthFailed, CardAuthFailed, False),  # authentication cannot be done
    (0x6984, ReaderUnsupported, ReaderUnsupported, False),  # reference key not usable
    (0x6986, CardAccessDenied, ReaderUnsupported, False),  # not allowed / key type not known
    (0x6988, ReaderUnsupported, ReaderUnsupported, False),  # key number not valid
    (0x6A81, ReaderUnsupported, ReaderUnsupported, False),  # function not supported
    (0x6A82, BlockNotFound, BlockNotFound, False),  # addressed block does not exist
    (0x6A80, ReaderUnsupported, ReaderUnsupported, False),  # incorrect data field
    (0x6B00, ReaderUnsupported, ReaderUnsupported, False),  # wrong P1/P2
    (0x6D00, ReaderUnsupported, ReaderUnsupported, False),  # INS not supported (e.g. FF D7)
    (0x6E00, ReaderUnsupported, ReaderUnsupported, False),  # CLA not supported
    (0x6C10, ReaderUnsupported, ReaderUnsupported, False),  # wrong Le, 16 wanted
    (0x6110, ReaderBadResponse, ReaderBadResponse, False),  # 16 bytes pending, not fetched
]


@pytest.mark.parametrize("table", [status.PCSC_TABLE, status.ACS_TABLE], ids=["pcsc", "acs"])
@pytest.mark.parametrize(("sw", "data_error", "key_error", "ambiguous"), SW_TABLE)
def test_every_reference_sw_maps_to_its_typed_error(
    table: status.StatusTable,
    sw: int,
    data_error: type[CardDaemonError],
    key_error: type[CardDaemonError],
    ambiguous: bool,
) -> None:
    for command, expected in ((READ, data_error), (WRITE, data_error), (AUTH, key_error)):
        error, rule = status.error_for(Response(b"", sw), command, READER, table)
        assert type(error) is expected, (command.describe(), hex(sw))
        assert rule is not None
        assert rule.ambiguous is ambiguous
        text = str(error)
        assert READER in text
        assert command.describe() in text
        assert f"SW {sw >> 8:02X} {sw & 0xFF:02X}" in text
    error, _ = status.error_for(Response(b"", sw), LOAD, READER, table)
    assert type(error) is key_error


def test_acs_63_00_is_ambiguous_and_says_so() -> None:
    error, rule = status.error_for(Response(b"", 0x6300), WRITE, READER, status.ACS_TABLE)
    assert isinstance(error, CardCommandFailed)
    assert rule is not None
    assert rule.ambiguous
    assert "wrong key, card gone or not a value block" in str(error)
    assert "UPDATE BINARY block 8" in str(error)
    generic, _ = status.error_for(Response(b"", 0x6300), WRITE, "Virtual PCD 00 00")
    assert "no information given" in str(generic)


@pytest.mark.parametrize("sw", [0x6301, 0x6327, 0x637F])
def test_pn532_status_words_known_only_on_acs(sw: int) -> None:
    acs, rule = status.error_for(Response(b"", sw), AUTH, READER, status.ACS_TABLE)
    assert isinstance(acs, CardCommandFailed)
    assert rule is not None
    assert rule.ambiguous
    other, rule = status.error_for(Response(b"", sw), AUTH, "HID OMNIKEY", status.PCSC_TABLE)
    assert isinstance(other, ReaderBadResponse)
    assert rule is None


@pytest.mark.parametrize("sw", [0x6F00, 0x9001, 0x6400, 0x0000, 0xFFFF])
def test_unknown_sw_is_bad_response_naming_reader_command_and_sw(sw: int) -> None:
    with pytest.raises(ReaderBadResponse) as info:
        status.check(Response(b"", sw), READ, READER, status.ACS_TABLE)
    text = str(info.value)
    assert READER in text
    assert "READ BINARY block 8" in text
    assert f"unknown status word {sw >> 8:02X} {sw & 0xFF:02X}" in text


def test_success_passes_response_through() -> None:
    response = Response(bytes(16), 0x9000)
    assert status.check(response, READ, READER) is response


def test_check_raises_mapped_error() -> None:
    with pytest.raises(CardAuthFailed, match="GENERAL AUTHENTICATE block 8 key A slot 0"):
        status.check(Response(b"", 0x6982), AUTH, READER)


def test_load_key_error_never_contains_key_bytes() -> None:
    error, _ = status.error_for(Response(b"", 0x6986), LOAD, READER)
    assert "A1" not in str(error).replace(READER, "")
    assert "slot 0" in str(error)


def test_69_81_on_a_value_command_means_not_a_value_block() -> None:
    from daemon.readers.dialects import OMNIKEY, ValueOp

    inc = OMNIKEY.value_change(ValueOp.INCREMENT, 5, 1)
    error, rule = status.error_for(Response(b"", 0x6981), inc, READER)
    assert isinstance(error, CardDataCorrupt)
    assert rule is not None
    assert not rule.ambiguous  # the card refused before TRANSFER: unchanged
    assert "not in value-block format" in str(error)
    assert "INCREMENT VALUE block 5 by 1" in str(error)


def test_describe_sw() -> None:
    assert status.describe_sw(0x6A82) == "6A 82"

"""StorageCard at its boundary: crafted (garbage) reader answers and transport failures.

The connection here is a test-only stub returning crafted bytes; it checks our parser and
error mapping, never card behaviour (that is tested over the simulator).
"""

from __future__ import annotations

import logging

import pytest

from daemon.errors import (
    BlockNotFound,
    CardAbsent,
    CardAccessDenied,
    CardAuthFailed,
    CardCommandFailed,
    CardRemoved,
    InvalidArgument,
    PcscUnavailable,
    ReaderBadResponse,
    ReaderUnavailable,
    ReaderUnsupported,
    ResponseLost,
    WriteUnconfirmed,
)
from daemon.readers.apdu import KeyType
from daemon.readers.connection import CardConnection
from daemon.readers.dialects import ACR122U, ACR1252U, GENERIC, IDENTIV, OMNIKEY
from daemon.readers.storage import StorageCard
from tests.readers.scripted import ScriptedConnection

ACS_NAME = "ACS ACR1252 1S CL Reader PICC 00 00"
OK = bytes.fromhex("9000")
BLOCK = bytes(range(16))


def card(*answers: bytes | BaseException, name: str = ACS_NAME) -> StorageCard:
    return StorageCard(ScriptedConnection(answers, name=name))


def sent(c: StorageCard) -> list[str]:
    conn = c._conn
    assert isinstance(conn, ScriptedConnection)
    return conn.sent_hex()


def test_stub_is_a_card_connection() -> None:
    assert isinstance(ScriptedConnection([]), CardConnection)


def test_dialect_detected_from_reader_name_and_lifecycle() -> None:
    conn = ScriptedConnection([], name="HID Global OMNIKEY 5422CL Smartcard Reader 00 00")
    with StorageCard(conn) as c:
        assert c.dialect is OMNIKEY
        assert c.atr.startswith(b"\x3b\x8f")
        c.reconnect(reset=True)
    c.close()
    assert conn.closed == 1
    assert conn.reconnects == [True]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (bytes.fromhex("0102039000"), "a UID is 4, 7 or 10 bytes, got 3"),
        (bytes.fromhex("9000"), "a UID is 4, 7 or 10 bytes, got 0"),
        (bytes(11) + OK, "got 11"),
        (b"\x90", "unparseable answer"),
        (b"", "unparseable answer"),
        (bytes.fromhex("6F00"), "unknown status word 6F 00"),
    ],
)
def test_garbage_uid_answers_name_reader_and_command(answer: bytes, why: str) -> None:
    c = card(answer)
    with pytest.raises(ReaderBadResponse) as info:
        c.uid()
    assert ACS_NAME in str(info.value)
    assert "GET DATA UID" in str(info.value)
    assert why in str(info.value)


def test_uid_ok() -> None:
    c = card(bytes.fromhex("04A1B2C3D4E5F6") + OK)
    assert c.uid() == bytes.fromhex("04A1B2C3D4E5F6")
    assert sent(c) == ["FF CA 00 00 00"]  # GET DATA UID


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (bytes(15) + OK, "expected 16 data bytes, got 15"),  # short
        (bytes(17) + OK, "expected 16 data bytes, got 17"),  # oversized
        (OK, "expected 16 data bytes, got 0"),
        (bytes.fromhex("6400"), "unknown status word 64 00"),
    ],
)
def test_garbage_read_answers(answer: bytes, why: str) -> None:
    c = card(answer)
    with pytest.raises(ReaderBadResponse, match=why) as info:
        c.read_block(4)
    assert "READ BINARY block 4" in str(info.value)
    assert ACS_NAME in str(info.value)


def test_garbage_answer_to_auth_and_load_key() -> None:
    c = card(bytes.fromhex("01029000"), bytes.fromhex("AB9000"))
    with pytest.raises(ReaderBadResponse, match="LOAD KEY structure 0x00 slot 0"):
        c.load_key(bytes(6))
    with pytest.raises(ReaderBadResponse, match="GENERAL AUTHENTICATE block 4 key A slot 0"):
        c.authenticate(4)


def test_garbage_answer_to_write_is_unconfirmed_not_bad_response() -> None:
    # the reader may have executed the write: outcome unknown
    for answer in (bytes.fromhex("01 90 00"), bytes.fromhex("6F 00"), b"\x90"):
        c = card(answer)
        with pytest.raises(WriteUnconfirmed) as info:
            c.write_block(4, BLOCK)
        assert "UPDATE BINARY block 4" in str(info.value)
        assert ACS_NAME in str(info.value)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (CardRemoved("gone"), CardRemoved),
        (ResponseLost("lost"), CardRemoved),
        (CardAbsent("none"), CardAbsent),
        (ReaderUnavailable("unplugged"), ReaderUnavailable),
    ],
)
def test_transport_errors_on_reads(exc: Exception, expected: type[Exception]) -> None:
    c = card(exc)
    with pytest.raises(expected) as info:
        c.read_block(4)
    if expected is CardRemoved:
        assert "READ BINARY block 4" in str(info.value)
        assert info.value.__cause__ is exc
    entry = c.trace.last()
    assert entry is not None
    assert entry.sw is None


@pytest.mark.parametrize(
    "exc",
    [CardRemoved("gone"), ResponseLost("lost"), ReaderUnavailable("x"), PcscUnavailable("y")],
)
def test_transport_errors_on_writes_are_unconfirmed(exc: Exception) -> None:
    c = card(exc)
    with pytest.raises(WriteUnconfirmed, match="UPDATE BINARY block 4") as info:
        c.write_block(4, BLOCK)
    assert info.value.__cause__ is exc


def test_card_absent_before_a_write_is_not_unconfirmed() -> None:
    c = card(CardAbsent("no card"))
    with pytest.raises(CardAbsent):
        c.write_block(4, BLOCK)


@pytest.mark.parametrize(
    ("sw", "expected"),
    [
        ("6300", WriteUnconfirmed),  # ACS catch-all: ambiguous
        ("6581", WriteUnconfirmed),  # memory failure: ambiguous
        ("6982", CardAccessDenied),  # refused: card unchanged
        ("6A82", BlockNotFound),
    ],
)
def test_write_status_words(sw: str, expected: type[Exception]) -> None:
    c = card(bytes.fromhex(sw))
    with pytest.raises(expected, match="UPDATE BINARY block 4"):
        c.write_block(4, BLOCK)


def test_63_00_on_read_is_command_failed_and_auth_variants() -> None:
    c = card(bytes.fromhex("6300"), bytes.fromhex("6300"))
    with pytest.raises(CardCommandFailed, match="wrong key, card gone or not a value block"):
        c.read_block(4)
    with pytest.raises(CardCommandFailed, match="GENERAL AUTHENTICATE block 4 key B slot 1"):
        c.authenticate(4, KeyType.B, 1)
    o = card(bytes.fromhex("6982"), name="HID Global OMNIKEY 5422CL Smartcard Reader 00 00")
    with pytest.raises(CardAuthFailed):
        o.authenticate(4)


def test_get_response_fetches_pending_bytes() -> None:
    c = card(bytes.fromhex("6110"), BLOCK + OK)
    assert c.read_block(4) == BLOCK
    assert sent(c) == [
        "FF B0 00 04 10",  # READ BINARY block 4
        "FF C0 00 00 10",  # GET RESPONSE 16 bytes
    ]
    assert [e.command for e in c.trace.entries()] == [
        "READ BINARY block 4",
        "GET RESPONSE for READ BINARY",
    ]


def test_get_response_of_a_trailer_read_is_masked_whole() -> None:
    trailer = bytes.fromhex("A1B2C3D4E5F6 FF078069 0A1B2C3D4E5F")
    c = card(bytes.fromhex("6110"), trailer + OK)
    assert c.read_block(7) == trailer
    fetched = c.trace.entries()[1]
    assert fetched.response == " ".join(["**"] * 16)


def test_get_response_that_never_ends_is_bad_response() -> None:
    c = card(*[bytes.fromhex("6101")] * 5)
    with pytest.raises(ReaderBadResponse, match="pending"):
        c.read_block(4)


def test_multi_block_read_answer_checked_per_chunk() -> None:
    c = card(bytes(48) + OK, bytes(16) + OK, bytes(16) + OK, bytes(31) + OK)
    assert c.read_blocks(4, 5) == [bytes(16)] * 5
    with pytest.raises(ReaderBadResponse, match=r"READ BINARY blocks 8\.\.9: expected 32"):
        c.read_blocks(8, 2)
    assert sent(c) == [
        "FF B0 00 04 30",  # READ BINARY blocks 4..6
        "FF B0 00 07 10",  # READ BINARY block 7 (trailer, singly)
        "FF B0 00 08 10",  # READ BINARY block 8 (the 5th block requested)
        "FF B0 00 08 20",  # READ BINARY blocks 8..9
    ]


def test_read_blocks_bad_arguments() -> None:
    c = card()
    with pytest.raises(InvalidArgument, match="count"):
        c.read_blocks(4, 0)
    with pytest.raises(InvalidArgument, match="count"):
        c.read_blocks(250, 10)
    with pytest.raises(InvalidArgument, match="block"):
        c.read_blocks(256, 1)
    with pytest.raises(InvalidArgument, match="data"):
        c.write_block(4, bytes(32))
    with pytest.raises(InvalidArgument, match="data"):
        c.write_block(4, bytes(15))
    assert sent(c) == []


def test_value_read_garbage() -> None:
    c = card(bytes.fromhex("0000019000"))
    with pytest.raises(ReaderBadResponse, match="READ VALUE block 5: expected 4 value bytes"):
        c.value_read(5)


def test_value_ops_without_codec_on_generic_reader() -> None:
    c = card(name="Virtual PCD 00 00")
    assert c.dialect is GENERIC
    for call in (
        lambda: c.value_read(5),
        lambda: c.value_increment(5, 1),
        lambda: c.value_decrement(5, 1),
        lambda: c.value_store(5, 1),
        lambda: c.value_restore_transfer(5, 6),
    ):
        with pytest.raises(ReaderUnsupported, match="no value codec"):
            call()


def test_acr122u_firmware_without_sw_and_feedback() -> None:
    conn = ScriptedConnection(
        [b"ACR122U201", bytes.fromhex("9002"), bytes.fromhex("6300"), b"\x00\x01"],
        name="ACS ACR122U PICC Interface 00 00",
    )
    c = StorageCard(conn)
    assert c.dialect is ACR122U
    assert c.firmware() == "ACR122U201"
    c.feedback(True)
    with pytest.raises(CardCommandFailed, match="LED BUZZER failure"):
        c.feedback(False)
    with pytest.raises(ReaderBadResponse, match="GET FIRMWARE"):
        c.firmware()
    assert conn.sent_hex() == [
        "FF 00 48 00 00",  # GET FIRMWARE
        "FF 00 40 A0 04 01 01 01 01",  # LED BUZZER success
        "FF 00 40 50 04 02 02 02 01",  # LED BUZZER failure
        "FF 00 48 00 00",  # GET FIRMWARE
    ]


def test_feedback_unsupported_on_identiv() -> None:
    c = StorageCard(ScriptedConnection([]), IDENTIV)
    with pytest.raises(ReaderUnsupported, match="LED"):
        c.feedback(True)


def test_failure_dumps_trace_without_key_bytes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = bytes.fromhex("A1B2C3D4E5F6")
    c = StorageCard(ScriptedConnection([OK, OK, bytes.fromhex("6F00")], name=ACS_NAME), ACR1252U)
    c.load_key(key, 1)
    c.authenticate(4, KeyType.A, 1)
    with pytest.raises(ReaderBadResponse):
        c.read_block(4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = caplog.text
    assert "FF 82 00 01 06 ** ** ** ** ** **" in text
    assert "unknown status word 6F 00" in text
    assert "A1 B2" not in text
    assert "a1b2" not in text.lower().replace(" ", "")

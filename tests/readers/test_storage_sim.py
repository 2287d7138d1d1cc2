"""StorageCard over the in-process simulator: exact APDUs per reader model, and failures.

Every sequence asserts the bytes that went to the reader (as the trace recorded them, key
bytes masked) and what the simulated card holds afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from daemon.errors import (
    BlockNotFound,
    CardAccessDenied,
    CardAuthFailed,
    CardCommandFailed,
    CardDataCorrupt,
    CardRemoved,
    InvalidArgument,
    MalformedBlock,
    ReaderUnavailable,
    ReaderUnsupported,
    WriteUnconfirmed,
)
from daemon.mifare.value import decode_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.dialects import ACR122U, ACR1252U, GENERIC, OMNIKEY, select_dialect
from daemon.readers.storage import StorageCard
from daemon.readers.trace import TRACE
from sim.card import SimCard
from sim.reader import SimReader
from tests.readers.scripted import VALUE_CODEC

CODEC = VALUE_CODEC
FF6 = b"\xff" * 6
DATA = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
VB_1000 = "E8 03 00 00 17 FC FF FF E8 03 00 00 05 FA 05 FA"  # value 1000, adr 5
VB_1250 = "E2 04 00 00 1D FB FF FF E2 04 00 00 05 FA 05 FA"  # value 1250, adr 5
VB_1200 = "B0 04 00 00 4F FB FF FF B0 04 00 00 05 FA 05 FA"  # value 1200, adr 5


@pytest.fixture(params=["acr1252u", "acr122u", "omnikey5x21", "generic"])
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_card(model: str, **kw: object) -> tuple[SimReader, SimCard, StorageCard]:
    reader = SimReader(model=model)  # type: ignore[arg-type]
    card = SimCard.blank(uid=bytes.fromhex("11223344"))
    reader.insert(card)
    storage = StorageCard(reader.connect(), codec=CODEC, **kw)  # type: ignore[arg-type]
    return reader, card, storage


@pytest.fixture
def acs() -> Iterator[tuple[SimReader, SimCard, StorageCard]]:
    reader, card, storage = open_card("acr1252u")
    with reader, storage:
        yield reader, card, storage


def apdus(storage: StorageCard) -> list[str]:
    return [e.apdu for e in storage.trace.entries()]


def hexblock(card: SimCard, block: int) -> str:
    return card.block(block).hex(" ").upper()


def run_sequence(storage: StorageCard) -> None:
    assert storage.uid() == bytes.fromhex("11223344")
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    storage.write_block(4, DATA)
    assert storage.read_block(4) == DATA
    storage.value_store(5, 1000)
    storage.value_increment(5, 250)
    storage.value_decrement(5, 50)
    assert storage.value_read(5) == 1200
    storage.value_restore_transfer(5, 6)
    assert storage.value_read(6) == 1200


HEAD = [
    "FF CA 00 00 00",  # GET DATA UID
]
ACS_LOAD_AUTH = [
    "FF 82 00 00 06 ** ** ** ** ** **",  # LOAD KEY volatile slot 0 (key masked)
    "FF 86 00 00 05 01 00 04 60 00",  # GENERAL AUTHENTICATE block 4 key A slot 0
]
WRITE_READ = [
    "FF D6 00 04 10 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF",  # UPDATE BINARY block 4
    "FF B0 00 04 10",  # READ BINARY block 4
]
ACS_VALUES = [
    "FF D7 00 05 05 00 00 00 03 E8",  # STORE VALUE block 5 = 1000
    "FF D7 00 05 05 01 00 00 00 FA",  # INCREMENT block 5 by 250 (+TRANSFER)
    "FF D7 00 05 05 02 00 00 00 32",  # DECREMENT block 5 by 50 (+TRANSFER)
    "FF B1 00 05 04",  # READ VALUE block 5
    "FF D7 00 05 02 03 06",  # RESTORE block 5 + TRANSFER to block 6
    "FF B1 00 06 04",  # READ VALUE block 6
]
EXPECTED = {
    "acr1252u": HEAD + ACS_LOAD_AUTH + WRITE_READ + ACS_VALUES,
    "acr122u": HEAD + ACS_LOAD_AUTH + WRITE_READ + ACS_VALUES,
    "omnikey5x21": [
        *HEAD,
        "FF 82 20 00 06 ** ** ** ** ** **",  # LOAD KEY structure 20 (OMNIKEY) slot 0
        "FF 86 00 00 05 01 00 04 60 00",  # GENERAL AUTHENTICATE block 4 key A slot 0
        *WRITE_READ,
        f"FF D6 00 05 10 {VB_1000}",  # STORE (fallback): UPDATE BINARY block 5
        "FF D4 00 05 04 FA 00 00 00",  # INCREMENT block 5 by 250 (LSB first)
        "FF D8 00 05 04 32 00 00 00",  # DECREMENT block 5 by 50 (LSB first)
        "FF B0 00 05 10",  # READ VALUE (fallback): READ BINARY block 5
        "FF B0 00 05 10",  # RESTORE (fallback): READ BINARY block 5
        f"FF D6 00 06 10 {VB_1200}",  # ... UPDATE BINARY block 6 with block 5's bytes
        "FF B0 00 06 10",  # READ VALUE (fallback): READ BINARY block 6
    ],
    "generic": [
        *HEAD,
        *ACS_LOAD_AUTH,
        *WRITE_READ,
        f"FF D6 00 05 10 {VB_1000}",  # STORE (fallback): UPDATE BINARY block 5
        "FF B0 00 05 10",  # INCREMENT (fallback): READ BINARY block 5
        f"FF D6 00 05 10 {VB_1250}",  # ... UPDATE BINARY block 5 = 1250
        "FF B0 00 05 10",  # DECREMENT (fallback): READ BINARY block 5
        f"FF D6 00 05 10 {VB_1200}",  # ... UPDATE BINARY block 5 = 1200
        "FF B0 00 05 10",  # READ VALUE (fallback): READ BINARY block 5
        "FF B0 00 05 10",  # RESTORE (fallback): READ BINARY block 5
        f"FF D6 00 06 10 {VB_1200}",  # ... UPDATE BINARY block 6 with block 5's bytes
        "FF B0 00 06 10",  # READ VALUE (fallback): READ BINARY block 6
    ],
}


def test_full_sequence_exact_apdus_per_reader_model(model: str) -> None:
    reader, card, storage = open_card(model)
    with reader, storage:
        run_sequence(storage)
        assert apdus(storage) == EXPECTED[model]
        assert all(e.sw == 0x9000 for e in storage.trace.entries())
        assert storage.trace.count == reader.apdu_count == len(EXPECTED[model])
    assert card.block(4) == DATA
    assert hexblock(card, 5) == VB_1200
    assert hexblock(card, 6) == VB_1200  # RESTORE keeps the source's address byte


def test_dialect_detected_from_sim_reader_names() -> None:
    expected = {"acr1252u": ACR1252U, "acr122u": ACR122U, "omnikey5x21": OMNIKEY}
    for name, dialect in expected.items():
        reader, _card, storage = open_card(name)
        with reader, storage:
            assert storage.dialect is dialect
    reader, _card, storage = open_card("generic")
    with reader, storage:
        assert storage.dialect is GENERIC


def test_multi_block_read_on_acr1252u_and_single_blocks_on_acr122u() -> None:
    for model, expected in (
        (
            "acr1252u",
            [
                "FF B0 00 04 30",  # READ BINARY blocks 4..6 (multiple-block mode)
                "FF B0 00 07 10",  # READ BINARY block 7 (trailer, alone)
            ],
        ),
        (
            "acr122u",
            [
                "FF B0 00 04 10",  # READ BINARY block 4
                "FF B0 00 05 10",  # READ BINARY block 5
                "FF B0 00 06 10",  # READ BINARY block 6
                "FF B0 00 07 10",  # READ BINARY block 7
            ],
        ),
    ):
        reader, _card, storage = open_card(model)
        with reader, storage:
            storage.load_key(FF6, 0)
            storage.authenticate(4, KeyType.A, 0)
            storage.trace.clear()
            blocks = storage.read_blocks(4, 4)
            assert apdus(storage) == expected
        assert blocks[:3] == [bytes(16)] * 3
        # key A reads back as zeros; transport access bits let key A read key B (FF..FF)
        assert blocks[3] == bytes(6) + bytes.fromhex("FF078069") + FF6


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("acr1252u", CardCommandFailed),
        ("acr122u", CardCommandFailed),
        ("omnikey5x21", CardAuthFailed),
        ("generic", CardAuthFailed),
    ],
)
def test_wrong_key_then_reconnect(model: str, expected: type[Exception]) -> None:
    reader, _card, storage = open_card(model)
    with reader, storage:
        storage.load_key(bytes.fromhex("A0A1A2A3A4A5"), 0)
        storage.load_key(FF6, 1)
        with pytest.raises(expected, match="GENERAL AUTHENTICATE block 4 key A slot 0"):
            storage.authenticate(4, KeyType.A, 0)
        # the chip stays halted after a failed authentication: even the right key fails
        with pytest.raises(expected):
            storage.authenticate(4, KeyType.A, 1)
        storage.reconnect()
        storage.authenticate(4, KeyType.A, 1)
        assert storage.read_block(4) == bytes(16)


def test_status_words_of_the_standard_readers_map_precisely() -> None:
    reader, _card, storage = open_card("generic")
    with reader, storage:
        storage.load_key(FF6, 0)
        with pytest.raises(CardAccessDenied, match="READ BINARY block 4"):
            storage.read_block(4)  # not authenticated
        storage.reconnect()  # a refused command halts the card until it is re-selected
        with pytest.raises(BlockNotFound, match="block 64"):
            storage.authenticate(64, KeyType.A, 0)  # a 1K card has blocks 0..63
        storage.authenticate(4, KeyType.A, 0)
        with pytest.raises(CardAccessDenied, match="UPDATE BINARY block 8"):
            storage.write_block(8, DATA)  # other sector: refused, card unchanged
    reader, _card, storage = open_card("omnikey5x21")
    with reader, storage:
        storage.load_key(FF6, 0)
        storage.authenticate(4, KeyType.A, 0)
        with pytest.raises(CardDataCorrupt, match="INCREMENT VALUE block 4"):
            storage.value_increment(4, 1)  # block 4 is not a value block


def test_acs_63_00_after_a_value_command_is_outcome_unknown(
    acs: tuple[SimReader, SimCard, StorageCard],
) -> None:
    _reader, card, storage = acs
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    with pytest.raises(WriteUnconfirmed) as info:
        storage.value_decrement(4, 1)  # block 4 is no value block; ACS says only 63 00
    assert "DECREMENT VALUE block 4 by 1" in str(info.value)
    assert "wrong key, card gone or not a value block" in str(info.value)
    assert isinstance(info.value.__cause__, CardCommandFailed)
    assert card.block(4) == bytes(16)


def test_lost_answer_to_a_write_is_unconfirmed_and_the_card_decides(
    acs: tuple[SimReader, SimCard, StorageCard],
) -> None:
    reader, card, storage = acs
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    reader.faults.arm()
    reader.faults.lose_response(1)
    with pytest.raises(WriteUnconfirmed, match="UPDATE BINARY block 4"):
        storage.write_block(4, DATA)
    assert card.block(4) == DATA  # it did execute: only reading the card tells
    assert storage.read_block(4) == DATA
    entry = storage.trace.entries()[-2]
    assert entry.error == "CARD_RESPONSE_LOST"
    assert entry.sw is None


def test_card_pulled_before_a_write_is_unconfirmed(
    acs: tuple[SimReader, SimCard, StorageCard],
) -> None:
    reader, card, storage = acs
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    reader.faults.arm()
    reader.faults.remove_before(1)
    with pytest.raises(WriteUnconfirmed) as info:
        storage.write_block(4, DATA)
    assert isinstance(info.value.__cause__, CardRemoved)
    assert reader.card is None
    assert card.block(4) == bytes(16)


@pytest.mark.parametrize(("model", "n"), [("acr1252u", 1), ("generic", 2)])
def test_torn_decrement_is_unconfirmed_and_leaves_a_detectable_block(model: str, n: int) -> None:
    reader, card, storage = open_card(model)
    with reader, storage:
        storage.load_key(FF6, 0)
        storage.authenticate(4, KeyType.A, 0)
        storage.value_store(5, 1000)
        reader.faults.arm()
        reader.faults.tear(n, "garbage")  # ACS: the FF D7; generic: the UPDATE after the READ
        with pytest.raises(WriteUnconfirmed, match="block 5"):
            storage.value_decrement(5, 100)
        assert reader.card is None
        reader.insert(card)
        storage.reconnect()
        storage.authenticate(4, KeyType.A, 0)
        expected = CardCommandFailed if model == "acr1252u" else MalformedBlock
        with pytest.raises(expected):
            storage.value_read(5)


def test_card_pulled_during_reads_is_card_removed(
    acs: tuple[SimReader, SimCard, StorageCard],
) -> None:
    reader, card, storage = acs
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    reader.faults.arm()
    reader.faults.lose_response(1)
    with pytest.raises(CardRemoved, match="READ BINARY block 4"):
        storage.read_block(4)
    reader.faults.remove_before(2)
    with pytest.raises(CardRemoved, match="GENERAL AUTHENTICATE"):
        storage.authenticate(4, KeyType.A, 0)
    reader.insert(card)
    with pytest.raises(CardRemoved):
        storage.read_block(4)  # the connection is bound to the old insertion


def test_unplugged_reader(acs: tuple[SimReader, SimCard, StorageCard]) -> None:
    reader, _card, storage = acs
    storage.load_key(FF6, 0)
    storage.authenticate(4, KeyType.A, 0)
    reader.unplug()
    with pytest.raises(ReaderUnavailable):
        storage.read_block(4)
    with pytest.raises(WriteUnconfirmed) as info:
        storage.write_block(4, DATA)
    assert isinstance(info.value.__cause__, ReaderUnavailable)


def test_firmware_and_feedback_over_the_sim() -> None:
    for model, firmware in (("acr122u", "ACR122U207"), ("acr1252u", "ACR1252U_V202.2")):
        reader, _card, storage = open_card(model)
        with reader, storage:
            assert storage.firmware() == firmware
            beeps = reader.memory.beeps
            storage.feedback(True)
            storage.feedback(False)
            assert reader.memory.beeps > beeps
            assert apdus(storage) == [
                "FF 00 48 00 00",  # GET FIRMWARE
                "FF 00 40 A0 04 01 01 01 01",  # LED BUZZER success
                "FF 00 40 50 04 02 02 02 01",  # LED BUZZER failure
            ]
    reader, _card, storage = open_card("omnikey5x21")
    with reader, storage:
        with pytest.raises(ReaderUnsupported, match="LED"):
            storage.feedback(True)
        with pytest.raises(ReaderUnsupported, match="firmware"):
            storage.firmware()
        assert reader.apdu_count == 0


def test_wrong_dialect_override_fails_with_a_named_command() -> None:
    reader, card, storage = open_card(
        "omnikey5x21", dialect=select_dialect("x", override="acr1252u")
    )
    with (
        reader,
        storage,
        pytest.raises(ReaderUnsupported, match=r"LOAD KEY structure 0x00 slot 0.*69 86"),
    ):
        storage.load_key(FF6, 0)
    reader, card, storage = open_card("generic", dialect=ACR1252U)
    with reader, storage:
        storage.load_key(FF6, 0)
        storage.authenticate(4, KeyType.A, 0)
        with pytest.raises(ReaderUnsupported, match=r"STORE VALUE block 5 = 1.*6D 00"):
            storage.value_store(5, 1)  # the generic reader does not know FF D7: unchanged
        assert card.block(5) == bytes(16)


def test_unusable_slot_is_refused_without_an_apdu() -> None:
    reader, _card, storage = open_card("acr122u")
    with reader, storage:
        with pytest.raises(ReaderUnsupported, match="key slot 2"):
            storage.load_key(FF6, 2)
        assert reader.apdu_count == 0


def test_key_bytes_never_reach_trace_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE)
    key_a = bytes.fromhex("A1B2C3D4E5F6")
    key_b = bytes.fromhex("0A1B2C3D4E5F")
    trailer = key_a + bytes.fromhex("FF078069") + key_b
    reader, _card, storage = open_card("acr1252u")
    with reader, storage:
        storage.load_key(FF6, 0)
        storage.authenticate(4, KeyType.A, 0)
        storage.write_block(7, trailer)  # personalise sector 1
        storage.reconnect()
        storage.load_key(key_a, 1)
        storage.authenticate(4, KeyType.A, 1)
        storage.read_block(7)
        storage.load_key(key_b, 0)
        with pytest.raises(CardCommandFailed):
            storage.authenticate(8, KeyType.B, 0)  # sector 2 still has FF keys: fails, dumps
        text = caplog.text + " ".join(storage.trace.lines())
    assert "FF D6 00 07 10 ** ** ** ** ** ** FF 07 80 69 ** ** ** ** ** **" in text
    assert "FF 82 00 01 06 ** ** ** ** ** **" in text
    flat = text.replace(" ", "").upper()
    assert key_a.hex().upper() not in flat
    assert key_b.hex().upper() not in flat
    assert any(r.levelno == logging.DEBUG and "last" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("model", ["acr1252u", "generic"])
def test_negative_amounts_are_refused_before_any_write(model: str) -> None:
    reader, card, storage = open_card(model)
    with reader, storage:
        storage.load_key(FF6, 0)
        storage.authenticate(4, KeyType.A, 0)
        storage.value_store(5, 10)
        before = reader.apdu_count
        for call in (storage.value_increment, storage.value_decrement):
            with pytest.raises(InvalidArgument, match="amount"):
                call(5, -1)
        with pytest.raises(InvalidArgument, match="value"):
            storage.value_store(5, 2**31)  # outside int32: refused by dialect or codec
        assert reader.apdu_count == before
    assert decode_value_block(card.block(5)).value == 10


def test_firmware_probe_recognises_an_acs_reader_behind_a_generic_name() -> None:
    with SimReader(name="Virtual PCD 00 00", model="acr122u") as reader:
        reader.insert(SimCard.blank())
        with StorageCard(reader.connect()) as storage:
            assert storage.dialect is GENERIC
            firmware = storage.probe_firmware()
            assert firmware == "ACR122U207"
            assert select_dialect(storage.reader, firmware=firmware) is ACR122U
            assert apdus(storage) == ["FF 00 48 00 00"]  # GET FIRMWARE
    with SimReader(model="generic") as reader:
        reader.insert(SimCard.blank())
        with StorageCard(reader.connect()) as storage:
            assert storage.probe_firmware() is None  # 6D 00: instruction not supported


def test_a_trailer_that_would_brick_the_sector_is_refused_before_any_apdu() -> None:
    from daemon.errors import UnsafeAccessBits
    from daemon.readers.storage import StorageCard
    from sim.reader import SimReader
    from sim.store import transport_card

    reader = SimReader(model="acr1252u")
    reader.insert(transport_card())
    with StorageCard(reader.connect()) as card:
        card.load_key(b"\xff" * 6)
        card.authenticate(4)
        sent = card.trace.count
        bad = b"\xff" * 6 + bytes.fromhex("FF0781") + b"\x69" + b"\xff" * 6  # 81: copy broken
        with pytest.raises(UnsafeAccessBits, match="block 7"):
            card.write_block(7, bad)
        assert card.trace.count == sent  # nothing reached the card
        card.write_block(7, bad[:6] + bytes.fromhex("FF0780") + bad[9:])  # a sound trailer is fine
        card.write_block(7, bad, force=True)  # the technician path can still force it
    card_now = reader.card
    assert card_now is not None
    assert card_now.sector_blocked(1)

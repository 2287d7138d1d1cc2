"""Every fault kind on a value debit, plus tears of plain writes, deterministic by seed."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidArgument
from sim.card import is_value_format
from sim.faults import CardGone, ResponseDropped
from sim.reader import SimReader
from sim.store import value_block
from tests.sim.helpers import tx, value_sector_card


def _debit_reader(seed: int = 0) -> SimReader:
    reader = SimReader(seed=seed)
    reader.insert(value_sector_card())
    assert tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"  # LOAD KEY slot 0 key A
    assert (
        tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 8 key A
    reader.faults.arm()
    return reader


DEBIT = "FF D7 00 08 05 02 00 00 00 0A"  # VALUE decrement block 8 by 10 (DEC + TRANSFER)


def test_remove_before_leaves_card_untouched() -> None:
    reader = _debit_reader()
    reader.faults.remove_before(1)
    with pytest.raises(CardGone):
        tx(reader, DEBIT)
    assert reader.card is None
    with pytest.raises(CardGone):  # nothing on the reader any more
        tx(reader, "FF CA 00 00 00")  # GET DATA UID


def test_remove_before_keeps_value() -> None:
    reader = _debit_reader()
    card = reader.card
    assert card is not None
    reader.faults.remove_before(1)
    with pytest.raises(CardGone):
        tx(reader, DEBIT)
    assert card.block(8) == value_block(100, 8)


def test_remove_after_answers_then_leaves() -> None:
    reader = _debit_reader()
    card = reader.card
    assert card is not None
    reader.faults.remove_after(1)
    assert tx(reader, DEBIT) == "90 00"
    assert reader.card is None
    assert card.block(8) == value_block(90, 8)
    assert card.authenticated is None
    assert card.transfer_buffer is None


def test_lose_response_executes_and_card_stays() -> None:
    reader = _debit_reader()
    reader.faults.lose_response(1)
    with pytest.raises(ResponseDropped):
        tx(reader, DEBIT)
    assert tx(reader, "FF B1 00 08 04") == "00 00 00 5A 90 00"  # VALUE READ block 8: 90
    assert reader.history[-2] == (bytes.fromhex(DEBIT), None)


@pytest.mark.parametrize(("outcome", "value"), [("old", 100), ("new", 90)])
def test_tear_value_transfer_old_or_new(outcome: str, value: int) -> None:
    reader = _debit_reader()
    card = reader.card
    assert card is not None
    reader.faults.tear(1, outcome)  # type: ignore[arg-type]
    with pytest.raises(ResponseDropped):
        tx(reader, DEBIT)
    assert reader.card is None
    assert card.block(8) == value_block(value, 8)


def test_tear_value_transfer_garbage_is_a_copy_mismatch() -> None:
    reader = _debit_reader()
    card = reader.card
    assert card is not None
    reader.faults.tear(1, "garbage")
    with pytest.raises(ResponseDropped):
        tx(reader, DEBIT)
    torn = card.block(8)
    assert not is_value_format(torn)
    assert torn[0:4] == (90).to_bytes(4, "little")  # first copy programmed
    assert torn[4:8] == value_block(100, 8)[4:8]  # inverted copy still old


def _torn_write(seed: int) -> bytes:
    reader = SimReader(seed=seed)
    reader.insert(value_sector_card())
    card = reader.card
    assert card is not None
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE block 4
    reader.faults.tear(3, "garbage")
    with pytest.raises(ResponseDropped):
        tx(reader, "FF D6 00 04 10" + " 55" * 16)  # UPDATE BINARY block 4
    return card.block(4)


def test_tear_garbage_is_deterministic_per_seed() -> None:
    first = _torn_write(7)
    assert first not in (bytes(16), b"\x55" * 16)
    assert _torn_write(7) == first
    assert _torn_write(8) != first


def test_tear_multi_block_write_splits_old_and_new() -> None:
    reader = SimReader(seed=3)
    reader.insert(value_sector_card())
    card = reader.card
    assert card is not None
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE block 4
    reader.faults.tear(3, "old")
    with pytest.raises(ResponseDropped):
        tx(reader, "FF D6 00 04 30" + " 77" * 48)  # UPDATE BINARY blocks 4..6
    states = [card.block(b) == b"\x77" * 16 for b in (4, 5, 6)]
    torn_at = states.index(False)
    assert states == [True] * torn_at + [False] * (3 - torn_at)


def test_tear_on_a_read_just_loses_the_card() -> None:
    reader = _debit_reader()
    card = reader.card
    assert card is not None
    before = card.memory
    reader.faults.tear(1, "garbage")
    with pytest.raises(ResponseDropped):
        tx(reader, "FF B0 00 08 10")  # READ BINARY block 8
    assert reader.card is None
    assert card.memory == before


def test_fault_numbering_and_bad_arguments() -> None:
    reader = _debit_reader()
    tx(reader, "FF CA 00 00 00")  # GET DATA UID: APDU 1 since armed
    with pytest.raises(InvalidArgument, match="already sent"):
        reader.faults.remove_before(1)
    with pytest.raises(InvalidArgument, match="n:"):
        reader.faults.lose_response(0)
    with pytest.raises(InvalidArgument, match="outcome"):
        reader.faults.tear(5, "half")  # type: ignore[arg-type]
    reader.faults.arm()
    reader.faults.remove_after(1)
    reader.faults.clear()
    assert reader.faults.pending == ()
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID
    assert reader.card is not None
    assert reader.faults.count == 1
    assert reader.apdu_count == 4


def _unstable_debit(seed: int) -> tuple[SimReader, list[str]]:
    reader = _debit_reader(seed)
    card = reader.card
    assert card is not None
    reader.faults.tear(1, "unstable")
    with pytest.raises(ResponseDropped):
        tx(reader, DEBIT)  # the TRANSFER of 90 into block 8 is torn half-way
    reader.insert(card)
    assert tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"  # LOAD KEY slot 0 key A
    reads = []
    for _ in range(6):
        assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTH block 8
        reads.append(tx(reader, "FF B0 00 08 10"))  # READ BINARY block 8
    return reader, reads


# Seed 5: six READ BINARY answers for block 8 torn between 100 (64 00 ..) and 90 (5A 00 ..).
UNSTABLE_READS = [
    "6A 00 00 00 83 FF FF FF 74 00 00 00 08 F7 08 F7 90 00",
    "48 00 00 00 B3 FF FF FF 76 00 00 00 08 F7 08 F7 90 00",
    "40 00 00 00 9F FF FF FF 60 00 00 00 08 F7 08 F7 90 00",
    "60 00 00 00 AB FF FF FF 7A 00 00 00 08 F7 08 F7 90 00",
    "7C 00 00 00 91 FF FF FF 6A 00 00 00 08 F7 08 F7 90 00",
    "6A 00 00 00 97 FF FF FF 68 00 00 00 08 F7 08 F7 90 00",
]


def test_tear_unstable_block_reads_differently_each_time() -> None:
    reader, reads = _unstable_debit(seed=5)
    assert reads == UNSTABLE_READS  # successive reads disagree; the seed reproduces them
    old, new = value_block(100, 8), value_block(90, 8)
    for answer in reads:
        got = bytes.fromhex(answer[:-6])
        for g, o, n in zip(got, old, new, strict=True):
            assert g & ~(o | n) == 0  # every 1 bit is a 1 of old or of new...
            assert (o & n) & ~g == 0  # ...and bits both agree on are kept
    # the top-up station rewrites the block with key B: programmed again, it reads stably
    assert tx(reader, "FF 82 00 01 06 B0 B1 B2 B3 B4 B5") == "90 00"  # LOAD KEY slot 1 key B
    assert tx(reader, "FF 86 00 00 05 01 00 08 61 01") == "90 00"  # GENERAL AUTH block 8 key B
    value_90 = value_block(90, 8).hex(" ").upper()
    assert tx(reader, "FF D6 00 08 10 " + value_90) == "90 00"  # UPDATE BINARY block 8: 90
    for _ in range(3):
        assert tx(reader, "FF B1 00 08 04") == "00 00 00 5A 90 00"  # VALUE READ block 8: 90


def test_tear_unstable_value_block_is_not_a_value_block_to_the_chip() -> None:
    reader, _reads = _unstable_debit(seed=11)
    card = reader.card
    assert card is not None
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTH block 8
    # the chip senses a mix that fails V/~V/V: DECREMENT is NAKed and the card halts
    assert tx(reader, "FF D7 00 08 05 02 00 00 00 01") == "63 00"  # VALUE decrement 8 by 1
    assert card.halted

"""APDU trace ring: bounded, counted, masked; dumped to the log without key bytes."""

from __future__ import annotations

import logging

import pytest

from daemon.errors import CardRemoved, InvalidArgument
from daemon.readers import apdu
from daemon.readers.apdu import KeyType
from daemon.readers.connection import Response
from daemon.readers.trace import TRACE, ApduTrace, TraceEntry

KEY = bytes.fromhex("A1B2C3D4E5F6")
KEY_B = bytes.fromhex("0A1B2C3D4E5F")
READER = "ACS ACR1252 1S CL Reader PICC 00 00"
OK = Response(b"", 0x9000)


def _secret_free(text: str) -> bool:
    flat = text.replace(" ", "").upper()
    return KEY.hex().upper() not in flat and KEY_B.hex().upper() not in flat


def test_ring_is_bounded_and_counter_is_not() -> None:
    trace = ApduTrace(READER, capacity=4)
    for block in range(10):
        trace.record(apdu.read_binary(block), Response(bytes(16), 0x9000), 0.001)
    assert trace.count == 10
    assert trace.capacity == 4
    entries = trace.entries()
    assert [e.seq for e in entries] == [7, 8, 9, 10]
    assert [e.command for e in entries] == [f"READ BINARY block {b}" for b in range(6, 10)]
    assert trace.durations_ms() == pytest.approx([1.0] * 4)
    last = trace.last()
    assert last is not None
    assert last.apdu == "FF B0 00 09 10"
    trace.clear()
    assert trace.entries() == []
    assert trace.last() is None
    assert trace.count == 10


def test_entry_fields_and_line() -> None:
    trace = ApduTrace(READER)
    entry = trace.record(
        apdu.general_authenticate(8, KeyType.A, 0), Response(b"", 0x6300), 0.0025, at=1.5
    )
    assert entry == TraceEntry(
        seq=1,
        at=1.5,
        reader=READER,
        command="GENERAL AUTHENTICATE block 8 key A slot 0",
        apdu="FF 86 00 00 05 01 00 08 60 00",
        response="",
        sw=0x6300,
        duration_ms=2.5,
    )
    assert entry.line() == (
        "#1 GENERAL AUTHENTICATE block 8 key A slot 0: > FF 86 00 00 05 01 00 08 60 00"
        " < [63 00] (2.50 ms)"
    )
    read = trace.record(apdu.read_binary(4), Response(bytes(range(16)), 0x9000), 0.001)
    assert "< 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F [90 00]" in read.line()


def test_lost_answer_records_the_reason() -> None:
    trace = ApduTrace(READER)
    entry = trace.record(
        apdu.update_binary(4, bytes(16)), None, 0.01, error=CardRemoved("card left")
    )
    assert entry.sw is None
    assert entry.response is None
    assert entry.error == "CARD_REMOVED"
    assert entry.line().endswith("< !! CARD_REMOVED (10.00 ms)")
    other = trace.record(apdu.get_uid(), None, 0.0, error=OSError("x"))
    assert other.error == "OSError"
    assert "!! OSError" in other.line()
    bare = trace.record(apdu.get_uid(), None, 0.0)
    assert "!! no answer" in bare.line()


def test_key_bytes_never_in_ring_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE)
    trace = ApduTrace(READER)
    trailer = KEY + bytes.fromhex("FF078069") + KEY_B
    trace.record(apdu.load_key(KEY, 0), OK, 0.001)
    trace.record(apdu.update_binary(7, trailer), OK, 0.001)
    # a trailer read returns key B when it is readable: masked as well
    trace.record(apdu.read_binary(7), Response(trailer, 0x9000), 0.001)
    trace.dump("test failure")
    entries = trace.entries()
    assert entries[0].apdu == "FF 82 00 00 06 ** ** ** ** ** **"  # LOAD KEY slot 0
    assert entries[1].apdu == (
        "FF D6 00 07 10 ** ** ** ** ** ** FF 07 80 69 ** ** ** ** ** **"  # UPDATE BINARY trailer
    )
    assert entries[2].response == "** ** ** ** ** ** FF 07 80 69 ** ** ** ** ** **"
    everything = " ".join(repr(e) for e in entries) + " ".join(trace.lines()) + caplog.text
    assert _secret_free(everything)
    assert "test failure" in caplog.text
    assert "FF 82 00 00 06 ** ** ** ** ** **" in caplog.text
    # per-exchange TRACE lines were logged too
    assert any(r.levelno == TRACE for r in caplog.records)


def test_dump_is_silent_when_level_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    trace = ApduTrace(READER)
    trace.record(apdu.get_uid(), OK, 0.0)
    trace.dump("nothing to see", level=logging.INFO)
    assert caplog.text == ""
    empty = ApduTrace(READER)
    empty.dump("empty", level=logging.ERROR)
    assert "(none)" in caplog.text


def test_hooks_see_every_entry() -> None:
    trace = ApduTrace(READER)
    seen: list[TraceEntry] = []
    trace.add_hook(seen.append)
    trace.record(apdu.get_uid(), Response(b"\x01\x02\x03\x04", 0x9000), 0.0)
    trace.remove_hook(seen.append)
    trace.record(apdu.get_uid(), OK, 0.0)
    assert [e.seq for e in seen] == [1]
    assert seen[0].response == "01 02 03 04"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="capacity: a trace keeps at least 1 exchange, got 0"):
        ApduTrace(READER, capacity=0)


def test_a_failing_hook_never_breaks_the_exchange(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks run after the card answered: a broken metrics hook must not make a completed
    write look failed, nor starve the hooks after it."""
    trace = ApduTrace(READER)
    seen: list[TraceEntry] = []

    def broken(entry: TraceEntry) -> None:
        raise RuntimeError("metrics backend down")

    trace.add_hook(broken)
    trace.add_hook(seen.append)
    entry = trace.record(apdu.update_binary(4, bytes(16)), OK, 0.001)
    assert seen == [entry]
    assert trace.count == 1
    assert "APDU trace hook" in caplog.text
    assert "metrics backend down" in caplog.text

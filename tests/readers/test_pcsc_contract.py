"""One reader contract, two paths: the in-process simulator and real pcscd + vpcd + pyscard.

Every test runs on both (``stack`` fixture); the ``pcsc`` runs are marked ``pcscd`` and are never
skipped. Where vpcd physically cannot report what a real reader would, the expectation is
written per path with the reason (see ``PULLED_BEFORE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing

import pytest

from daemon.errors import (
    CardAbsent,
    CardCommandFailed,
    CardDaemonError,
    CardRemoved,
    PcscUnavailable,
    ReaderBadResponse,
    ReaderUnavailable,
    ReaderUnsupported,
    ResponseLost,
    WriteUnconfirmed,
)
from daemon.readers.apdu import KeyType
from daemon.readers.monitor import EventKind, ReaderMonitor
from daemon.readers.storage import StorageCard
from daemon.readers.workers import JobContext, ReaderPool
from sim.card import SimCard
from sim.store import transport_card
from tests.pcscd_stack import AFTER_PULL, Stack, is_event

UID_A = bytes.fromhex("11223344")
UID_B = bytes.fromhex("A1B2C3D4")
GET_UID = bytes.fromhex("FFCA000000")  # GET DATA UID
NEW_DATA = bytes(range(0x10, 0x20))
SEQUENCE = [
    bytes.fromhex("FF82000006FFFFFFFFFFFF"),  # LOAD KEY slot 0 (transport key)
    bytes.fromhex("FF860000050100046000"),  # GENERAL AUTHENTICATE block 4 key A slot 0
    bytes.fromhex("FFB0000410"),  # READ BINARY block 4
    bytes.fromhex("FFD6000410") + NEW_DATA,  # UPDATE BINARY block 4
    bytes.fromhex("FFB0000410"),  # READ BINARY block 4
    GET_UID,  # one more, to see what follows a fault at the last step
]
STEPS = range(1, len(SEQUENCE))

# A card pulled *before* APDU n: the simulator knows nothing executed (CardRemoved). Through vpcd
# the only signal is a dropped socket mid-command, which pcscd reports as a 0-byte answer: the
# pyscard path can only say "outcome unknown" (ResponseLost), as a real reader does
# (SCARD_E_NOT_TRANSACTED). Never the other way round: CardRemoved must mean "not executed".
PULLED_BEFORE = {"sim": (CardRemoved,), "pcsc": (ResponseLost,)}
# An unplugged reader: through vpcd a reader can only vanish with a pcscd restart, which also
# kills every handle of the old service.
UNPLUGGED = {"sim": ReaderUnavailable, "pcsc": PcscUnavailable}


def _card(uid: bytes = UID_A) -> SimCard:
    return transport_card(uid)


# --- events ---------------------------------------------------------------------------------


def test_insert_and_remove_are_reported_with_atr_uid_and_type(stack: Stack) -> None:
    monitor = ReaderMonitor(stack.backend)
    sub = monitor.hub.subscribe()
    with monitor:
        sub.wait_for(is_event(EventKind.READER_ATTACHED, stack.name(0)))
        stack.readers[0].insert(_card())
        present = sub.wait_for(is_event(EventKind.CARD_PRESENT, stack.name(0))).payload
        assert present.uid == UID_A
        assert present.card_type == "MIFARE Classic 1K"
        assert present.atr == bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
        assert monitor.snapshot()[stack.name(0)] == present
        stack.readers[0].remove()
        removed = sub.wait_for(is_event(EventKind.CARD_REMOVED, stack.name(0))).payload
        assert removed.seq > present.seq
        assert monitor.snapshot()[stack.name(0)] is None


def test_two_readers_at_once(stack: Stack) -> None:
    monitor = ReaderMonitor(stack.backend)
    sub = monitor.hub.subscribe()
    with monitor:
        stack.readers[0].insert(_card(UID_A))
        stack.readers[1].insert(_card(UID_B))
        uids: dict[str | None, bytes | None] = {}
        while len(uids) < 2:
            event = sub.wait_for(is_event(EventKind.CARD_PRESENT)).payload
            uids[event.reader] = event.uid
        assert uids == {stack.name(0): UID_A, stack.name(1): UID_B}
        with (
            closing(stack.backend.connect(stack.name(0))) as a,
            closing(stack.backend.connect(stack.name(1))) as b,
        ):
            for _ in range(3):
                assert a.transmit(GET_UID).data == UID_A
                assert b.transmit(GET_UID).data == UID_B
            stack.readers[1].remove()
            sub.wait_for(is_event(EventKind.CARD_REMOVED, stack.name(1)))
            assert a.transmit(GET_UID).data == UID_A
            with pytest.raises(CardRemoved):
                b.transmit(GET_UID)


# --- the service and the readers going away -------------------------------------------------


def test_service_restart_is_survived_without_restarting_anything(stack: Stack) -> None:
    monitor = ReaderMonitor(stack.backend)
    sub = monitor.hub.subscribe()
    with monitor:
        stack.readers[0].insert(_card())
        first = sub.wait_for(is_event(EventKind.CARD_PRESENT, stack.name(0))).payload
        conn = stack.backend.connect(stack.name(0))
        try:
            assert conn.transmit(GET_UID).data == UID_A
            stack.restart_service()
            sub.wait_for(is_event(EventKind.SERVICE_LOST))
            sub.wait_for(is_event(EventKind.SERVICE_RESTORED))
            again = sub.wait_for(is_event(EventKind.CARD_PRESENT, stack.name(0))).payload
            assert again.seq > first.seq
            assert again.uid == UID_A
            with pytest.raises(PcscUnavailable):
                conn.transmit(GET_UID)  # the old handle died with the old service
            conn.reconnect()
            assert conn.transmit(GET_UID).data == UID_A
        finally:
            conn.close()
        with closing(stack.backend.connect(stack.name(0))) as fresh:
            assert fresh.transmit(GET_UID).data == UID_A


def test_reader_unplugged_mid_sequence_fails_clearly(stack: Stack) -> None:
    monitor = ReaderMonitor(stack.backend, read_uid=False)
    sub = monitor.hub.subscribe()
    with monitor:
        stack.insert(0, _card(UID_A))
        stack.insert(1, _card(UID_B))
        with closing(stack.backend.connect(stack.name(0))) as conn:
            for apdu in SEQUENCE[:3]:
                assert conn.transmit(apdu).ok
            stack.unplug(0)
            with pytest.raises(UNPLUGGED[stack.kind]) as err:
                conn.transmit(SEQUENCE[3])
            assert stack.name(0) in str(err.value)
            with pytest.raises(ReaderUnavailable, match="ACR1252"):
                conn.reconnect()
        sub.wait_for(is_event(EventKind.READER_DETACHED, stack.name(0)))
        assert stack.name(0) not in stack.backend.list_readers()
        with pytest.raises(ReaderUnavailable):
            stack.backend.connect(stack.name(0))
        stack.wait_until(1, True)
        with closing(stack.backend.connect(stack.name(1))) as other:
            assert other.transmit(GET_UID).data == UID_B


# --- cards pulled at every APDU of a multi-APDU sequence ----------------------------------


def _run_until_error(stack: Stack, arm: str, n: int) -> tuple[int, CardDaemonError]:
    """Fresh card, fault ``arm`` at APDU ``n``; returns (APDU number that failed, error)."""
    reader = stack.readers[0]
    if reader.card is not None:
        stack.remove(0)
    else:
        stack.wait_until(0, False)
    stack.insert(0, _card())
    with closing(stack.backend.connect(stack.name(0))) as conn:
        reader.faults.clear()
        reader.faults.arm()
        getattr(reader.faults, arm)(n)
        for i, apdu in enumerate(SEQUENCE, start=1):
            try:
                response = conn.transmit(apdu)
            except CardDaemonError as exc:
                return i, exc
            assert response.ok, f"APDU {i} answered {response.sw:04X}"
    raise AssertionError(f"{arm}({n}) raised nothing")


@pytest.mark.parametrize("n", STEPS)
def test_card_pulled_before_each_apdu(stack: Stack, n: int) -> None:
    failed, error = _run_until_error(stack, "remove_before", n)
    assert failed == n
    assert isinstance(error, PULLED_BEFORE[stack.kind])
    assert stack.name(0) in str(error)


@pytest.mark.parametrize("n", STEPS)
def test_card_pulled_after_each_apdu(stack: Stack, n: int) -> None:
    failed, error = _run_until_error(stack, "remove_after", n)
    assert failed == n + 1
    assert isinstance(error, AFTER_PULL[stack.kind])


@pytest.mark.parametrize("arm", ["lose_response", "tear"])
@pytest.mark.parametrize("n", STEPS)
def test_executed_command_without_answer_is_never_called_removed(
    stack: Stack, arm: str, n: int
) -> None:
    failed, error = _run_until_error(stack, arm, n)
    assert failed == n
    assert isinstance(error, ResponseLost)  # may have executed: never CardRemoved


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("garbage", "words"),
    [(b"\x90", "answered 1 byte"), (bytes(300) + b"\x90\x00", "answered 302 bytes")],
    ids=["one-byte", "oversized"],
)
def test_garbage_answer_is_a_typed_error_naming_reader_and_command(
    stack: Stack, garbage: bytes, words: str
) -> None:
    stack.insert(0, _card())
    with closing(stack.backend.connect(stack.name(0))) as conn:
        stack.readers[0].garbage = garbage
        with pytest.raises(ReaderBadResponse) as err:
            conn.transmit(SEQUENCE[2])
        assert stack.name(0) in str(err.value)
        assert f"{words} to FF B0 00 04 (READ BINARY)" in str(err.value)
        stack.readers[0].garbage = None
        assert conn.transmit(GET_UID).data == UID_A


def test_empty_answer_is_a_lost_response_on_both_paths(stack: Stack) -> None:
    stack.insert(0, _card())
    with closing(stack.backend.connect(stack.name(0))) as conn:
        stack.readers[0].garbage = b""
        with pytest.raises(ResponseLost) as err:
            conn.transmit(SEQUENCE[2])
        assert stack.name(0) in str(err.value)


KEY = bytes.fromhex("5A1B2C3D4E6F")


UNKNOWN_SW = bytes.fromhex("9F42")
# (operation, its INS, the broken answer, the error, what the message must say)
GARBAGE_CASES = {
    "read-unknown-sw": ("read", UNKNOWN_SW, ReaderBadResponse, "unknown status word 9F 42"),
    "read-short": ("read", bytes.fromhex("0102 9000"), ReaderBadResponse, "got 2"),
    "read-long": ("read", bytes(17) + b"\x90\x00", ReaderBadResponse, "got 17"),
    "key-unknown-sw": ("key", UNKNOWN_SW, ReaderBadResponse, "unknown status word 9F 42"),
    "key-1-byte": ("key", b"\x90", ReaderBadResponse, "1 byte to FF 82 00 00 (LOAD KEY)"),
    "write-unknown-sw": ("write", UNKNOWN_SW, WriteUnconfirmed, "unknown status word 9F 42"),
    "write-oversized": ("write", bytes(300), WriteUnconfirmed, "answered garbage"),
}
OPERATIONS: dict[str, tuple[int, str, Callable[[StorageCard], object]]] = {
    "key": (0x82, "LOAD KEY structure 0x00 slot 0", lambda card: card.load_key(KEY, 0)),
    "read": (0xB0, "READ BINARY block 4", lambda card: card.read_block(4)),
    "write": (0xD6, "UPDATE BINARY block 4", lambda card: card.write_block(4, NEW_DATA)),
}


@pytest.mark.parametrize("case", GARBAGE_CASES)
def test_storage_card_names_reader_and_command_for_garbage_on_both_paths(
    stack: Stack, case: str
) -> None:
    """A broken reader: typed error naming reader and command, never a crash or key bytes; a
    write answered with garbage may have happened (``WriteUnconfirmed``)."""
    op, answer, expected, words = GARBAGE_CASES[case]
    ins, command, run = OPERATIONS[op]
    stack.insert(0, _card())
    reader = stack.readers[0]
    with StorageCard(stack.backend.connect(stack.name(0))) as card:
        card.load_key(b"\xff" * 6, 0)
        card.authenticate(4, KeyType.A, 0)
        reader.garbage, reader.garbage_ins = answer, ins
        with pytest.raises(expected) as err:
            run(card)
        reader.garbage = None
        message = str(err.value)
        assert f"reader {stack.name(0)!r}: {command}: " in message
        assert words in message
        assert KEY.hex().upper() not in message.upper().replace(" ", "")
        assert card.uid() == UID_A  # the reader layer goes on working


def test_unknown_reader_and_empty_reader(stack: Stack) -> None:
    with pytest.raises(ReaderUnavailable, match="No Such Reader"):
        stack.backend.connect("No Such Reader 00 00")
    with pytest.raises(ReaderUnavailable, match="Bad"):  # pyscard cannot even pass it on
        stack.backend.connect("Bad\x00Name 00 00")  # (and no PC/SC context is left open)
    stack.wait_until(1, False)
    with pytest.raises(CardAbsent):
        stack.backend.connect(stack.name(1))


def test_reconnect_drops_authentication_and_closed_connection_refuses(stack: Stack) -> None:
    stack.insert(0, _card())
    with closing(stack.backend.connect(stack.name(0))) as conn:
        for apdu in SEQUENCE[:3]:
            assert conn.transmit(apdu).ok
        conn.reconnect()
        assert not conn.transmit(SEQUENCE[2]).ok  # READ without authentication: refused
        conn.reconnect()  # the refusal (a NAK) left the chip silent until re-selected
        assert conn.transmit(SEQUENCE[1]).ok  # the volatile key slot survives a re-select
        assert conn.transmit(SEQUENCE[2]).ok
        conn.reconnect(reset=True)
        assert not conn.transmit(SEQUENCE[2]).ok
        conn.close()
        conn.close()
        with pytest.raises(ReaderUnavailable, match="closed"):
            conn.transmit(GET_UID)


def test_failed_authentication_needs_a_reconnect(stack: Stack) -> None:
    stack.insert(0, _card())
    with closing(stack.backend.connect(stack.name(0))) as conn:
        assert conn.transmit(bytes.fromhex("FF82000106A0A1A2A3A4A5")).ok  # LOAD KEY slot 1
        assert conn.transmit(SEQUENCE[0]).ok  # LOAD KEY slot 0: the right key
        assert not conn.transmit(bytes.fromhex("FF860000050100046001")).ok  # wrong key (slot 1)
        assert not conn.transmit(SEQUENCE[1]).ok  # the chip stays silent until re-selected
        conn.reconnect()
        assert conn.transmit(SEQUENCE[1]).ok
        assert conn.transmit(SEQUENCE[2]).ok


# --- what the storage-card layer makes of it: identical on both paths -----------------------


def _read_or_write(card: StorageCard, op: str) -> None:
    if op == "read":
        card.read_block(4)
    else:
        card.write_block(4, NEW_DATA)


@pytest.mark.parametrize(
    ("arm", "op", "expected"),
    [
        ("remove_before", "read", CardRemoved),  # nothing changed: present the card again
        ("lose_response", "read", CardRemoved),
        ("remove_before", "write", WriteUnconfirmed),  # outcome unknown: resolve by reading
        ("tear", "write", WriteUnconfirmed),
        ("lose_response", "write", WriteUnconfirmed),
    ],
)
def test_storage_card_semantics_are_the_same_on_both_paths(
    stack: Stack, arm: str, op: str, expected: type[Exception]
) -> None:
    stack.insert(0, _card())
    reader = stack.readers[0]
    with StorageCard(stack.backend.connect(stack.name(0))) as card:
        assert card.uid() == UID_A
        reader.faults.arm()
        getattr(reader.faults, arm)(3)  # LOAD KEY, AUTHENTICATE, then the read or the write
        card.load_key(b"\xff" * 6, 0)
        card.authenticate(4, KeyType.A, 0)
        with pytest.raises(expected) as err:
            _read_or_write(card, op)
        assert stack.name(0) in str(err.value)


# --- key bytes ---------------------------------------------------------------------------------


def test_key_bytes_reach_no_log_error_or_trace_on_either_path(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger (vpcd bridge, pyscard backend, trace at TRACE level) and pcscd's own log."""
    key = KEY
    caplog.set_level(1)
    stack.insert(0, _card())
    with StorageCard(stack.backend.connect(stack.name(0))) as card:
        card.load_key(key, 1)
        with pytest.raises(CardCommandFailed) as err:  # wrong key: ACS answers 63 00
            card.authenticate(4, KeyType.A, 1)
        texts = [str(err.value), repr(err.value), caplog.text, *card.trace.lines()]
    assert "FF 82 00 01 06 ** ** ** ** ** **" in caplog.text  # the trace was dumped, masked
    if stack.pcscd is not None:
        assert stack.pcscd.log_path.exists()
        texts.append(stack.pcscd.log_path.read_text(errors="replace"))
    for text in texts:
        assert key.hex().upper() not in text.upper().replace(" ", "")


# --- reader housekeeping through transmit -------------------------------------------------------


def test_firmware_and_led_buzzer_through_transmit_on_both_paths(stack: Stack) -> None:
    """ACS answers the firmware query and LED/buzzer pseudo-APDUs through transmit (vpcd
    forwards no SCardControl); the OMNIKEY dialect refuses feedback before sending anything."""
    stack.insert(0, _card())
    stack.insert(1, _card(UID_B))
    with StorageCard(stack.backend.connect(stack.name(0))) as acs:
        assert acs.firmware() == "ACR1252U_V202.2"
        acs.feedback(True)
        acs.feedback(False)
        lines = acs.trace.lines()
    assert lines[-2].startswith("#2 LED BUZZER success: > FF 00 40 A0 04 01 01 01 01 < [90 ")
    assert lines[-1].startswith("#3 LED BUZZER failure: > FF 00 40 50 04 02 02 02 01 < [90 ")
    with StorageCard(stack.backend.connect(stack.name(1))) as omnikey:
        with pytest.raises(ReaderUnsupported, match="LED"):
            omnikey.feedback(True)
        assert omnikey.trace.count == 0


def test_reader_pool_fed_by_the_monitor_recovers_from_a_service_restart(stack: Stack) -> None:
    """The whole reader layer as the daemon wires it: after pcscd is killed and comes back,
    jobs run again on fresh workers; nothing is restarted by hand."""
    name = stack.name(0)

    def read_uid(ctx: JobContext) -> bytes:
        return ctx.connection.transmit(GET_UID).data

    monitor = ReaderMonitor(stack.backend, read_uid=False)
    sub = monitor.hub.subscribe()
    with ReaderPool(stack.backend.connect) as pool:
        monitor.subscribe(pool.handle_event)
        with monitor:
            stack.insert(0, _card())
            sub.wait_for(is_event(EventKind.CARD_PRESENT, name))
            before = pool.worker(name)
            assert pool.submit(name, read_uid, time.monotonic() + 10).result(10) == UID_A
            stack.restart_service()
            sub.wait_for(is_event(EventKind.READER_DETACHED, name))
            sub.wait_for(is_event(EventKind.SERVICE_RESTORED))
            sub.wait_for(is_event(EventKind.CARD_PRESENT, name))
            with pytest.raises(ReaderUnavailable, match="worker closed"):
                before.submit(read_uid, time.monotonic() + 10)  # closed with the old service
            assert pool.submit(name, read_uid, time.monotonic() + 10).result(10) == UID_A

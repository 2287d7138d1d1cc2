"""pyscard-backend behaviour that only the real stack has: sharing, a stopped service."""

from __future__ import annotations

import os
import threading
from contextlib import closing

import pytest

from daemon.errors import (
    CardAbsent,
    CardRemoved,
    OperationTimeout,
    PcscUnavailable,
    ReaderBusy,
    ReaderError,
    ReaderUnavailable,
    ResponseLost,
)
from daemon.readers.pcsc import map_pcsc_error
from sim.store import transport_card
from tests.pcscd_stack import Stack

GET_UID = bytes.fromhex("FFCA000000")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0x80100069, CardRemoved),  # SCARD_W_REMOVED_CARD
        (0x80100068, CardRemoved),  # SCARD_W_RESET_CARD
        (0x80100067, CardRemoved),  # SCARD_W_UNPOWERED_CARD
        (0x8010000C, CardRemoved),  # SCARD_E_NO_SMARTCARD
        (0x80100016, ResponseLost),  # SCARD_E_NOT_TRANSACTED
        (0x80100013, ResponseLost),  # SCARD_F_COMM_ERROR
        (0x80100017, ReaderUnavailable),  # SCARD_E_READER_UNAVAILABLE
        (0x80100009, ReaderUnavailable),  # SCARD_E_UNKNOWN_READER
        (0x8010002E, ReaderUnavailable),  # SCARD_E_NO_READERS_AVAILABLE
        (0x8010001D, PcscUnavailable),  # SCARD_E_NO_SERVICE
        (0x8010001E, PcscUnavailable),  # SCARD_E_SERVICE_STOPPED
        (0x80100003, PcscUnavailable),  # SCARD_E_INVALID_HANDLE
        (0x8010000B, ReaderBusy),  # SCARD_E_SHARING_VIOLATION
        (0x8010000A, OperationTimeout),  # SCARD_E_TIMEOUT
        (0x80100001, ReaderError),  # SCARD_F_INTERNAL_ERROR
    ],
)
def test_pcsc_codes_map_to_typed_errors(code: int, cls: type[Exception]) -> None:
    error = map_pcsc_error(code, "reader 'R': FF B0 00 04 (READ BINARY)")
    assert type(error) is cls
    assert "reader 'R'" in str(error)
    assert "READ BINARY" in str(error)
    assert f"0x{code:08X}" in str(error)
    signed = code - (1 << 32)  # pyscard may hand out signed 32-bit values
    assert type(map_pcsc_error(signed, "x")) is cls


def test_no_card_at_connect_is_card_absent() -> None:
    assert type(map_pcsc_error(0x8010000C, "x", connecting=True)) is CardAbsent
    assert type(map_pcsc_error(0x80100069, "x", connecting=True)) is CardAbsent
    assert type(map_pcsc_error(0x80100068, "x", connecting=True)) is CardRemoved


def test_exclusive_connection_makes_others_busy_on_both_paths(stack: Stack) -> None:
    """PC/SC sharing: nobody joins an exclusive holder, an exclusive connect waits for nobody
    (the simulator must not be more lenient than pcscd here)."""
    stack.insert(0, transport_card())
    stack.insert(1, transport_card())
    with closing(stack.backend.connect(stack.name(0), exclusive=True)) as owner:
        with pytest.raises(ReaderBusy, match="exclusively") as err:
            stack.backend.connect(stack.name(0))
        assert stack.name(0) in str(err.value)
        assert owner.transmit(GET_UID).ok
        with closing(stack.backend.connect(stack.name(1))):  # another reader is not affected
            pass
    with closing(stack.backend.connect(stack.name(0))) as shared:
        assert shared.transmit(GET_UID).ok
        with pytest.raises(ReaderBusy, match=stack.name(0)):
            stack.backend.connect(stack.name(0), exclusive=True)
        with closing(stack.backend.connect(stack.name(0))) as second:  # shared + shared is fine
            assert second.transmit(GET_UID).ok
    with closing(stack.backend.connect(stack.name(0), exclusive=True)) as alone:
        assert alone.transmit(GET_UID).ok


@pytest.mark.pcscd
@pytest.mark.parametrize("stack", ["pcsc"], indirect=True)
def test_stopped_service_is_pcsc_unavailable_then_recovers(stack: Stack) -> None:
    assert stack.pcscd is not None
    stack.insert(0, transport_card())
    stack.pcscd.stop()
    try:
        with pytest.raises(PcscUnavailable):
            stack.backend.list_readers()
        with pytest.raises(PcscUnavailable):
            stack.backend.connect(stack.name(0))
        with pytest.raises(PcscUnavailable):
            stack.backend.wait_for_change(None, 0)
    finally:
        stack.pcscd.start()
    stack.wait_until(0, True)
    with closing(stack.backend.connect(stack.name(0))) as conn:
        assert conn.transmit(GET_UID).data == bytes.fromhex("11223344")


def _pcsc_sockets() -> int:
    """Unix sockets of this process (each PC/SC context holds one to pcscd)."""
    return sum(
        os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


@pytest.mark.pcscd
@pytest.mark.parametrize("stack", ["pcsc"], indirect=True)
def test_status_wait_contexts_of_ended_threads_are_released(stack: Stack) -> None:
    """A monitor stopped and started again waits on a new thread: the old thread's context
    must not stay open until the backend closes."""

    def one_wait() -> None:
        stack.backend.wait_for_change(None, 0)

    counts = []
    for _ in range(4):
        thread = threading.Thread(target=one_wait, name="status-wait")
        thread.start()
        thread.join()
        counts.append(_pcsc_sockets())
    assert counts[-1] <= counts[0]

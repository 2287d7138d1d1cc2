"""The vpcd wire protocol, byte for byte, against a loopback stand-in for pcscd's vpcd driver.

The test plays vpcd: it listens, the bridge (card side) connects when a card is present.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from daemon.errors import ConfigError, InvalidArgument, OperationTimeout, ReaderUnavailable
from sim.pcscd import PrivatePcscd, free_port_pair, redact_apdu_log
from sim.reader import SimReader
from sim.store import transport_card
from sim.vpcd import VpcdBridge, VpcdSlotServer

ATR_1K = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


@pytest.fixture
def vpcd() -> Iterator[socket.socket]:
    """A listening socket standing in for ifd-vpcd."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    yield server
    server.close()


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def _send(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(struct.pack(">H", len(payload)) + payload)


def _recv(conn: socket.socket) -> bytes:
    header = conn.recv(2, socket.MSG_WAITALL)
    if len(header) < 2:
        return b""  # the card side closed: no answer
    (length,) = struct.unpack(">H", header)
    return conn.recv(length, socket.MSG_WAITALL)


def test_controls_and_apdus_on_the_wire(vpcd: socket.socket) -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    with VpcdBridge([(reader, _port(vpcd))]) as bridge:
        conn, _ = vpcd.accept()
        with conn:
            conn.settimeout(5)
            bridge.wait_connected()
            _send(conn, b"\x01")  # 00 01 01: power on, no answer
            _send(conn, b"\x04")  # 00 01 04: get ATR
            assert _recv(conn) == ATR_1K
            _send(conn, bytes.fromhex("FFCA000000"))  # GET DATA UID
            assert _recv(conn) == bytes.fromhex("11223344 9000")
            _send(conn, b"\x02")  # reset: no answer; the next frame is the next answer
            _send(conn, bytes.fromhex("FFB0000410"))  # READ BINARY block 4, not authenticated
            assert _recv(conn) == bytes.fromhex("6300")  # ACS: every failure is 63 00
    assert bridge.slots[0].apdus == 2


def test_card_pulled_mid_command_closes_without_answer_then_reinserts(
    vpcd: socket.socket,
) -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    with VpcdBridge([(reader, _port(vpcd))]) as bridge:
        first, _ = vpcd.accept()
        with first:
            first.settimeout(5)
            reader.faults.lose_response(1)  # executes, answer lost, card stays
            _send(first, bytes.fromhex("FFCA000000"))
            assert _recv(first) == b""
        second, _ = vpcd.accept()  # still in the field: the bridge reconnects (re-insertion)
        with second:
            second.settimeout(5)
            reader.faults.remove_before(2)
            _send(second, bytes.fromhex("FFCA000000"))
            assert _recv(second) == b""
        assert reader.card is None
        assert bridge.slots[0].connects == 2


def test_removal_closes_the_socket(vpcd: socket.socket) -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    with VpcdBridge([(reader, _port(vpcd))]):
        conn, _ = vpcd.accept()
        with conn:
            conn.settimeout(5)
            reader.remove()
            assert conn.recv(2) == b""


def test_bridge_bad_input_and_lifecycle(vpcd: socket.socket) -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    bridge = VpcdBridge()
    nobody = free_port_pair()
    slot = bridge.serve(reader, nobody)  # nothing listens there: keeps retrying quietly
    with pytest.raises(InvalidArgument, match=str(nobody)):
        bridge.serve(reader, nobody)
    with pytest.raises(OperationTimeout, match=str(nobody)):
        slot.wait_connected(0.1)
    bridge.close()
    bridge.close()
    with pytest.raises(ReaderUnavailable, match="closed"):
        bridge.serve(reader, _port(vpcd))


@pytest.mark.parametrize(
    "readers",
    [[], ["a", "a"], ['quo"te'], ["new\nline"]],
    ids=["none", "duplicate", "quote", "newline"],
)
def test_private_pcscd_rejects_bad_reader_names(readers: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        PrivatePcscd(readers)
    assert err.value.key == "readers"


@pytest.mark.pcscd
def test_private_pcscd_unknown_slot_is_named() -> None:
    pcscd = PrivatePcscd(["Only One"], debug=False)
    with pcscd:
        with pytest.raises(ConfigError, match="Nope"):
            pcscd.slot("Nope")
        assert pcscd.slots[0].reader_name == "Only One 00 00"
        assert pcscd.log_path.exists()
    pcscd.close()
    assert not pcscd.running
    assert not pcscd.log_path.parent.exists()  # the log (and the whole temp dir) is gone


def test_pcscd_apdu_log_is_redacted_where_it_is_quoted() -> None:
    log = (
        "00000002 APDU: FF 82 00 00 06 A0 A1 A2 A3 A4 A5 \n"  # LOAD KEY
        "00000169 SW: 90 00 \n"
        "00000003 APDU: FF D6 00 07 10 A0 A1 A2 A3 A4 A5 FF 07 80 69 B0 B1 B2 B3 B4 B5 \n"
        "00000001 APDU: FF B0 00 07 10 \n"  # READ BINARY of a trailer: key B may be readable
        "00000110 SW: 00 00 00 00 00 00 FF 07 80 69 B0 B1 B2 B3 B4 B5 90 00 \n"
    )
    assert redact_apdu_log(log).splitlines() == [
        "00000002 APDU: FF 82 00 00 ..",
        "00000169 SW: 90 00 ",
        "00000003 APDU: FF D6 00 07 ..",
        "00000001 APDU: FF B0 00 07 ..",
        "00000110 SW: .. 90 00 ",
    ]


class BuggyReader(SimReader):
    def process(self, apdu: bytes, *, generation: int | None = None) -> bytes:
        raise RuntimeError("simulator bug")


def test_simulator_bug_drops_the_answer_but_not_the_slot(vpcd: socket.socket) -> None:
    reader = BuggyReader("R 00 00")
    reader.insert(transport_card())
    with VpcdBridge([(reader, _port(vpcd))]) as bridge:
        first, _ = vpcd.accept()
        with first:
            first.settimeout(5)
            _send(first, bytes.fromhex("FFCA000000"))
            assert _recv(first) == b""
        second, _ = vpcd.accept()  # the slot thread lived on and reconnected
        second.close()
        assert bridge.slots[0].apdus == 1


def test_a_single_slot_is_a_context_manager_and_close_is_idempotent(vpcd: socket.socket) -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    with VpcdSlotServer(reader, _port(vpcd)) as slot:
        conn, _ = vpcd.accept()
        with conn:
            conn.settimeout(5)
            slot.wait_connected()
            _send(conn, bytes.fromhex("FFCA000000"))  # GET DATA UID
            assert _recv(conn) == bytes.fromhex("11223344 9000")
            slot.close()
            assert conn.recv(2) == b""  # pcscd sees the card leave
    assert not slot.connected
    slot.close()

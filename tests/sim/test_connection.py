"""SimConnection: the CardConnection protocol over a simulated reader, errors mapped."""

from __future__ import annotations

import pytest

from daemon.errors import CardAbsent, CardRemoved, ReaderUnavailable, ResponseLost
from daemon.readers.connection import CardConnection
from sim.reader import SimReader
from sim.store import transport_card


def test_connection_protocol_and_errors() -> None:
    reader = SimReader()
    with pytest.raises(CardAbsent, match="no card"):
        reader.connect()
    reader.insert(transport_card())
    with reader.connect() as conn:
        assert isinstance(conn, CardConnection)
        assert conn.reader_name == "ACS ACR1252 1S CL Reader PICC 00 00"
        assert conn.atr == reader.atr
        r = conn.transmit(bytes.fromhex("FF CA 00 00 00"))  # GET DATA UID
        assert (r.data.hex(), r.sw) == ("11223344", 0x9000)
        reader.faults.lose_response(reader.faults.count + 1)
        with pytest.raises(ResponseLost):
            conn.transmit(bytes.fromhex("FF CA 00 00 00"))  # GET DATA UID, answer lost
        card = reader.remove()
        assert card is not None
        with pytest.raises(CardRemoved):
            conn.transmit(bytes.fromhex("FF CA 00 00 00"))  # GET DATA UID, card gone
        reader.insert(card)
        with pytest.raises(CardRemoved):  # same card back: stale handle until reconnect
            conn.transmit(bytes.fromhex("FF CA 00 00 00"))
        conn.reconnect()
        assert conn.transmit(bytes.fromhex("FF CA 00 00 00")).ok  # GET DATA UID
        reader.unplug()
        with pytest.raises(ReaderUnavailable):
            conn.transmit(bytes.fromhex("FF CA 00 00 00"))
    conn.close()  # idempotent
    with pytest.raises(ReaderUnavailable, match="closed"):
        conn.transmit(bytes.fromhex("FF CA 00 00 00"))


def test_reconnect_errors_and_new_card() -> None:
    reader = SimReader(model="omnikey5x21")
    reader.insert(transport_card())
    conn = reader.connect()
    reader.remove()
    with pytest.raises(CardAbsent):
        conn.reconnect()
    reader.insert(transport_card(bytes.fromhex("55667788"), size="4k"))
    conn.reconnect()  # talks to the new card now
    assert conn.atr == reader.atr
    assert conn.transmit(bytes.fromhex("FF CA 00 00 00")).data == bytes.fromhex("55667788")
    reader.unplug()
    with pytest.raises(ReaderUnavailable, match="unplugged"):
        conn.reconnect()
    conn.close()
    with pytest.raises(ReaderUnavailable, match="closed"):
        conn.reconnect()


def test_acr122u_firmware_through_a_connection_splits_like_pyscard() -> None:
    reader = SimReader(model="acr122u")
    reader.insert(transport_card())
    with reader.connect() as conn:
        r = conn.transmit(bytes.fromhex("FF 00 48 00 00"))  # GET FIRMWARE: no SW on ACR122U
        assert r.data + bytes((r.sw1, r.sw2)) == b"ACR122U207"

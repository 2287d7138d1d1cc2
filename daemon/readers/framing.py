"""Sanity checks on raw reader answers, shared by every backend.

A reader that answers garbage must produce a typed error naming the reader and the command, and
nothing here may ever put key bytes in a message: commands are named by their 4-byte header
(CLA INS P1 P2) only, never by their data field (LOAD KEY carries the key there).
"""

from __future__ import annotations

from daemon.errors import ReaderBadResponse, ResponseLost
from daemon.readers.connection import Response

__all__ = ["MAX_RESPONSE_BYTES", "check_response", "command_label"]

MAX_RESPONSE_BYTES = 258  # 256 data bytes + SW1 SW2 (short APDUs)

_INS_NAMES = {
    0x00: "DIRECT TRANSMIT",
    0x40: "LED/BUZZER",
    0x48: "FIRMWARE",
    0x82: "LOAD KEY",
    0x86: "GENERAL AUTHENTICATE",
    0x88: "AUTHENTICATE",
    0xB0: "READ BINARY",
    0xB1: "READ VALUE",
    0xCA: "GET DATA",
    0xD4: "INCREMENT",
    0xD6: "UPDATE BINARY",
    0xD7: "VALUE BLOCK",
    0xD8: "DECREMENT",
}


def command_label(apdu: bytes) -> str:
    """``"FF B0 00 04 (READ BINARY)"``: the header only, so key bytes never reach a message."""
    header = " ".join(f"{b:02X}" for b in apdu[:4])
    if len(apdu) < 4:
        return f"{header or 'empty command'} (truncated command)"
    name = _INS_NAMES.get(apdu[1], f"INS {apdu[1]:02X}") if apdu[0] == 0xFF else "ISO"
    return f"{header} ({name})"


def check_response(reader: str, apdu: bytes, raw: bytes) -> Response:
    """Split a raw answer; 0 bytes is a lost response, 1 or > 258 bytes is garbage."""
    if not raw:
        raise ResponseLost(f"reader {reader!r} returned no answer to {command_label(apdu)}")
    if len(raw) < 2:
        raise ReaderBadResponse(
            f"reader {reader!r} answered {len(raw)} byte to {command_label(apdu)}: no status word"
        )
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ReaderBadResponse(
            f"reader {reader!r} answered {len(raw)} bytes to {command_label(apdu)}"
            f" (more than {MAX_RESPONSE_BYTES})"
        )
    return Response.from_bytes(raw)

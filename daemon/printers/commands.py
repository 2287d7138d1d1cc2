"""ESC/POS command bytes, one function per command, named as in the Epson reference.

The encoder composes these; golden tests compare against hex literals so a changed byte shows up
as a named command in the diff.
"""

from __future__ import annotations

__all__ = [
    "BOLD_OFF",
    "BOLD_ON",
    "DLE_EOT_ALL",
    "GS_R_PAPER",
    "INIT",
    "KANJI_OFF",
    "KANJI_ON",
    "LF",
    "align",
    "barcode_code128",
    "code_page",
    "cut",
    "dle_eot",
    "drawer_kick",
    "feed_lines",
    "qr_code",
    "raster_image",
    "size",
]

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
DLE = b"\x10"

LF = b"\n"
INIT = ESC + b"@"  # ESC @ initialise printer
BOLD_ON = ESC + b"E\x01"  # ESC E 1
BOLD_OFF = ESC + b"E\x00"  # ESC E 0
KANJI_ON = FS + b"&"  # FS & select Kanji (Chinese) character mode
KANJI_OFF = FS + b"."  # FS . cancel Kanji character mode
GS_R_PAPER = GS + b"r\x01"  # GS r 1: paper sensor status, answered in buffer order


def dle_eot(n: int) -> bytes:
    """DLE EOT n: real-time status (1 printer, 2 offline cause, 3 error cause, 4 paper)."""
    if n not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT n must be 1..4, got {n}")
    return DLE + b"\x04" + bytes([n])


#: All four real-time status requests in one write; the printer answers four bytes in order.
DLE_EOT_ALL = b"".join(dle_eot(n) for n in (1, 2, 3, 4))


def align(where: str) -> bytes:
    """ESC a n: 0 left, 1 centre, 2 right."""
    return ESC + b"a" + bytes([{"left": 0, "center": 1, "right": 2}[where]])


def size(width: int = 1, height: int = 1) -> bytes:
    """GS ! n: character size multipliers 1..8 (applies to Kanji too)."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError("size multipliers must be 1..8")
    return GS + b"!" + bytes([(width - 1) << 4 | (height - 1)])


def code_page(n: int) -> bytes:
    """ESC t n: select the single-byte character table."""
    return ESC + b"t" + bytes([n])


def feed_lines(n: int) -> bytes:
    """ESC d n: print and feed n lines."""
    return ESC + b"d" + bytes([n])


def cut(partial: bool) -> bytes:
    """GS V 66 n: feed to the cutter (n=3 lines past the print position) and cut."""
    return GS + b"V" + bytes([66 if partial else 65, 3])


def drawer_kick(pin: int, pulse_ms: int) -> bytes:
    """ESC p m t1 t2: pulse drawer kick pin 2 (m=0) or pin 5 (m=1); t in 2 ms units."""
    if pin not in (2, 5):
        raise ValueError(f"drawer pin must be 2 or 5, got {pin}")
    units = max(1, min(255, pulse_ms // 2))
    return ESC + b"p" + bytes([0 if pin == 2 else 1, units, units])


def qr_code(data: bytes, module_size: int = 6, ec: str = "M") -> bytes:
    """GS ( k: QR model 2, set module size and error correction, store data, print."""
    ec_byte = {"L": 48, "M": 49, "Q": 50, "H": 51}[ec]
    store_len = len(data) + 3
    return (
        GS
        + b"(k\x04\x00\x31\x41\x32\x00"  # fn 165: model 2
        + GS
        + b"(k\x03\x00\x31\x43"
        + bytes([module_size])  # fn 167: module size
        + GS
        + b"(k\x03\x00\x31\x45"
        + bytes([ec_byte])  # fn 169: error correction
        + GS
        + b"(k"
        + store_len.to_bytes(2, "little")
        + b"\x31\x50\x30"
        + data  # fn 180: store
        + GS
        + b"(k\x03\x00\x31\x51\x30"  # fn 181: print
    )


def barcode_code128(data: str, height: int = 80, module_width: int = 2) -> bytes:
    """GS h / GS w / GS H / GS k 73: CODE128 code set B with HRI text below."""
    payload = b"{B" + data.encode("ascii")
    return (
        GS
        + b"h"
        + bytes([height])
        + GS
        + b"w"
        + bytes([module_width])
        + GS
        + b"H\x02"
        + GS
        + b"k\x49"
        + bytes([len(payload)])
        + payload
    )


def raster_image(width_bytes: int, height: int, bits: bytes) -> bytes:
    """GS v 0 m xL xH yL yH d...: one raster bit image, 1 = black, MSB leftmost."""
    if len(bits) != width_bytes * height:
        raise ValueError("raster data length does not match width x height")
    return GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + height.to_bytes(2, "little") + bits

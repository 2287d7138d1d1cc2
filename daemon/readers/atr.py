"""Decode the ATR a PC/SC Part 3 reader synthesises for a contactless card.

``3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00 TCK``: ``SS`` is the standard
(03 = ISO 14443 A part 3), ``NN NN`` the card name (00 01 = MIFARE Classic 1K). Standard PC/SC
does not expose SAK/ATQA, so this is the card type the daemon can know before touching the card;
it is a hint (some readers use other codes): behaviour decides. Decoding never raises: a
malformed ATR gives ``card_type == "unknown"`` and a ``problem`` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CARD_NAMES", "PCSC_RID", "AtrInfo", "card_type", "decode_atr"]

PCSC_RID = bytes.fromhex("A000000306")

CARD_NAMES: dict[int, str] = {
    0x0001: "MIFARE Classic 1K",
    0x0002: "MIFARE Classic 4K",
    0x0003: "MIFARE Ultralight",
    0x0026: "MIFARE Mini",
    0x003A: "MIFARE Ultralight C",
    0x0006: "ST SR176",
    0x0007: "ST SRI X4K",
    0x0012: "TI Tag-it",
    0x0014: "NXP ICODE SLI",
}

_STANDARDS: dict[int, str] = {
    0x00: "none",
    0x03: "ISO 14443 A part 3",
    0x04: "ISO 14443 A part 4",
    0x07: "ISO 14443 B part 3",
    0x0B: "ISO 15693 part 3",
}


@dataclass(frozen=True, slots=True)
class AtrInfo:
    """What an ATR says; ``card_type`` is ``"unknown"`` when it says nothing we know."""

    atr: bytes
    card_type: str
    pcsc_part3: bool = False
    standard: str | None = None
    card_name_code: int | None = None
    historical: bytes = b""
    checksum_ok: bool | None = None
    problem: str | None = None


def _interface_bytes(atr: bytes) -> tuple[int, bool, str | None]:
    """Index of the first historical byte, whether a TCK is present, and a problem."""
    y = atr[1] >> 4
    pos = 2
    needs_tck = False
    while True:
        count = bin(y).count("1")
        has_td = bool(y & 0x8)
        if pos + count > len(atr):
            return pos, needs_tck, "interface bytes run past the end"
        if not has_td:
            return pos + count, needs_tck, None
        td = atr[pos + count - 1]
        if td & 0x0F:
            needs_tck = True
        y = td >> 4
        pos += count


def decode_atr(atr: bytes) -> AtrInfo:
    """Parse ``atr``; never raises."""
    atr = bytes(atr)
    if len(atr) < 2:
        return AtrInfo(atr, "unknown", problem=f"ATR of {len(atr)} bytes is too short")
    if atr[0] not in (0x3B, 0x3F):
        return AtrInfo(atr, "unknown", problem=f"TS {atr[0]:02X} is not 3B or 3F")
    start, has_tck, problem = _interface_bytes(atr)
    if problem is not None:
        return AtrInfo(atr, "unknown", problem=problem)
    k = atr[1] & 0x0F
    end = start + k
    if end + (1 if has_tck else 0) != len(atr):
        want = end + (1 if has_tck else 0)
        return AtrInfo(atr, "unknown", problem=f"length {len(atr)}, T0 says {want}")
    historical = atr[start:end]
    checksum_ok: bool | None = None
    if has_tck:
        x = 0
        for b in atr[1:]:
            x ^= b
        checksum_ok = x == 0
        if not checksum_ok:
            return AtrInfo(
                atr, "unknown", historical=historical, checksum_ok=False, problem="bad TCK"
            )
    return _decode_historical(atr, historical, checksum_ok)


def _decode_historical(atr: bytes, hist: bytes, checksum_ok: bool | None) -> AtrInfo:
    part3 = (
        len(hist) >= 15
        and hist[0] == 0x80
        and hist[1] == 0x4F
        and hist[2] >= 0x0C
        and hist[3:8] == PCSC_RID
    )
    if not part3:
        kind = "ISO 14443-4 card" if atr[1:4] == bytes((0x80 | len(hist), 0x80, 0x01)) else None
        return AtrInfo(
            atr,
            kind or "unknown",
            historical=hist,
            checksum_ok=checksum_ok,
            problem=None if kind else "not a PC/SC Part 3 storage-card ATR",
        )
    ss = hist[8]
    code = (hist[9] << 8) | hist[10]
    name = CARD_NAMES.get(code)
    return AtrInfo(
        atr,
        name or f"PC/SC card name {code:04X}",
        pcsc_part3=True,
        standard=_STANDARDS.get(ss, f"standard {ss:02X}"),
        card_name_code=code,
        historical=hist,
        checksum_ok=checksum_ok,
    )


def card_type(atr: bytes) -> str:
    """Shortcut: the card type named by ``atr`` ("MIFARE Classic 1K", ..., "unknown")."""
    return decode_atr(atr).card_type

"""Block 0 (manufacturer block): parse it and say, finding by finding, what looks wrong.

Layouts: 4-byte UID ``UID0-3 | BCC | SAK | ATQA(2, as stored) | manufacturer data(8)``;
7-byte UID ``UID0-6 | SAK | ATQA(2) | manufacturer data(6)``. The sanity rules are those
MIFARE Classic Tool applies (from NXP AN10927 / AN10833 / AN10834, see
docs/reference/mifare.md §2.1); a technician needs the list of named findings, not one bool,
because a clone and a misprogrammed magic card fail in different ways.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from daemon.errors import InvalidArgument
from daemon.mifare._bytes import hexs, require_bytes
from daemon.mifare.geometry import BLOCK_SIZE, MANUFACTURER_BLOCK, CardSize

__all__ = [
    "Block0",
    "Finding",
    "Severity",
    "bcc",
    "check_block0",
    "parse_block0",
]

logger = logging.getLogger(__name__)

_CASCADE_TAG = 0x88
_MAGIC_DEFAULT_MFR = bytes.fromhex("6263646566676869")  # "bcdefghi"


class Severity(enum.Enum):
    ERROR = "error"  # a genuine chip cannot have this block 0
    WARNING = "warning"  # possible, but typical of clones or misconfiguration
    INFO = "info"  # worth showing a technician


@dataclass(frozen=True)
class Finding:
    """One observation about block 0; ``code`` is stable UPPER_SNAKE for tools and tests."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Block0:
    """Parsed manufacturer block. ``atqa`` keeps the stored byte order (``04 00`` for 1K)."""

    uid: bytes
    bcc: int | None
    sak: int
    atqa: bytes
    manufacturer_data: bytes
    raw: bytes

    @property
    def atqa_value(self) -> int:
        """ATQA as the 16-bit number readers print (``0x0004`` for a 4-byte-UID 1K)."""
        return int.from_bytes(self.atqa, "little")


def bcc(uid: bytes) -> int:
    """Block check character: XOR of the four UID bytes."""
    result = 0
    for b in uid:
        result ^= b
    return result


def parse_block0(data: object, *, uid_length: int = 4) -> Block0:
    """Split block 0 into its fields. ``uid_length`` is 4 or 7 (from GET DATA UID)."""
    raw = require_bytes(data, "manufacturer block", BLOCK_SIZE, MANUFACTURER_BLOCK)
    if uid_length == 4:
        return Block0(raw[0:4], raw[4], raw[5], raw[6:8], raw[8:16], raw)
    if uid_length == 7:
        return Block0(raw[0:7], None, raw[7], raw[8:10], raw[10:16], raw)
    raise InvalidArgument("uid_length", f"MIFARE Classic UIDs are 4 or 7 bytes, not {uid_length!r}")


def _uid_findings(b0: Block0) -> list[Finding]:
    found: list[Finding] = []
    uid0 = b0.uid[0]
    if len(b0.uid) == 4:
        if b0.bcc != bcc(b0.uid):
            found.append(
                Finding(
                    "BCC_MISMATCH",
                    Severity.ERROR,
                    f"BCC is {b0.bcc:02X}, UID {hexs(b0.uid)} needs {bcc(b0.uid):02X}",
                )
            )
        if uid0 == _CASCADE_TAG:
            found.append(Finding("UID0_CASCADE_TAG", Severity.ERROR, "UID0 is 88 (cascade tag)"))
        if uid0 == 0xF8:
            found.append(Finding("UID0_RESERVED", Severity.ERROR, "UID0 is F8 (reserved)"))
        return found
    if 0x81 <= uid0 <= 0xFE:
        found.append(
            Finding(
                "UID0_INVALID",
                Severity.ERROR,
                f"UID0 {uid0:02X} is in 81..FE, not a manufacturer code for a 7-byte UID",
            )
        )
    if uid0 == 0x00:
        found.append(Finding("UID0_ZERO", Severity.ERROR, "UID0 is 00 (reserved)"))
    if b0.uid[3] == _CASCADE_TAG:
        found.append(Finding("UID3_CASCADE_TAG", Severity.ERROR, "UID3 is 88 (cascade tag)"))
    if uid0 == 0x04:
        found.append(Finding("MANUFACTURER_NXP", Severity.INFO, "UID0 04: NXP"))
    return found


def _special_atqa(atqa: bytes) -> bool:
    """SmartMX with MIFARE emulation or TNP3xxx: ATQAs outside the size table."""
    a, b = atqa
    return (
        (a in (0x04, 0x02) and 0x01 <= b <= 0x0F)
        or (a == 0x48 and b <= 0x0F)
        or atqa == b"\x01\x0f"
    )


def _expected_atqa(uid_length: int, size: CardSize) -> bytes:
    big = size is CardSize.CLASSIC_4K
    if uid_length == 4:
        return b"\x02\x00" if big else b"\x04\x00"
    return b"\x42\x00" if big else b"\x44\x00"


def _sak_size(sak: int) -> tuple[CardSize, ...]:
    """Sizes a SAK may announce (AN10834); empty if the SAK is not MIFARE Classic at all."""
    if sak & 0x02 or not sak & 0x08:
        return ()
    if sak & 0x10:
        return (CardSize.CLASSIC_4K,)
    if sak & 0x01:
        return (CardSize.MINI,)
    return (CardSize.CLASSIC_1K,)


def _fudan_hint(b0: Block0) -> Finding | None:
    """Fudan model from block-0 bytes 8 and 15 (the fingerprint pm3 ``hf mf info`` uses)."""
    if len(b0.uid) != 4:
        return None
    fida, fidb = b0.raw[8], b0.raw[15]
    if fidb == 0x90 and fida in (0x01, 0x03, 0x04):
        model = "FM11RF08S (static encrypted nonce, hardware backdoor key)"
    elif fidb == 0x1D and fida in (0x01, 0x02, 0x03):
        model = "FM11RF08 (backdoor key)"
    elif fidb in (0x91, 0x98):
        model = "FM11RF08 variant"
    else:
        return None
    return Finding(
        "FUDAN_CHIP", Severity.WARNING, f"bytes 8/15 {fida:02X}/{fidb:02X}: Fudan {model}"
    )


def check_block0(b0: Block0, size: CardSize = CardSize.CLASSIC_1K) -> list[Finding]:
    """All findings for this block 0 on a card of ``size``; no ERROR means MCT would accept it."""
    found = _uid_findings(b0)
    uid_length = len(b0.uid)
    expected = _expected_atqa(uid_length, size)
    if _special_atqa(b0.atqa):
        found.append(
            Finding(
                "ATQA_SPECIAL",
                Severity.INFO,
                f"ATQA {hexs(b0.atqa)}: SmartMX with MIFARE emulation or TNP3xxx",
            )
        )
    elif b0.atqa != expected:
        found.append(
            Finding(
                "ATQA_UNEXPECTED",
                Severity.ERROR,
                f"ATQA {hexs(b0.atqa)}, a {uid_length}-byte-UID {size.label} has {hexs(expected)}",
            )
        )
    if b0.sak & 0x80:
        found.append(
            Finding(
                "SAK_HIGH_BIT",
                Severity.INFO,
                f"SAK {b0.sak:02X} stored with bit 0x80 (SAK+0x80 variant some cards use)",
            )
        )
    sizes = _sak_size(b0.sak & 0x7F)
    if not sizes:
        found.append(
            Finding("SAK_NOT_CLASSIC", Severity.ERROR, f"SAK {b0.sak:02X} is not MIFARE Classic")
        )
    elif size not in sizes:
        found.append(
            Finding(
                "SAK_SIZE_MISMATCH",
                Severity.ERROR,
                f"SAK {b0.sak:02X} announces a {sizes[0].label}, card is a {size.label}",
            )
        )
    if b0.manufacturer_data[-8:] == _MAGIC_DEFAULT_MFR:
        found.append(
            Finding(
                "MAGIC_DEFAULT_DATA",
                Severity.WARNING,
                "manufacturer data 62 63 .. 69 ('bcdefghi'): default of UID-changeable clones",
            )
        )
    fudan = _fudan_hint(b0)
    if fudan is not None:
        found.append(fudan)
    return found

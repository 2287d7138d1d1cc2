"""MIFARE Application Directory v1 (NXP AN10787): sector 0, blocks 1 and 2.

Layout: ``CRC | info | AID(sector 1) .. AID(sector 15)``, each AID two bytes little-endian
(application code, then function cluster code). The CRC-8 (polynomial 0x1D, preset 0xC7)
covers the info byte and the 30 AID bytes. A card says it carries a MAD with the general
purpose byte of sector 0's trailer (DA bit 0x80, MA bit 0x40, version in bits 1-0).

Knowing the MAD lets a technician see which sectors other applications own before we issue
a member card into a card that already carries, say, an NFC Forum NDEF message.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare._bytes import require_bytes
from daemon.mifare.geometry import CardSize, sector_count

__all__ = [
    "GPB_MAD_V1",
    "GPB_MAD_V2",
    "MAD1_SECTORS",
    "MAD_KEY_A",
    "NDEF_AID",
    "AdminCode",
    "Mad1",
    "MadGpb",
    "decode_gpb",
    "describe_aid",
    "mad_crc8",
]

logger = logging.getLogger(__name__)

MAD_KEY_A = bytes.fromhex("A0A1A2A3A4A5")
"""Public key A of the MAD sector (AN10787): anyone may read the directory."""

GPB_MAD_V1 = 0xC1
"""General purpose byte: MAD available (DA), multi-application card (MA), MAD version 1."""
GPB_MAD_V2 = 0xC2

NDEF_AID = 0xE103
"""NFC Forum NDEF application (stored ``03 E1``)."""

MAD1_SECTORS = range(1, 16)
"""Sectors a MAD v1 describes (sector 0 is the MAD itself)."""

_CRC_POLY = 0x1D
_CRC_PRESET = (
    0xC7  # AN10787 prints E3; libraries bit-mirror it to C7, which published dumps confirm
)
_MAD1_BYTES = 32


class AdminCode(enum.IntEnum):
    """Administration AIDs (function cluster 0x00) from AN10787."""

    FREE = 0x0000
    DEFECT = 0x0001
    RESERVED = 0x0002
    ADDITIONAL_DIRECTORY = 0x0003
    CARD_HOLDER = 0x0004
    NOT_APPLICABLE = 0x0005


_ADMIN_TEXT = {
    AdminCode.FREE: "free",
    AdminCode.DEFECT: "defect",
    AdminCode.RESERVED: "reserved",
    AdminCode.ADDITIONAL_DIRECTORY: "additional directory info",
    AdminCode.CARD_HOLDER: "card holder info",
    AdminCode.NOT_APPLICABLE: "not applicable (beyond card memory)",
}


def mad_crc8(data: bytes) -> int:
    """CRC-8 of AN10787 over ``data`` (info byte followed by the AIDs)."""
    crc = _CRC_PRESET
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def describe_aid(aid: int) -> str:
    """Human text for an AID: administration codes by name, NDEF, else cluster/application."""
    if aid in _ADMIN_TEXT:
        return _ADMIN_TEXT[AdminCode(aid)]
    if aid == NDEF_AID:
        return "NFC Forum NDEF"
    return f"function cluster {aid >> 8:02X}, application {aid & 0xFF:02X}"


def _check_aid(sector: int, aid: object) -> int:
    if not isinstance(aid, int) or isinstance(aid, bool) or not 0 <= aid <= 0xFFFF:
        raise InvalidArgument(f"MAD AID of sector {sector}", f"must be 0..0xFFFF, got {aid!r}")
    return aid


@dataclass(frozen=True)
class Mad1:
    """A MAD v1: the AID of sectors 1-15 and the card publisher sector (0 = none)."""

    aids: tuple[int, ...]
    publisher_sector: int = 0

    def __post_init__(self) -> None:
        if len(self.aids) != len(MAD1_SECTORS):
            raise InvalidArgument("MAD AIDs", f"need 15 (sectors 1-15), got {len(self.aids)}")
        for sector, aid in zip(MAD1_SECTORS, self.aids, strict=True):
            _check_aid(sector, aid)
        ps: object = self.publisher_sector
        if not isinstance(ps, int) or isinstance(ps, bool) or not 0 <= ps <= 0x0F:
            raise InvalidArgument("MAD publisher sector", f"must be 0..15, got {ps!r}")

    @classmethod
    def for_sectors(
        cls,
        owners: Mapping[int, int],
        *,
        size: CardSize = CardSize.CLASSIC_1K,
        publisher_sector: int = 0,
    ) -> Mad1:
        """Build from ``{sector: aid}``; other sectors are free, or not applicable on a Mini."""
        present = sector_count(size)
        for sector in owners:
            if sector not in MAD1_SECTORS or sector >= present:
                raise InvalidArgument("MAD sector", f"sector {sector} cannot be listed in MAD v1")
        aids = tuple(
            owners.get(s, AdminCode.FREE if s < present else AdminCode.NOT_APPLICABLE)
            for s in MAD1_SECTORS
        )
        return cls(tuple(int(a) for a in aids), publisher_sector)

    def aid_for_sector(self, sector: int) -> int:
        if sector not in MAD1_SECTORS:
            raise InvalidArgument("sector", f"MAD v1 lists sectors 1-15, not {sector!r}")
        return self.aids[sector - 1]

    def to_bytes(self) -> bytes:
        """32 bytes: sector 0 block 1 followed by block 2, CRC first."""
        body = bytes((self.publisher_sector,)) + b"".join(
            a.to_bytes(2, "little") for a in self.aids
        )
        return bytes((mad_crc8(body),)) + body

    @classmethod
    def from_bytes(cls, data: object) -> Mad1:
        """Decode blocks 1+2 of sector 0; a CRC or info-byte problem is a MalformedBlock."""
        raw = require_bytes(data, "MAD (blocks 1-2)", _MAD1_BYTES, 1)
        expected = mad_crc8(raw[1:])
        if raw[0] != expected:
            raise MalformedBlock(
                "MAD CRC", f"stored {raw[0]:02X}, computed {expected:02X} over info byte + AIDs", 1
            )
        info = raw[1]
        if info & 0xC0 or info & 0x3F > 0x0F:
            raise MalformedBlock(
                "MAD info byte", f"{info:02X} does not point at a sector 0-15 (RFU bits 7-6 = 0)", 1
            )
        aids = tuple(int.from_bytes(raw[i : i + 2], "little") for i in range(2, _MAD1_BYTES, 2))
        return cls(aids, info & 0x3F)


@dataclass(frozen=True)
class MadGpb:
    """What sector 0's general purpose byte says about a MAD."""

    present: bool
    multi_application: bool
    version: int


def decode_gpb(gpb: object) -> MadGpb:
    """Split the GPB: DA (0x80) MAD present, MA (0x40) multi-application, bits 1-0 version."""
    if not isinstance(gpb, int) or isinstance(gpb, bool) or not 0 <= gpb <= 0xFF:
        raise InvalidArgument("GPB", f"must be 0..255, got {gpb!r}")
    return MadGpb(bool(gpb & 0x80), bool(gpb & 0x40), gpb & 0x03)

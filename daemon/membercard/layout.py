"""Member card format v1 on a MIFARE Classic 1K: where things live and how bytes encode.

See ``docs/card-layout.md`` for the reasoning and the tearing analysis. In short:

* sector 0: MAD v1 (blocks 1-2) naming sectors 1-3 with :data:`APP_AID`;
* sectors 1 and 2: record slots 0 and 1 (state block + MAC block each); the slot of a record
  is fixed by its counter (odd -> slot 0, even -> slot 1), so a write never touches the slot
  holding the newest record;
* sector 3: purse primary (12) and backup (13) value blocks mirroring the balance, and the
  member header (14: member ID, tier, validity) written once at issue.

All multi-byte integers are big-endian except inside value blocks (MIFARE's little-endian).
"""

from __future__ import annotations

import datetime as dt
import hmac
import zlib
from dataclasses import dataclass
from typing import Final

from daemon.errors import MalformedBlock, UnknownCardFormat
from daemon.keystore import KeyPurpose, Keystore
from daemon.mifare.access import AccessConditions

__all__ = [
    "ACCESS_MAD",
    "ACCESS_PURSE",
    "ACCESS_SLOT",
    "APP_AID",
    "APP_SECTORS",
    "FORMAT_V2",
    "FORMAT_VERSION",
    "FORMAT_VERSIONS",
    "HEADER_BLOCK",
    "KEY_GROUP_APP",
    "KEY_GROUP_MAD",
    "MAGIC",
    "MAX_AMOUNT",
    "NO_EXPIRY",
    "PURSE_ADR",
    "PURSE_BACKUP",
    "PURSE_PRIMARY",
    "PURSE_SECTOR",
    "SLOT_HEADER_BLOCKS",
    "SLOT_MAC_BLOCKS",
    "SLOT_SECTORS",
    "SLOT_STATE_BLOCKS",
    "Header",
    "SlotState",
    "check_member_id",
    "days_to_date",
    "mac_slot",
    "slot_checksum_ok",
    "slot_for_counter",
    "verify_slot",
]

MAGIC: Final = 0xCD
FORMAT_VERSION: Final = 1
"""The version a card is issued with (v1 cards are migrated to v2 on their first membership
change)."""
FORMAT_V2: Final = 2
"""v2: each record carries its own member header (block 6 / 10) under its MAC, so tier and
validity change with a record write; block 14 says 02 so v1 terminals refuse the card."""
FORMAT_VERSIONS: Final = (FORMAT_VERSION, FORMAT_V2)
APP_AID: Final = 0x07CD
"""MAD AID of sectors 1-3: function cluster 07 (proprietary/miscellaneous), application CD."""

SLOT_SECTORS: Final = (1, 2)
SLOT_STATE_BLOCKS: Final = (4, 8)
SLOT_MAC_BLOCKS: Final = (5, 9)
SLOT_HEADER_BLOCKS: Final = (6, 10)
"""v2 only: the record's own member header (v1: reserved, zero)."""
PURSE_SECTOR: Final = 3
PURSE_PRIMARY: Final = 12
PURSE_BACKUP: Final = 13
HEADER_BLOCK: Final = 14
PURSE_ADR: Final = PURSE_PRIMARY
APP_SECTORS: Final = (1, 2, 3)

KEY_GROUP_MAD: Final = 0
KEY_GROUP_APP: Final = 1
"""Sectors 1-3 share one key A and one key B per card: two reader key slots, loaded once."""

ACCESS_SLOT: Final = AccessConditions.of("000", "000", "000", "011")  # 7F 07 88
ACCESS_PURSE: Final = AccessConditions.of("110", "110", "100", "011")  # 48 77 8B
ACCESS_MAD: Final = AccessConditions.of("100", "100", "100", "011")  # 78 77 88

MAX_AMOUNT: Final = 0x7FFFFFFF
"""Balance and points are int32 on the card (value blocks are signed 32-bit)."""
NO_EXPIRY: Final = 0xFFFF
_EPOCH: Final = dt.date(2000, 1, 1)
_MAC_LABEL: Final = b"CDMC"
_MAC_LEN: Final = 11
_MAX_MEMBER_DIGITS: Final = 16


def days_to_date(days: int) -> dt.date | None:
    return None if days == NO_EXPIRY else _EPOCH + dt.timedelta(days=days)


def _date_to_days(value: dt.date | None, field: str) -> int:
    if value is None:
        return NO_EXPIRY
    days = (value - _EPOCH).days
    if not 0 <= days < NO_EXPIRY:
        raise MalformedBlock(field, f"{value} is outside 2000-01-01..2179", HEADER_BLOCK)
    return days


def check_member_id(member_id: object) -> str:
    """1-16 decimal digits (leading zeros kept)."""
    if (
        not isinstance(member_id, str)
        or not 1 <= len(member_id) <= _MAX_MEMBER_DIGITS
        or not member_id.isascii()
        or not member_id.isdigit()
    ):
        raise MalformedBlock("member_id", f"must be 1-16 digits, got {member_id!r}")
    return member_id


def _bcd(member_id: str) -> bytes:
    digits = check_member_id(member_id).ljust(_MAX_MEMBER_DIGITS, "F")
    return bytes.fromhex(digits)


def _unbcd(raw: bytes) -> str:
    text = raw.hex().upper().rstrip("F")
    if not text or not text.isdigit():
        raise MalformedBlock("member_id", "not packed BCD digits", HEADER_BLOCK)
    return text


@dataclass(frozen=True, slots=True)
class Header:
    """Block 14: who the card belongs to. Written once at issue; covered by every slot MAC."""

    member_id: str
    tier: int
    valid_until: dt.date | None
    issued: dt.date
    generation: int = 0
    """Replacement generation: 0 as first issued, +1 for each replacement of the member's card.
    Under every slot MAC, so a card proves offline that it supersedes an older one."""
    version: int = FORMAT_VERSION
    """Card format version (byte 1): 1, or 2 once tier/validity live with each record."""

    def __post_init__(self) -> None:
        check_member_id(self.member_id)
        if not 0 <= self.tier <= 0xFF:
            raise MalformedBlock("tier", f"{self.tier} not in 0..255", HEADER_BLOCK)
        if not 0 <= self.generation <= 0xFF:
            raise MalformedBlock("generation", f"{self.generation} not in 0..255", HEADER_BLOCK)
        if self.version not in FORMAT_VERSIONS:
            raise MalformedBlock("version", f"{self.version} not in 1, 2", HEADER_BLOCK)

    def same_member(self, other: Header) -> bool:
        """Same member ID, replacement generation and issue date (what never changes)."""
        return (self.member_id, self.generation, self.issued) == (
            other.member_id, other.generation, other.issued
        )  # fmt: skip

    def encode(self) -> bytes:
        return (
            bytes((MAGIC, self.version))
            + _bcd(self.member_id)
            + bytes((self.tier, self.generation))
            + _date_to_days(self.valid_until, "valid_until").to_bytes(2, "big")
            + _date_to_days(self.issued, "issued").to_bytes(2, "big")
        )

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        """Raises ``UnknownCardFormat`` for a foreign block or another format version."""
        if len(raw) != 16:
            raise MalformedBlock("header", f"16 bytes expected, got {len(raw)}", HEADER_BLOCK)
        if raw[0] != MAGIC:
            raise UnknownCardFormat(
                f"block {HEADER_BLOCK}: magic {raw[0]:02X} is not a member card ({MAGIC:02X})"
            )
        if raw[1] not in FORMAT_VERSIONS:
            known = " and ".join(str(v) for v in FORMAT_VERSIONS)
            raise UnknownCardFormat(
                f"block {HEADER_BLOCK}: card format version {raw[1]}, this daemon reads "
                f"versions {known} only; nothing will be written"
            )
        issued = days_to_date(int.from_bytes(raw[14:16], "big"))
        if issued is None:
            raise MalformedBlock("issued", "no issue date", HEADER_BLOCK)
        return cls(
            member_id=_unbcd(raw[2:10]),
            tier=raw[10],
            valid_until=days_to_date(int.from_bytes(raw[12:14], "big")),
            issued=issued,
            generation=raw[11],
            version=raw[1],
        )


@dataclass(frozen=True, slots=True)
class SlotState:
    """A record slot's state block: counter, balance (fen), points and the writer's tag."""

    counter: int
    balance: int
    points: int
    tag: bytes

    def __post_init__(self) -> None:
        for name in ("counter", "balance", "points"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_AMOUNT:
                raise MalformedBlock(name, f"{value} outside 0..{MAX_AMOUNT}")
        if self.counter < 1:
            raise MalformedBlock("counter", "must be >= 1")
        if len(self.tag) != 4:
            raise MalformedBlock("tag", "4 bytes expected")

    @property
    def slot(self) -> int:
        return slot_for_counter(self.counter)

    def encode(self) -> bytes:
        return (
            self.counter.to_bytes(4, "big")
            + self.balance.to_bytes(4, "big")
            + self.points.to_bytes(4, "big")
            + self.tag
        )

    @classmethod
    def decode(cls, raw: bytes, block: int) -> SlotState:
        if len(raw) != 16:
            raise MalformedBlock("state", f"16 bytes expected, got {len(raw)}", block)
        try:
            return cls(
                counter=int.from_bytes(raw[0:4], "big"),
                balance=int.from_bytes(raw[4:8], "big"),
                points=int.from_bytes(raw[8:12], "big"),
                tag=bytes(raw[12:16]),
            )
        except MalformedBlock as exc:
            raise MalformedBlock(exc.field, exc.message, block) from None

    def as_dict(self) -> dict[str, object]:
        return {
            "counter": self.counter,
            "balance": self.balance,
            "points": self.points,
            "tag": self.tag.hex(),
        }


def slot_for_counter(counter: int) -> int:
    """Odd counters live in slot 0 (sector 1), even ones in slot 1 (sector 2)."""
    return (counter - 1) % 2


def _mac_message(uid: bytes, slot: int, header: bytes, state: bytes, version: int) -> bytes:
    return (
        _MAC_LABEL
        + bytes((version, slot, len(uid)))
        + uid
        + header
        + state
    )  # fmt: skip


def mac_slot(
    keystore: Keystore, uid: bytes, header: bytes, state: SlotState, form: int = FORMAT_VERSION
) -> bytes:
    """The MAC block for ``state``: MAC key version, CRC-32 of the state block, then
    HMAC-SHA256(K_mac, label | format | slot | UID | header | state)[:11]. ``form`` 1: the
    header is block 14; 2: the record's own header block."""
    version = keystore.current_version(KeyPurpose.MAC)
    raw = state.encode()
    tag = keystore.mac(version, _mac_message(uid, state.slot, header, raw, form), _MAC_LEN)
    return bytes((version,)) + zlib.crc32(raw).to_bytes(4, "big") + tag


def slot_checksum_ok(state_raw: bytes, mac_raw: bytes) -> bool:
    """True if the state block matches the CRC in its MAC block: not torn (an edit may be)."""
    return len(mac_raw) == 16 and zlib.crc32(state_raw).to_bytes(4, "big") == mac_raw[1:5]


def verify_slot(
    keystore: Keystore,
    uid: bytes,
    header: bytes,
    state_raw: bytes,
    mac_raw: bytes,
    slot: int,
    form: int = FORMAT_VERSION,
) -> bool:
    """True if ``mac_raw`` seals ``state_raw`` in ``slot`` of this card (any known MAC version)."""
    version = mac_raw[0]
    if version not in keystore.versions(KeyPurpose.MAC):
        return False
    message = _mac_message(uid, slot, header, state_raw, form)
    expected = keystore.mac(version, message, _MAC_LEN)
    return hmac.compare_digest(expected, mac_raw[5:16])

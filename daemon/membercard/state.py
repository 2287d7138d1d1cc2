"""Decide what a card says, from the card alone: the tear-resolution and fraud rules of v1.

The authoritative state is the valid record slot (MAC over format version, slot, UID, header
and state) with the highest counter. The purse value blocks only mirror its balance. Because a
balance change writes the record first (commit point) and then primary, then backup, the only
purse states a tear can leave are, with ``r`` the current and ``q`` the previous record's
balance and ``X`` a block that is not a value block::

    (r, r)                          consistent
    (q, q) (X, q) (r, q) (r, X)     mirror update interrupted -> finish it (roll forward)

A torn block may also be *unstable* (half-programmed cells read back differently on every READ
until rewritten): it can read as ``X``, ``q``, ``r`` or a valid value block mixing the bits of
``q`` and ``r``; and a torn repair can leave ``X`` where the table above has a value. So each
block is accepted when it reads ``r``, ``X``, or (with a predecessor) ``q`` or a mix of ``q``
and ``r`` bits; no single read of a block is trusted as "right" (the repair rewrites both).
Neither key A (it cannot write the purse sector) nor a tear can produce any other value, so
anything else is a manipulated card: ``MacInvalid`` when a well-formed newer slot fails its MAC
(an edited record whose purse still shows the committed balance), else ``ValueBlockMismatch``
(e.g. a key-A DECREMENT, or a purse sector restored from an old dump). A suspicious card is
never repaired here; callers audit and hotlist.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from daemon.errors import (
    MacInvalid,
    MalformedBlock,
    UnknownCardFormat,
    ValueBlockMismatch,
)
from daemon.keystore import Keystore
from daemon.membercard.layout import (
    FORMAT_V2,
    FORMAT_VERSION,
    Header,
    SlotState,
    slot_checksum_ok,
    verify_slot,
)
from daemon.membercard.session import RawImage
from daemon.mifare.value import decode_value_block

__all__ = [
    "CardState",
    "SlotStatus",
    "SlotView",
    "decode_purse_block",
    "evaluate",
    "tear_residue",
]

logger = logging.getLogger(__name__)


class SlotStatus(enum.StrEnum):
    VALID = "valid"
    FORMED = "formed"  # decodes and matches its CRC, but the MAC (or slot parity) is wrong
    GARBAGE = "garbage"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class SlotView:
    slot: int
    status: SlotStatus
    state: SlotState | None
    header: Header | None = None  # valid slots: the member header its MAC covers
    form: int = FORMAT_VERSION  # 1: MAC over block 14; 2: over the record's own header block


@dataclass(frozen=True, slots=True)
class CardState:
    uid: bytes
    header: Header  # the current record's: tier and validity as of the newest record
    header_raw: bytes  # block 14 as read
    current: SlotState
    previous: SlotState | None  # the other slot when it holds counter - 1
    other: SlotView
    primary: int | None  # None: not a value block (torn)
    backup: int | None
    version: int = FORMAT_VERSION  # 2 once block 14 says 02 or a v2 record exists
    block14_v2: bool = False  # block 14 reads as this card's v2 header (nothing to migrate)
    slot_headers: tuple[bytes, bytes] = (bytes(16), bytes(16))
    #: the current record is MAC'd in v2 form: the card's migration finished (block 14 read as
    #: v2 alone proves nothing: a tear can leave it unstable, reading 01 or 02 by turns)
    current_v2: bool = False

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    @property
    def mirror_ok(self) -> bool:
        r = self.current.balance
        return self.primary == r and self.backup == r


def decode_purse_block(raw: bytes, block: int) -> int | None:
    """The value, or ``None`` if the block is not in value-block format (torn). A well-formed
    value block is returned as it is, negative included: a key-A DECREMENT past zero is a
    forgery to report, not a torn block to repair."""
    try:
        return decode_value_block(raw, block=block).value
    except MalformedBlock:
        return None


def _as_v1(raw: bytes) -> bytes:
    return raw[:1] + bytes((FORMAT_VERSION,)) + raw[2:]


def _decodes(raw: bytes) -> Header | None:
    try:
        return Header.decode(raw)
    except (MalformedBlock, UnknownCardFormat):
        return None


def _slot_view(keystore: Keystore, image: RawImage, slot: int, base: Header | None) -> SlotView:
    """``base``: block 14 decoded (None: torn or unreadable, mid-migration). A slot is valid in
    v2 form (MAC over its own header block, same member as block 14) or in v1 form (MAC over
    block 14 as version 01; with block 14 unreadable, over a header copy a migration left in
    a slot header block: the MAC authenticates the copy)."""
    state_raw, mac_raw = image.slots[slot]
    if not any(state_raw) and not any(mac_raw):
        return SlotView(slot, SlotStatus.EMPTY, None)
    if not slot_checksum_ok(state_raw, mac_raw):
        return SlotView(slot, SlotStatus.GARBAGE, None)  # torn (or clumsily edited)
    try:
        state = SlotState.decode(state_raw, block=0)
    except MalformedBlock:
        return SlotView(slot, SlotStatus.GARBAGE, None)
    if state.slot != slot:
        return SlotView(slot, SlotStatus.FORMED, state)
    own_raw = image.slot_headers[slot]
    own = _decodes(own_raw)
    if (
        own is not None
        and own.version == FORMAT_V2
        and (base is None or base.same_member(own))
        and verify_slot(keystore, image.uid, own_raw, state_raw, mac_raw, slot, FORMAT_V2)
    ):
        return SlotView(slot, SlotStatus.VALID, state, own, FORMAT_V2)
    candidates = [image.header] if base is not None else list(image.slot_headers)
    for raw in candidates:
        head = _decodes(raw)
        if head is None or (base is None and head.version != FORMAT_V2):
            continue
        v1 = _as_v1(raw)
        if verify_slot(keystore, image.uid, v1, state_raw, mac_raw, slot, FORMAT_VERSION):
            return SlotView(slot, SlotStatus.VALID, state, Header.decode(v1), FORMAT_VERSION)
    return SlotView(slot, SlotStatus.FORMED, state)


def tear_residue(value: int | None, r: int, q: int | None) -> bool:
    """Can our own interrupted writes leave a purse block reading ``value``? ``r``, not a value
    block, or (with a predecessor balance ``q``) any mix of ``q``'s and ``r``'s bits - which
    includes ``q`` itself and every read of a block left unstable between the two."""
    if value is None or value == r:
        return True
    return q is not None and (value ^ r) & ~(q ^ r) == 0


def _mirror_explained(r: int, q: int | None, p: int | None, b: int | None) -> bool:
    return tear_residue(p, r, q) and tear_residue(b, r, q)


def evaluate(keystore: Keystore, image: RawImage) -> CardState:
    """The card's state, or a typed refusal (foreign card, other version, fraud)."""
    uid = image.uid.hex().upper()
    base: Header | None = None
    refusal: UnknownCardFormat | MalformedBlock | None = None
    try:
        base = Header.decode(image.header)
    except (UnknownCardFormat, MalformedBlock) as exc:
        # block 14 torn mid-migration: ours only if a slot's MAC proves a header copy
        # (a foreign card, another format version or an erased card has no such slot)
        refusal = exc
    views = [_slot_view(keystore, image, s, base) for s in (0, 1)]
    valid = [v for v in views if v.status is SlotStatus.VALID]
    if not valid and refusal is not None:
        raise refusal
    if not valid:
        formed = [v for v in views if v.status is SlotStatus.FORMED]
        if formed:
            raise MacInvalid(
                f"card {uid}: record slot {formed[0].slot} fails its MAC and no valid record "
                "remains (edited, or copied from another card)"
            )
        raise UnknownCardFormat(f"card {uid}: no valid record slot (not issued, or erased)")
    cur_view = max(valid, key=lambda v: v.state.counter if v.state else -1)
    current = cur_view.state
    assert current is not None
    other = views[1 - cur_view.slot]
    previous = (
        other.state
        if other.status is SlotStatus.VALID
        and other.state is not None
        and other.state.counter == current.counter - 1
        else None
    )
    primary = decode_purse_block(image.primary, 12)
    backup = decode_purse_block(image.backup, 13)
    q = previous.balance if previous else None
    if not _mirror_explained(current.balance, q, primary, backup):
        shown = f"purse primary {primary} / backup {backup}"
        if (
            other.status is SlotStatus.FORMED
            and other.state is not None
            and other.state.counter > current.counter
        ):
            raise MacInvalid(
                f"card {uid}: record slot {other.slot} (counter {other.state.counter}) fails "
                f"its MAC while the {shown} does not match the last valid record "
                f"(balance {current.balance}, counter {current.counter}): record edited"
            )
        raise ValueBlockMismatch(
            f"card {uid}: {shown} disagrees with the MAC'd record balance {current.balance} "
            f"(counter {current.counter}) and no interrupted write explains it"
        )
    header = cur_view.header
    assert header is not None
    v2 = base is None or base.version == FORMAT_V2 or any(v.form == FORMAT_V2 for v in valid)
    version = FORMAT_V2 if v2 else FORMAT_VERSION
    header = Header(
        header.member_id, header.tier, header.valid_until, header.issued, header.generation,
        version,
    )  # fmt: skip
    return CardState(
        image.uid, header, image.header, current, previous, other, primary, backup,
        version, base is not None and base.version == FORMAT_V2, image.slot_headers,
        cur_view.form == FORMAT_V2,
    )  # fmt: skip

"""One tap on a member card: keys loaded once, one authentication per sector visit.

The APDU budget drives this module: the card's key A goes into reader slot 0 once per tap (key
B into slot 1 only when a top-up, repair or issue needs it), an authentication is skipped when
the sector is already open with that key type, and sectors are read with multi-block READ
BINARY where the reader allows. Card keys are diversified per UID; their version is found by
trial (current first), because MIFARE Classic has no readable key version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import CardAuthFailed, CardCommandFailed, UnknownCardFormat
from daemon.keystore import CardKey, KeyPurpose, Keystore
from daemon.membercard.layout import (
    HEADER_BLOCK,
    KEY_GROUP_APP,
    PURSE_PRIMARY,
    PURSE_SECTOR,
    SLOT_HEADER_BLOCKS,
    SLOT_SECTORS,
    SLOT_STATE_BLOCKS,
)
from daemon.mifare.geometry import first_block
from daemon.readers.apdu import KeyType
from daemon.readers.dialects import Dialect
from daemon.readers.storage import StorageCard

__all__ = ["CardSession", "RawImage", "key_slot"]

logger = logging.getLogger(__name__)

KeyUse = Callable[[str, int, int | None], None]
"""Audit hook: (purpose, version, key group or None for the MAC key) - never the key itself."""

_TYPE_OF = {"A": KeyType.A, "B": KeyType.B}


def key_slot(dialect: Dialect, key_type: str) -> int:
    """Reader key slot for key A (first slot) or B (second slot, else the first again: on
    Identiv the slot is the key type, elsewhere B then replaces A and is reloaded as needed)."""
    slots = dialect.key_slots
    return slots[1] if key_type == "B" and len(slots) > 1 else slots[0]


@dataclass(frozen=True, slots=True)
class RawImage:
    """The application blocks of one card as read in this tap (undecoded)."""

    uid: bytes
    primary: bytes
    backup: bytes
    header: bytes
    slots: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]  # (state, mac) per slot
    slot_headers: tuple[bytes, bytes] = (bytes(16), bytes(16))
    """Blocks 6 and 10: a v2 record's own member header (v1: zero)."""


class CardSession:
    """Card I/O for the member application over one :class:`StorageCard`."""

    def __init__(
        self,
        card: StorageCard,
        keystore: Keystore,
        *,
        key_use: KeyUse | None = None,
        key_group: int = KEY_GROUP_APP,
    ) -> None:
        self.card = card
        self.keystore = keystore
        self._key_use = key_use
        self._group = key_group
        self._uid: bytes | None = None
        self._loaded: dict[tuple[int, str], CardKey] = {}
        self._authed: tuple[int, str] | None = None
        self.key_version: int | None = None

    @property
    def uid(self) -> bytes:
        if self._uid is None:
            self._uid = self.card.uid()
        return self._uid

    # --- keys and authentication ------------------------------------------------------------

    def _load(self, key_type: str, version: int) -> None:
        slot = key_slot(self.card.dialect, key_type)
        # a slot holds one key, except where the slot *is* the key type (Identiv)
        cache = (slot, key_type if self.card.dialect.slot_is_key_type else "")
        held = self._loaded.get(cache)
        if held is not None and held.version == version and held.key_type == key_type:
            return
        key = self.keystore.card_key(
            self.uid, sector_group=self._group, key_type=key_type, version=version
        )
        self.card.load_key(key.reveal(), slot, _TYPE_OF[key_type])
        self._loaded[cache] = key
        if self._key_use is not None:
            purpose = KeyPurpose.CARD_A if key_type == "A" else KeyPurpose.CARD_B
            self._key_use(purpose.value, version, self._group)

    def auth(self, sector: int, key_type: str = "A") -> None:
        """Open ``sector``; the first call finds the card's key version by trial."""
        if self._authed == (sector, key_type):
            return
        purpose = KeyPurpose.CARD_A if key_type == "A" else KeyPurpose.CARD_B
        versions = (
            (self.key_version,) if self.key_version is not None else self.keystore.versions(purpose)
        )
        for i, version in enumerate(versions):
            self._load(key_type, version)
            try:
                self.card.authenticate(
                    first_block(sector), _TYPE_OF[key_type], key_slot(self.card.dialect, key_type)
                )
            except (CardAuthFailed, CardCommandFailed) as exc:
                self._authed = None
                self.card.reconnect()  # a failed authentication blocks the next one
                if i == len(versions) - 1:
                    raise UnknownCardFormat(
                        f"card {self.uid.hex().upper()}: sector {sector} does not open with "
                        f"our key {key_type} (not a member card, not fully issued, or keys of "
                        f"an unknown version): {exc.reason}"
                    ) from None
                continue
            self.key_version = version
            self._authed = (sector, key_type)
            return

    def note_key_use(self, purpose: KeyPurpose, version: int) -> None:
        """Report a store-side key use (the MAC key: it is used here, never loaded)."""
        if self._key_use is not None:
            self._key_use(purpose.value, version, None)

    def forget_auth(self) -> None:
        self._authed = None

    # --- reads ------------------------------------------------------------------------------

    def read(self, sector: int, first: int, count: int, key_type: str = "A") -> list[bytes]:
        self.auth(sector, key_type)
        return self.card.read_blocks(first, count)

    def read_image(self, newest_slot_hint: int | None = None) -> RawImage:
        """Purse sector first, then both slots; the slot expected to be written next last."""
        primary, backup, header = self.read(PURSE_SECTOR, PURSE_PRIMARY, 3)
        order = (0, 1) if newest_slot_hint in (None, 0) else (1, 0)
        # a record's own header block (v2) costs no APDU on a multi-block reader; on a
        # single-block one it is read only when block 14 does not say v1
        count = 3 if self.card.dialect.max_read_blocks >= 3 or header[1:2] != b"\x01" else 2
        slots: dict[int, tuple[bytes, bytes]] = {}
        headers: dict[int, bytes] = {}
        for slot in order:
            blocks = self.read(SLOT_SECTORS[slot], SLOT_STATE_BLOCKS[slot], count)
            slots[slot] = (blocks[0], blocks[1])
            headers[slot] = blocks[2] if count == 3 else bytes(16)
        return RawImage(
            self.uid, primary, backup, header, (slots[0], slots[1]), (headers[0], headers[1])
        )

    def read_slot(self, slot: int, with_header: bool = False) -> tuple[bytes, ...]:
        sector = SLOT_SECTORS[slot]
        key_type = self._authed[1] if self._authed and self._authed[0] == sector else "A"
        blocks = self.read(sector, SLOT_STATE_BLOCKS[slot], 3 if with_header else 2, key_type)
        return tuple(blocks)

    def read_slot_header(self, slot: int) -> bytes:
        return self.read(SLOT_SECTORS[slot], SLOT_HEADER_BLOCKS[slot], 1)[0]

    def read_purse(self) -> tuple[bytes, bytes]:
        key_type = self._authed[1] if self._authed and self._authed[0] == PURSE_SECTOR else "A"
        primary, backup = self.read(PURSE_SECTOR, PURSE_PRIMARY, 2, key_type)
        return primary, backup

    def read_header(self) -> bytes:
        return self.read(PURSE_SECTOR, HEADER_BLOCK, 1)[0]

    # --- writes (each may raise WriteUnconfirmed) --------------------------------------------

    def write(self, sector: int, block: int, data: bytes, key_type: str = "A") -> None:
        self.auth(sector, key_type)
        self.card.write_block(block, data)

    def write_slot_header(self, slot: int, data: bytes) -> None:
        sector = SLOT_SECTORS[slot]
        key_type = self._authed[1] if self._authed and self._authed[0] == sector else "A"
        self.write(sector, SLOT_HEADER_BLOCKS[slot], data, key_type)

    def write_slot(
        self, slot: int, state: bytes, mac: bytes, own_header: bytes | None = None
    ) -> None:
        """(v2: the record's own header,) state block, MAC block last: the MAC write is the
        commit point."""
        sector = SLOT_SECTORS[slot]
        block = SLOT_STATE_BLOCKS[slot]
        key_type = self._authed[1] if self._authed and self._authed[0] == sector else "A"
        if own_header is not None:
            self.write(sector, SLOT_HEADER_BLOCKS[slot], own_header, key_type)
        self.write(sector, block, state, key_type)
        self.write(sector, block + 1, mac, key_type)

"""A strict MIFARE Classic chip (Mini/1K/4K), written from the NXP MF1S50yyX/MF1S70yyX datasheets.

Deliberately independent of ``daemon.mifare``: the access tables are the simulator's own literal
data (:mod:`sim.chiprules`), so a daemon codec bug cannot be mirrored here.

What the chip enforces (and the simulator with it):

* three-pass authentication per sector: authenticating drops the previous sector's state; a
  failed authentication - like every other NAK, see below - halts the card (every command, the
  next authentication included, goes unanswered) until it is re-selected
  (:meth:`SimCard.select`);
* access conditions per the datasheet tables; where key B is readable, authentication with key B
  succeeds but every following memory access is refused;
* keys read back as zeros (key B is returned only where the access bits let it be read);
* INCREMENT/DECREMENT/RESTORE load a volatile transfer buffer; TRANSFER is the only commit; the
  buffer is lost on re-select and when the card leaves the field; INC/DEC/RESTORE refuse a block
  that is not in value-block format;
* block 0 is read-only on a genuine chip; ``gen2`` (CUID) cards accept an ordinary authenticated
  WRITE; ``gen1a`` cards only via :meth:`SimCard.backdoor_write` (raw frames, not PC/SC);
* access bits are checked on every memory access; a sector whose bits are malformed refuses every
  memory access forever (authentication itself still compares keys). Writing such a trailer is
  not prevented: the chip does not protect you.

Every NAK halts the card like a failed authentication, and the [D] choices (transfer buffer
across re-authentication, 32-bit wrap on overflow) are explained with their sources in
:mod:`sim.chiprules`.

Chip refusals are raised as :class:`CardNak` subclasses; the reader model turns them into status
words. :meth:`SimCard.program` is the factory/test path that writes EEPROM bypassing the chip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from daemon.errors import InvalidArgument
from sim.chiprules import (
    DATA_ACCESS,
    KEY_B_READABLE,
    TRAILER_ACCESS,
    AccessDenied,
    AuthFailed,
    CardNak,
    CardSilent,
    CardVendor,
    NoSuchBlock,
    NotAuthenticated,
    NotValueBlock,
    SectorBlocked,
    WeakCells,
    WriteTorn,
    blank_image,
    decode_access,
    first_block,
    group_of_block,
    is_value_format,
    manufacturer_block,
    permits,
    sector_of_block,
    trailer_of_block,
    value_image,
)

__all__ = [
    "KEY_A",
    "KEY_B",
    "AccessDenied",
    "AuthFailed",
    "CardNak",
    "CardSilent",
    "CardSize",
    "CardVariant",
    "CardVendor",
    "NoSuchBlock",
    "NotAuthenticated",
    "NotValueBlock",
    "SectorBlocked",
    "SimCard",
    "TearFunction",
    "WeakCells",
    "WriteTorn",
    "is_value_format",
]

logger = logging.getLogger(__name__)

CardSize = Literal["mini", "1k", "4k"]
CardVariant = Literal["genuine", "gen2", "gen1a"]
TearFunction = Callable[[bytes, bytes], bytes | WeakCells]
"""Maps (old block, intended block) to what the EEPROM really ends up holding: 16 bytes, or
:class:`~sim.chiprules.WeakCells` that read back differently each time."""
KEY_A = 0x60
KEY_B = 0x61

_BLOCKS: dict[str, int] = {"mini": 20, "1k": 64, "4k": 256}
_VARIANTS = ("genuine", "gen2", "gen1a")


class SimCard:
    """One MIFARE Classic card: EEPROM image plus the volatile chip state."""

    def __init__(
        self,
        uid: bytes,
        *,
        size: CardSize = "1k",
        variant: CardVariant = "genuine",
        memory: bytes | None = None,
        vendor: CardVendor | None = None,
    ) -> None:
        uid = bytes(uid)
        if len(uid) not in (4, 7):
            raise InvalidArgument("uid", f"must be 4 or 7 bytes, got {len(uid)}")
        if size not in _BLOCKS:
            raise InvalidArgument("size", f"{size!r} is not one of mini, 1k, 4k")
        if variant not in _VARIANTS:
            raise InvalidArgument("variant", f"{variant!r} is not one of {', '.join(_VARIANTS)}")
        self._size: CardSize = size
        self._variant: CardVariant = variant
        self._uid_len = len(uid)
        block0 = manufacturer_block(uid, size, variant != "genuine", vendor)
        if memory is None:
            self._mem = bytearray(blank_image(block0, _BLOCKS[size]))
        else:
            if len(memory) != _BLOCKS[size] * 16:
                raise InvalidArgument(
                    "memory", f"{len(memory)} bytes, a {size} card holds {_BLOCKS[size] * 16}"
                )
            if bytes(memory[: len(uid)]) != uid:
                raise InvalidArgument("uid", "does not match the UID in block 0 of memory")
            self._mem = bytearray(memory)
        self._auth: tuple[int, int] | None = None  # (sector, key type)
        self._halted = False
        self._buffer: bytes | None = None
        self._active_uid = self.uid
        self._weak: dict[int, WeakCells] = {}  # blocks left unstable by a torn write

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def blank(
        cls,
        uid: bytes = b"\x11\x22\x33\x44",
        size: CardSize = "1k",
        variant: CardVariant = "genuine",
        vendor: CardVendor | None = None,
    ) -> SimCard:
        """A card in delivery (transport) state: keys FF..FF, access FF 07 80, GPB 69.

        Block 0 carries the maker's data (:func:`sim.chiprules.manufacturer_block`): a genuine
        card looks like an NXP MF1ICS50xx (``vendor="nxp"``, the default) or a Fudan FM11RF08
        (``vendor="fudan"``); gen1a/gen2 clones carry the clones' 'bcdefghi'.
        """
        return cls(uid, size=size, variant=variant, vendor=vendor)

    @property
    def block_count(self) -> int:
        return _BLOCKS[self._size]

    def sector_of(self, block: int) -> int:
        self._check_block(block)
        return sector_of_block(block)

    def is_trailer(self, block: int) -> bool:
        return trailer_of_block(block) == block

    def _check_block(self, block: int) -> None:
        if not 0 <= block < self.block_count:
            raise NoSuchBlock(f"block {block} does not exist on a {self._size} card")

    # --- plain properties -----------------------------------------------------------------

    @property
    def uid(self) -> bytes:
        """The UID as block 0 holds it now (magic cards present a new one after re-select)."""
        return bytes(self._mem[: self._uid_len])

    @property
    def active_uid(self) -> bytes:
        """The UID the card answered the last selection with."""
        return self._active_uid

    @property
    def size(self) -> CardSize:
        return self._size

    @property
    def variant(self) -> CardVariant:
        return self._variant

    @property
    def memory(self) -> bytes:
        """The raw EEPROM image, real keys included (test cards)."""
        return bytes(self._mem)

    @property
    def authenticated(self) -> tuple[int, int] | None:
        """(sector, key type) currently authenticated, or None."""
        return self._auth

    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def transfer_buffer(self) -> bytes | None:
        return self._buffer

    def block(self, block: int) -> bytes:
        """Raw EEPROM bytes of one block (test inspection; no access rules)."""
        self._check_block(block)
        return bytes(self._mem[block * 16 : block * 16 + 16])

    def program(self, block: int, data: bytes) -> None:
        """Factory/test set-up: write EEPROM directly, bypassing the chip logic."""
        self._check_block(block)
        if len(data) != 16:
            raise InvalidArgument("data", f"block {block}: 16 bytes needed, got {len(data)}")
        self._mem[block * 16 : block * 16 + 16] = data
        self._weak.pop(block, None)

    # --- field and selection --------------------------------------------------------------

    def select(self) -> bytes:
        """Power-up / re-select: clears authentication, halt and the transfer buffer."""
        self._auth = None
        self._halted = False
        self._buffer = None
        self._active_uid = self.uid
        return self._active_uid

    def reselect(self) -> bytes:
        """Alias of :meth:`select` (PC/SC reconnect, vpcd reset)."""
        return self.select()

    def leave_field(self) -> None:
        """The card lost power: all volatile state is gone."""
        self._auth = None
        self._halted = False
        self._buffer = None

    # --- access bits ----------------------------------------------------------------------

    def access_conditions(self, sector: int) -> tuple[int, int, int, int] | None:
        """C1C2C3 per group (blocks..., trailer) of a sector, or None if the bits are malformed."""
        t = trailer_of_block(first_block(sector)) * 16
        return decode_access(self._mem[t + 6], self._mem[t + 7], self._mem[t + 8])

    def sector_blocked(self, sector: int) -> bool:
        return self.access_conditions(sector) is None

    # --- chip commands --------------------------------------------------------------------

    def _responsive(self) -> None:
        if self._halted:
            raise CardSilent("card halted after a NAK or failed authentication; re-select it")

    def _nak(self, exc: CardNak) -> CardNak:
        """The chip NAKs and falls back to IDLE: silent until re-selected (module docstring)."""
        self._auth = None
        self._halted = True
        return exc

    def _require_block(self, block: int) -> None:
        """A command naming a block beyond the memory is NAKed like any other invalid one."""
        try:
            self._check_block(block)
        except NoSuchBlock as exc:
            raise self._nak(exc) from None

    def authenticate(self, block: int, key_type: int, key: bytes) -> None:
        """Three-pass authentication for the sector holding ``block``."""
        self._responsive()
        self._require_block(block)
        if key_type not in (KEY_A, KEY_B):
            raise InvalidArgument("key_type", f"0x{key_type:02X} is not 0x60 or 0x61")
        self._auth = None
        sector = sector_of_block(block)
        t = trailer_of_block(block) * 16
        stored = self._mem[t : t + 6] if key_type == KEY_A else self._mem[t + 10 : t + 16]
        if bytes(key) != bytes(stored):
            self._halted = True
            self._buffer = None
            raise AuthFailed(f"authentication of sector {sector} with key {key_type:02X} failed")
        self._auth = (sector, key_type)

    def _access(self, block: int) -> tuple[int, int]:
        """Check authentication for the block; return (access condition, key type)."""
        self._responsive()
        self._require_block(block)
        sector = sector_of_block(block)
        if self._auth is None or self._auth[0] != sector:
            raise self._nak(NotAuthenticated(f"block {block}: sector {sector} not authenticated"))
        key_type = self._auth[1]
        conds = self.access_conditions(sector)
        if conds is None:
            raise self._nak(SectorBlocked(f"sector {sector}: access bits malformed, blocked"))
        if key_type == KEY_B and conds[3] in KEY_B_READABLE:
            raise self._nak(
                AccessDenied(f"sector {sector}: key B is readable, so it cannot be used")
            )
        return conds[group_of_block(block)], key_type

    def _settle(self, block: int) -> None:
        """A read of weak cells senses them afresh (the EEPROM keeps the last sample)."""
        weak = self._weak.get(block)
        if weak is not None:
            self._mem[block * 16 : block * 16 + 16] = weak.sample()

    def read(self, block: int) -> bytes:
        cond, key_type = self._access(block)
        self._settle(block)
        raw = self.block(block)
        if self.is_trailer(block):
            _, ac_r, _, kb_r, _ = TRAILER_ACCESS[cond]
            ac = raw[6:10] if permits(ac_r, key_type) else b"\x00" * 4
            kb = raw[10:16] if permits(kb_r, key_type) else b"\x00" * 6
            return b"\x00" * 6 + ac + kb
        if not permits(DATA_ACCESS[cond][0], key_type):
            raise self._nak(AccessDenied(f"block {block}: read not allowed with this key"))
        return raw

    def write(self, block: int, data: bytes, *, tear: TearFunction | None = None) -> None:
        """WRITE one block; ``tear`` (faults) decides what the EEPROM really ends up holding."""
        if len(data) != 16:
            raise InvalidArgument("data", f"block {block}: 16 bytes needed, got {len(data)}")
        cond, key_type = self._access(block)
        old = self.block(block)
        if self.is_trailer(block):
            ka_w, _, ac_w, _, kb_w = TRAILER_ACCESS[cond]
            if not (permits(ka_w, key_type) or permits(ac_w, key_type) or permits(kb_w, key_type)):
                raise self._nak(AccessDenied(f"trailer {block}: not writable with this key"))
            new = bytearray(old)
            if permits(ka_w, key_type):
                new[0:6] = data[0:6]
            if permits(ac_w, key_type):
                new[6:10] = data[6:10]
            if permits(kb_w, key_type):
                new[10:16] = data[10:16]
            self._program(block, old, bytes(new), tear)
            return
        if block == 0 and self._variant != "gen2":
            raise self._nak(AccessDenied("block 0 is read-only (manufacturer block)"))
        if not permits(DATA_ACCESS[cond][1], key_type):
            raise self._nak(AccessDenied(f"block {block}: write not allowed with this key"))
        self._program(block, old, bytes(data), tear)

    def _program(self, block: int, old: bytes, new: bytes, tear: TearFunction | None) -> None:
        self._weak.pop(block, None)
        if tear is None:
            self._mem[block * 16 : block * 16 + 16] = new
            return
        torn = tear(old, new)
        if isinstance(torn, WeakCells):
            self._weak[block] = torn
            torn = torn.sample()
        self._mem[block * 16 : block * 16 + 16] = torn
        self.leave_field()
        raise WriteTorn(f"programming of block {block} torn")

    def _value_source(self, block: int, column: int, what: str) -> int:
        cond, key_type = self._access(block)
        if self.is_trailer(block):
            raise self._nak(AccessDenied(f"block {block}: {what} on a sector trailer"))
        if not permits(DATA_ACCESS[cond][column], key_type):
            raise self._nak(AccessDenied(f"block {block}: {what} not allowed with this key"))
        self._settle(block)
        raw = self.block(block)
        if not is_value_format(raw):
            raise self._nak(NotValueBlock(f"block {block}: not in value-block format"))
        return int.from_bytes(raw[0:4], "little")

    def increment(self, block: int, operand: int) -> None:
        """INCREMENT into the transfer buffer (nothing is stored until TRANSFER)."""
        value = self._value_source(block, 2, "increment")
        self._buffer = value_image(value + (operand & 0xFFFFFFFF), self._mem[block * 16 + 12])

    def decrement(self, block: int, operand: int) -> None:
        """DECREMENT into the transfer buffer (nothing is stored until TRANSFER)."""
        value = self._value_source(block, 3, "decrement")
        self._buffer = value_image(value - (operand & 0xFFFFFFFF), self._mem[block * 16 + 12])

    def restore(self, block: int) -> None:
        """RESTORE: copy a value block into the transfer buffer."""
        value = self._value_source(block, 3, "restore")
        self._buffer = value_image(value, self._mem[block * 16 + 12])

    def transfer(self, block: int, *, tear: TearFunction | None = None) -> None:
        """TRANSFER the buffer into ``block``: the only commit of a value operation."""
        cond, key_type = self._access(block)
        if self.is_trailer(block) or (block == 0 and self._variant != "gen2"):
            raise self._nak(AccessDenied(f"block {block}: transfer not possible"))
        if not permits(DATA_ACCESS[cond][3], key_type):
            raise self._nak(AccessDenied(f"block {block}: transfer not allowed with this key"))
        if self._buffer is None:
            raise self._nak(CardNak(f"block {block}: transfer with an empty transfer buffer"))
        self._program(block, self.block(block), self._buffer, tear)

    # --- gen1a backdoor (raw frames only; never reachable through PC/SC) ------------------

    def backdoor_read(self, block: int) -> bytes:
        """Gen1a ``40``/``43`` unlock then READ without authentication (keys included)."""
        self._gen1a_only()
        return self.block(block)

    def backdoor_write(self, block: int, data: bytes) -> None:
        """Gen1a ``40``/``43`` unlock then WRITE without authentication, block 0 included."""
        self._gen1a_only()
        self.program(block, data)

    def _gen1a_only(self) -> None:
        if self._variant != "gen1a":
            raise CardSilent(f"a {self._variant} card does not answer the gen1a unlock")

    def __repr__(self) -> str:
        return f"SimCard(uid={self.uid.hex()}, size={self._size}, variant={self._variant})"

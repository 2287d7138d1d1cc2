"""How each simulated reader model answers PC/SC Part 3 storage-card pseudo-APDUs (CLA FF).

Models: ``acr1252u`` (ACS ACR1252U), ``acr122u`` (ACS ACR122U), ``omnikey5x21`` (HID OMNIKEY
5x21) and ``generic`` (a plain PC/SC Part 3 reader). Sources: docs/reference/mifare.md §1.

* ACS answers ``63 00`` to every failure (wrong key, no such block, not a value block, bad
  length...) - ambiguous, as on the real readers - except GET DATA's ``62 82``/``6C XX``/``6A 81``.
  LOAD KEY: P1 ``00`` only, volatile slots ``00``-``01`` (lost when the reader is unplugged).
  READ BINARY on the ACR122U: Le 1..16, that many bytes of one block (API 2.02 §5.3 "Maximum
  16 bytes"); on the ACR1252U family Le must be a multiple of 16: 16 = one block, more =
  consecutive data blocks, at most 3 (48 bytes) on a Mini/1K and 15 (240) on a 4K, never a
  trailer (ACM1252U-Y3/ACR1255U-J1 ref. "Read Binary Blocks"). UPDATE BINARY: Lc 16 on the
  ACR122U; a multiple of 16 with the same limits on the ACR1252U. Le/Lc 00 is refused.
  Value: ``FF D7 00 blk 05 op val`` (op 00 store, 01 increment, 02 decrement, value signed MSB
  first; INC/DEC are followed by TRANSFER to the same block), ``FF D7 00 src 02 03 dst``
  (RESTORE+TRANSFER, same sector), ``FF B1 00 blk 04`` (read value). ``FF 00 40`` LED/buzzer
  answers ``90 <LED state>``; ``FF 00 52`` buzzer-on-detect. Firmware ``FF 00 48 00 00``: the
  ACR122U answers ``ACR122U207`` with no status word (ACS manual); the ACR1252U, which documents
  its firmware query as an escape command, is simulated answering ``ACR1252U_V202.2`` (its
  escape-reply string) followed by ``90 00`` [D].
* OMNIKEY and generic use the specific PC/SC status words: ``69 82`` security status not
  satisfied (auth failed, not authenticated, access bits forbid - the chip's NAK is the same for
  all three), ``65 81`` authenticate a block that does not exist, ``6A 82`` read/write/value on
  one, ``69 81`` value command on a non-value block, ``69 86`` unknown key type, ``69 88`` bad
  key number, ``69 84`` empty key slot, ``67 00`` wrong length, ``6B 00`` wrong P1/P2, ``6C 10``
  Le too long, ``6D 00`` unknown INS, ``6E 00`` CLA not FF. LOAD KEY on the OMNIKEY: P1 ``20``
  (non-volatile, slots ``00``-``1F``, survive unplug); volatile ``00`` is refused with ``69 86``;
  wrong key length ``63 89``, bad slot ``63 88``. The obsolete AUTHENTICATE ``FF 88`` answers
  ``67 00`` (only ``FF 86``); ACS documents ``FF 88`` (ACR122U API, ACM1252U-Y3 and ACR1255U-J1
  reference manuals: "PC/SC V2.01, Obsolete") and the generic reader keeps it. Value:
  ``FF D4``/``FF D8 00 blk 04 <value little-endian>`` = INC/DEC + TRANSFER. The generic reader
  has no value commands and accepts P1 ``00`` (volatile) and ``20`` (non-volatile), slots
  ``00``-``1F``.
* After any chip NAK the card is halted (see :mod:`sim.card`): every later card command fails
  with the model's failure SW until the card is re-selected (PC/SC reconnect); no reader model
  re-activates it by itself. Reader-side refusals (length, P1/P2, key slot, key type, a block
  beyond the card's size - the reader knows it from the SAK) never reach the chip and do not
  halt it. GET DATA UID answers from the reader's copy of the UID, halted card or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sim.card import (
    KEY_A,
    KEY_B,
    CardNak,
    NoSuchBlock,
    NotValueBlock,
    SimCard,
    TearFunction,
)
from sim.latency import ChipOp

__all__ = [
    "OK",
    "ApduContext",
    "ModelName",
    "OmnikeyModel",
    "ReaderMemory",
    "ReaderModel",
    "sw",
    "value_block_image",
]

logger = logging.getLogger(__name__)

ModelName = Literal["acr1252u", "acr122u", "omnikey5x21", "generic"]

OK = b"\x90\x00"


@dataclass
class ReaderMemory:
    """What the reader itself remembers: key slots and LED state."""

    keys: dict[int, bytes] = field(default_factory=dict)
    volatile: set[int] = field(default_factory=set)
    led_state: int = 0
    beeps: int = 0

    def power_loss(self) -> None:
        for slot in self.volatile:
            self.keys.pop(slot, None)
        self.volatile.clear()
        self.led_state = 0


@dataclass
class ApduContext:
    """One APDU's view of the card: every chip command goes through here to be timed."""

    card: SimCard
    memory: ReaderMemory
    charge: Callable[[ChipOp], None]
    tear: TearFunction | None = None
    pick: Callable[[int], int] = lambda n: 0

    def auth(self, block: int, key_type: int, key: bytes) -> None:
        self.charge("authenticate")
        self.card.authenticate(block, key_type, key)

    def read(self, block: int) -> bytes:
        self.charge("read")
        return self.card.read(block)

    def write(self, block: int, data: bytes, tear: bool = True) -> None:
        self.charge("write")
        self.card.write(block, data, tear=self.tear if tear else None)

    def value(self, op: ChipOp, block: int, operand: int = 0) -> None:
        self.charge(op)
        if op == "increment":
            self.card.increment(block, operand)
        elif op == "decrement":
            self.card.decrement(block, operand)
        else:
            self.card.restore(block)

    def transfer(self, block: int) -> None:
        self.charge("transfer")
        self.card.transfer(block, tear=self.tear)


def sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


def value_block_image(value: int, adr: int) -> bytes:
    v = (value & 0xFFFFFFFF).to_bytes(4, "little")
    return v + bytes(b ^ 0xFF for b in v) + v + bytes((adr, adr ^ 0xFF, adr, adr ^ 0xFF))


class ReaderModel:
    """PC/SC Part 3 behaviour shared by all models; subclasses set the dialect."""

    model: ModelName = "generic"
    default_name = "Generic PC/SC Part 3 Contactless Reader 00 00"
    default_latency = "acr1252u"
    max_blocks = 1  # blocks per READ/UPDATE BINARY
    max_slot = 0x1F

    # --- status words (PC/SC defaults) ---------------------------------------------------
    def sw_fail(self, cmd: str, exc: CardNak) -> bytes:
        if isinstance(exc, NoSuchBlock):
            return sw(0x6581 if cmd == "auth" else 0x6A82)
        if isinstance(exc, NotValueBlock):
            return sw(0x6981)
        return sw(0x6982)

    sw_length = 0x6700
    sw_p1p2 = 0x6B00
    sw_data = 0x6A80
    sw_ins = 0x6D00
    sw_cla = 0x6E00
    sw_key_type = 0x6986
    sw_key_number = 0x6988
    sw_key_empty = 0x6984
    sw_key_length = 0x6389
    sw_load_slot = 0x6388

    def handle(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) < 4:
            return sw(self.sw_length)
        if apdu[0] != 0xFF:
            return sw(self.sw_cla)
        ins = apdu[1]
        handler = self._handlers().get(ins)
        if handler is None:
            return sw(self.sw_ins)
        return handler(apdu, ctx)

    def _handlers(self) -> dict[int, Callable[[bytes, ApduContext], bytes]]:
        return {
            0xCA: self.get_data,
            0x82: self.load_key,
            0x86: self.general_authenticate,
            0x88: self.authenticate_v2,
            0xB0: self.read_binary,
            0xD6: self.update_binary,
        }

    # --- GET DATA --------------------------------------------------------------------------
    def get_data(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 5:
            return sw(self.sw_length)
        p1, p2, le = apdu[2], apdu[3], apdu[4]
        if p1 == 0x01 and p2 == 0x00:
            return sw(0x6A81)  # ATS historical bytes: MIFARE Classic is not ISO 14443-4
        if (p1, p2) != (0x00, 0x00):
            return sw(self.sw_p1p2)
        uid = ctx.card.active_uid
        if le == 0 or le == len(uid):
            return uid + OK
        if le < len(uid):
            return sw(0x6C00 | len(uid))
        return uid + sw(0x6282)

    # --- LOAD KEY --------------------------------------------------------------------------
    def load_key(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) < 5 or len(apdu) != 5 + apdu[4]:
            return sw(self.sw_length)
        if apdu[4] != 6:
            return sw(self.sw_key_length)
        p1, slot = apdu[2], apdu[3]
        refused = self.key_structure(p1)
        if refused is not None:
            return refused
        if slot > self.max_slot:
            return sw(self.sw_load_slot)
        ctx.memory.keys[slot] = bytes(apdu[5:11])
        if p1 & 0x20:
            ctx.memory.volatile.discard(slot)
        else:
            ctx.memory.volatile.add(slot)
        return OK

    def key_structure(self, p1: int) -> bytes | None:
        """None if this reader accepts the key structure byte, else its status word."""
        if p1 & 0x80:
            return sw(0x6383)
        if p1 & 0x40:
            return sw(0x6385)
        if p1 not in (0x00, 0x20):
            return sw(self.sw_p1p2)
        return None

    # --- authentication --------------------------------------------------------------------
    def general_authenticate(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 10 or apdu[4] != 5:
            return sw(self.sw_length)
        if apdu[2:4] != b"\x00\x00":
            return sw(self.sw_p1p2)
        if apdu[5] != 0x01:
            return sw(self.sw_data)
        block = apdu[6] << 8 | apdu[7]
        return self._authenticate(block, apdu[8], apdu[9], ctx)

    def authenticate_v2(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 6:
            return sw(self.sw_length)
        block = apdu[2] << 8 | apdu[3]
        return self._authenticate(block, apdu[4], apdu[5], ctx)

    def _authenticate(self, block: int, key_type: int, slot: int, ctx: ApduContext) -> bytes:
        if key_type not in (KEY_A, KEY_B):
            return sw(self.sw_key_type)
        if slot > self.max_slot:
            return sw(self.sw_key_number)
        key = ctx.memory.keys.get(slot)
        if key is None:
            return sw(self.sw_key_empty)
        if block >= ctx.card.block_count:  # reader-side, as for READ/UPDATE (see _span)
            return self.sw_fail("auth", NoSuchBlock(f"block {block}"))
        try:
            ctx.auth(block, key_type, key)
        except CardNak as exc:
            return self.sw_fail("auth", exc)
        return OK

    # --- READ / UPDATE BINARY --------------------------------------------------------------
    def read_length(self, le: int, ctx: ApduContext) -> tuple[int, int] | bytes:
        """(blocks, bytes) to read for this Le, or the refusal status word."""
        if le in (0, 16):
            return 1, 16
        if le < 16:
            return 1, le
        return sw(0x6C10)

    def _span(self, block: int, count: int, ctx: ApduContext, cmd: str) -> bytes | None:
        """Refuse ranges that leave the card or touch a trailer (multi-block), reader-side.

        The reader knows the card's size from its SAK (it built the ATR from it), so a block
        beyond the memory is refused before anything reaches the chip: the card is not halted.
        """
        if block + count > ctx.card.block_count:
            return self.sw_fail(cmd, NoSuchBlock(f"block {block + count - 1}"))
        if count > 1 and any(ctx.card.is_trailer(b) for b in range(block, block + count)):
            return sw(self.sw_p1p2)
        return None

    def read_binary(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 5:
            return sw(self.sw_length)
        if apdu[2] != 0:
            return self.sw_fail("read", NoSuchBlock(f"block {apdu[2] << 8 | apdu[3]}"))
        block = apdu[3]
        plan = self.read_length(apdu[4], ctx)
        if isinstance(plan, bytes):
            return plan
        count, nbytes = plan
        refused = self._span(block, count, ctx, "read")
        if refused is not None:
            return refused
        data = b""
        try:
            for b in range(block, block + count):
                data += ctx.read(b)
        except CardNak as exc:
            return self.sw_fail("read", exc)
        return data[:nbytes] + OK

    def write_length(self, lc: int, ctx: ApduContext) -> int | None:
        return 1 if lc == 16 else None

    def update_binary(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) < 5 or len(apdu) != 5 + apdu[4]:
            return sw(self.sw_length)
        count = self.write_length(apdu[4], ctx)
        if count is None:
            return sw(self.sw_length)
        if apdu[2] != 0:
            return self.sw_fail("write", NoSuchBlock(f"block {apdu[2] << 8 | apdu[3]}"))
        block = apdu[3]
        refused = self._span(block, count, ctx, "write")
        if refused is not None:
            return refused
        torn_at = ctx.pick(count) if ctx.tear is not None else -1
        try:
            for i in range(count):
                ctx.write(block + i, apdu[5 + 16 * i : 21 + 16 * i], tear=i == torn_at)
        except CardNak as exc:
            return self.sw_fail("write", exc)
        return OK

    def _inc_dec_transfer(self, op: ChipOp, block: int, operand: int, ctx: ApduContext) -> bytes:
        if block >= ctx.card.block_count:  # reader-side, as for READ/UPDATE (see _span)
            return self.sw_fail("value", NoSuchBlock(f"block {block}"))
        try:
            ctx.value(op, block, operand)
            ctx.transfer(block)
        except CardNak as exc:
            return self.sw_fail("value", exc)
        return OK


class OmnikeyModel(ReaderModel):
    model: ModelName = "omnikey5x21"
    default_name = "HID Global OMNIKEY 5x21 Smart Card Reader 00 00"

    def key_structure(self, p1: int) -> bytes | None:
        if p1 == 0x00:
            return sw(0x6986)  # volatile memory refused (field report, OMNIKEY 5321)
        return super().key_structure(p1)

    def _handlers(self) -> dict[int, Callable[[bytes, ApduContext], bytes]]:
        table = super()._handlers()
        table[0xD4] = self.omnikey_value
        table[0xD8] = self.omnikey_value
        table[0x88] = self.no_obsolete_authenticate
        return table

    def no_obsolete_authenticate(self, apdu: bytes, ctx: ApduContext) -> bytes:
        """PC/SC 2.01 AUTHENTICATE ``FF 88``: an OMNIKEY answered ``67 00`` to a well-formed one
        (OMNIKEY 5127 CK, StackOverflow 27277214, M. Roland: "declared obsolete ... might not be
        supported"); only GENERAL AUTHENTICATE ``FF 86`` works."""
        return sw(self.sw_length)

    def omnikey_value(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 9 or apdu[4] != 4:
            return sw(self.sw_length)
        if apdu[2] != 0:
            return self.sw_fail("value", NoSuchBlock(f"block {apdu[2] << 8 | apdu[3]}"))
        operand = int.from_bytes(apdu[5:9], "little")
        op: ChipOp = "increment" if apdu[1] == 0xD4 else "decrement"
        return self._inc_dec_transfer(op, apdu[3], operand, ctx)

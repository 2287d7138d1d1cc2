"""ACS dialect (ACR1252U, ACR122U): one catch-all failure SW, value commands, LED, firmware.

See :mod:`sim.models` for the rules all models share and the list of ACS specifics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sim.card import CardNak, is_value_format
from sim.latency import ChipOp
from sim.models import OK, ApduContext, ModelName, ReaderModel, sw, value_block_image

__all__ = ["Acr122uModel", "AcsModel"]

logger = logging.getLogger(__name__)


class AcsModel(ReaderModel):
    """ACS dialect: one catch-all failure status word, value commands, LED and firmware."""

    model: ModelName = "acr1252u"
    default_name = "ACS ACR1252 1S CL Reader PICC 00 00"
    default_latency = "acr1252u"
    max_blocks = 15
    max_slot = 0x01
    firmware = b"ACR1252U_V202.2" + OK

    sw_length = sw_p1p2 = sw_data = sw_ins = sw_cla = 0x6300
    sw_key_type = sw_key_number = sw_key_empty = sw_key_length = sw_load_slot = 0x6300

    def sw_fail(self, cmd: str, exc: CardNak) -> bytes:
        return sw(0x6300)

    def get_data(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) == 5 and (apdu[2], apdu[3]) not in ((0, 0), (1, 0)):
            return sw(0x6A81)
        return super().get_data(apdu, ctx)

    def load_key(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 11 or apdu[4] != 6:
            return sw(0x6300)
        return super().load_key(apdu, ctx)

    def key_structure(self, p1: int) -> bytes | None:
        return None if p1 == 0x00 else sw(0x6300)

    def _blocks_per_command(self, ctx: ApduContext) -> int:
        """ACR1252U family: 3 consecutive data blocks on a Mini/1K, 15 on a 4K (big sectors)."""
        return min(self.max_blocks, 15 if ctx.card.size == "4k" else 3)

    def read_length(self, le: int, ctx: ApduContext) -> tuple[int, int] | bytes:
        """Le a multiple of 16 (ACM1252U-Y3 ref. §5.2.4.3); Le 00 and 1..15 are refused."""
        if le and le % 16 == 0 and le // 16 <= self._blocks_per_command(ctx):
            return le // 16, le
        return sw(0x6300)

    def write_length(self, lc: int, ctx: ApduContext) -> int | None:
        """Lc a multiple of 16 (ACM1252U-Y3 ref. §5.2.4.4), same block limits as reading."""
        if lc and lc % 16 == 0 and lc // 16 <= self._blocks_per_command(ctx):
            return lc // 16
        return None

    def _handlers(self) -> dict[int, Callable[[bytes, ApduContext], bytes]]:
        table = super()._handlers()
        table[0xD7] = self.acs_value
        table[0xB1] = self.acs_read_value
        table[0x00] = self.acs_escape
        return table

    def acs_value(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if apdu[2] != 0 or len(apdu) < 5 or len(apdu) != 5 + apdu[4]:
            return sw(0x6300)
        block = apdu[3]
        if apdu[4] == 2 and apdu[5] == 0x03:
            dst = apdu[6]
            if not (block < ctx.card.block_count and dst < ctx.card.block_count):
                return sw(0x6300)
            if ctx.card.sector_of(block) != ctx.card.sector_of(dst):
                return sw(0x6300)  # ACS: restore source and target in the same sector
            try:
                ctx.value("restore", block)
                ctx.transfer(dst)
            except CardNak:
                return sw(0x6300)
            return OK
        if apdu[4] != 5 or apdu[5] not in (0, 1, 2):
            return sw(0x6300)
        value = int.from_bytes(apdu[6:10], "big", signed=True)
        if apdu[5] == 0:
            try:
                ctx.write(block, value_block_image(value, block))
            except CardNak:
                return sw(0x6300)
            return OK
        op: ChipOp = "increment" if apdu[5] == 1 else "decrement"
        return self._inc_dec_transfer(op, block, value & 0xFFFFFFFF, ctx)

    def acs_read_value(self, apdu: bytes, ctx: ApduContext) -> bytes:
        if len(apdu) != 5 or apdu[2] != 0 or apdu[4] != 4:
            return sw(0x6300)
        try:
            raw = ctx.read(apdu[3])
        except CardNak:
            return sw(0x6300)
        if ctx.card.is_trailer(apdu[3]) or not is_value_format(raw):
            return sw(0x6300)
        value = int.from_bytes(raw[0:4], "little", signed=True)
        return value.to_bytes(4, "big", signed=True) + OK

    def acs_escape(self, apdu: bytes, ctx: ApduContext) -> bytes:
        p1, p2 = apdu[2], apdu[3]
        if p1 == 0x48 and apdu == b"\xff\x00\x48\x00\x00":
            return self.firmware
        if p1 == 0x40 and len(apdu) == 9 and apdu[4] == 4:
            mem = ctx.memory
            red, green = mem.led_state & 1, (mem.led_state >> 1) & 1
            if p2 & 0x04:
                red = p2 & 1
            if p2 & 0x08:
                green = (p2 >> 1) & 1
            mem.led_state = red | green << 1
            if apdu[8] & 0x03:
                mem.beeps += apdu[7] or 1
            return bytes((0x90, mem.led_state))
        if p1 == 0x52 and len(apdu) == 5 and p2 in (0x00, 0xFF):
            return OK
        return sw(0x6300)  # direct transmit to the PN532 etc. is not simulated


class Acr122uModel(AcsModel):
    model: ModelName = "acr122u"
    default_name = "ACS ACR122U PICC Interface 00 00"
    default_latency = "acr122u"
    max_blocks = 1
    firmware = b"ACR122U207"  # no SW1 SW2: the ACR122U answers the bare string

    def read_length(self, le: int, ctx: ApduContext) -> tuple[int, int] | bytes:
        """ACR122U API 2.02 §5.3: "Maximum 16 bytes", N bytes of one block; Le 00 refused."""
        if 1 <= le <= 16:
            return 1, le
        return sw(0x6300)

    def write_length(self, lc: int, ctx: ApduContext) -> int | None:
        """ACR122U API 2.02 §5.4: 16 bytes for MIFARE 1K/4K, nothing else."""
        return 1 if lc == 16 else None

"""Reader dialects: what each reader family means by the storage-card commands.

PC/SC Part 3 fixes the command bytes but not the details that matter with MIFARE Classic:
which LOAD KEY structure and slots work (ACS: P1 00, volatile slots 0-1; OMNIKEY: P1 20;
Identiv: P2 is the key *type*), whether READ BINARY may span blocks, which vendor value-block
commands exist (ACS ``FF D7``/``FF B1``, OMNIKEY ``FF D4``/``FF D8`` with a little-endian
operand; on Identiv ``FF B1`` means READ SECTOR, so it has none we can use), the firmware query
and LED/buzzer feedback through transmit. One frozen :class:`Dialect` per family holds those
facts and builds the commands; it does no I/O (that is :mod:`daemon.readers.storage`).

A dialect is chosen from the reader name (or the firmware string) by :func:`detect_dialect`, or
named explicitly in the config; :func:`select_dialect` rejects an unknown name with a
``ConfigError`` naming the config key. Unrecognised readers get ``generic`` (plain Part 3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from daemon.errors import ConfigError, InvalidArgument, ReaderBadResponse, ReaderUnsupported
from daemon.readers import apdu
from daemon.readers.apdu import CLA, Command, CommandKind, KeyType, check_block, check_byte
from daemon.readers.connection import Response
from daemon.readers.status import ACS_TABLE, PCSC_TABLE, StatusTable

__all__ = [
    "ACR122U",
    "ACR1252U",
    "DIALECTS",
    "GENERIC",
    "IDENTIV",
    "INT32_MAX",
    "INT32_MIN",
    "OMNIKEY",
    "Dialect",
    "ValueEncoding",
    "ValueOp",
    "detect_dialect",
    "select_dialect",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
_MAX_FIRMWARE = 64


class ValueOp(enum.Enum):
    """A value-block operation; INCREMENT/DECREMENT include the TRANSFER to the same block."""

    READ = "read"
    STORE = "store"
    INCREMENT = "increment"
    DECREMENT = "decrement"
    RESTORE = "restore"  # RESTORE(src) + TRANSFER(dst)


class ValueEncoding(enum.Enum):
    """How a reader's vendor value commands look on the wire."""

    NONE = "none"  # no usable vendor commands: the storage layer falls back to read/compute/write
    ACS = "acs"  # FF D7 00 <blk> 05 <op> <value MSB first>, FF B1 read, FF D7 .. 02 03 restore
    OMNIKEY = "omnikey"  # FF D4 (inc) / FF D8 (dec) 00 <blk> 04 <value LSB first>


_NATIVE_OPS: dict[ValueEncoding, frozenset[ValueOp]] = {
    ValueEncoding.NONE: frozenset(),
    ValueEncoding.ACS: frozenset(ValueOp),
    ValueEncoding.OMNIKEY: frozenset({ValueOp.INCREMENT, ValueOp.DECREMENT}),
}

_ACS_VB_OP = {ValueOp.STORE: 0x00, ValueOp.INCREMENT: 0x01, ValueOp.DECREMENT: 0x02}
_OMNIKEY_INS = {ValueOp.INCREMENT: 0xD4, ValueOp.DECREMENT: 0xD8}

# ACS LED/buzzer (FF 00 40 <LED control> 04 <T1> <T2> <repeats> <buzzer link>), T in 100 ms.
# success: green blinks once with a short beep; failure: red blinks twice with beeps.
# Final LED states are left alone (update-mask bits 2/3 clear). [? LED bit map unverified on
# hardware: reference mifare.md §1.5]
_FEEDBACK_SUCCESS = bytes((0xA0, 0x04, 0x01, 0x01, 0x01, 0x01))
_FEEDBACK_FAILURE = bytes((0x50, 0x04, 0x02, 0x02, 0x02, 0x01))


@dataclass(frozen=True, slots=True)
class Dialect:
    """The storage-card command details of one reader family (immutable, no I/O)."""

    name: str
    title: str
    key_structure: int
    key_slots: tuple[int, ...]
    status_table: StatusTable
    slot_is_key_type: bool = False  # Identiv: LOAD KEY P2 = 60/61, GENERAL AUTH key number 01
    obsolete_authenticate: bool = False  # send FF 88 instead of FF 86
    max_read_blocks: int = 1  # >1: READ BINARY Le 0x20/0x30 over consecutive data blocks
    value_encoding: ValueEncoding = ValueEncoding.NONE
    firmware_query: bool = False  # FF 00 48 00 00 through transmit
    feedback: bool = False  # FF 00 40 LED/buzzer through transmit
    name_markers: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"

    # -- keys and authentication -------------------------------------------------------------

    def _check_slot(self, slot: int) -> int:
        check_byte("slot", slot)
        if slot not in self.key_slots:
            usable = ", ".join(str(s) for s in self.key_slots)
            raise ReaderUnsupported(
                f"{self.title}: key slot {slot} is not usable (usable volatile slots: {usable})"
            )
        return slot

    def load_key(self, key: bytes, slot: int = 0, key_type: int = KeyType.A) -> Command:
        """LOAD KEY into a slot the reader really has: volatile on ACS, Identiv and generic;
        the OMNIKEY refuses volatile keys (69 86), so there it goes to the reader's EEPROM."""
        self._check_slot(slot)
        if self.slot_is_key_type:
            return apdu.load_key(key, apdu.check_key_type(key_type), self.key_structure)
        return apdu.load_key(key, slot, self.key_structure)

    def authenticate(self, block: int, key_type: int, slot: int = 0) -> Command:
        self._check_slot(slot)
        key_number = 0x01 if self.slot_is_key_type else slot
        if self.obsolete_authenticate:
            return apdu.authenticate_obsolete(block, key_type, key_number)
        return apdu.general_authenticate(block, key_type, key_number)

    # -- data blocks -------------------------------------------------------------------------

    def read(self, block: int, count: int = 1) -> Command:
        """READ BINARY of ``count`` consecutive data blocks (1 unless multi-block is allowed)."""
        check_byte("count", count, 1, self.max_read_blocks)
        if count > 1 and any(apdu.is_trailer(b) for b in range(block, block + count)):
            raise InvalidArgument("count", f"a multi-block read from block {block} spans a trailer")
        return apdu.read_binary(block, count * apdu.BLOCK_SIZE)

    def write(self, block: int, data: bytes) -> Command:
        return apdu.update_binary(block, data)

    # -- value blocks ------------------------------------------------------------------------

    def native_value_ops(self) -> frozenset[ValueOp]:
        """Operations with a vendor command; the others need the non-atomic fallback."""
        return _NATIVE_OPS[self.value_encoding]

    def _unsupported(self, op: ValueOp) -> ReaderUnsupported:
        return ReaderUnsupported(f"{self.title}: no vendor command for value {op.value}")

    def value_read(self, block: int) -> Command:
        """ACS ``FF B1 00 <blk> 04``: the 4-byte signed value, MSB first."""
        check_block(block)
        if ValueOp.READ not in self.native_value_ops():
            raise self._unsupported(ValueOp.READ)
        return Command(
            "READ VALUE",
            bytes((CLA, 0xB1, 0x00, block, 0x04)),
            CommandKind.VALUE_READ,
            detail=f"block {block}",
            block=block,
        )

    def value_store(self, block: int, value: int) -> Command:
        """ACS ``FF D7 00 <blk> 05 00 <value>``: format ``block`` as a value block."""
        check_block(block)
        check_byte("value", value, INT32_MIN, INT32_MAX)
        if ValueOp.STORE not in self.native_value_ops():
            raise self._unsupported(ValueOp.STORE)
        return self._acs_value(ValueOp.STORE, block, value, "STORE VALUE")

    def value_change(self, op: ValueOp, block: int, amount: int) -> Command:
        """INCREMENT or DECREMENT ``block`` by ``amount`` (reader does the TRANSFER)."""
        check_block(block)
        check_byte("amount", amount, 0, INT32_MAX)
        if op not in (ValueOp.INCREMENT, ValueOp.DECREMENT):
            raise InvalidArgument("op", f"{op.value} is not increment or decrement")
        if op not in self.native_value_ops():
            raise self._unsupported(op)
        name = f"{op.value.upper()} VALUE"
        if self.value_encoding is ValueEncoding.OMNIKEY:
            payload = amount.to_bytes(4, "little")
            return Command(
                name,
                bytes((CLA, _OMNIKEY_INS[op], 0x00, block, 0x04)) + payload,
                CommandKind.VALUE_WRITE,
                detail=f"block {block} by {amount}",
                block=block,
            )
        return self._acs_value(op, block, amount, name)

    def _acs_value(self, op: ValueOp, block: int, value: int, name: str) -> Command:
        payload = bytes((_ACS_VB_OP[op],)) + value.to_bytes(4, "big", signed=True)
        detail = f"block {block} = {value}" if op is ValueOp.STORE else f"block {block} by {value}"
        return Command(
            name,
            bytes((CLA, 0xD7, 0x00, block, 0x05)) + payload,
            CommandKind.VALUE_WRITE,
            detail=detail,
            block=block,
        )

    def value_restore(self, source: int, target: int) -> Command:
        """ACS ``FF D7 00 <src> 02 03 <dst>``: RESTORE + TRANSFER (same sector only)."""
        check_block(source)
        check_byte("target", target)
        if ValueOp.RESTORE not in self.native_value_ops():
            raise self._unsupported(ValueOp.RESTORE)
        return Command(
            "RESTORE VALUE",
            bytes((CLA, 0xD7, 0x00, source, 0x02, 0x03, target)),
            CommandKind.VALUE_WRITE,
            detail=f"block {source} to block {target}",
            block=target,
        )

    def parse_value(self, response: Response, command: Command, reader: str) -> int:
        """The signed 32-bit value of a READ VALUE answer (exactly 4 data bytes)."""
        if len(response.data) != 4:
            raise ReaderBadResponse(
                f"reader {reader!r}: {command.describe()}: expected 4 value bytes,"
                f" got {len(response.data)}"
            )
        return int.from_bytes(response.data, "big", signed=True)

    # -- reader housekeeping -----------------------------------------------------------------

    def firmware(self) -> Command:
        """ACS ``FF 00 48 00 00``; other families report firmware through PC/SC attributes."""
        if not self.firmware_query:
            raise ReaderUnsupported(f"{self.title}: no firmware query through transmit")
        return Command("GET FIRMWARE", bytes((CLA, 0x00, 0x48, 0x00, 0x00)), CommandKind.CONTROL)

    def parse_firmware(self, response: Response, command: Command, reader: str) -> str:
        """Firmware text; the ACR122U answers bare ASCII with no SW (``ACR122U201``)."""
        raw = response.data if response.sw == 0x9000 else response.to_bytes()
        if not raw or len(raw) > _MAX_FIRMWARE or not all(0x20 <= b < 0x7F for b in raw):
            raise ReaderBadResponse(
                f"reader {reader!r}: {command.describe()}: answer is not a firmware string"
                f" ({len(raw)} bytes)"
            )
        return raw.decode("ascii")

    def feedback_command(self, success: bool) -> Command:
        """LED/buzzer signal after a card operation (ACS ``FF 00 40``; answer SW ``90 xx``)."""
        if not self.feedback:
            raise ReaderUnsupported(f"{self.title}: no LED/buzzer control through transmit")
        body = _FEEDBACK_SUCCESS if success else _FEEDBACK_FAILURE
        return Command(
            "LED BUZZER",
            bytes((CLA, 0x00, 0x40)) + body,
            CommandKind.CONTROL,
            detail="success" if success else "failure",
        )

    def feedback_accepted(self, response: Response) -> bool:
        """ACS answers ``90 <LED state>`` rather than ``90 00``."""
        return response.sw1 == 0x90


ACR122U = Dialect(
    name="acr122u",
    title="ACS ACR122U",
    key_structure=0x00,
    key_slots=(0, 1),
    status_table=ACS_TABLE,
    max_read_blocks=1,
    value_encoding=ValueEncoding.ACS,
    firmware_query=True,
    feedback=True,
    name_markers=("ACR122",),
)
ACR1252U = Dialect(
    name="acr1252u",
    title="ACS ACR1252U family",
    key_structure=0x00,
    key_slots=(0, 1),
    status_table=ACS_TABLE,
    max_read_blocks=3,
    value_encoding=ValueEncoding.ACS,
    firmware_query=True,
    feedback=True,
    name_markers=("ACR1252", "ACM1252", "ACR1255", "ACR1251"),
)
OMNIKEY = Dialect(
    name="omnikey",
    title="HID OMNIKEY 5x21/5x22",
    key_structure=0x20,
    key_slots=(0, 1),
    status_table=PCSC_TABLE,
    value_encoding=ValueEncoding.OMNIKEY,
    name_markers=("OMNIKEY",),
)
IDENTIV = Dialect(
    name="identiv",
    title="Identiv uTrust",
    key_structure=0x00,
    key_slots=(0,),
    status_table=PCSC_TABLE,
    slot_is_key_type=True,
    name_markers=("UTRUST", "IDENTIV"),
)
GENERIC = Dialect(
    name="generic",
    title="generic PC/SC Part 3",
    key_structure=0x00,
    key_slots=(0, 1),
    status_table=PCSC_TABLE,
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (ACR122U, ACR1252U, OMNIKEY, IDENTIV, GENERIC)}
"""Every dialect by its config name."""

_FIRMWARE_MARKERS = (("ACR122U", ACR122U), ("ACR1252U", ACR1252U), ("ACR1255U", ACR1252U))


def detect_dialect(reader_name: str, firmware: str | None = None) -> Dialect:
    """The dialect for a reader name (case-insensitive markers), else its firmware, else generic."""
    upper = reader_name.upper()
    for dialect in DIALECTS.values():
        if any(marker in upper for marker in dialect.name_markers):
            return dialect
    if firmware:
        fw = firmware.upper()
        for marker, dialect in _FIRMWARE_MARKERS:
            if fw.startswith(marker):
                return dialect
    return GENERIC


def select_dialect(
    reader_name: str,
    *,
    firmware: str | None = None,
    override: str | None = None,
    config_key: str = "readers.dialect",
) -> Dialect:
    """The dialect named by ``override`` (unknown -> ``ConfigError``), else the detected one."""
    if override is None or override == "auto":
        return detect_dialect(reader_name, firmware)
    dialect = DIALECTS.get(override.strip().lower())
    if dialect is None:
        known = ", ".join(["auto", *DIALECTS])
        raise ConfigError(config_key, f"unknown reader dialect {override!r} (known: {known})")
    return dialect

"""Status words -> typed exceptions from :mod:`daemon.errors`.

One table of the PC/SC Part 3 / ISO 7816 status words our readers send (reference ``mifare.md``
§1.4), and per-dialect tables that add what a vendor means differently. The mapping also
depends on the command: ``69 82`` after an authentication means the key was wrong (OMNIKEY,
Identiv), after a READ it means the block is not accessible with the current authentication.

ACS readers answer ``63 00`` to *every* failure (wrong key, card gone, block not a value
block): that maps to :class:`~daemon.errors.CardCommandFailed`, and the rule is flagged
*ambiguous* so that the storage layer turns it into ``WriteUnconfirmed`` after a command that
may have changed the card. A status word that is in no table is a
:class:`~daemon.errors.ReaderBadResponse` naming reader, command and SW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from daemon.errors import (
    BlockNotFound,
    CardAccessDenied,
    CardAuthFailed,
    CardCommandFailed,
    CardDaemonError,
    CardDataCorrupt,
    ReaderBadResponse,
    ReaderUnsupported,
)
from daemon.readers.apdu import Command, CommandKind
from daemon.readers.connection import Response

__all__ = [
    "ACS_TABLE",
    "PCSC_TABLE",
    "StatusRule",
    "StatusTable",
    "check",
    "describe_sw",
    "error_for",
]

_KEY_COMMANDS = frozenset({CommandKind.AUTHENTICATE, CommandKind.LOAD_KEY})
_VALUE_COMMANDS = frozenset({CommandKind.VALUE_READ, CommandKind.VALUE_WRITE})


@dataclass(frozen=True, slots=True)
class StatusRule:
    """What one SW means: the error to raise, the text, and a variant for key commands.

    ``ambiguous`` marks SWs that do not prove the card was left untouched: after a command
    that may change the card they mean "outcome unknown".
    """

    error: type[CardDaemonError]
    meaning: str
    on_key_command: type[CardDaemonError] | None = None
    key_meaning: str | None = None
    ambiguous: bool = False
    on_value_command: type[CardDaemonError] | None = None
    value_meaning: str | None = None

    def error_type(self, command: Command) -> type[CardDaemonError]:
        if command.kind in _KEY_COMMANDS and self.on_key_command is not None:
            return self.on_key_command
        if command.kind in _VALUE_COMMANDS and self.on_value_command is not None:
            return self.on_value_command
        return self.error

    def text(self, command: Command) -> str:
        if command.kind in _KEY_COMMANDS and self.key_meaning is not None:
            return self.key_meaning
        if command.kind in _VALUE_COMMANDS and self.value_meaning is not None:
            return self.value_meaning
        return self.meaning


@dataclass(frozen=True, slots=True)
class StatusTable:
    """Exact SWs, plus SW1-only families (``6C XX``) for one reader dialect."""

    name: str
    exact: Mapping[int, StatusRule]
    by_sw1: Mapping[int, StatusRule]

    def lookup(self, sw: int) -> StatusRule | None:
        rule = self.exact.get(sw)
        if rule is None:
            rule = self.by_sw1.get(sw >> 8)
        return rule

    def extended(self, name: str, extra: Mapping[int, StatusRule]) -> StatusTable:
        merged = dict(self.exact)
        merged.update(extra)
        return StatusTable(name, MappingProxyType(merged), self.by_sw1)


_PCSC_EXACT: dict[int, StatusRule] = {
    0x6282: StatusRule(ReaderBadResponse, "end of data reached before Le bytes"),
    0x6300: StatusRule(
        CardCommandFailed,
        "the command failed, no information given",
        ambiguous=True,
    ),
    0x6382: StatusRule(ReaderUnsupported, "card key not supported"),
    0x6383: StatusRule(ReaderUnsupported, "reader key not supported"),
    0x6384: StatusRule(ReaderUnsupported, "plain transmission not supported"),
    0x6385: StatusRule(ReaderUnsupported, "secured transmission not supported"),
    0x6386: StatusRule(ReaderUnsupported, "volatile key memory not available"),
    0x6387: StatusRule(ReaderUnsupported, "non-volatile key memory not available"),
    0x6388: StatusRule(ReaderUnsupported, "key number not valid"),
    0x6389: StatusRule(ReaderUnsupported, "key length not correct"),
    0x6581: StatusRule(
        BlockNotFound,
        "memory failure or addressed block does not exist",
        ambiguous=True,
    ),
    0x6700: StatusRule(ReaderUnsupported, "wrong length"),
    0x6981: StatusRule(
        ReaderUnsupported,
        "command incompatible",
        on_value_command=CardDataCorrupt,
        value_meaning="block is not in value-block format (torn or not a value block)",
    ),
    0x6982: StatusRule(
        CardAccessDenied,
        "security status not satisfied: block not accessible with the current authentication",
        on_key_command=CardAuthFailed,
        key_meaning="authentication failed",
    ),
    0x6983: StatusRule(CardAuthFailed, "authentication cannot be done"),
    0x6984: StatusRule(ReaderUnsupported, "reference key not usable: key slot empty?"),
    0x6986: StatusRule(
        CardAccessDenied,
        "command not allowed",
        on_key_command=ReaderUnsupported,
        key_meaning="key type or key structure not known to this reader",
    ),
    0x6988: StatusRule(ReaderUnsupported, "key number not valid"),
    0x6A81: StatusRule(ReaderUnsupported, "function not supported"),
    0x6A82: StatusRule(BlockNotFound, "addressed block does not exist"),
    0x6A80: StatusRule(ReaderUnsupported, "incorrect data field"),
    0x6B00: StatusRule(ReaderUnsupported, "wrong P1/P2"),
    0x6D00: StatusRule(ReaderUnsupported, "instruction not supported by this reader"),
    0x6E00: StatusRule(ReaderUnsupported, "class not supported by this reader"),
}

_PCSC_BY_SW1: dict[int, StatusRule] = {
    0x6C: StatusRule(ReaderUnsupported, "wrong Le (SW2 is the length the reader wants)"),
    0x61: StatusRule(ReaderBadResponse, "response bytes still pending were not fetched"),
}

PCSC_TABLE = StatusTable(
    "PC/SC Part 3", MappingProxyType(_PCSC_EXACT), MappingProxyType(_PCSC_BY_SW1)
)
"""What a standard PC/SC Part 3 reader (OMNIKEY, Identiv, generic) means by each SW."""

_ACS_EXTRA: dict[int, StatusRule] = {
    0x6300: StatusRule(
        CardCommandFailed,
        "ACS reports every failure alike: wrong key, card gone or not a value block",
        ambiguous=True,
    ),
    0x6301: StatusRule(CardCommandFailed, "the reader's PN532 did not respond", ambiguous=True),
    0x6327: StatusRule(
        CardCommandFailed,
        "contactless response with an invalid checksum",
        ambiguous=True,
    ),
    0x637F: StatusRule(
        CardCommandFailed, "invalid contactless command for the PN532", ambiguous=True
    ),
}

ACS_TABLE = PCSC_TABLE.extended("ACS", _ACS_EXTRA)
"""ACS readers: catch-all ``63 00`` and the PN532 status words of the ACR122U family."""


def describe_sw(sw: int) -> str:
    return f"{sw >> 8:02X} {sw & 0xFF:02X}"


def error_for(
    response: Response, command: Command, reader: str, table: StatusTable = PCSC_TABLE
) -> tuple[CardDaemonError, StatusRule | None]:
    """The exception a non-success SW stands for, and the rule that produced it (None: unknown)."""
    rule = table.lookup(response.sw)
    where = f"reader {reader!r}: {command.describe()}"
    if rule is None:
        return (
            ReaderBadResponse(f"{where}: unknown status word {describe_sw(response.sw)}"),
            None,
        )
    text = f"{where}: {rule.text(command)} (SW {describe_sw(response.sw)})"
    return rule.error_type(command)(text), rule


def check(
    response: Response, command: Command, reader: str, table: StatusTable = PCSC_TABLE
) -> Response:
    """Return ``response`` if its SW is ``90 00``, else raise the mapped typed error."""
    if response.sw == 0x9000:
        return response
    error, _rule = error_for(response, command, reader, table)
    raise error

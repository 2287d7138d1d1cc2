"""Well-known MIFARE Classic keys: factory defaults, published application keys, backdoors.

These are public constants (datasheets, NFC Forum, AN10787, the key dictionaries every
cracking tool ships), not our secrets. We use them two ways: a technician probe may try them,
and key derivation must refuse to produce any of them, since a diversified key that happens
to equal a dictionary key is found in the first second of an attack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.errors import InvalidArgument
from daemon.mifare.geometry import KEY_SIZE

__all__ = [
    "FUDAN_BACKDOOR_KEYS",
    "WELL_KNOWN_KEYS",
    "WellKnownKey",
    "is_well_known",
    "label_for",
    "probe_order",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WellKnownKey:
    """A public key and where it comes from (shown to technicians)."""

    key: bytes
    label: str


def _k(hexkey: str, label: str) -> WellKnownKey:
    return WellKnownKey(bytes.fromhex(hexkey), label)


FUDAN_BACKDOOR_KEYS: tuple[WellKnownKey, ...] = (
    _k("A396EFA4E24F", "Fudan FM11RF08S backdoor"),
    _k("A31667A8CEC1", "Fudan FM11RF08 backdoor (also some Infineon/NXP chips)"),
    _k("518B3354E760", "Fudan FM11RF32N backdoor"),
    _k("73B9836CF168", "Fudan FM11RF32N backdoor"),
)

# Most likely first: a probe on a technician station tries them in this order.
WELL_KNOWN_KEYS: tuple[WellKnownKey, ...] = (
    _k("FFFFFFFFFFFF", "factory default (transport)"),
    _k("000000000000", "all zeros"),
    _k("A0A1A2A3A4A5", "MAD key A (AN10787, public)"),
    _k("B0B1B2B3B4B5", "common MAD / sample key B"),
    _k("D3F7D3F7D3F7", "NFC Forum NDEF sector key A (public)"),
    _k("C0C1C2C3C4C5", "sample key"),
    _k("D0D1D2D3D4D5", "sample key"),
    _k("AABBCCDDEEFF", "sample key"),
    _k("A0B0C0D0E0F0", "sample key"),
    _k("A1B1C1D1E1F1", "sample key"),
    _k("1A2B3C4D5E6F", "sample key"),
    _k("123456789ABC", "sample key"),
    _k("112233445566", "sample key"),
    _k("010203040506", "sample key"),
    _k("ABCDEF123456", "sample key"),
    _k("4D3A99C351DD", "published dictionary key (std.keys)"),
    _k("1A982C7E459A", "published dictionary key (std.keys)"),
    _k("714C5C886E97", "published dictionary key (std.keys)"),
    _k("587EE5F9350F", "published dictionary key (std.keys)"),
    _k("A0478CC39091", "published dictionary key (std.keys)"),
    _k("533CB6C723F6", "published dictionary key (std.keys)"),
    _k("8FD0A4F256E9", "published dictionary key (std.keys)"),
    _k("4B791BEA7BCC", "MIFARE Classic EV1 signature sector key B"),
    _k("707B11FC1481", "MIFARE Classic EV1 (QL88) signature sector key B"),
    *FUDAN_BACKDOOR_KEYS,
)

_BY_KEY = {k.key: k.label for k in WELL_KNOWN_KEYS}


def _check(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise InvalidArgument("key", f"a MIFARE Classic key is {KEY_SIZE} bytes")
    return bytes(key)


def is_well_known(key: bytes) -> bool:
    """True if ``key`` is in the public dictionary; such a key protects nothing."""
    return _check(key) in _BY_KEY


def label_for(key: bytes) -> str | None:
    """Where a well-known key comes from, or ``None`` (never echoes an unknown key)."""
    return _BY_KEY.get(_check(key))


def probe_order() -> tuple[bytes, ...]:
    """Keys for a technician's dictionary probe, most likely first."""
    return tuple(k.key for k in WELL_KNOWN_KEYS)

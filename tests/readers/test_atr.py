"""PC/SC Part 3 ATR decoding: the card type the daemon knows before touching the card."""

from __future__ import annotations

import pytest

from daemon.readers.atr import card_type, decode_atr


def _part3(name: int, standard: int = 0x03) -> bytes:
    body = bytes.fromhex("8F8001804F0CA000000306") + bytes(
        (standard, name >> 8, name & 0xFF, 0, 0, 0, 0)
    )
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


@pytest.mark.parametrize(
    ("atr_hex", "expected"),
    [
        ("3B8F8001804F0CA000000306030001000000006A", "MIFARE Classic 1K"),
        ("3B8F8001804F0CA0000003060300020000000069", "MIFARE Classic 4K"),
        ("3B8F8001804F0CA0000003060300030000000068", "MIFARE Ultralight"),
    ],
)
def test_reference_atrs(atr_hex: str, expected: str) -> None:
    info = decode_atr(bytes.fromhex(atr_hex))
    assert info.card_type == expected
    assert info.pcsc_part3
    assert info.standard == "ISO 14443 A part 3"
    assert info.checksum_ok is True
    assert info.problem is None


def test_mini_and_unknown_card_names() -> None:
    assert card_type(_part3(0x0026)) == "MIFARE Mini"
    assert card_type(_part3(0x0F0F)) == "PC/SC card name 0F0F"


def test_iso14443_4_card() -> None:
    hist = bytes.fromhex("8073C021C057597562694B6579")  # a DESFire-like ATS, 13 bytes
    body = bytes((0x80 | len(hist), 0x80, 0x01)) + hist
    tck = 0
    for b in body:
        tck ^= b
    info = decode_atr(b"\x3b" + body + bytes((tck,)))
    assert info.card_type == "ISO 14443-4 card"
    assert not info.pcsc_part3


@pytest.mark.parametrize(
    ("atr", "problem"),
    [
        (b"", "too short"),
        (b"\x3b", "too short"),
        (bytes.fromhex("3C8F"), "TS 3C"),
        (bytes.fromhex("3B8F8001804F0CA0000003060300010000"), "length"),
        (bytes.fromhex("3B8F8001804F0CA000000306030001000000006B"), "bad TCK"),
        (bytes.fromhex("3BF0"), "interface bytes"),
        (bytes.fromhex("3B00"), "not a PC/SC Part 3"),
    ],
    ids=["empty", "ts-only", "bad-ts", "truncated", "bad-tck", "missing-interface", "no-hist"],
)
def test_malformed_atrs_never_raise_and_say_why(atr: bytes, problem: str) -> None:
    info = decode_atr(atr)
    assert info.card_type == "unknown"
    assert info.problem is not None
    assert problem in info.problem

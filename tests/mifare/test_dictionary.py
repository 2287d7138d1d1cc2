"""The public key dictionary."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidArgument
from daemon.mifare.dictionary import (
    FUDAN_BACKDOOR_KEYS,
    WELL_KNOWN_KEYS,
    is_well_known,
    label_for,
    probe_order,
)


@pytest.mark.parametrize(
    "hexkey",
    [
        "FFFFFFFFFFFF",
        "000000000000",
        "A0A1A2A3A4A5",
        "D3F7D3F7D3F7",
        "A396EFA4E24F",
        "A31667A8CEC1",
        "518B3354E760",
        "73B9836CF168",
        "4B791BEA7BCC",
    ],
)
def test_public_keys_are_known(hexkey: str) -> None:
    assert is_well_known(bytes.fromhex(hexkey))
    assert label_for(bytes.fromhex(hexkey))


def test_a_random_looking_key_is_not_known() -> None:
    key = bytes.fromhex("5E11C0DE9A17")
    assert not is_well_known(key)
    assert label_for(key) is None


def test_dictionary_has_no_duplicates_and_defaults_first() -> None:
    keys = probe_order()
    assert len(keys) == len(set(keys)) == len(WELL_KNOWN_KEYS)
    assert keys[0] == b"\xff" * 6
    assert all(k.key in keys for k in FUDAN_BACKDOOR_KEYS)
    assert all(len(k) == 6 for k in keys)


@pytest.mark.parametrize("bad", [b"", b"\xff" * 5, b"\xff" * 7, "FFFFFFFFFFFF", None])
def test_bad_key_rejected_without_echo(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"key: a MIFARE Classic key is 6 bytes$"):
        is_well_known(bad)  # type: ignore[arg-type]

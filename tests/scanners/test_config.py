"""Scanner config tables: any value typed into any key is a scanner or a ConfigError naming
``scanners.<id>.<key>``, never another exception (a store PC must start or say what is wrong)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ConfigError
from daemon.scanners import (
    HidPosScanner,
    KeyboardWedgeScanner,
    ScanStream,
    SerialScanner,
    build_scanner,
)
from daemon.scanners.base import COMMON_KEYS

# What a TOML file can hold, including the awkward cases (non-Latin-1 text, huge numbers).
_VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["CR", "lf", "crlf", "none", "FLUSH", "discard", "\u524d", "\x02"]),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=4),
)
_BASE: dict[str, dict[str, Any]] = {
    "serial": {"backend": "serial", "url": "loop://"},
    "hidpos": {"backend": "hidpos", "vid": 0x0C2E, "pid": 0x0B61},
    "wedge": {"backend": "wedge", "path": "/dev/input/event-none"},
}
_KEYS = {
    name: cls.config_keys | COMMON_KEYS
    for name, cls in (
        ("serial", SerialScanner),
        ("hidpos", HidPosScanner),
        ("wedge", KeyboardWedgeScanner),
    )
}


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(_BASE)))
def test_any_value_in_any_key_is_accepted_or_names_the_key(data: st.DataObject, kind: str) -> None:
    key = data.draw(st.sampled_from(sorted(_KEYS[kind] - {"backend"})), label="key")
    value = data.draw(_VALUES, label="value")
    table = {**_BASE[kind], key: value}
    with ScanStream() as stream:
        problem: ConfigError | None = None
        try:
            build_scanner("x", table, stream).close()  # never started: nothing to release
        except ConfigError as err:
            problem = err
    if problem is not None:
        assert problem.key.startswith("scanners.x."), problem.key


def test_prefix_outside_latin1_names_the_key() -> None:
    with ScanStream() as stream, pytest.raises(ConfigError) as err:
        build_scanner("x", {"backend": "serial", "url": "loop://", "prefix": "\u524d"}, stream)
    assert err.value.key == "scanners.x.prefix"

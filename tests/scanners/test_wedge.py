"""Keyboard-wedge scanners: US-layout key translation and framing (the evdev device part cannot
run here: no /dev/input, no uinput)."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError
from daemon.scanners import KeyTranslator, ScanStream, SerialFramer, Terminator, build_scanner
from daemon.scanners.wedge import evdev_available

# Linux input ABI key codes (linux/input-event-codes.h) — what a US-layout scanner presses.
SHIFT, CTRL, CAPS, ENTER, KPENTER = 42, 29, 58, 28, 96
_ROW = {"1234567890-=": 2, "qwertyuiop[]": 16, "asdfghjkl;'`": 30, "zxcvbnm,./": 44}
_SHIFTED = dict(zip("1234567890-=[];'`,./", '!@#$%^&*()_+{}:"~<>?', strict=True))
KEYS: dict[str, tuple[int, bool]] = {}
for row, first in _ROW.items():
    for i, ch in enumerate(row):
        KEYS[ch] = (first + i, False)
        if ch in _SHIFTED:
            KEYS[_SHIFTED[ch]] = (first + i, True)
        if ch.isalpha():
            KEYS[ch.upper()] = (first + i, True)
KEYS["\\"], KEYS["|"], KEYS[" "] = (43, False), (43, True), (57, False)


def typed(text: str) -> list[tuple[int, int]]:
    """The EV_KEY (code, value) events a wedge scanner sends to type ``text`` then Enter."""
    events: list[tuple[int, int]] = []
    for ch in text:
        if ch == "\x1d":  # FNC1 as Ctrl+]
            events += [(CTRL, 1), (27, 1), (27, 0), (CTRL, 0)]
            continue
        code, shifted = KEYS[ch]
        if shifted:
            events.append((SHIFT, 1))
        events += [(code, 1), (code, 0)]
        if shifted:
            events.append((SHIFT, 0))
    return [*events, (ENTER, 1), (ENTER, 0)]


def run(events: list[tuple[int, int]], keys: KeyTranslator | None = None) -> bytes:
    t = keys or KeyTranslator()
    return b"".join(t.key(code, value) for code, value in events)


def test_us_layout_text_including_shifted_symbols() -> None:
    text = "Order#42: a@b.cn|{x}~!?"
    assert run(typed(text)) == text.encode() + b"\r"


def test_caps_lock_flips_letters_only_and_shift_undoes_it() -> None:
    keys = KeyTranslator()
    assert run([(CAPS, 1), (CAPS, 0)], keys) == b""
    assert run([(30, 1), (30, 0), (2, 1), (2, 0)], keys) == b"A1"
    assert run([(SHIFT, 1), (30, 1), (30, 0), (SHIFT, 0)], keys) == b"a"


def test_ctrl_gives_control_characters_fnc1_included() -> None:
    assert run(typed("01\x1d10AB"))[:3] == b"01\x1d"
    assert run([(CTRL, 1), (30, 1), (30, 0), (CTRL, 0)]) == b"\x01"


def test_releases_repeats_and_unknown_keys_type_nothing() -> None:
    keys = KeyTranslator()
    assert run([(30, 0), (30, 2), (59, 1)], keys) == b""  # release, auto-repeat, F1
    assert keys.unknown_keys == 1
    assert run([(KPENTER, 1)], keys) == b"\r"


def test_shift_held_when_the_device_vanished_is_forgotten() -> None:
    keys = KeyTranslator()
    keys.key(SHIFT, 1)
    keys.reset()
    assert run([(30, 1)], keys) == b"a"


def test_wedge_keys_through_the_framer_give_a_scan_with_aim() -> None:
    framer = SerialFramer(Terminator.CR)
    scans = framer.feed(run(typed("]E04006381333931") + typed("]Q1CDM1.7.9.ab")), 0)
    assert [(s.aim, s.data) for s in scans] == [
        ("]E0", b"4006381333931"),
        ("]Q1", b"CDM1.7.9.ab"),
    ]


def test_wedge_config_needs_cr_or_none() -> None:
    with ScanStream() as stream, pytest.raises(ConfigError) as err:
        build_scanner("kbw", {"backend": "wedge", "path": "/dev/input/x", "suffix": "LF"}, stream)
    assert err.value.key == "scanners.kbw.suffix"


def test_wedge_backend_needs_python_evdev() -> None:
    """python-evdev is the optional extra ``carddaemon[wedge]``: without it, a config error."""
    table = {"backend": "wedge", "path": "/dev/input/x"}
    with ScanStream() as stream:
        if evdev_available():
            scanner = build_scanner("kbw", table, stream)
            assert scanner.backend.description == "keyboard wedge /dev/input/x"
            return
        with pytest.raises(ConfigError, match="python-evdev") as err:
            build_scanner("kbw", table, stream)
    assert err.value.key == "scanners.kbw.backend"

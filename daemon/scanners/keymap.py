"""Keyboard-wedge scanners: Linux key events → the bytes the scanner meant to type.

A wedge scanner is a USB keyboard that types each code and presses Enter. It is programmed for
a US layout (the only one every scanner supports), so we translate Linux key codes with a fixed
US table instead of the desktop's layout: that is what keeps ``@`` from turning into ``"`` on a
UK-configured PC. Ctrl+letter gives the control character, so GS1's FNC1 arrives as Ctrl+]
(0x1D). The key codes are the kernel's input ABI (``linux/input-event-codes.h``).
"""

from __future__ import annotations

import logging

__all__ = ["KEY_ENTER", "KEY_KPENTER", "KeyTranslator"]

logger = logging.getLogger(__name__)

KEY_ENTER = 28
KEY_KPENTER = 96
_LEFTCTRL, _RIGHTCTRL = 29, 97
_LEFTSHIFT, _RIGHTSHIFT = 42, 54
_CAPSLOCK = 58
_TAB = 15

# key code → (unshifted, shifted)
_US: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"),
    7: ("6", "^"), 8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"),
    12: ("-", "_"), 13: ("=", "+"), 26: ("[", "{"), 27: ("]", "}"), 39: (";", ":"),
    40: ("'", '"'), 41: ("`", "~"), 43: ("\\", "|"), 51: (",", "<"), 52: (".", ">"),
    53: ("/", "?"), 57: (" ", " "), _TAB: ("\t", "\t"),
    # keypad (scanners use it for Alt codes; plain digits otherwise)
    71: ("7", "7"), 72: ("8", "8"), 73: ("9", "9"), 74: ("-", "-"), 75: ("4", "4"),
    76: ("5", "5"), 77: ("6", "6"), 78: ("+", "+"), 79: ("1", "1"), 80: ("2", "2"),
    81: ("3", "3"), 82: ("0", "0"), 83: (".", "."), 55: ("*", "*"), 98: ("/", "/"),
}  # fmt: skip
_LETTERS = {
    16: "q", 17: "w", 18: "e", 19: "r", 20: "t", 21: "y", 22: "u", 23: "i", 24: "o", 25: "p",
    30: "a", 31: "s", 32: "d", 33: "f", 34: "g", 35: "h", 36: "j", 37: "k", 38: "l",
    44: "z", 45: "x", 46: "c", 47: "v", 48: "b", 49: "n", 50: "m",
}  # fmt: skip
# Ctrl + [ \ ] → ESC, FS, GS (0x1B-0x1D): GS is FNC1 in GS1 codes.
_CTRL_PUNCT = {26: 0x1B, 43: 0x1C, 27: 0x1D}

PRESS, RELEASE, REPEAT = 1, 0, 2


class KeyTranslator:
    """Stateful (shift, ctrl, caps lock) translation of EV_KEY events to bytes; Enter → CR."""

    def __init__(self) -> None:
        self._shift: set[int] = set()
        self._ctrl: set[int] = set()
        self._caps = False
        self.unknown_keys = 0

    def key(self, code: int, value: int) -> bytes:
        """One EV_KEY event (value 1 press, 0 release, 2 auto-repeat); the bytes it types."""
        if code in (_LEFTSHIFT, _RIGHTSHIFT):
            self._hold(self._shift, code, value)
            return b""
        if code in (_LEFTCTRL, _RIGHTCTRL):
            self._hold(self._ctrl, code, value)
            return b""
        if value != PRESS:  # releases carry nothing; scanners never auto-repeat on purpose
            return b""
        if code == _CAPSLOCK:
            self._caps = not self._caps
            return b""
        if code in (KEY_ENTER, KEY_KPENTER):
            return b"\r"
        if self._ctrl:
            return self._control(code)
        letter = _LETTERS.get(code)
        if letter is not None:
            upper = bool(self._shift) != self._caps
            return (letter.upper() if upper else letter).encode("ascii")
        pair = _US.get(code)
        if pair is None:
            self.unknown_keys += 1
            logger.debug("wedge: key code %d ignored", code)
            return b""
        return pair[1 if self._shift else 0].encode("ascii")

    def _control(self, code: int) -> bytes:
        letter = _LETTERS.get(code)
        if letter is not None:
            return bytes([ord(letter.upper()) - 0x40])
        if code in _CTRL_PUNCT:
            return bytes([_CTRL_PUNCT[code]])
        self.unknown_keys += 1
        return b""

    @staticmethod
    def _hold(held: set[int], code: int, value: int) -> None:
        if value == RELEASE:
            held.discard(code)
        else:
            held.add(code)

    def reset(self) -> None:
        """Forget held modifiers (the device went away with a key down)."""
        self._shift.clear()
        self._ctrl.clear()

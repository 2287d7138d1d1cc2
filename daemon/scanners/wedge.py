"""Keyboard-wedge scanners read from evdev with an exclusive grab.

Most cheap scanners ship as USB keyboards. Left alone, each code is typed into whatever window
has focus. We open the scanner's own input device (``/dev/input/by-id/...-event-kbd``) and
``EVIOCGRAB`` it, so its key events reach only us; :class:`~daemon.scanners.keymap.KeyTranslator`
turns them into bytes and a :class:`~daemon.scanners.framing.SerialFramer` (suffix CR = Enter,
or NONE = idle gap) cuts the codes, exactly as for a serial scanner.

python-evdev is optional (``pip install 'carddaemon[wedge]'``) and imported when a device
opens. Not exercised by the test suite: this machine has no /dev/input and no uinput (see
docs/scanners.md); the key translation and framing it relies on are tested.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import logging
import select
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from daemon.errors import ConfigError, ScannerUnavailable
from daemon.scanners.base import RawScan, ScannerBackend
from daemon.scanners.framing import SerialFramer, Terminator
from daemon.scanners.keymap import KeyTranslator
from daemon.scanners.options import FRAMER_KEYS, ScannerTable, serial_framer

__all__ = ["KeyboardWedgeScanner", "evdev_available"]

logger = logging.getLogger(__name__)

_EV_KEY = 1


def evdev_available() -> bool:
    return importlib.util.find_spec("evdev") is not None


class KeyboardWedgeScanner(ScannerBackend):
    """A keyboard-wedge scanner on one evdev node, grabbed exclusively while open."""

    #: its ``[scanners.<id>]`` keys besides the common ones
    config_keys: ClassVar[frozenset[str]] = FRAMER_KEYS | {"path", "grab"}

    def __init__(self, path: str, framer: SerialFramer | None = None, *, grab: bool = True) -> None:
        self.path = path
        self.grab = grab
        self.framer = framer if framer is not None else SerialFramer()
        self.keys = KeyTranslator()
        self._dev: Any = None

    @classmethod
    def from_config(
        cls, scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
    ) -> KeyboardWedgeScanner:
        """``path`` (required), ``grab`` and the framer keys (suffix CR or NONE only)."""
        t = ScannerTable(scanner_id, table, cls.config_keys)
        framer = serial_framer(t, prefix=b"")
        if framer.terminator not in (Terminator.CR, Terminator.NONE):
            raise ConfigError(f"{t.where}.suffix", "a keyboard wedge ends codes with CR or NONE")
        if not evdev_available():
            raise ConfigError(
                f"{t.where}.backend", "a keyboard wedge needs python-evdev (carddaemon[wedge])"
            )
        return cls(t.get("path", str, None), framer, grab=t.get("grab", bool, True))

    @property
    def description(self) -> str:
        return f"keyboard wedge {self.path}"

    def open(self) -> None:
        if self._dev is not None:
            return
        evdev: Any = importlib.import_module("evdev")  # lazy, optional
        try:
            dev = evdev.InputDevice(self.path)
        except OSError as exc:
            raise ScannerUnavailable(f"{self.description}: cannot open ({exc})") from exc
        if self.grab:
            try:
                dev.grab()
            except OSError as exc:
                dev.close()
                why = "grabbed by another process" if exc.errno == errno.EBUSY else str(exc)
                raise ScannerUnavailable(f"{self.description}: cannot grab ({why})") from exc
        self._dev = dev
        self.keys.reset()
        self.framer.reset()
        mode = "grabbed" if self.grab else "shared"
        logger.info("scanner %s opened (%s)", self.description, mode)

    def read(self, timeout: float) -> list[RawScan]:
        dev = self._dev
        if dev is None:
            raise ScannerUnavailable(f"{self.description}: not open")
        deadline = self.framer.deadline_ns()
        if deadline is not None:
            timeout = max(0.0, min(timeout, (deadline - time.monotonic_ns()) / 1e9))
        scans: list[RawScan] = []
        try:
            ready, _, _ = select.select([dev.fd], [], [], timeout)
            if ready:
                typed = bytearray()
                for event in dev.read():
                    if event.type == _EV_KEY:
                        typed += self.keys.key(event.code, event.value)
                if typed:
                    scans += self.framer.feed(bytes(typed), time.monotonic_ns())
        except BlockingIOError:
            pass
        except OSError as exc:  # ENODEV when unplugged
            raise ScannerUnavailable(f"{self.description}: read failed ({exc})") from exc
        scans += self.framer.poll(time.monotonic_ns())
        return scans

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        try:
            if self.grab:
                dev.ungrab()
        except OSError:
            logger.debug("scanner %s ungrab failed", self.description, exc_info=True)
        finally:
            dev.close()
        logger.info("scanner %s closed", self.description)

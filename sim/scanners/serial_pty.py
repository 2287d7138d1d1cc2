"""A serial barcode scanner on a pseudo-terminal.

The daemon opens ``link_path`` with real pyserial; it is a symlink to the pty's slave, like
``/dev/serial/by-id/...`` is to ``/dev/ttyACM0``. ``unplug()`` closes the pty (the daemon's read
fails with EIO, as with a pulled USB cable) and removes the link; ``plug()`` makes a new pty and
points the link at it, so the daemon finds the scanner again under the same name.

Scans can be framed with any suffix, prefixed with AIM ids and garbage, and written in split
pieces with pauses, to exercise the daemon's framing the way real adapters do.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import time
import tty
from collections.abc import Sequence
from pathlib import Path

from daemon.errors import ScannerError, ScannerUnavailable

__all__ = ["SimSerialScanner"]

_WRITE_TIMEOUT_S = 5.0


class SimSerialScanner:
    """Scriptable serial scanner. Context manager; idempotent ``close()``."""

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        *,
        suffix: bytes = b"\r",
        prefix: bytes = b"",
        encoding: str = "utf-8",
        plugged: bool = True,
    ) -> None:
        self.link_path = Path(link_path)
        self.suffix = suffix
        self.prefix = prefix
        self.encoding = encoding
        self.scans_sent = 0
        self._master = -1
        self._slave = -1
        self.tty_name = ""
        if plugged:
            self.plug()

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def plug(self) -> None:
        """Connect the scanner: a fresh pty, with the link pointing at its slave."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # a scanner's port carries bytes, not lines: no echo, no CR/LF mapping
        self._master, self._slave = master, slave
        self.tty_name = os.ttyname(slave)
        tmp = self.link_path.with_name(self.link_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.tty_name)
        os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        """Pull the cable: the pty goes away and so does the link."""
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        master, slave = self._master, self._slave
        self._master = self._slave = -1
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> SimSerialScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frame(
        self, code: str | bytes, *, aim: str | None = None, suffix: bytes | None = None
    ) -> bytes:
        """The bytes the scanner sends for one code."""
        data = code.encode(self.encoding) if isinstance(code, str) else code
        ident = aim.encode("ascii") if aim else b""
        return self.prefix + ident + data + (self.suffix if suffix is None else suffix)

    def scan(
        self,
        code: str | bytes,
        *,
        aim: str | None = None,
        suffix: bytes | None = None,
        garbage: bytes = b"",
        split: Sequence[int] = (),
        pause_s: float = 0.0,
    ) -> None:
        """Send one code. ``split`` = offsets at which the write is cut, ``pause_s`` between."""
        payload = garbage + self.frame(code, aim=aim, suffix=suffix)
        cuts = [0, *sorted(c for c in split if 0 < c < len(payload)), len(payload)]
        for i, (a, b) in enumerate(itertools.pairwise(cuts)):
            if i and pause_s:
                time.sleep(pause_s)
            self.write(payload[a:b])
        self.scans_sent += 1

    def write(self, data: bytes) -> None:
        """Raw bytes onto the line (noise, half codes, anything)."""
        if not self.plugged:
            raise ScannerUnavailable(f"simulated scanner {self.link_path} is unplugged")
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self._master], [], _WRITE_TIMEOUT_S)
            if not ready:
                raise ScannerError(f"simulated scanner {self.link_path}: nobody reads the port")
            n = os.write(self._master, view)
            view = view[n:]

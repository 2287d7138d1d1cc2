"""The simulated ESC/POS printer: receive buffer, print engine, sensors and status replies.

Bytes arrive from a transport (TCP or pty). Real-time commands (``DLE EOT n``) are answered at
once, even while the printer is stopped; everything else waits in the receive buffer and is
printed in order by the engine, which stops while the printer is offline, the cover is open or
the paper is out, exactly where it ran out (the rest prints after :meth:`load_paper`).
``GS r 1`` is answered only when the engine reaches it, i.e. after everything before it printed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from sim.printer.decoder import Decoder
from sim.printer.model import (
    Cut,
    DrawerKick,
    Element,
    Feed,
    PrintedReceipt,
    QrCode,
    RasterImage,
    TextLine,
)
from sim.printer.tokenizer import GS, Token, Tokenizer

__all__ = ["VirtualPrinter"]

logger = logging.getLogger(__name__)


class VirtualPrinter:
    """Thread-safe; transports call :meth:`receive`, tests script faults and read receipts."""

    def __init__(
        self,
        chars_per_line: int = 48,
        paper_lines: int | None = None,
        answers_gs_r: bool = True,
    ) -> None:
        self.chars_per_line = chars_per_line
        self.answers_gs_r = answers_gs_r  # False: firmware without GS r (ignored silently)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tokenizer = Tokenizer()
        self._buffer: collections.deque[Token] = collections.deque()
        self._decoder = Decoder(self._emit)
        self.receipts: list[PrintedReceipt] = [PrintedReceipt()]
        self.drawer_kicks: list[DrawerKick] = []
        self.rx_log: list[tuple[float, int]] = []  # (monotonic time, non-real-time bytes)
        self.cut_log: list[float] = []  # monotonic time each cut was executed
        self.bytes_received = 0
        self.offline = False
        self.cover_open = False
        self.cutter_error = False
        self.drawer_open = False
        self.paper_lines = paper_lines  # None: endless roll
        self.near_end_at = 20
        self._out: collections.deque[Element] = collections.deque()
        self._sink: Callable[[bytes], None] | None = None
        self.status_noise: bytes | None = None  # sent instead of each DLE EOT answer

    # --- transport side ---------------------------------------------------------------------

    def attach(self, sink: Callable[[bytes], None] | None) -> None:
        """The transport's send function for replies (None when the host is gone)."""
        with self._lock:
            self._sink = sink

    def receive(self, data: bytes) -> None:
        """Take bytes from the host; replies go to the attached sink."""
        with self._lock:
            self.bytes_received += len(data)
            tokens = self._tokenizer.feed(data)
            queued = 0
            for tok in tokens:
                if tok.realtime:
                    answer = self._realtime(tok.raw)
                    if answer:
                        self._reply(answer)
                else:
                    self._buffer.append(tok)
                    queued += len(tok.raw)
            if queued:  # counted per complete command: status requests never count
                self.rx_log.append((time.monotonic(), queued))
            self._run_engine()
            self._changed.notify_all()

    def _realtime(self, raw: bytes) -> bytes:
        if self.status_noise is not None and raw[1] == 0x04:
            return self.status_noise
        if raw[1] != 0x04:  # DLE ENQ / DLE DC4: recovery and pulse requests
            if raw[1] == 0x05 and raw[2] in (1, 2):
                self.cutter_error = False
            return b""
        return bytes([self.status_byte(raw[2])])

    # --- status (from the DLE EOT tables of the Epson reference) -----------------------------

    @property
    def paper_end(self) -> bool:
        return self.paper_lines is not None and self.paper_lines <= 0

    @property
    def paper_near_end(self) -> bool:
        return self.paper_lines is not None and self.paper_lines <= self.near_end_at

    def status_byte(self, n: int) -> int:
        base = 0x12
        with self._lock:
            if n == 1:
                stopped = self.offline or self.cover_open or self.paper_end or self.cutter_error
                return base | (0x04 if self.drawer_open else 0) | (0x08 if stopped else 0)
            if n == 2:
                return (
                    base
                    | (0x04 if self.cover_open else 0)
                    | (0x20 if self.paper_end else 0)
                    | (0x40 if self.cutter_error else 0)
                )
            if n == 3:
                return base | (0x08 if self.cutter_error else 0)
            if n == 4:
                return base | (0x0C if self.paper_near_end else 0) | (0x60 if self.paper_end else 0)
        return base

    # --- the engine -------------------------------------------------------------------------

    def _can_print(self) -> bool:
        return not (self.offline or self.cover_open or self.cutter_error)

    def _emit(self, element: Element) -> None:
        self._out.append(element)

    @staticmethod
    def _paper_needed(element: Element) -> int:
        if isinstance(element, TextLine):
            return element.height
        if isinstance(element, Feed):
            return element.lines
        if isinstance(element, RasterImage):
            return max(1, element.height // 24)
        if isinstance(element, QrCode):
            return 6
        return 0 if isinstance(element, Cut | DrawerKick) else 3

    def _run_engine(self) -> None:
        while self._can_print():
            if self._out:
                element = self._out[0]
                need = self._paper_needed(element)
                if need and self.paper_end:
                    return  # stopped where the paper ran out; the rest waits in the buffer
                self._out.popleft()
                self._print(element, need)
                continue
            if not self._buffer:
                return
            tok = self._buffer.popleft()
            if tok.kind == "cmd" and tok.raw[0] == GS and tok.raw[1] == ord("r"):
                if not self.answers_gs_r:
                    continue
                if tok.raw[2] in (1, 49):  # paper sensor: bits 0-1 near end, 2-3 end
                    near = 0x03 if self.paper_near_end else 0
                    self._reply(bytes([near | (0x0C if self.paper_end else 0)]))
                elif tok.raw[2] in (2, 50):  # drawer kick connector
                    self._reply(bytes([0x01 if self.drawer_open else 0]))
                continue
            self._decoder.execute(tok)

    def _reply(self, data: bytes) -> None:
        if self._sink is None:
            return
        try:
            self._sink(data)
        except OSError:
            logger.info("sim printer: reply lost, host link is gone")

    def _print(self, element: Element, need: int) -> None:
        if self.paper_lines is not None:
            self.paper_lines = max(0, self.paper_lines - need)
        current = self.receipts[-1]
        current.elements.append(element)
        if isinstance(element, DrawerKick):
            self.drawer_kicks.append(element)
            self.drawer_open = True
        if isinstance(element, Cut):
            self.cut_log.append(time.monotonic())
            current.errors.extend(self._decoder.errors)
            self._decoder.errors.clear()
            self.receipts.append(PrintedReceipt())

    # --- scripting (tests, demo) ------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)
            self._run_engine()
            self._changed.notify_all()

    def set_offline(self, offline: bool = True) -> None:
        self._set(offline=offline)

    def set_cover_open(self, is_open: bool = True) -> None:
        self._set(cover_open=is_open)

    def set_cutter_error(self, error: bool = True) -> None:
        self._set(cutter_error=error)

    def set_paper(self, lines: int | None) -> None:
        """Lines of paper left (0 = paper out now, None = endless); resumes a stopped job."""
        self._set(paper_lines=lines)

    def set_status_noise(self, noise: bytes | None) -> None:
        """Answer every ``DLE EOT`` with ``noise`` (a broken cable, a wrong baud rate, firmware
        talking garbage) until called with None."""
        self._set(status_noise=noise)

    def close_drawer(self) -> None:
        self._set(drawer_open=False)

    @property
    def completed(self) -> list[PrintedReceipt]:
        """Receipts that were cut."""
        with self._lock:
            return list(self.receipts[:-1])

    @property
    def current(self) -> PrintedReceipt:
        """What is on paper since the last cut."""
        with self._lock:
            return self.receipts[-1]

    @property
    def buffered(self) -> int:
        """Tokens received but not printed yet (paper out, cover open, offline)."""
        with self._lock:
            return len(self._buffer) + len(self._out)

    def wait_for(self, predicate: Callable[[VirtualPrinter], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every change) or timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def wait_receipts(self, count: int, timeout: float = 5.0) -> list[PrintedReceipt]:
        if not self.wait_for(lambda p: len(p.receipts) > count, timeout):
            raise TimeoutError(f"sim printer: {len(self.completed)} receipts, wanted {count}")
        return self.completed

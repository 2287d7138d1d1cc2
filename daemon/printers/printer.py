"""One printer connection: status queries, one-write jobs with print confirmation, drawer kick.

Not thread-safe on purpose: the printer service's worker thread owns it. The reply stream mixes
two kinds of bytes, told apart by bit 4 (see :mod:`daemon.printers.status`): ``DLE EOT`` answers
(real-time, come back at once even while the printer is stopped) and the ``GS r 1`` answer we
append to every job, which the printer only sends once it has processed (printed) everything
before it.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import replace
from typing import Self

from daemon.errors import PrinterError, PrinterOffline
from daemon.printers import commands
from daemon.printers.backend import PrinterBackend, PrinterConfig, create_backend
from daemon.printers.profiles import PrinterProfile
from daemon.printers.status import PrinterStatus, is_dle_eot_reply, is_gs_r_reply, parse_status

__all__ = ["ReceiptPrinter"]

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 1.0


class ReceiptPrinter:
    """A configured printer; reconnects lazily; keeps the last bytes sent for diagnostics."""

    def __init__(
        self,
        config: PrinterConfig,
        backend: PrinterBackend | None = None,
        profile: PrinterProfile | None = None,
    ) -> None:
        self.config = config
        self.profile = profile if profile is not None else config.printer_profile()
        self.backend = backend if backend is not None else create_backend(config)
        self.trace: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=32)
        self._status_bytes = bytearray()
        self._confirms = 0
        self.status_writes = 0
        self._line_free_at = 0.0

    def connect(self) -> None:
        if not self.backend.is_open:
            self._status_bytes.clear()
            self._confirms = 0
            self.backend.open()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self, timeout: float) -> None:
        """Read what the printer sent (waiting up to ``timeout``) and sort it."""
        data = self.backend.read(16, timeout)
        if data:
            self.trace.append(("rx", data))
        for byte in data:
            if is_dle_eot_reply(byte):
                self._status_bytes.append(byte)
            elif is_gs_r_reply(byte):
                self._confirms += 1
            else:
                logger.warning("printer %s: unexpected byte 0x%02X", self.config.id, byte)

    def _ask(self, request: bytes, replies: int) -> bytes | None:
        """Send real-time status requests; their answer bytes, or None if none came."""
        try:
            self.connect()
            self._status_bytes.clear()
            self._send(request)
            self.status_writes += 1
            deadline = self._line_free_at + STATUS_TIMEOUT_S
            while len(self._status_bytes) < replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning("printer %s: no answer to DLE EOT", self.config.id)
                    self.close()  # a late answer must not be taken for the next one's
                    return None
                self._pump(left)
        except PrinterOffline:
            return None
        reply = bytes(self._status_bytes[:replies])
        del self._status_bytes[:replies]
        return reply

    def query_status(self) -> PrinterStatus:
        """``DLE EOT 1..4`` in one write; unreachable if the printer does not answer."""
        reply = self._ask(commands.DLE_EOT_ALL, 4)
        if reply is None:
            return PrinterStatus.unreachable()
        try:
            status = parse_status(reply, self.config.drawer_open_level)
        except PrinterError:
            logger.warning("printer %s: bad status reply %s", self.config.id, reply.hex(" "))
            return PrinterStatus.unreachable()
        if not (self.profile.drawer and self.profile.drawer_sensor):
            status = replace(status, drawer_open=None)
        return status

    def is_online(self) -> bool:
        """``DLE EOT 1`` alone: bit 3 is set whenever the printer stopped for any reason
        (cover, paper end, error), so this is the cheap check right before a job (3 bytes,
        not 12: at 9600 baud that is 3 ms instead of 12 ms before the first receipt byte)."""
        reply = self._ask(commands.dle_eot(1), 1)
        return reply is not None and not reply[0] & 0x08

    def _send(self, data: bytes) -> None:
        """Write and note when the (serial) line will have carried it all."""
        self.backend.write(data)
        start = max(time.monotonic(), self._line_free_at)
        self._line_free_at = start + len(data) * self.backend.seconds_per_byte

    def line_busy_s(self) -> float:
        """Seconds until everything written so far is on the printer's side of the wire."""
        return max(0.0, self._line_free_at - time.monotonic())

    def send_job(self, data: bytes) -> None:
        """Write the whole job (plus the confirmation request) in ONE write call."""
        self.connect()
        self._confirms = 0
        payload = data + commands.GS_R_PAPER if self.profile.print_confirm else data
        self.trace.append(("tx", payload if len(payload) <= 64 else payload[:48] + payload[-16:]))
        self._send(payload)

    def wait_confirmed(self, timeout: float) -> bool:
        """True once the printer answered the job's ``GS r 1`` (or has no such feature)."""
        if not self.profile.print_confirm:
            return True
        deadline = time.monotonic() + self.line_busy_s() + timeout
        while not self._confirms:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._pump(left)
        self._confirms -= 1
        return True

    def kick_drawer(self) -> None:
        """Pulse the configured drawer pin (``ESC p``)."""
        if not self.profile.drawer:
            raise PrinterError(f"printer {self.config.id}: profile has no drawer port")
        self.connect()
        data = commands.drawer_kick(self.config.drawer_pin, self.config.drawer_pulse_ms)
        self.trace.append(("tx", data))
        self._send(data)

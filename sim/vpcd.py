"""Serve simulated readers to a real ``pcscd`` through the vsmartcard vpcd driver.

For tests and demos only. vpcd listens on ALL interfaces, so anyone who can reach the port can
inject a card into PC/SC: never install vsmartcard-vpcd (or run this bridge) on a store PC.

vpcd is the TCP server (one port per slot); the card side - this bridge - is the client:
connecting means "card inserted", closing means "card removed". Every message is a 2-byte
big-endian length and a payload. A 1-byte payload is a control (``00`` power off, ``01`` power
on, ``02`` reset, ``04`` get ATR - the only one answered); anything longer is a command APDU,
answered with the response APDU from :meth:`SimReader.process`.

Fault injection comes from the reader's :class:`~sim.faults.FaultPlan`: when ``process`` raises
``CardGone`` or ``ResponseDropped`` the bridge closes the socket without answering. pcscd then
hands pyscard a 0-byte answer ("Card returned no valid response") and the daemon sees
``ResponseLost``: through vpcd a card leaving *before* a command cannot be told apart from one
leaving *after* it, which is also what a real reader reports (``SCARD_E_NOT_TRANSACTED``). If the
card is still in the simulated field the bridge reconnects, which pcscd sees as a new insertion.

One thread per slot follows the reader: it connects while a card is present, drops the socket
when the card is removed or swapped or the reader unplugged, and reconnects (with a short
backoff) while pcscd is down or restarting. pcscd keeps listing a vpcd reader even when the
simulated reader is unplugged; :meth:`sim.pcscd.PrivatePcscd.restart` is what removes one.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable
from typing import Protocol

from daemon.errors import CardDaemonError, InvalidArgument, OperationTimeout, ReaderUnavailable
from daemon.readers.connection import ClosesOnExit
from sim.faults import CardGone, ReaderUnplugged, ResponseDropped

__all__ = ["ServedReader", "VpcdBridge", "VpcdSlotServer"]

logger = logging.getLogger(__name__)

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
_POLL_S = 0.02
_RETRY_MAX_S = 0.25
_IO_TIMEOUT_S = 2.0


class ServedReader(Protocol):
    """What the bridge needs from a :class:`sim.reader.SimReader`."""

    @property
    def name(self) -> str: ...

    @property
    def card(self) -> object | None: ...

    @property
    def atr(self) -> bytes: ...

    @property
    def plugged(self) -> bool: ...

    @property
    def generation(self) -> int: ...

    def process(self, apdu: bytes) -> bytes: ...

    def reselect(self) -> int: ...


def _same(a: tuple[object, int] | None, b: tuple[object, int] | None) -> bool:
    """Same card object and same insertion (identity, never the card's ``__eq__``)."""
    return a is not None and b is not None and a[0] is b[0] and a[1] == b[1]


class _ClosedError(Exception):
    """The vpcd side closed the socket (pcscd stopped) or sent a malformed frame."""


class VpcdSlotServer(ClosesOnExit):
    """The card side of one vpcd slot: a thread that follows one simulated reader."""

    def __init__(
        self,
        reader: ServedReader,
        port: int,
        *,
        host: str = "127.0.0.1",
        poll_interval_s: float = _POLL_S,
    ) -> None:
        self.reader = reader
        self.port = port
        self.host = host
        self._poll = poll_interval_s
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._answered = threading.Event()  # vpcd sent a frame: pcscd is really there
        #: why the last connect failed (``Connection refused``: nothing listens), else None
        self.refused: str | None = None
        self._sock: socket.socket | None = None
        self._card: tuple[object, int] | None = None
        self.apdus = 0
        self.connects = 0
        # not a daemon thread: close() joins it (the loop wakes every poll interval)
        self._thread = threading.Thread(target=self._run, name=f"vpcd-{reader.name}-{port}")
        self._thread.start()

    @property
    def connected(self) -> bool:
        """True while pcscd has our socket (the card is "in" the vpcd reader)."""
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float = 5.0) -> None:
        """Block until the card side is connected to vpcd; ``OperationTimeout`` otherwise."""
        if not self._connected.wait(timeout_s):
            raise OperationTimeout(
                f"vpcd slot {self.port} ({self.reader.name}) not connected after {timeout_s} s"
            )

    def wait_answered(self, timeout_s: float = 3.0) -> str | None:
        """None once vpcd has spoken to us (pcscd polls a slot every 400 ms), else what went
        wrong in words: nothing listens on the port, or something accepts but never speaks
        (another simulator holds this vpcd slot, or it is not vpcd)."""
        if self._answered.wait(timeout_s):
            return None
        where = f"{self.host}:{self.port}"
        if self.refused is not None:
            return (
                f"nothing listens on vpcd port {where} ({self.refused}): is pcscd running "
                "with the vsmartcard vpcd driver (Debian: pcscd vsmartcard-vpcd)?"
            )
        if self.connects:
            return (
                f"{where} accepts connections but no vpcd speaks on it: another card "
                "simulator holds this vpcd slot, or the port is not vpcd's"
            )
        return f"no card to present on {where} (the reader is empty or unplugged)"

    def close(self) -> None:
        """Stop the thread and close the socket (pcscd sees the card removed). Idempotent."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=_IO_TIMEOUT_S * 2)
            if self._thread.is_alive():
                logger.error("vpcd %s: slot thread still running after close", self.reader.name)
        self._drop("bridge closed")

    # --- the slot thread -----------------------------------------------------------------

    def _present_card(self) -> tuple[object, int] | None:
        """The card in the field and its insertion generation (``None``: no card, no power)."""
        if not self.reader.plugged:
            return None
        card = self.reader.card
        return None if card is None else (card, self.reader.generation)

    def _run(self) -> None:
        retry = self._poll
        while not self._stop.is_set():
            card = self._present_card()
            if card is None:
                self._drop("card absent")
                self._stop.wait(self._poll)
                continue
            if self._sock is None:
                if not self._connect(card):
                    self._stop.wait(retry)
                    retry = min(retry * 2, _RETRY_MAX_S)
                    continue
                retry = self._poll
            elif not _same(card, self._card):
                self._drop("card swapped or power-cycled")
                continue
            try:
                self._serve_once()
            except _ClosedError as exc:
                self._drop(str(exc))
            except OSError as exc:
                self._drop(f"socket error: {exc}")
            except Exception:  # a simulator bug must not kill the slot silently
                logger.exception("vpcd %s: unexpected error; reconnecting", self.reader.name)
                self._drop("unexpected error")
                self._stop.wait(self._poll)
        self._drop("stopping")

    def _connect(self, card: tuple[object, int]) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=_IO_TIMEOUT_S)
        except OSError as exc:
            self.refused = exc.strerror or str(exc)
            return False  # pcscd not (yet) listening: stopped, restarting or still starting
        self.refused = None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._card = sock, card
        self.connects += 1
        self._connected.set()
        logger.debug("vpcd %s: card connected on port %s", self.reader.name, self.port)
        return True

    def _drop(self, why: str) -> None:
        sock, self._sock, self._card = self._sock, None, None
        self._connected.clear()
        if sock is not None:
            logger.debug("vpcd %s: socket closed (%s)", self.reader.name, why)
            with contextlib.suppress(OSError):
                sock.close()

    def _serve_once(self) -> None:
        sock = self._sock
        assert sock is not None
        readable, _, _ = select.select([sock], [], [], self._poll)
        if not readable:
            return
        payload = self._recv_frame(sock)
        self._answered.set()
        if len(payload) == 1:
            self._control(sock, payload[0])
            return
        if not _same(self._present_card(), self._card):
            raise _ClosedError("card left before the command")
        self.apdus += 1
        try:
            response = self.reader.process(payload)
        except (CardGone, ResponseDropped, ReaderUnplugged) as exc:
            raise _ClosedError(f"fault: {type(exc).__name__}") from exc
        except CardDaemonError as exc:
            logger.warning("vpcd %s: reader refused APDU: %s", self.reader.name, exc)
            raise _ClosedError("reader error") from exc
        if not response:  # vpcd cannot frame "no bytes" (pcscd would wait): drop instead
            raise _ClosedError("empty answer")
        if len(response) > 0xFFFF:
            raise _ClosedError(f"response of {len(response)} bytes cannot be framed")
        sock.sendall(struct.pack(">H", len(response)) + response)

    def _control(self, sock: socket.socket, code: int) -> None:
        try:
            if code == CTRL_ATR:
                atr = self.reader.atr
                sock.sendall(struct.pack(">H", len(atr)) + atr)
            elif code in (CTRL_ON, CTRL_RESET):
                self.reader.reselect()  # power-up or reset: the card is selected afresh
        except (CardDaemonError, ReaderUnplugged) as exc:
            raise _ClosedError(f"control {code:02X}: {exc}") from exc
        if code not in (CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR):
            logger.warning("vpcd %s: unknown control byte %02X", self.reader.name, code)

    def _recv_frame(self, sock: socket.socket) -> bytes:
        header = self._recv_exact(sock, 2)
        (length,) = struct.unpack(">H", header)
        if length == 0:
            raise _ClosedError("empty frame")
        return self._recv_exact(sock, length)

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        buf = bytearray()
        sock.settimeout(_IO_TIMEOUT_S)
        while len(buf) < n:
            # Delayed ACKs would cost ~40 ms per APDU; Linux clears QUICKACK after use.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise _ClosedError("vpcd closed the connection")
            buf += chunk
        return bytes(buf)


class VpcdBridge(ClosesOnExit):
    """Several simulated readers served to one pcscd, one vpcd slot (port) each."""

    def __init__(
        self,
        slots: Iterable[tuple[ServedReader, int]] = (),
        *,
        host: str = "127.0.0.1",
        poll_interval_s: float = _POLL_S,
    ) -> None:
        self.host = host
        self._poll = poll_interval_s
        self._slots: dict[int, VpcdSlotServer] = {}
        self._closed = False
        try:
            for reader, port in slots:
                self.serve(reader, port)
        except BaseException:
            self.close()
            raise

    def serve(self, reader: ServedReader, port: int) -> VpcdSlotServer:
        """Start serving ``reader`` on vpcd ``port``."""
        if self._closed:
            raise ReaderUnavailable("vpcd bridge is closed")
        if port in self._slots:
            raise InvalidArgument("port", f"vpcd port {port} is already served")
        slot = VpcdSlotServer(reader, port, host=self.host, poll_interval_s=self._poll)
        self._slots[port] = slot
        return slot

    def slot(self, port: int) -> VpcdSlotServer:
        return self._slots[port]

    @property
    def slots(self) -> tuple[VpcdSlotServer, ...]:
        return tuple(self._slots.values())

    def wait_connected(self, timeout_s: float = 5.0) -> None:
        """Wait until every slot whose reader holds a card is connected to vpcd."""
        deadline = time.monotonic() + timeout_s
        for slot in self._slots.values():
            if slot.reader.card is not None and slot.reader.plugged:
                slot.wait_connected(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop every slot thread and close every socket. Idempotent."""
        self._closed = True
        for slot in self._slots.values():
            slot.close()

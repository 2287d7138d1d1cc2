"""Links to the simulated printer: raw TCP (port 9100 style) and a serial pseudo-terminal.

The pty side paces its reads at the configured baud rate (10 bits per byte), so a 9600 baud
printer takes as long to receive a receipt as a real one. :meth:`unplug` drops the link the way
pulling a cable does: the TCP connection is closed and new ones are refused; the pty is closed.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import tty
from typing import Self

from sim.printer.device import VirtualPrinter

__all__ = ["PtyPrinterServer", "TcpPrinterServer"]

logger = logging.getLogger(__name__)


class _Server:
    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raise NotImplementedError

    def _stop_thread(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class TcpPrinterServer(_Server):
    """Listens on loopback; one host connection at a time, like a printer's port 9100."""

    def __init__(self, printer: VirtualPrinter, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(printer)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.05)
        self.host, self.port = self._listener.getsockname()[:2]
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self.unplugged = False
        self.connections = 0
        self._start(f"sim-printer-tcp-{self.port}")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.unplugged:
                conn.close()
                continue
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.05)
        with self._lock:
            self._client = conn
            self.connections += 1
        self.printer.attach(conn.sendall)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                self.printer.receive(data)
        finally:
            self.printer.attach(None)
            with self._lock:
                self._client = None
            conn.close()

    def unplug(self) -> None:
        """Drop the current connection and refuse new ones until :meth:`plug`."""
        self.unplugged = True
        with self._lock:
            if self._client is not None:
                try:
                    self._client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    logger.debug("sim printer: shutdown of a dead socket")

    def plug(self) -> None:
        self.unplugged = False

    def close(self) -> None:
        self.unplug()
        self._stop_thread()
        self._listener.close()


class PtyPrinterServer(_Server):
    """A serial printer on a pseudo-terminal; the host opens :attr:`path` with pyserial."""

    def __init__(self, printer: VirtualPrinter, baudrate: int = 9600) -> None:
        super().__init__(printer)
        self.baudrate = baudrate
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._closed = False
        self._start(f"sim-printer-pty-{os.path.basename(self.path)}")

    def _send(self, data: bytes) -> None:
        os.write(self._master, data)

    def _serve(self) -> None:
        self.printer.attach(self._send)
        byte_time = 10.0 / self.baudrate
        chunk = max(1, self.baudrate // 5000)  # ~2 ms of wire time per read
        wire_free = time.monotonic()
        backlog = False  # bytes were already waiting when the previous ones came off the wire
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                now = time.monotonic()
                if not backlog:  # the line was idle: these bytes start on the wire now
                    wire_free = max(wire_free, now)
                # Back-to-back bytes keep the UART's pace even when this thread woke late (a
                # loaded machine): take every byte whose wire time has already passed at once,
                # instead of stretching the line by each late wake-up.
                due = int((now - wire_free) / byte_time)
                try:
                    data = os.read(self._master, max(chunk, min(due, 4096)))
                except OSError:
                    return
                if not data:
                    return
                # bytes arrive only after their time on the wire (10 bits each)
                wire_free += len(data) * byte_time
                backlog = bool(select.select([self._master], [], [], 0)[0])
                delay = wire_free - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.printer.receive(data)
        finally:
            self.printer.attach(None)

    def unplug(self) -> None:
        """Close the pty: the host's next read or write fails like a pulled USB-serial."""
        self._stop_thread()
        if not self._closed:
            self._closed = True
            os.close(self._master)
            os.close(self._slave)

    def close(self) -> None:
        self.unplug()

"""The in-process simulator as a reader backend (``[readers] backend = "sim"``).

Registered from ``pyproject.toml`` (entry point ``carddaemon.backends.readers``), so the daemon
never names it. :meth:`SimBackend.from_config` builds one simulated reader per configured
``[readers.<id>]``: the model follows its ``dialect`` and its name is one the reader's ``match``
pattern (and no earlier reader's) matches, so the daemon maps it to that table as it would a
real reader.

Same :class:`~daemon.readers.backends.ReaderBackend` interface as the PC/SC backend, so the
monitor, the workers and the contract tests run unchanged on both. It exposes its
:class:`~sim.reader.SimReader` objects for scripting: insert/remove cards, unplug a reader,
arm faults. An unplugged reader is not listed, as a USB reader pulled out of a store PC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, Self

from daemon.errors import (
    CardAbsent,
    ConfigError,
    InvalidArgument,
    PcscUnavailable,
    ReaderBusy,
    ReaderUnavailable,
)
from daemon.readers.backends import ReaderOptions, ReadersOptions, ReaderState
from daemon.readers.connection import ClosesOnExit, Disposition, Response
from daemon.readers.framing import command_label
from sim.connection import SimConnection
from sim.models import ModelName
from sim.reader import MODELS, SimReader

__all__ = ["CheckedSimConnection", "SimBackend"]

_POLL_S = 0.01
#: reader dialect (``[readers.<id>] dialect``) -> the simulated model that speaks it
DIALECT_MODELS: Final[dict[str, ModelName]] = {
    "auto": "acr1252u",
    "acr1252u": "acr1252u",
    "acr122u": "acr122u",
    "omnikey": "omnikey5x21",
    "generic": "generic",
}
_NAME_TRIES = 16


def _wildcard_literal(match: str) -> str:
    """The shortest name a ``*``/``?`` pattern matches: ``*`` empty, ``?`` one ``0``."""
    return match.replace("*", "").replace("?", "0")


def _reader_name(config: ReadersOptions, reader: ReaderOptions, model: ModelName) -> str:
    """A PC/SC-like name that maps to ``reader``: the model's own name with the PC/SC slot
    index counted up, else the pattern's literal form."""
    base = MODELS[model].default_name.removesuffix(" 00 00")
    candidates = [f"{base} {n:02d} 00" for n in range(_NAME_TRIES)]
    candidates.append(_wildcard_literal(reader.match))
    for name in candidates:
        found = config.for_reader(name)
        if found is not None and found.id == reader.id:
            return name
    raise ConfigError(
        f"readers.{reader.id}.match",
        f"the simulator found no reader name that {reader.match!r} matches before an earlier "
        "reader's pattern does",
    )


class CheckedSimConnection(ClosesOnExit):
    """A :class:`SimConnection` tied to the simulated service: after a scripted pcscd restart
    it fails with ``PcscUnavailable`` until reconnected, as a stale PC/SC handle does."""

    def __init__(
        self, conn: SimConnection, backend: SimBackend, *, exclusive: bool = False
    ) -> None:
        self._conn = conn
        self._backend = backend
        self._epoch = backend.service_epoch
        self.exclusive = exclusive

    @property
    def holds_card(self) -> bool:
        """Open on the current service: counts for PC/SC sharing rules."""
        return not self._conn.closed and self._epoch == self._backend.service_epoch

    @property
    def reader(self) -> SimReader:
        return self._conn.reader

    @property
    def reader_name(self) -> str:
        return self._conn.reader_name

    @property
    def atr(self) -> bytes:
        return self._conn.atr

    def transmit(self, apdu: bytes) -> Response:
        self._check_epoch(command_label(apdu))
        return self._conn.transmit(apdu)

    def begin_transaction(self) -> None:
        self._check_epoch("begin transaction")
        self._conn.begin_transaction()

    def end_transaction(self, disposition: Disposition = "leave") -> None:
        self._check_epoch("end transaction")
        self._conn.end_transaction(disposition)

    def _check_epoch(self, what: str) -> None:
        if self._epoch != self._backend.service_epoch:
            raise PcscUnavailable(f"reader {self.reader_name!r}: {what}: service was restarted")

    def reconnect(self, reset: bool = False) -> None:
        """Re-select the card; after a (simulated) service restart, reopen on the reader."""
        if self._epoch != self._backend.service_epoch:
            fresh = self._backend.open(self.reader_name)
            try:
                self._backend.admit(self.reader_name, self)
            except ReaderBusy:
                fresh.close()
                raise
            self._conn.close()
            self._conn, self._epoch = fresh, self._backend.service_epoch
            return
        self._conn.reconnect(reset)

    def close(self) -> None:
        self._conn.close()


class SimBackend(ClosesOnExit):
    """Simulated readers behind the reader-backend interface."""

    name = "sim"

    def __init__(self, readers: Iterable[SimReader] = (), **_options: Any) -> None:
        self._readers: dict[str, SimReader] = {}
        self._wake = threading.Event()
        self._closed = False
        self._down = False
        self.service_epoch = 0
        self._seen_epoch = 0
        self._lock = threading.Lock()
        self._connections: dict[str, list[CheckedSimConnection]] = {}
        for reader in readers:
            self.add_reader(reader)

    @classmethod
    def from_config(cls, config: ReadersOptions) -> Self:
        """One simulated reader, without a card, per ``[readers.<id>]`` (in file order)."""
        readers: list[SimReader] = []
        for reader in config.readers:
            dialect = reader.dialect.strip().lower()
            model = DIALECT_MODELS.get(dialect)
            if model is None:
                raise ConfigError(
                    f"readers.{reader.id}.dialect",
                    f"the simulator has no reader model for dialect {reader.dialect!r} "
                    f"(simulated: {', '.join(DIALECT_MODELS)})",
                )
            readers.append(SimReader(_reader_name(config, reader, model), model))
        return cls(readers)

    @property
    def readers(self) -> tuple[SimReader, ...]:
        """The simulated readers, for scripting (insert/remove cards, unplug, faults)."""
        return tuple(self._readers.values())

    def reader(self, name: str) -> SimReader:
        try:
            return self._readers[name]
        except KeyError:
            raise ReaderUnavailable(f"no simulated reader named {name!r}") from None

    def add_reader(self, reader: SimReader) -> SimReader:
        """Attach another simulated reader (a hot-plug)."""
        if reader.name in self._readers:
            raise InvalidArgument("reader", f"a reader named {reader.name!r} is already attached")
        self._readers[reader.name] = reader
        return reader

    def stop_service(self) -> None:
        """Script a pcscd crash: calls fail with ``PcscUnavailable``, handles go stale and
        their PC/SC transactions end."""
        self._down = True
        self.service_epoch += 1
        for reader in self._readers.values():
            reader.release_transactions()
        self._wake.set()

    def start_service(self) -> None:
        self._down = False

    def _check_service(self) -> None:
        if self._closed or self._down:
            raise PcscUnavailable("simulated PC/SC service is not running")

    def list_readers(self) -> list[str]:
        self._check_service()
        return [r.name for r in self._readers.values() if r.plugged]

    def connect(self, reader: str, *, exclusive: bool = False) -> CheckedSimConnection:
        """Connect as PC/SC does: ``ReaderBusy`` while another connection holds the card
        exclusively, or for an exclusive connect while anyone else is connected."""
        connection = CheckedSimConnection(self.open(reader), self, exclusive=exclusive)
        try:
            self.admit(reader, connection)
        except ReaderBusy:
            connection.close()
            raise
        return connection

    def open(self, reader: str) -> SimConnection:
        """A raw handle on ``reader`` (sharing rules are :meth:`admit`'s)."""
        self._check_service()
        sim = self.reader(reader)
        if not sim.plugged:
            raise ReaderUnavailable(f"reader {reader!r} is unplugged")
        return sim.connect()

    def admit(self, reader: str, connection: CheckedSimConnection) -> None:
        """Register ``connection`` on ``reader`` unless PC/SC sharing rules refuse it."""
        with self._lock:
            others = [
                c for c in self._connections.get(reader, []) if c.holds_card and c is not connection
            ]
            if others and (connection.exclusive or any(c.exclusive for c in others)):
                holder = (
                    "holds the card exclusively" if not connection.exclusive else "is connected"
                )
                raise ReaderBusy(
                    f"reader {reader!r}: connect: another application {holder} (sharing violation)"
                )
            self._connections[reader] = [*others, connection]

    def states(self) -> dict[str, ReaderState]:
        result: dict[str, ReaderState] = {}
        for reader in list(self._readers.values()):
            if not reader.plugged:
                continue
            present = reader.card is not None
            try:
                atr = reader.atr if present else b""
            except CardAbsent:  # the card left between the two looks
                present, atr = False, b""
            result[reader.name] = ReaderState(
                reader.name, present, atr, reader.generation if present else 0
            )
        return result

    def wait_for_change(
        self, known: Mapping[str, ReaderState] | None, timeout_s: float
    ) -> dict[str, ReaderState]:
        deadline = time.monotonic() + timeout_s
        self._wake.clear()
        while True:
            self._check_service()
            if self._seen_epoch != self.service_epoch:  # restarted since the last look
                self._seen_epoch = self.service_epoch
                raise PcscUnavailable("simulated PC/SC service was restarted")
            states = self.states()
            if known is None or states != dict(known) or time.monotonic() >= deadline:
                return states
            if self._wake.wait(_POLL_S):
                return states

    def cancel(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """The readers stay with whoever scripted them. Idempotent."""
        self._closed = True
        self._wake.set()

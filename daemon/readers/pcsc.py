"""The pyscard backend: PC/SC through ``smartcard.scard`` (never pyscard's CardMonitor).

Every PC/SC error is mapped to :mod:`daemon.errors` here, once:

* card gone (removed, reset, unpowered, no card) -> ``CardRemoved`` (``CardAbsent`` at connect)
* not transacted, comm error, 0-byte answer     -> ``ResponseLost`` (may have executed)
* unknown/unavailable reader, no readers        -> ``ReaderUnavailable``
* no service, service stopped, stale handle     -> ``PcscUnavailable``
* sharing violation -> ``ReaderBusy``; timeout  -> ``OperationTimeout``

``smartcard`` is imported on first use, so importing the daemon does not load pyscard.
``begin_transaction`` / ``end_transaction`` wrap ``SCardBeginTransaction`` /
``SCardEndTransaction`` with the same mapping (a card gone at begin is ``CardRemoved``: nothing
was sent). pcscd makes another client's commands wait while a transaction is held, and drops the
hold when the card leaves or the handle disconnects.

Each connection owns its own PC/SC context (one owner thread: the reader's worker); each thread
calling :meth:`PcscBackend.wait_for_change` (the monitor) gets another, so a blocked status
wait never stalls a transmit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Self

from daemon.errors import (
    CardAbsent,
    CardDaemonError,
    CardRemoved,
    OperationTimeout,
    PcscUnavailable,
    ReaderBusy,
    ReaderError,
    ReaderUnavailable,
    ResponseLost,
)
from daemon.readers.backends import ReadersOptions, ReaderState
from daemon.readers.connection import ClosesOnExit, Disposition, Response
from daemon.readers.framing import check_response, command_label

__all__ = ["PNP_READER", "PcscBackend", "PcscConnection", "map_pcsc_error"]

logger = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"

# pcsc-lite return codes (pcsclite.h); pyscard returns them as signed or unsigned ints.
_S_SUCCESS = 0x00000000
_E_CANCELLED = 0x80100002
_E_INVALID_HANDLE = 0x80100003
_E_UNKNOWN_READER = 0x80100009
_E_TIMEOUT = 0x8010000A
_E_SHARING_VIOLATION = 0x8010000B
_E_NO_SMARTCARD = 0x8010000C
_F_COMM_ERROR = 0x80100013
_E_NOT_TRANSACTED = 0x80100016
_E_READER_UNAVAILABLE = 0x80100017
_E_NO_SERVICE = 0x8010001D
_E_SERVICE_STOPPED = 0x8010001E
_E_NO_READERS_AVAILABLE = 0x8010002E
_W_UNPOWERED_CARD = 0x80100067
_W_RESET_CARD = 0x80100068
_W_REMOVED_CARD = 0x80100069

_CARD_GONE = {_E_NO_SMARTCARD, _W_UNPOWERED_CARD, _W_RESET_CARD, _W_REMOVED_CARD}
_LOST = {_E_NOT_TRANSACTED, _F_COMM_ERROR}
_READER_GONE = {_E_UNKNOWN_READER, _E_READER_UNAVAILABLE, _E_NO_READERS_AVAILABLE}
_SERVICE_GONE = {_E_NO_SERVICE, _E_SERVICE_STOPPED, _E_INVALID_HANDLE}

_STATE_PRESENT = 0x0020
_STATE_MUTE = 0x0200

_scard: ModuleType | None = None


def _lib() -> ModuleType:
    """``smartcard.scard``, imported on first use."""
    global _scard
    if _scard is None:
        from smartcard import scard

        _scard = scard
    return _scard


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def map_pcsc_error(hresult: int, what: str, *, connecting: bool = False) -> CardDaemonError:
    """The typed error for a PC/SC return code; ``what`` names reader and command."""
    code = _code(hresult)
    text = f"{what}: PC/SC 0x{code:08X}"
    if code in _CARD_GONE:
        if connecting and code in (_E_NO_SMARTCARD, _W_REMOVED_CARD):
            return CardAbsent(f"{text} (no card in the field)")
        reset = " (card was reset)" if code == _W_RESET_CARD else " (card left the field)"
        return CardRemoved(text + reset)
    if code in _LOST:
        return ResponseLost(f"{text} (not transacted: the card may have executed it)")
    if code in _READER_GONE:
        return ReaderUnavailable(f"{text} (reader not available)")
    if code in _SERVICE_GONE:
        return PcscUnavailable(f"{text} (pcscd not running or restarted)")
    if code == _E_SHARING_VIOLATION:
        return ReaderBusy(f"{text} (another application holds the card exclusively)")
    if code == _E_TIMEOUT:
        return OperationTimeout(f"{text} (timeout)")
    return ReaderError(text)


def _establish() -> int:
    scard = _lib()
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if _code(hresult) != _S_SUCCESS:
        raise map_pcsc_error(hresult, "establishing a PC/SC context")
    return int(context)


def _release(context: int | None) -> None:
    if context is not None:
        _lib().SCardReleaseContext(context)


class PcscConnection(ClosesOnExit):
    """A :class:`~daemon.readers.connection.CardConnection` over one ``SCardConnect`` handle."""

    def __init__(self, reader: str, *, exclusive: bool = False) -> None:
        self._reader = reader
        self._exclusive = exclusive
        self._context: int | None = None
        self._handle: int | None = None
        self._protocol = 0
        self._atr = b""
        self._closed = False
        self._open()

    @property
    def reader_name(self) -> str:
        return self._reader

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> Response:
        if self._handle is None:
            raise ReaderUnavailable(
                f"reader {self._reader!r}: connection closed before {command_label(apdu)}"
            )
        scard = _lib()
        try:
            hresult, raw = scard.SCardTransmit(self._handle, self._protocol, list(apdu))
        except (SystemError, TypeError) as exc:  # pyscard's answer to a stale handle
            raise PcscUnavailable(f"reader {self._reader!r}: {command_label(apdu)}: {exc}") from exc
        if _code(hresult) != _S_SUCCESS:
            raise map_pcsc_error(hresult, f"reader {self._reader!r}: {command_label(apdu)}")
        return check_response(self._reader, apdu, bytes(raw))

    def begin_transaction(self) -> None:
        """Hold the reader against other PC/SC clients (pcscd makes their commands wait)."""
        self._call("begin transaction", lambda scard, handle: scard.SCardBeginTransaction(handle))

    def end_transaction(self, disposition: Disposition = "leave") -> None:
        """Release the reader; ``"reset"`` warm-resets the card (drops its authentication)."""

        def end(scard: ModuleType, handle: int) -> Any:
            how = scard.SCARD_RESET_CARD if disposition == "reset" else scard.SCARD_LEAVE_CARD
            return scard.SCardEndTransaction(handle, how)

        self._call("end transaction", end)

    def _call(self, what: str, call: Callable[[ModuleType, int], Any]) -> None:
        if self._handle is None:
            raise ReaderUnavailable(f"reader {self._reader!r}: connection closed before {what}")
        try:
            hresult = call(_lib(), self._handle)
        except (SystemError, TypeError) as exc:  # pyscard's answer to a stale handle
            raise PcscUnavailable(f"reader {self._reader!r}: {what}: {exc}") from exc
        if _code(hresult) != _S_SUCCESS:
            raise map_pcsc_error(hresult, f"reader {self._reader!r}: {what}")

    def reconnect(self, reset: bool = False) -> None:
        """Re-select the card (warm reset), or cold-reset it; reopen after a pcscd restart."""
        scard = _lib()
        if self._closed:
            raise ReaderUnavailable(f"reader {self._reader!r}: connection closed")
        if self._handle is not None:
            disposition = scard.SCARD_UNPOWER_CARD if reset else scard.SCARD_RESET_CARD
            hresult, protocol = scard.SCardReconnect(
                self._handle, self._share_mode(), self._protocols(), disposition
            )
            code = _code(hresult)
            if code == _S_SUCCESS:
                self._protocol = int(protocol)
                self._refresh_atr()
                return
            if code not in _SERVICE_GONE and code not in _CARD_GONE:
                raise map_pcsc_error(hresult, f"reader {self._reader!r}: reconnect")
            logger.info("reader %r: reconnect got 0x%08X, reopening", self._reader, code)
        self._teardown()
        self._open()

    def close(self) -> None:
        """Disconnect (leaving the card as it is) and release the context. Idempotent."""
        self._closed = True
        self._teardown()

    # --- internals -----------------------------------------------------------------------

    def _share_mode(self) -> int:
        scard = _lib()
        return int(scard.SCARD_SHARE_EXCLUSIVE if self._exclusive else scard.SCARD_SHARE_SHARED)

    def _protocols(self) -> int:
        scard = _lib()
        return int(scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)

    def _open(self) -> None:
        scard = _lib()
        self._context = _establish()
        try:
            hresult, handle, protocol = scard.SCardConnect(
                self._context, self._reader, self._share_mode(), self._protocols()
            )
        except (SystemError, TypeError) as exc:  # pyscard on a name it cannot pass to pcscd
            self._teardown()
            raise ReaderUnavailable(f"reader {self._reader!r}: connect: {exc}") from exc
        if _code(hresult) != _S_SUCCESS:
            self._teardown()
            raise map_pcsc_error(hresult, f"reader {self._reader!r}: connect", connecting=True)
        self._handle, self._protocol = int(handle), int(protocol)
        self._refresh_atr()

    def _refresh_atr(self) -> None:
        assert self._handle is not None
        hresult, _name, _state, _proto, atr = _lib().SCardStatus(self._handle)
        if _code(hresult) != _S_SUCCESS:
            raise map_pcsc_error(hresult, f"reader {self._reader!r}: status")
        self._atr = bytes(atr)

    def _teardown(self) -> None:
        handle, self._handle = self._handle, None
        context, self._context = self._context, None
        if handle is not None:
            _lib().SCardDisconnect(handle, _lib().SCARD_LEAVE_CARD)
        _release(context)


class PcscBackend(ClosesOnExit):
    """Readers through pcscd. ``connect`` opens a :class:`PcscConnection`."""

    name = "pcsc"

    def __init__(self, **_options: Any) -> None:
        self._contexts: dict[int, int] = {}  # thread id -> its status-wait context
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: ReadersOptions) -> Self:
        """pcscd lists the attached readers itself: the ``[readers.<id>]`` tables only tell the
        daemon which one is which, so nothing of them is needed here."""
        return cls()

    def list_readers(self) -> list[str]:
        context = _establish()
        try:
            return self._list(context)
        finally:
            _release(context)

    def connect(self, reader: str, *, exclusive: bool = False) -> PcscConnection:
        return PcscConnection(reader, exclusive=exclusive)

    def wait_for_change(
        self, known: Mapping[str, ReaderState] | None, timeout_s: float
    ) -> dict[str, ReaderState]:
        context = self._context_for_monitor()
        try:
            names = self._list(context)
            if known is None or set(known) != set(names):
                return self._states(context, names, None, 0)
            return self._states(context, names, known, max(0, int(timeout_s * 1000)))
        except PcscUnavailable:
            self._drop_monitor_context()
            raise
        except CardDaemonError as exc:  # a failed status wait: the service link is in doubt
            self._drop_monitor_context()
            raise PcscUnavailable(f"status wait failed: {exc}") from exc

    def cancel(self) -> None:
        with self._lock:
            contexts = list(self._contexts.values())
        for context in contexts:
            _lib().SCardCancel(context)

    def close(self) -> None:
        """Release every status-wait context (stop the monitor first). Idempotent."""
        with self._lock:
            self._closed = True
            contexts = list(self._contexts.values())
            self._contexts.clear()
        for context in contexts:
            _release(context)

    # --- internals -----------------------------------------------------------------------

    def _context_for_monitor(self) -> int:
        """This thread's status-wait context: one blocked wait never stalls another thread."""
        key = threading.get_ident()
        with self._lock:
            if self._closed:
                raise PcscUnavailable("PC/SC backend closed")
            context = self._contexts.get(key)
        if context is None:
            context = _establish()
            with self._lock:
                self._contexts[key] = context
                stale = self._forget_dead_threads()
            for old in stale:
                _release(old)
        return context

    def _forget_dead_threads(self) -> list[int]:
        """Contexts of threads that ended (a monitor stopped and started again); lock held."""
        alive = {t.ident for t in threading.enumerate()}
        dead = [ident for ident in self._contexts if ident not in alive]
        return [self._contexts.pop(ident) for ident in dead]

    def _drop_monitor_context(self) -> None:
        with self._lock:
            context = self._contexts.pop(threading.get_ident(), None)
        _release(context)

    @staticmethod
    def _list(context: int) -> list[str]:
        hresult, names = _lib().SCardListReaders(context, [])
        code = _code(hresult)
        if code == _E_NO_READERS_AVAILABLE:
            return []
        if code != _S_SUCCESS:
            raise map_pcsc_error(hresult, "listing readers")
        return [str(n) for n in names]

    def _states(
        self,
        context: int,
        names: list[str],
        known: Mapping[str, ReaderState] | None,
        timeout_ms: int,
    ) -> dict[str, ReaderState]:
        scard = _lib()
        current = [(n, known[n].flags if known is not None else 0) for n in names]
        if known is not None:
            current.append((PNP_READER, len(names) << 16))
        hresult, states = scard.SCardGetStatusChange(context, timeout_ms, current)
        code = _code(hresult)
        if code in (_E_TIMEOUT, _E_CANCELLED) and known is not None:
            return dict(known)
        if code == _E_UNKNOWN_READER:  # a reader left between list and wait: look again
            return self._states(context, self._list(context), None, 0)
        if code != _S_SUCCESS:
            raise map_pcsc_error(hresult, "waiting for reader changes")
        result: dict[str, ReaderState] = {}
        for name, flags, atr in states:
            if name == PNP_READER:
                continue
            flags = int(flags) & ~scard.SCARD_STATE_CHANGED
            present = bool(flags & _STATE_PRESENT) and not flags & _STATE_MUTE
            result[str(name)] = ReaderState(
                name=str(name),
                present=present,
                atr=bytes(atr) if present else b"",
                generation=(flags >> 16) & 0xFFFF,
                flags=flags,
            )
        return result

"""``StorageCard``: the typed per-connection API the card application uses.

It turns method calls into the dialect's APDUs, sends them through a
:class:`~daemon.readers.connection.CardConnection`, records every exchange in the
:class:`~daemon.readers.trace.ApduTrace`, checks status words and response lengths, and maps
failures so the caller can decide safely:

* READ / AUTHENTICATE / LOAD KEY: the card leaving (``CardRemoved``) or a lost answer
  (``ResponseLost``) -> ``CardRemoved``: nothing was changed, just ask for the card again;
* any command that may change the card (UPDATE BINARY, value operations): ``CardRemoved``,
  ``ResponseLost``, a reader failure, an ambiguous SW (ACS ``63 00``) or a garbage answer ->
  ``WriteUnconfirmed``: the outcome is unknown and is resolved by reading the card again,
  never by sending the write again. Definite refusals (``69 82`` access denied, ``6A 82`` no
  such block) stay what they are: the card was not changed.

A reader that answers garbage (short, oversized, unknown SW) gets ``ReaderBadResponse`` naming
reader and command. Value operations use the dialect's vendor commands when it has them, else
the non-atomic read/compute/write fallback (:mod:`daemon.readers.fallback`), which needs a
:class:`~daemon.readers.fallback.ValueCodec`.
"""

from __future__ import annotations

import logging
import time

from daemon.errors import (
    CardAbsent,
    CardDaemonError,
    CardRemoved,
    InvalidArgument,
    OperationTimeout,
    ReaderBadResponse,
    ReaderError,
    ReaderUnsupported,
    ResponseLost,
    UnsafeAccessBits,
    WriteUnconfirmed,
)
from daemon.readers import status
from daemon.readers.apdu import (
    BLOCK_SIZE,
    CLA,
    MAX_BLOCK,
    Command,
    CommandKind,
    KeyType,
    check_block,
    check_byte,
    get_uid,
    is_trailer,
)
from daemon.readers.connection import CardConnection, ClosesOnExit, Response
from daemon.readers.dialects import ACR122U, Dialect, ValueOp, detect_dialect
from daemon.readers.fallback import NonAtomicValueOps, ValueCodec
from daemon.readers.trace import ApduTrace

__all__ = ["StorageCard"]

logger = logging.getLogger(__name__)

_UID_LENGTHS = (4, 7, 10)
_MAX_GET_RESPONSE = 4
# failures worth a WARNING with the trace; the rest (wrong key, card pulled) are routine
_LOUD = (ReaderBadResponse, WriteUnconfirmed, ReaderError, OperationTimeout)
# transport errors that leave the outcome of a card-changing command unknown
_UNCERTAIN = (CardRemoved, ResponseLost, ReaderError, OperationTimeout)


class StorageCard(ClosesOnExit):
    """A MIFARE Classic card in one reader, spoken to in the reader's dialect.

    Not thread-safe: it belongs to the reader's worker thread, like the connection (MIFARE
    authentication state is per connection). Pass the reader's long-lived ``trace`` so the
    ring survives reconnects and new cards.
    """

    def __init__(
        self,
        connection: CardConnection,
        dialect: Dialect | None = None,
        *,
        codec: ValueCodec | None = None,
        trace: ApduTrace | None = None,
    ) -> None:
        self._conn = connection
        self.reader = connection.reader_name
        self.dialect = dialect if dialect is not None else detect_dialect(self.reader)
        self.trace = trace if trace is not None else ApduTrace(self.reader)
        self._fallback = NonAtomicValueOps(self, codec, self.reader) if codec is not None else None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._conn.close()

    @property
    def atr(self) -> bytes:
        return self._conn.atr

    def reconnect(self, reset: bool = False) -> None:
        """Re-select the card: drops authentication (needed after a failed authentication)."""
        logger.debug("%s: reconnect (reset=%s)", self.reader, reset)
        self._conn.reconnect(reset)

    # -- the exchange ------------------------------------------------------------------------

    def _where(self, command: Command) -> str:
        return f"reader {self.reader!r}: {command.describe()}"

    def _fail(self, error: CardDaemonError) -> CardDaemonError:
        level = logging.WARNING if isinstance(error, _LOUD) else logging.DEBUG
        self.trace.dump(str(error), level=level)
        return error

    def _unknown_outcome(self, command: Command, why: str) -> WriteUnconfirmed:
        return WriteUnconfirmed(
            f"{self._where(command)}: {why}; the write may or may not have happened,"
            " read the card again before deciding"
        )

    def _transport_error(self, command: Command, exc: CardDaemonError) -> CardDaemonError:
        if isinstance(exc, CardAbsent):
            return exc
        if isinstance(exc, ReaderBadResponse):  # name the command as callers know it
            return self._bad_response(command, exc.message.removeprefix(f"reader {self.reader!r} "))
        if command.mutating and isinstance(exc, _UNCERTAIN):
            return self._unknown_outcome(command, f"transport failed ({exc.reason})")
        if isinstance(exc, CardRemoved | ResponseLost):
            return CardRemoved(f"{self._where(command)}: card left the field ({exc.reason})")
        return exc

    def _send(self, command: Command, owner: Command) -> Response:
        """Transmit one APDU and trace it; ``owner`` decides the mapping (GET RESPONSE)."""
        started = time.perf_counter()
        try:
            response = self._conn.transmit(command.apdu)
        except CardDaemonError as exc:
            self.trace.record(command, None, time.perf_counter() - started, error=exc)
            mapped = self._transport_error(owner, exc)
            self._fail(mapped)
            if mapped is exc:
                raise
            raise mapped from exc
        except ValueError as exc:  # a backend could not even split off a status word
            self.trace.record(command, None, time.perf_counter() - started, error=exc)
            bad = self._bad_response(owner, f"unparseable answer ({exc})")
            raise self._fail(bad) from exc
        self.trace.record(command, response, time.perf_counter() - started)
        return response

    def exchange(self, command: Command) -> Response:
        """Send a command built by the caller and return the answer with its SW unchecked, for
        callers that judge the SW themselves (the technician's block-0 write test). Traced,
        and transport failures mapped as for every command: a card-changing command that got
        no valid answer is ``WriteUnconfirmed``."""
        return self._exchange(command)

    def _exchange(self, command: Command) -> Response:
        """Send, fetch pending bytes (``61 XX``), and return the raw response (SW unchecked)."""
        response = self._send(command, command)
        if response.sw1 != 0x61:
            return response
        data = response.data
        for _ in range(_MAX_GET_RESPONSE):
            if response.sw1 != 0x61:
                break
            get = Command(
                "GET RESPONSE",
                bytes((CLA, 0xC0, 0x00, 0x00, response.sw2)),
                CommandKind.CONTROL,
                detail=f"for {command.name}",
                # offsets may shift across fetches: hide it all when the answer holds keys
                response_secret=((0, 0x100),) if command.response_secret else (),
            )
            response = self._send(get, command)
            data += response.data
        return Response(data, response.sw)

    def _bad_response(self, command: Command, why: str) -> CardDaemonError:
        if command.mutating:
            return self._unknown_outcome(command, f"the reader answered garbage: {why}")
        return ReaderBadResponse(f"{self._where(command)}: {why}")

    def _run(self, command: Command, data_length: int | None = 0) -> Response:
        """Exchange, map a non-success SW, and check the data length (None: any)."""
        response = self._exchange(command)
        if response.sw != 0x9000:
            error, rule = status.error_for(
                response, command, self.reader, self.dialect.status_table
            )
            if command.mutating and (
                rule is None or rule.ambiguous or isinstance(error, ReaderBadResponse)
            ):
                why = error.message.removeprefix(f"{self._where(command)}: ")
                unsure = self._unknown_outcome(command, why)
                raise self._fail(unsure) from error
            raise self._fail(error)
        if data_length is not None and len(response.data) != data_length:
            why = f"expected {data_length} data bytes, got {len(response.data)}"
            raise self._fail(self._bad_response(command, why))
        return response

    # -- card commands -----------------------------------------------------------------------

    def uid(self) -> bytes:
        """The card's UID (4, 7 or 10 bytes)."""
        command = get_uid()
        response = self._run(command, data_length=None)
        if len(response.data) not in _UID_LENGTHS:
            why = f"a UID is 4, 7 or 10 bytes, got {len(response.data)}"
            raise self._fail(self._bad_response(command, why))
        return response.data

    def load_key(self, key: bytes, slot: int = 0, key_type: int = KeyType.A) -> None:
        """Put ``key`` into a volatile reader slot (``key_type`` matters only on Identiv)."""
        self._run(self.dialect.load_key(key, slot, key_type))

    def authenticate(self, block: int, key_type: int = KeyType.A, slot: int = 0) -> None:
        """Authenticate ``block``'s sector with the key in ``slot``; after a failure the card
        refuses further authentications until :meth:`reconnect`."""
        self._run(self.dialect.authenticate(block, key_type, slot))

    def read_block(self, block: int) -> bytes:
        return self._run(self.dialect.read(block), data_length=BLOCK_SIZE).data

    def read_blocks(self, first: int, count: int) -> list[bytes]:
        """``count`` consecutive blocks, multi-block where the dialect allows (never across a
        trailer), else one by one."""
        check_block(first)
        check_byte("count", count, 1, MAX_BLOCK + 1)
        if first + count - 1 > MAX_BLOCK:
            raise InvalidArgument(
                "count", f"{count} blocks from block {first} run past {MAX_BLOCK}"
            )
        blocks: list[bytes] = []
        block, end = first, first + count
        while block < end:
            n = 1
            if not is_trailer(block):
                while (
                    n < self.dialect.max_read_blocks
                    and block + n < end
                    and not is_trailer(block + n)
                ):
                    n += 1
            data = self._run(self.dialect.read(block, n), data_length=n * BLOCK_SIZE).data
            blocks.extend(data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE))
            block += n
        return blocks

    def write_block(self, block: int, data: bytes, *, force: bool = False) -> None:
        """UPDATE BINARY one block; a failure with unknown outcome is ``WriteUnconfirmed``.

        A sector trailer whose access bytes fail the chip's inverted-copy check would block the
        sector forever, so it is refused here, below every caller; only a technician path may
        pass ``force=True``.
        """
        command = self.dialect.write(block, data)
        if len(data) != BLOCK_SIZE:
            raise InvalidArgument("data", f"block {block}: one block is {BLOCK_SIZE} bytes")
        if is_trailer(block) and not force and not _access_bytes_consistent(data[6:9]):
            raise UnsafeAccessBits(
                f"block {block}: access bytes {data[6:9].hex(' ').upper()} fail the"
                " inverted-copy check; writing them would block the sector forever"
            )
        self._run(command)

    # -- value blocks ------------------------------------------------------------------------

    def _native(self, op: ValueOp) -> bool:
        return op in self.dialect.native_value_ops()

    def _values(self, op: ValueOp) -> NonAtomicValueOps:
        if self._fallback is None:
            raise ReaderUnsupported(
                f"reader {self.reader!r} ({self.dialect.title}): value {op.value} needs the"
                " read/compute/write fallback, but no value codec was given"
            )
        return self._fallback

    def value_read(self, block: int) -> int:
        """The signed value of a value block (vendor READ VALUE, else read + decode)."""
        if self._native(ValueOp.READ):
            command = self.dialect.value_read(block)
            response = self._run(command, data_length=None)
            try:
                return self.dialect.parse_value(response, command, self.reader)
            except ReaderBadResponse as exc:
                raise self._fail(exc) from None
        return self._values(ValueOp.READ).read(block)

    def value_increment(self, block: int, amount: int) -> None:
        """INCREMENT + TRANSFER to the same block (non-atomic fallback if no vendor command)."""
        if self._native(ValueOp.INCREMENT):
            self._run(self.dialect.value_change(ValueOp.INCREMENT, block, amount))
        else:
            self._values(ValueOp.INCREMENT).increment(block, amount)

    def value_decrement(self, block: int, amount: int) -> None:
        """DECREMENT + TRANSFER to the same block (non-atomic fallback if no vendor command)."""
        if self._native(ValueOp.DECREMENT):
            self._run(self.dialect.value_change(ValueOp.DECREMENT, block, amount))
        else:
            self._values(ValueOp.DECREMENT).decrement(block, amount)

    def value_restore_transfer(self, source: int, target: int) -> None:
        """RESTORE ``source`` + TRANSFER to ``target`` (same sector): copies a value block."""
        if self._native(ValueOp.RESTORE):
            self._run(self.dialect.value_restore(source, target))
        else:
            self._values(ValueOp.RESTORE).restore_transfer(source, target)

    def value_store(self, block: int, value: int) -> None:
        """Format ``block`` as a value block holding ``value``."""
        if self._native(ValueOp.STORE):
            self._run(self.dialect.value_store(block, value))
        else:
            self._values(ValueOp.STORE).store(block, value)

    # -- reader housekeeping -----------------------------------------------------------------

    def firmware(self) -> str:
        """The reader's firmware string (ACS only; others: ``ReaderUnsupported``)."""
        command = self.dialect.firmware()
        response = self._exchange(command)
        try:
            return self.dialect.parse_firmware(response, command, self.reader)
        except ReaderBadResponse as exc:
            raise self._fail(exc) from None

    def probe_firmware(self) -> str | None:
        """Send ``FF 00 48 00 00`` whatever the dialect, to recognise an ACS reader behind an
        unhelpful name (then :func:`~daemon.readers.dialects.select_dialect` with
        ``firmware=``); None when the answer is not a firmware string. Only when asked."""
        command = ACR122U.firmware()
        response = self._exchange(command)
        try:
            return self.dialect.parse_firmware(response, command, self.reader)
        except ReaderBadResponse:
            logger.debug("%s: no firmware string in answer to %s", self.reader, command.name)
            return None

    def feedback(self, success: bool) -> None:
        """Blink/beep success or failure where the reader supports it through transmit."""
        command = self.dialect.feedback_command(success)
        response = self._exchange(command)
        if not self.dialect.feedback_accepted(response):
            error, _rule = status.error_for(
                response, command, self.reader, self.dialect.status_table
            )
            raise self._fail(error)


def _access_bytes_consistent(access: bytes) -> bool:
    """Bytes 6-8 of a trailer carry C1..C3 and their inverses; the chip checks exactly this."""
    b6, b7, b8 = access
    return (
        (b7 >> 4) == (~b6 & 0x0F)
        and (b8 & 0x0F) == ((~b6 >> 4) & 0x0F)
        and (b8 >> 4) == (~b7 & 0x0F)
    )

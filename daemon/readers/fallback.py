"""Value-block operations for readers without vendor value commands: read, compute, write.

**Not atomic.** A real INCREMENT/DECREMENT goes through the card's transfer buffer and only
TRANSFER commits; here the new value is computed on the host and written with a plain
UPDATE BINARY. Consequences the layer above must accept:

* a tear during the write can leave the block corrupt (neither old nor new value): the
  value-block redundancy makes that *detectable* on the next read, not repairable;
* the card's access conditions are those of WRITE, not of DECREMENT/TRANSFER/RESTORE (a sector
  that allows key A to decrement but not to write refuses the fallback);
* a blind retry after a lost answer could apply the change twice, which is why every write
  failure surfaces as ``WriteUnconfirmed`` (resolve by reading the card, never by retrying).

This module must not import :mod:`daemon.mifare` (layers: readers and mifare never import each
other), so the value-block format comes in as a :class:`ValueCodec` - the layer above passes
``daemon.mifare.value``'s encode/decode through :class:`FunctionValueCodec`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from daemon.errors import InvalidArgument

__all__ = ["BlockIO", "FunctionValueCodec", "NonAtomicValueOps", "ValueCodec"]

logger = logging.getLogger(__name__)


class ValueCodec(Protocol):
    """Encode/decode the 16-byte MIFARE value-block format."""

    def encode(self, value: int, address: int) -> bytes:
        """16 bytes ``V ~V V adr ~adr adr ~adr``; raises on an out-of-range value/address."""
        ...

    def decode(self, data: bytes, block: int) -> tuple[int, int]:
        """``(value, address)``; raises a typed error naming ``block`` if malformed."""
        ...


@dataclass(frozen=True, slots=True)
class FunctionValueCodec:
    """A :class:`ValueCodec` made of two plain functions."""

    encode_fn: Callable[[int, int], bytes]
    decode_fn: Callable[[bytes, int], tuple[int, int]]

    def encode(self, value: int, address: int) -> bytes:
        return self.encode_fn(value, address)

    def decode(self, data: bytes, block: int) -> tuple[int, int]:
        return self.decode_fn(data, block)


class BlockIO(Protocol):
    """What the fallback needs from the storage card: one-block read and write."""

    def read_block(self, block: int) -> bytes: ...

    def write_block(self, block: int, data: bytes) -> None: ...


def _amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidArgument("amount", f"must be a non-negative integer, got {amount!r}")
    return amount


class NonAtomicValueOps:
    """INCREMENT/DECREMENT/RESTORE/STORE emulated with READ BINARY + UPDATE BINARY."""

    def __init__(self, card: BlockIO, codec: ValueCodec, reader: str) -> None:
        self._card = card
        self._codec = codec
        self._reader = reader

    def read(self, block: int) -> int:
        value, _address = self._codec.decode(self._card.read_block(block), block)
        return value

    def change(self, block: int, delta: int) -> int:
        """Add ``delta`` (negative = decrement), keeping the address byte; returns new value."""
        value, address = self._codec.decode(self._card.read_block(block), block)
        new = self._codec.encode(value + delta, address)  # range-checked before any write
        logger.debug(
            "%s: non-atomic value change of block %d by %d (read/compute/write)",
            self._reader,
            block,
            delta,
        )
        self._card.write_block(block, new)
        return value + delta

    def increment(self, block: int, amount: int) -> int:
        return self.change(block, _amount(amount))

    def decrement(self, block: int, amount: int) -> int:
        return self.change(block, -_amount(amount))

    def store(self, block: int, value: int) -> None:
        """Format ``block`` as a value block; address byte = ``block`` (our convention)."""
        self._card.write_block(block, self._codec.encode(value, block))

    def restore_transfer(self, source: int, target: int) -> None:
        """Copy a valid value block verbatim (the address byte stays the source's, as on ACS)."""
        data = self._card.read_block(source)
        self._codec.decode(data, source)  # refuse to copy a corrupt block
        self._card.write_block(target, data)

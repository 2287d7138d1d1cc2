"""Input checks shared by the MIFARE codecs, so every codec rejects bad input the same way."""

from __future__ import annotations

from daemon.errors import MalformedBlock

__all__ = ["hexs", "require_bytes"]


def require_bytes(data: object, field: str, length: int, block: int | None = None) -> bytes:
    """Return ``data`` as bytes of exactly ``length``, or raise MalformedBlock naming the field."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedBlock(field, f"expected bytes, got {type(data).__name__}", block)
    raw = bytes(data)
    if len(raw) != length:
        raise MalformedBlock(field, f"expected {length} bytes, got {len(raw)}", block)
    return raw


def hexs(data: bytes) -> str:
    """``87 D6 12 00``: the spacing technicians and datasheets use."""
    return data.hex(" ").upper()

"""Split an ESC/POS byte stream into whole commands, written from the Epson command reference.

The tokenizer knows every command's length (including the data of ``GS v 0``, ``GS ( k``,
``GS k`` …), so a ``10 04`` inside image data is never mistaken for a real-time status request,
and a command split across two TCP segments is held back until it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "Tokenizer"]

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10

#: ESC x / GS x / FS x commands with a fixed number of parameter bytes after the 2-byte prefix.
_FIXED: dict[tuple[int, int], int] = {
    **{(ESC, ord(c)): 0 for c in "@2<"},
    **{(ESC, ord(c)): 1 for c in "!-EGJMRVadt3{= ULSTe"},
    (ESC, ord("p")): 3,
    (ESC, ord("$")): 2,
    (ESC, ord("\\")): 2,
    (ESC, ord("c")): 2,
    **{(GS, ord(c)): 1 for c in "!BHIfhrwaEb"},
    (GS, ord("L")): 2,
    (GS, ord("W")): 2,
    (GS, ord("P")): 2,
    **{(FS, ord(c)): 0 for c in "&."},
    **{(FS, ord(c)): 1 for c in "!-CW"},
    (FS, ord("S")): 2,
    (FS, ord("p")): 2,
}


@dataclass(frozen=True, slots=True)
class Token:
    """``kind`` is "text", "ctl" (single control byte) or "cmd"; ``raw`` is the bytes."""

    kind: str
    raw: bytes

    @property
    def realtime(self) -> bool:
        """DLE EOT / DLE ENQ / DLE DC4: executed on receipt, ahead of the print buffer."""
        return self.kind == "cmd" and self.raw[0] == DLE


class Tokenizer:
    """Incremental: :meth:`feed` bytes, get back the complete tokens so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.unknown: list[bytes] = []

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Token]:
        self._buf += data
        out: list[Token] = []
        while self._buf:
            n = self._length(self._buf)
            if n is None:
                break
            raw = bytes(self._buf[:n])
            del self._buf[:n]
            out.append(self._classify(raw))
        return out

    @staticmethod
    def _classify(raw: bytes) -> Token:
        first = raw[0]
        if first >= 0x20 and first != 0x7F:
            return Token("text", raw)
        if first in (ESC, GS, FS, DLE) and len(raw) >= 2:
            return Token("cmd", raw)
        return Token("ctl", raw)  # includes a lone prefix byte skipped as an unknown command

    def _length(self, b: bytearray) -> int | None:
        """Bytes in the first token of ``b``; None if more bytes are needed."""
        first = b[0]
        if first >= 0x20 and first != 0x7F:
            end = 1
            while end < len(b) and (b[end] >= 0x20 and b[end] != 0x7F):
                end += 1
            if end == len(b) and end < 4096:
                return None  # the text may go on in the next segment (never split a character)
            return end
        if first not in (ESC, GS, FS, DLE):
            return 1
        if len(b) < 2:
            return None
        second = b[1]
        if first == DLE:
            if second in (0x04, 0x05):  # DLE EOT n / DLE ENQ n
                return 3 if len(b) >= 3 else None
            if second == 0x14:  # DLE DC4 fn m t
                return 5 if len(b) >= 5 else None
            self.unknown.append(bytes(b[:2]))
            return 1
        if (first, second) in _FIXED:
            n = 2 + _FIXED[(first, second)]
            return n if len(b) >= n else None
        return self._variable(b, first, second)

    def _variable(self, b: bytearray, first: int, second: int) -> int | None:
        def need(n: int) -> int | None:
            return n if len(b) >= n else None

        if first == ESC and second == ord("*"):  # ESC * m nL nH d1..dk
            if len(b) < 5:
                return None
            dots = b[3] | b[4] << 8
            return need(5 + dots * (1 if b[2] in (0, 1) else 3))
        if first == GS and second == ord("v"):  # GS v 0 m xL xH yL yH d1..dk
            if len(b) < 8:
                return None
            return need(8 + (b[4] | b[5] << 8) * (b[6] | b[7] << 8))
        if first == GS and second == ord("(") and len(b) >= 3:  # GS ( k/L/E pL pH ...
            if len(b) < 5:
                return None
            return need(5 + (b[3] | b[4] << 8))
        if first == GS and second == ord("k"):  # GS k m ...
            if len(b) < 3:
                return None
            if b[2] <= 6:  # function A: NUL-terminated
                try:
                    return b.index(0, 3) + 1
                except ValueError:
                    return None
            if len(b) < 4:
                return None
            return need(4 + b[3])
        if first == GS and second == ord("V"):  # GS V m [n]
            if len(b) < 3:
                return None
            return 3 if b[2] in (0, 1, 48, 49) else need(4)
        if first == GS and second == ord("("):
            return None
        self.unknown.append(bytes(b[:2]))
        return 2

"""ESC/POS interpreter: tokens in, printed elements out (text lines, codes, images, cuts).

Keeps the printer's character state like a real one: code table (``ESC t``), Kanji mode
(``FS &`` / ``FS .``) in which bytes >= 0x81 start a GB18030 character printed two cells wide,
bold, underline, size, alignment. Independent of the daemon's encoder on purpose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sim.printer.model import (
    Barcode,
    Cut,
    DrawerKick,
    Element,
    Feed,
    QrCode,
    RasterImage,
    Run,
    TextLine,
)
from sim.printer.tokenizer import ESC, FS, GS, Token

__all__ = ["CODE_TABLES", "Decoder"]

logger = logging.getLogger(__name__)

#: ESC t n → codec (Epson numbering) for the tables the simulator knows.
CODE_TABLES: dict[int, str] = {0: "cp437", 2: "cp850", 16: "cp1252", 17: "cp866", 19: "cp858"}
_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
_BARCODES = {73: "CODE128", 67: "EAN13", 68: "EAN8", 69: "CODE39", 65: "UPCA", 2: "EAN13"}


class Decoder:
    """Feed tokens with :meth:`execute`; finished elements go to ``emit``."""

    def __init__(self, emit: Callable[[Element], None]) -> None:
        self.emit = emit
        self.errors: list[str] = []
        self.reset()

    def reset(self) -> None:
        """ESC @: back to power-on state (Kanji mode off, table 0, line buffer cleared)."""
        self.align = "left"
        self.bold = False
        self.underline = False
        self.width = 1
        self.height = 1
        self.kanji = False
        self.code_table = 0
        self.bc_height = 162
        self.bc_width = 3
        self.bc_hri = 0
        self.qr_size = 3
        self.qr_ec = "L"
        self.qr_data = b""
        self._runs: list[Run] = []
        self._line_align = "left"
        self._mb = bytearray()

    # --- text -------------------------------------------------------------------------------

    def _add(self, ch: str, kanji: bool) -> None:
        if not self._runs:
            self._line_align = self.align
        style = (self.bold, self.underline, self.width, self.height, kanji)
        last = self._runs[-1] if self._runs else None
        if last and (last.bold, last.underline, last.width, last.height, last.kanji) == style:
            self._runs[-1] = Run(last.text + ch, last.cells + (2 if kanji else 1), *style)
        else:
            self._runs.append(Run(ch, 2 if kanji else 1, *style))

    def _text(self, raw: bytes) -> None:
        for byte in raw:
            if not self.kanji:
                self._add(self._single_byte(byte), False)
                continue
            if not self._mb and byte < 0x80:
                self._add(chr(byte), False)
                continue
            self._mb.append(byte)
            if len(self._mb) == 2 and 0x30 <= self._mb[1] <= 0x39:
                continue  # four-byte GB18030 sequence
            if len(self._mb) in (2, 4):
                try:
                    self._add(bytes(self._mb).decode("gb18030"), True)
                except UnicodeDecodeError:
                    self.errors.append(f"invalid GB18030 bytes {bytes(self._mb).hex(' ')}")
                    self._add("\ufffd", True)
                self._mb.clear()

    def _single_byte(self, byte: int) -> str:
        """One character of the current code table; a byte the table leaves undefined prints
        as U+FFFD and is reported (a real printer prints a blank or a box there)."""
        try:
            return bytes([byte]).decode(CODE_TABLES.get(self.code_table, "cp437"))
        except UnicodeDecodeError:
            self.errors.append(f"byte {byte:02x} undefined in code table {self.code_table}")
            return "\ufffd"

    def flush_line(self, blank_ok: bool = True) -> None:
        """LF: print the line buffer (an empty buffer feeds one blank line)."""
        if self._mb:
            self.errors.append(f"truncated double-byte character {bytes(self._mb).hex(' ')}")
            self._mb.clear()
        if self._runs or blank_ok:
            self.emit(TextLine(tuple(self._runs), self._line_align if self._runs else self.align))
        self._runs = []

    # --- commands ---------------------------------------------------------------------------

    def execute(self, tok: Token) -> None:
        if tok.kind == "text":
            self._text(tok.raw)
            return
        raw = tok.raw
        if tok.kind == "ctl":
            if raw == b"\n":
                self.flush_line()
            elif raw not in (b"\r", b"\x00"):
                self.errors.append(f"ignored control byte {raw.hex()}")
            return
        prefix, op = raw[0], raw[1]
        handler = _HANDLERS.get((prefix, op))
        if handler is None:
            self.errors.append(f"unsupported command {raw[:2].hex(' ')}")
            return
        handler(self, raw)

    def _esc_init(self, raw: bytes) -> None:
        self.reset()

    def _esc_mode(self, raw: bytes) -> None:  # ESC ! n
        n = raw[2]
        self.bold, self.underline = bool(n & 0x08), bool(n & 0x80)
        self.width, self.height = (2 if n & 0x20 else 1), (2 if n & 0x10 else 1)

    def _esc_bold(self, raw: bytes) -> None:
        self.bold = bool(raw[2] & 1)

    def _esc_underline(self, raw: bytes) -> None:
        self.underline = raw[2] in (1, 2, 49, 50)

    def _esc_align(self, raw: bytes) -> None:
        self.align = _ALIGN.get(raw[2], "left")

    def _esc_table(self, raw: bytes) -> None:
        if raw[2] not in CODE_TABLES:
            self.errors.append(f"unknown code table {raw[2]}")
        self.code_table = raw[2]

    def _esc_feed(self, raw: bytes) -> None:  # ESC d n
        if self._runs:
            self.flush_line()
        self.emit(Feed(raw[2]))

    def _esc_drawer(self, raw: bytes) -> None:  # ESC p m t1 t2
        self.emit(DrawerKick(2 if raw[2] in (0, 48) else 5, raw[3] * 2, raw[4] * 2))

    def _gs_size(self, raw: bytes) -> None:
        self.width, self.height = (raw[2] >> 4) + 1, (raw[2] & 0x0F) + 1

    def _kanji_on(self, raw: bytes) -> None:
        self.kanji = True

    def _kanji_off(self, raw: bytes) -> None:
        if self._mb:
            self.errors.append("Kanji mode left inside a double-byte character")
            self._mb.clear()
        self.kanji = False

    def _gs_cut(self, raw: bytes) -> None:
        if self._runs:
            self.flush_line()
        if len(raw) == 4 and raw[3]:
            self.emit(Feed(raw[3]))
        self.emit(Cut(partial=raw[2] in (1, 49, 66, 98)))

    def _gs_bc_height(self, raw: bytes) -> None:
        self.bc_height = raw[2]

    def _gs_bc_width(self, raw: bytes) -> None:
        self.bc_width = raw[2]

    def _gs_bc_hri(self, raw: bytes) -> None:
        self.bc_hri = raw[2]

    def _gs_barcode(self, raw: bytes) -> None:
        m = raw[2]
        data = raw[3:-1] if m <= 6 else raw[4:]
        symbology = _BARCODES.get(m, f"m={m}")
        if symbology == "CODE128" and data[:1] == b"{":
            data = data[2:]  # code set selector, not printed
        self.emit(Barcode(symbology, data, self.bc_height, self.bc_width, self.bc_hri, self.align))

    def _gs_paren(self, raw: bytes) -> None:  # GS ( k: cn=49 QR functions
        if raw[2] != ord("k") or len(raw) < 7 or raw[5] != 49:
            self.errors.append(f"unsupported GS ( {chr(raw[2])} function")
            return
        fn, params = raw[6], raw[7:]
        if fn in (0x43, 0x45, 0x50) and not params:
            self.errors.append(f"GS ( k function {fn:#04x} without its parameter")
            return
        if fn == 0x43:  # 167: module size
            self.qr_size = params[0]
        elif fn == 0x45:  # 169: error correction
            self.qr_ec = {48: "L", 49: "M", 50: "Q", 51: "H"}.get(params[0], "?")
        elif fn == 0x50:  # 180: store data (after m=48)
            self.qr_data = bytes(params[1:])
        elif fn == 0x51:  # 181: print the stored symbol
            self.emit(QrCode(self.qr_data, self.qr_size, self.qr_ec, self.align))

    def _gs_raster(self, raw: bytes) -> None:  # GS v 0 m xL xH yL yH d...
        width_bytes, height = raw[4] | raw[5] << 8, raw[6] | raw[7] << 8
        self.emit(RasterImage(width_bytes * 8, height, bytes(raw[8:]), self.align))

    def _ignore(self, raw: bytes) -> None:
        """Accepted and without visible effect in the model (line spacing, fonts, ...)."""


_HANDLERS: dict[tuple[int, int], Callable[[Decoder, bytes], None]] = {
    (ESC, ord("@")): Decoder._esc_init,
    (ESC, ord("!")): Decoder._esc_mode,
    (ESC, ord("E")): Decoder._esc_bold,
    (ESC, ord("G")): Decoder._esc_bold,
    (ESC, ord("-")): Decoder._esc_underline,
    (ESC, ord("a")): Decoder._esc_align,
    (ESC, ord("t")): Decoder._esc_table,
    (ESC, ord("d")): Decoder._esc_feed,
    (ESC, ord("p")): Decoder._esc_drawer,
    (ESC, ord("2")): Decoder._ignore,
    (ESC, ord("3")): Decoder._ignore,
    (ESC, ord("M")): Decoder._ignore,
    (ESC, ord("R")): Decoder._ignore,
    (GS, ord("!")): Decoder._gs_size,
    (GS, ord("V")): Decoder._gs_cut,
    (GS, ord("h")): Decoder._gs_bc_height,
    (GS, ord("w")): Decoder._gs_bc_width,
    (GS, ord("H")): Decoder._gs_bc_hri,
    (GS, ord("k")): Decoder._gs_barcode,
    (GS, ord("(")): Decoder._gs_paren,
    (GS, ord("v")): Decoder._gs_raster,
    (GS, ord("a")): Decoder._ignore,
    (FS, ord("&")): Decoder._kanji_on,
    (FS, ord(".")): Decoder._kanji_off,
    (FS, ord("!")): Decoder._ignore,
    (FS, ord("-")): Decoder._ignore,
    (FS, ord("C")): Decoder._ignore,
}

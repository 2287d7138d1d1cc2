"""Receipt previews: the PNG a receipt would print, drawn without a printer or a simulator.

The preview runs the real :class:`~daemon.printers.encoder.ReceiptEncoder` (same validation,
same layout: column widths, wrapping, alignment, double size, what is printed in which order)
but records each printed element instead of emitting ESC/POS bytes, then draws the elements
with Pillow at one pixel per printer dot: Font A cells of ``cell_dots`` x 24 dots (a Chinese
character takes two), the CJK font of :mod:`daemon.printers.raster`, QR codes (``qrcode``, the
encoder's module size 6 and error correction M) and CODE128 bars (``python-barcode``, module
width 2, 80 dots high). It is a preview, not a decoder of the bytes: the printer's own glyphs
and its choice of CODE128 code sets may differ in detail, the content and layout do not.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.printers.encoder import ReceiptEncoder
from daemon.printers.profiles import PrinterProfile
from daemon.printers.raster import _font
from daemon.printers.receipt import Header, Receipt
from daemon.printers.textwidth import char_width, text_width

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Preview", "render_preview"]

logger = logging.getLogger(__name__)

LINE_DOTS = 24  # Font A height
LINE_GAP = 6  # ESC 2 default line spacing 30 dots = 24 + 6
QR_MODULE = 6
BAR_MODULE = 2
BAR_HEIGHT = 80
MARGIN = 8


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    bold: bool
    align: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Qr:
    payload: str


@dataclass(frozen=True, slots=True)
class _Bars:
    payload: str


@dataclass(frozen=True, slots=True)
class _Logo:
    png: bytes


@dataclass(frozen=True, slots=True)
class _Feed:
    lines: int


_Element = _Text | _Qr | _Bars | _Logo | _Feed


@dataclass(frozen=True, slots=True)
class Preview:
    png: bytes
    width: int
    height: int


class _Recorder(ReceiptEncoder):
    """The encoder with its printing primitives recording elements instead of bytes."""

    def __init__(self, profile: PrinterProfile, stored_logo: bytes | None) -> None:
        super().__init__(profile, stored_logo)
        self.elements: list[_Element] = []

    def text_line(
        self,
        text: str,
        *,
        bold: bool = False,
        align: str = "left",
        width: int = 1,
        height: int = 1,
    ) -> bytes:
        self.elements.append(_Text(text, bold, align, width, height))
        return b""

    def header(self, header: Header) -> bytes:
        logo = header.logo_png
        if logo is None and header.use_stored_logo:
            logo = self.stored_logo
        if logo is not None:
            self.elements.append(_Logo(logo))
        self.text_line(header.store_name, bold=True, align="center", width=2, height=2)
        for line in header.lines:
            self.text_line(line, align="center")
        return b""

    def qr(self, payload: str) -> bytes:
        super().qr(payload)  # the profile check (no native QR: RECEIPT_INVALID)
        self.elements.append(_Qr(payload))
        return b""

    def barcode(self, payload: str) -> bytes:
        self.elements.append(_Bars(payload))
        return b""

    def finish(self, cut: bool) -> bytes:
        self.elements.append(_Feed(3 if cut and self.profile.cutter else 4))
        return b""


def _qr_image(payload: str) -> Image.Image:
    import qrcode  # type: ignore[import-untyped]
    from PIL import Image as PILImage

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=0)
    code.add_data(payload.encode("utf-8"))
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix) * QR_MODULE
    img = PILImage.new("L", (size, size), 255)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                img.paste(0, (x * QR_MODULE, y * QR_MODULE, (x + 1) * QR_MODULE,
                              (y + 1) * QR_MODULE))  # fmt: skip
    return img


def _bar_image(payload: str, cell: int) -> Image.Image:
    import barcode  # type: ignore[import-untyped]
    from PIL import Image as PILImage
    from PIL import ImageDraw

    modules = barcode.get_barcode_class("code128")(payload).build()[0]
    text_h = LINE_DOTS
    img = PILImage.new("L", (len(modules) * BAR_MODULE, BAR_HEIGHT + text_h), 255)
    draw = ImageDraw.Draw(img)
    for i, bit in enumerate(modules):
        if bit == "1":
            draw.rectangle((i * BAR_MODULE, 0, (i + 1) * BAR_MODULE - 1, BAR_HEIGHT - 1), fill=0)
    x = max(0, (img.width - len(payload) * cell) // 2)  # HRI text below, as GS H 2
    for ch in payload:
        draw.text((x, BAR_HEIGHT), ch, font=_font(LINE_DOTS * 11 // 12), fill=0)
        x += cell
    return img


def _text_image(el: _Text, profile: PrinterProfile, kanji: bool) -> Image.Image:
    from PIL import Image as PILImage
    from PIL import ImageDraw

    cell = profile.cell_dots * el.width
    height = LINE_DOTS * el.height
    img = PILImage.new("L", (profile.dots_per_line, height), 255)
    draw = ImageDraw.Draw(img)
    font = _font(height * 11 // 12)
    cells = text_width(el.text, kanji)
    room = profile.chars_per_line // max(el.width, 1)
    x = 0
    if el.align == "center":
        x = max(0, (room - cells) // 2) * cell
    elif el.align == "right":
        x = max(0, room - cells) * cell
    for ch in el.text:
        w = char_width(ch, kanji)
        if w and ch != " ":
            glyph_w = w * cell
            if el.width != el.height:  # double width only: a squeezed glyph would mislead
                glyph = PILImage.new("L", (glyph_w, height), 255)
                ImageDraw.Draw(glyph).text((0, -(height // 12)), ch, font=font, fill=0)
                img.paste(glyph, (x, 0), None)
            else:
                draw.text((x, -(height // 12)), ch, font=font, fill=0)
                if el.bold:
                    draw.text((x + 1, -(height // 12)), ch, font=font, fill=0)
        x += w * cell
    return img


def render_preview(
    receipt: Receipt, profile: PrinterProfile, stored_logo: bytes | None = None
) -> Preview:
    """Validate ``receipt`` for ``profile`` (ReceiptInvalid as for printing) and draw it."""
    from PIL import Image as PILImage

    recorder = _Recorder(profile, stored_logo)
    recorder.encode(receipt)
    kanji = profile.chinese != "none"
    parts: list[tuple[Image.Image, str]] = []
    for el in recorder.elements:
        if isinstance(el, _Text):
            parts.append((_text_image(el, profile, kanji), "left"))
        elif isinstance(el, _Qr):
            parts.append((_qr_image(el.payload), "center"))
        elif isinstance(el, _Bars):
            parts.append((_bar_image(el.payload, profile.cell_dots), "center"))
        elif isinstance(el, _Logo):
            with PILImage.open(io.BytesIO(el.png)) as logo:
                flat = PILImage.new("RGBA", logo.size, (255, 255, 255, 255))
                flat.alpha_composite(logo.convert("RGBA"))
                parts.append((flat.convert("L"), "center"))
        else:
            parts.append((PILImage.new("L", (1, el.lines * (LINE_DOTS + LINE_GAP)), 255), "left"))
    width = profile.dots_per_line
    height = MARGIN * 2 + sum(img.height + LINE_GAP for img, _ in parts)
    page = PILImage.new("L", (width, height), 255)
    y = MARGIN
    for img, align in parts:
        x = max(0, (width - img.width) // 2) if align == "center" else 0
        page.paste(img, (x, y))
        y += img.height + LINE_GAP
    out = io.BytesIO()
    page.convert("1").save(out, format="PNG", optimize=True)
    return Preview(out.getvalue(), width, height)

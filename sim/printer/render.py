"""Previews of what the simulated printer put on paper: plain text and PNG.

The PNG uses Font A geometry (12 x 24 dots per cell, a Kanji cell pair 24 x 24) with the
monospace face of Debian's fonts-wqy-zenhei, so alignment problems show up as they would on
paper. QR codes and CODE128 bars are drawn from their payloads.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sim.printer.model import (
    Barcode,
    Cut,
    DrawerKick,
    Element,
    Feed,
    PrintedReceipt,
    QrCode,
    RasterImage,
    TextLine,
)

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

__all__ = ["FONT_CANDIDATES", "render_png", "render_text"]

logger = logging.getLogger(__name__)

FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 1),  # WenQuanYi Zen Hei Mono
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
)
CELL_W, CELL_H, LINE_GAP, MARGIN = 12, 24, 6, 16
GLYPH_PX = 22


def _aligned(line_text: str, cells: int, align: str, width: int) -> str:
    pad = max(0, width - cells)
    if align == "center":
        return " " * (pad // 2) + line_text
    if align == "right":
        return " " * pad + line_text
    return line_text


def render_text(receipt: PrintedReceipt, chars_per_line: int = 48) -> str:
    """One string per receipt: text lines aligned in cells, markers for everything else."""
    out: list[str] = []
    for el in receipt.elements:
        if isinstance(el, TextLine):
            out.append(_aligned(el.text, el.cells, el.align, chars_per_line).rstrip())
        elif isinstance(el, Feed):
            out.extend([""] * el.lines)
        elif isinstance(el, QrCode):
            out.append(f"[QR {el.ec} x{el.module_size}: {el.data.decode('utf-8', 'replace')}]")
        elif isinstance(el, Barcode):
            out.append(f"[{el.symbology}: {el.data.decode('ascii', 'replace')}]")
        elif isinstance(el, RasterImage):
            out.append(f"[image {el.width}x{el.height}]")
        elif isinstance(el, Cut):
            out.append("-- partial cut --" if el.partial else "-- full cut --")
        elif isinstance(el, DrawerKick):
            out.append(f"[drawer kick pin {el.pin} {el.on_ms} ms]")
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=4)
def _font(px: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    for path, index in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, px, index=index)
    raise FileNotFoundError("no CJK font: install Debian package fonts-wqy-zenhei")


def _raster(el: RasterImage) -> Image.Image:
    from PIL import Image, ImageOps

    img = Image.frombytes("1", (el.width, el.height), el.bits).convert("L")
    return ImageOps.invert(img)  # ESC/POS 1 = black, PIL "1" 1 = white


def _qr(el: QrCode) -> Image.Image:
    import qrcode  # type: ignore[import-untyped]
    from qrcode.constants import (  # type: ignore[import-untyped]
        ERROR_CORRECT_H,
        ERROR_CORRECT_L,
        ERROR_CORRECT_M,
        ERROR_CORRECT_Q,
    )

    ec = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}
    code = qrcode.QRCode(error_correction=ec.get(el.ec, ERROR_CORRECT_M), box_size=1, border=0)
    code.add_data(el.data)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix) * el.module_size
    from PIL import Image

    img = Image.new("L", (size, size), 255)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                s = el.module_size
                img.paste(0, (x * s, y * s, x * s + s, y * s + s))
    return img


def _barcode(el: Barcode) -> Image.Image:
    from barcode.codex import Code128  # type: ignore[import-untyped]
    from PIL import Image, ImageDraw

    text = el.data.decode("ascii", "replace")
    modules = Code128(text).build()[0]
    w = el.module_width
    hri = CELL_H + 4 if el.hri else 0
    img = Image.new("L", (len(modules) * w + 2 * 10 * w, el.height + hri), 255)
    draw = ImageDraw.Draw(img)
    for i, bit in enumerate(modules):
        if bit == "1":
            draw.rectangle((10 * w + i * w, 0, 10 * w + i * w + w - 1, el.height - 1), fill=0)
    if el.hri:
        x = (img.width - len(text) * CELL_W) // 2
        draw.text((x, el.height + 2), text, font=_font(GLYPH_PX), fill=0)
    return img


def _draw_line(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, el: TextLine, y: int, width: int
) -> int:
    from PIL import Image, ImageDraw

    pad = max(0, width - el.cells)
    x = MARGIN + CELL_W * (pad // 2 if el.align == "center" else pad if el.align == "right" else 0)
    for run in el.runs:
        cell = (2 if run.kanji else 1) * CELL_W
        for ch in run.text:
            glyph = Image.new("L", (cell, CELL_H), 255)
            gd = ImageDraw.Draw(glyph)
            # 22 px glyphs lifted 2 px fit a 24-dot cell with descenders (g, y) and Hanzi
            gd.text((0, -2), ch, font=_font(GLYPH_PX), fill=0)
            if run.bold:
                gd.text((1, -2), ch, font=_font(GLYPH_PX), fill=0)
            glyph = glyph.resize((cell * run.width, CELL_H * run.height))
            canvas.paste(glyph, (x, y + CELL_H * (el.height - run.height)))
            if run.underline:
                draw.line(
                    (
                        x,
                        y + CELL_H * el.height - 1,
                        x + cell * run.width,
                        y + CELL_H * el.height - 1,
                    )
                )
            x += cell * run.width
    return CELL_H * el.height + LINE_GAP


def render_png(receipt: PrintedReceipt, path: Path, chars_per_line: int = 48) -> Path:
    """Draw ``receipt`` like thermal paper and save it as PNG."""
    from PIL import Image, ImageDraw

    paper = chars_per_line * CELL_W + 2 * MARGIN
    blocks: list[tuple[Element, Image.Image | None]] = []
    height = MARGIN
    for el in receipt.elements:
        img = None
        if isinstance(el, RasterImage):
            img = _raster(el)
        elif isinstance(el, QrCode):
            img = _qr(el)
        elif isinstance(el, Barcode):
            img = _barcode(el)
        blocks.append((el, img))
        if img is not None:
            height += img.height + LINE_GAP
        elif isinstance(el, TextLine):
            height += CELL_H * el.height + LINE_GAP
        elif isinstance(el, Feed):
            height += (CELL_H + LINE_GAP) * el.lines
        elif isinstance(el, Cut):
            height += CELL_H
    canvas = Image.new("L", (paper, height + MARGIN), 255)
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    for el, img in blocks:
        if img is not None:
            align = getattr(el, "align", "left")
            free = paper - 2 * MARGIN - img.width
            x = MARGIN + (free // 2 if align == "center" else free if align == "right" else 0)
            canvas.paste(img, (max(MARGIN, x), y))
            y += img.height + LINE_GAP
        elif isinstance(el, TextLine):
            y += _draw_line(canvas, draw, el, y, chars_per_line)
        elif isinstance(el, Feed):
            y += (CELL_H + LINE_GAP) * el.lines
        elif isinstance(el, Cut):
            for x in range(0, paper, 12):
                draw.line((x, y + CELL_H // 2, x + 6, y + CELL_H // 2), fill=128)
            y += CELL_H
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path

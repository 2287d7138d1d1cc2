"""Raster fallback: text and logos as ``GS v 0`` bit images.

Used for printers without a Chinese font: the line is drawn cell by cell in a monospace CJK font
(a wide character gets two cells), so columns still line up with the text lines around it.
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.errors import ConfigError
from daemon.printers import commands
from daemon.printers.textwidth import char_width

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = ["CJK_FONT_PATHS", "image_to_raster", "logo_to_raster", "text_to_raster"]

logger = logging.getLogger(__name__)

#: Debian's fonts-wqy-zenhei; face index 1 is "WenQuanYi Zen Hei Mono" (12/24 dot advance).
CJK_FONT_PATHS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 1),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
)


@functools.lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont  # Pillow is loaded only when rasterising

    for path, index in CJK_FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, px, index=index)
    raise ConfigError("fonts", "no CJK font found (install Debian package fonts-wqy-zenhei)")


def image_to_raster(img: Image.Image) -> bytes:
    """Threshold ``img`` to 1 bit and wrap it in ``GS v 0`` (width padded to 8 dots)."""
    from PIL import Image as PILImage

    grey = img.convert("L")
    width_bytes = (grey.width + 7) // 8
    canvas = PILImage.new("L", (width_bytes * 8, grey.height), 255)
    canvas.paste(grey, (0, 0))
    bits = canvas.point(lambda v: 255 if v < 128 else 0).convert("1").tobytes()
    return commands.raster_image(width_bytes, grey.height, bits)


def text_to_raster(
    text: str, dots_per_line: int, cell_dots: int, scale: int = 1, bold: bool = False
) -> bytes:
    """Draw one line of text in printer cells and return its ``GS v 0`` command."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    cell = cell_dots * scale
    height = 2 * cell_dots * scale
    font = _font(height * 11 // 12)  # a little smaller and lifted: descenders stay inside
    lift = -(height // 12)
    img = PILImage.new("L", (dots_per_line, height), 255)
    draw = ImageDraw.Draw(img)
    x = 0
    for ch in text:
        w = char_width(ch, kanji_mode=False)
        if w and ch != " ":
            draw.text((x, lift), ch, font=font, fill=0)
            if bold:  # emphasised: the glyph struck twice, one dot apart (as ESC E does)
                draw.text((x + 1, lift), ch, font=font, fill=0)
        x += w * cell
    return image_to_raster(img)


def logo_to_raster(png: bytes, dots_per_line: int) -> bytes:
    """Decode a PNG logo (already size-checked) and return its ``GS v 0`` command."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as img:
        img.load()
        if img.width > dots_per_line:
            raise ConfigError("logo", f"{img.width} dots wide, printer has {dots_per_line}")
        flat = PILImage.new("RGBA", img.size, (255, 255, 255, 255))
        flat.alpha_composite(img.convert("RGBA"))
        return image_to_raster(flat)

"""Display width of receipt text: columns are counted in printer cells, not characters.

In Chinese mode a printer prints every multi-byte (GB18030) character with its Kanji font, which
is two cells wide; ASCII is one cell. Without a Chinese font, non-ASCII text is rasterised in a
monospace CJK font whose wide glyphs (East Asian Wide/Fullwidth) also take two cells.
"""

from __future__ import annotations

import unicodedata

__all__ = ["char_width", "fit", "pad_left", "pad_right", "text_width", "wrap"]


def char_width(ch: str, kanji_mode: bool = True) -> int:
    """Cells taken by one character on the printer (0 for combining marks)."""
    if ord(ch) < 0x80:
        return 1
    if unicodedata.combining(ch):
        return 0
    if kanji_mode:
        return 2
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str, kanji_mode: bool = True) -> int:
    """Sum of :func:`char_width` over ``text``."""
    return sum(char_width(ch, kanji_mode) for ch in text)


def pad_right(text: str, width: int, kanji_mode: bool = True) -> str:
    """Left-align ``text`` in ``width`` cells."""
    return text + " " * max(0, width - text_width(text, kanji_mode))


def pad_left(text: str, width: int, kanji_mode: bool = True) -> str:
    """Right-align ``text`` in ``width`` cells."""
    return " " * max(0, width - text_width(text, kanji_mode)) + text


def fit(left: str, right: str, width: int, kanji_mode: bool = True) -> str:
    """``left`` and ``right`` on one line of ``width`` cells, right part flush right."""
    gap = width - text_width(left, kanji_mode) - text_width(right, kanji_mode)
    return left + " " * max(1, gap) + right


def wrap(text: str, width: int, kanji_mode: bool = True) -> list[str]:
    """Break ``text`` into lines of at most ``width`` cells, never splitting a wide character
    and, where a space allows it, not splitting a Latin word or number ("750g" stays whole) -
    unless keeping words whole would take more lines than breaking anywhere: names are limited
    to two lines, and "000 000¥¥¥¥¥¥¥¥00¥¥" (29 cells) must not be refused as three."""
    by_words = _wrap(text, width, kanji_mode, keep_words=True)
    if len(by_words) == 1:
        return by_words
    anywhere = _wrap(text, width, kanji_mode, keep_words=False)
    return by_words if len(by_words) <= len(anywhere) else anywhere


def _wrap(text: str, width: int, kanji_mode: bool, keep_words: bool) -> list[str]:
    lines: list[str] = []
    current = ""
    used = 0
    for ch in text:
        w = char_width(ch, kanji_mode)
        if used + w > width:
            if ch == " ":  # the break falls on a space: it disappears into the line end
                lines.append(current)
                current, used = "", 0
                continue
            cut = current.rfind(" ") if keep_words else -1
            if ch.isascii() and ch.isalnum() and current[-1:].isascii() and cut > 0:
                lines.append(current[:cut])
                current = current[cut + 1 :]
            else:
                lines.append(current)
                current = ""
            used = text_width(current, kanji_mode)
        current += ch
        used += w
    if current or not lines:
        lines.append(current)
    return lines

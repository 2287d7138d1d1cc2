"""Printer capability profiles: what a model can do, so the encoder never guesses.

python-escpos' profile database has no notion of a Chinese (Kanji) mode, so we keep our own small
table: paper width, characters per line, the single-byte code page, whether the printer has a
Chinese font (and so takes GB18030 text between ``FS &`` and ``FS .``), cutter and drawer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

from daemon.errors import ConfigError

__all__ = ["CODE_PAGES", "PROFILES", "PrinterProfile", "get_profile"]

logger = logging.getLogger(__name__)

#: ``ESC t n`` slot → Python codec, for the single-byte tables we support (Epson numbering).
CODE_PAGES: dict[int, str] = {0: "cp437", 2: "cp850", 16: "cp1252", 17: "cp866", 19: "cp858"}

ChineseMode = Literal["gb18030", "none"]


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """Capabilities of one printer model."""

    name: str
    paper_mm: int
    dots_per_line: int
    chars_per_line: int
    code_page: int = 0
    chinese: ChineseMode = "gb18030"
    cutter: bool = True
    partial_cut: bool = True
    drawer: bool = True
    drawer_sensor: bool = True
    print_confirm: bool = True
    qr_native: bool = True

    @property
    def codec(self) -> str:
        """Python codec of the single-byte code page."""
        return CODE_PAGES[self.code_page]

    @property
    def cell_dots(self) -> int:
        """Width of one text column in dots (Font A is 12 dots on both common widths)."""
        return self.dots_per_line // self.chars_per_line

    def validate(self, key: str = "profile") -> PrinterProfile:
        """Reject an inconsistent profile (a config typo must not print garbage)."""
        if self.paper_mm not in (58, 80):
            raise ConfigError(f"{key}.paper_mm", f"must be 58 or 80, got {self.paper_mm}")
        if not 16 <= self.chars_per_line <= 64:
            raise ConfigError(f"{key}.chars_per_line", f"out of range: {self.chars_per_line}")
        if self.dots_per_line % 8 or not 8 * self.chars_per_line <= self.dots_per_line <= 832:
            raise ConfigError(f"{key}.dots_per_line", f"invalid: {self.dots_per_line}")
        if self.code_page not in CODE_PAGES:
            raise ConfigError(f"{key}.code_page", f"unsupported ESC t table {self.code_page}")
        if self.chinese not in ("gb18030", "none"):
            raise ConfigError(f"{key}.chinese", f"must be 'gb18030' or 'none': {self.chinese!r}")
        return self


PROFILES: dict[str, PrinterProfile] = {
    # Typical Chinese-market 80 mm printer (Xprinter/Gprinter/Rongta class): GB18030 font.
    "zh-80": PrinterProfile("zh-80", 80, 576, 48),
    # 58 mm Chinese printer (POS-58 class): 32 columns, often no cutter, drawer port present.
    "zh-58": PrinterProfile("zh-58", 58, 384, 32, cutter=False, partial_cut=False),
    # Western 80 mm printer without a Chinese font: CJK text is rasterised.
    "western-80": PrinterProfile("western-80", 80, 576, 48, code_page=19, chinese="none"),
    "western-58": PrinterProfile("western-58", 58, 384, 32, code_page=19, chinese="none"),
}


def get_profile(name: str, **overrides: object) -> PrinterProfile:
    """Look up a built-in profile by name, optionally overriding fields from config."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ConfigError("profile", f"unknown printer profile {name!r}") from None
    for field in overrides:
        if field not in PrinterProfile.__dataclass_fields__ or field == "name":
            raise ConfigError(f"profile.{field}", "unknown profile field")
    return replace(base, **overrides).validate()  # type: ignore[arg-type]

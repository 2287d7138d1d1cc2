"""What came out of the simulated printer: receipts as elements, for assertions and previews."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "Barcode",
    "Cut",
    "DrawerKick",
    "Element",
    "Feed",
    "PrintedReceipt",
    "QrCode",
    "RasterImage",
    "Run",
    "TextLine",
]


@dataclass(frozen=True, slots=True)
class Run:
    """Characters printed with one style and one font: double-byte (Kanji font, two cells
    each) or single-byte (one cell each). ``cells`` is the width before size multipliers."""

    text: str
    cells: int
    bold: bool = False
    underline: bool = False
    width: int = 1
    height: int = 1
    kanji: bool = False


@dataclass(frozen=True, slots=True)
class TextLine:
    runs: tuple[Run, ...]
    align: str = "left"

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)

    @property
    def cells(self) -> int:
        """Width in Font A cells (a double-width run counts twice)."""
        return sum(r.cells * r.width for r in self.runs)

    @property
    def height(self) -> int:
        return max((r.height for r in self.runs), default=1)

    def cell_of(self, sub: str, last: bool = False) -> int:
        """Cell column where (the first or ``last``) ``sub`` starts, for column checks."""
        idx = self.text.rindex(sub) if last else self.text.index(sub)
        col = consumed = 0
        for run in self.runs:
            per_char = (2 if run.kanji else 1) * run.width
            take = min(len(run.text), idx - consumed)
            col += take * per_char
            consumed += take
            if consumed == idx:
                break
        return col


@dataclass(frozen=True, slots=True)
class QrCode:
    data: bytes
    module_size: int
    ec: str
    align: str = "left"


@dataclass(frozen=True, slots=True)
class Barcode:
    symbology: str
    data: bytes
    height: int
    module_width: int
    hri: int
    align: str = "left"


@dataclass(frozen=True, slots=True)
class RasterImage:
    width: int
    height: int
    bits: bytes
    align: str = "left"

    def black_dots(self) -> int:
        return sum(bin(b).count("1") for b in self.bits)


@dataclass(frozen=True, slots=True)
class Feed:
    lines: int


@dataclass(frozen=True, slots=True)
class Cut:
    partial: bool


@dataclass(frozen=True, slots=True)
class DrawerKick:
    pin: int
    on_ms: int
    off_ms: int


E = TypeVar("E")

Element = TextLine | QrCode | Barcode | RasterImage | Feed | Cut | DrawerKick


@dataclass(slots=True)
class PrintedReceipt:
    """Everything printed between two cuts (the last one may still be open)."""

    elements: list[Element] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def cut(self) -> Cut | None:
        last = next((e for e in reversed(self.elements) if not isinstance(e, DrawerKick)), None)
        return last if isinstance(last, Cut) else None

    def lines(self) -> list[TextLine]:
        return [e for e in self.elements if isinstance(e, TextLine)]

    def texts(self) -> list[str]:
        return [line.text for line in self.lines()]

    def line_with(self, sub: str) -> TextLine:
        for line in self.lines():
            if sub in line.text:
                return line
        raise KeyError(sub)

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.elements if isinstance(e, kind)]

"""AIM symbology identifiers (ISO/IEC 15424 ``]cm``) and their UnifiedPOS ScanDataType codes.

Scanners configured to send a code identifier prefix every scan with ``]`` + code character +
modifier. The identifier is the only trustworthy statement of *what* was scanned: "123456789012"
could be a UPC-A or the content of a QR code. We strip it from the data and keep it as metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GS1_AIM_IDS", "Symbology", "split_aim", "symbology_for"]

_AIM_RE = re.compile(rb"\][A-Za-z][0-9A-Za-z]")


@dataclass(frozen=True, slots=True)
class Symbology:
    """What kind of barcode a scan came from: a short name and the UPOS ScanDataType code."""

    name: str
    upos_type: int


UNKNOWN = Symbology("UNKNOWN", 0)

# Exact identifiers first (code + modifier), then by code character alone.
_BY_ID: dict[str, Symbology] = {
    "]E0": Symbology("EAN13", 104),  # EAN-13, UPC-A (as 13 digits) or UPC-E
    "]E4": Symbology("EAN8", 103),
    "]E3": Symbology("EAN13_S", 119),  # EAN/UPC with add-on
    "]C1": Symbology("GS1_128", 120),
    "]Q0": Symbology("QR", 204),  # model 1
    "]Q1": Symbology("QR", 204),
    "]Q2": Symbology("QR", 204),  # ECI
    "]Q3": Symbology("GS1_QR", 209),
    "]Q4": Symbology("GS1_QR", 209),
    "]Q5": Symbology("QR", 204),
    "]Q6": Symbology("QR", 204),
    "]d1": Symbology("DATAMATRIX", 203),
    "]d2": Symbology("GS1_DATAMATRIX", 208),
    "]e0": Symbology("GS1_DATABAR", 131),
}
_BY_CODE: dict[str, Symbology] = {
    "A": Symbology("CODE39", 108),
    "C": Symbology("CODE128", 110),
    "E": Symbology("EAN13", 104),
    "F": Symbology("CODABAR", 107),
    "G": Symbology("CODE93", 109),
    "I": Symbology("ITF", 106),
    "L": Symbology("PDF417", 201),
    "Q": Symbology("QR", 204),
    "d": Symbology("DATAMATRIX", 203),
    "e": Symbology("GS1_DATABAR", 131),
    "z": Symbology("AZTEC", 206),
    "h": Symbology("HANXIN", 215),
    "X": Symbology("OTHER", 501),
}

#: Identifiers whose data is a GS1 element string (FNC1 in first position).
GS1_AIM_IDS = frozenset({"]C1", "]Q3", "]Q4", "]d2", "]e0"})


def split_aim(data: bytes) -> tuple[str | None, bytes]:
    """Split a leading ``]cm`` identifier off ``data``; ``(None, data)`` when there is none."""
    if len(data) >= 3 and _AIM_RE.match(data):
        return data[:3].decode("ascii"), data[3:]
    return None, data


def symbology_for(aim: str | None) -> Symbology:
    """The symbology an AIM identifier names; ``UNKNOWN`` for none or an unknown code."""
    if aim is None:
        return UNKNOWN
    found = _BY_ID.get(aim)
    if found is not None:
        return found
    return _BY_CODE.get(aim[1:2], UNKNOWN)

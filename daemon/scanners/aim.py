"""AIM symbology identifiers (ISO/IEC 15424 ``]cm``) and their UnifiedPOS ScanDataType codes.

Scanners configured to send a code identifier prefix every scan with ``]`` + code character +
modifier. The identifier is the only trustworthy statement of *what* was scanned: "123456789012"
could be a UPC-A or the content of a QR code. We strip it from the data and keep it as metadata.

Which symbology an identifier names (and whether its data is a GS1 element string) is biip's
``biip.symbology.SymbologyIdentifier``; what stays here is ours: the UnifiedPOS ScanDataType
codes, and what biip lacks: Han Xin (``]h``, a Chinese 2D code biip does not know) and the QR
modifiers other than ``]Q3`` (``]Q4``: GS1 QR with ECI; ``]Q0``-``]Q2``, ``]Q5``, ``]Q6``:
plain QR), and ITF-14 (``]I1``) kept as ITF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from biip import ParseError
from biip.symbology import GS1Symbology, ISOSymbology, SymbologyIdentifier

__all__ = ["GS1_AIM_IDS", "Symbology", "split_aim", "symbology_for"]

_AIM_RE = re.compile(rb"\][A-Za-z][0-9A-Za-z]")


@dataclass(frozen=True, slots=True)
class Symbology:
    """What kind of barcode a scan came from: a short name and the UPOS ScanDataType code."""

    name: str
    upos_type: int


UNKNOWN = Symbology("UNKNOWN", 0)
_GS1_QR = Symbology("GS1_QR", 209)

# biip's GS1 identifiers (code + modifier) first, then its code characters alone.
_BY_GS1: dict[GS1Symbology, Symbology] = {
    GS1Symbology.EAN_13: Symbology("EAN13", 104),  # EAN-13, UPC-A (as 13 digits) or UPC-E
    GS1Symbology.EAN_8: Symbology("EAN8", 103),
    GS1Symbology.EAN_13_WITH_ADD_ON: Symbology("EAN13_S", 119),
    GS1Symbology.GS1_128: Symbology("GS1_128", 120),
    GS1Symbology.GS1_QR_CODE: _GS1_QR,
    GS1Symbology.GS1_DATAMATRIX: Symbology("GS1_DATAMATRIX", 208),
    GS1Symbology.GS1_DATABAR: Symbology("GS1_DATABAR", 131),
}
_BY_ISO: dict[ISOSymbology, Symbology] = {
    ISOSymbology.CODE_39: Symbology("CODE39", 108),
    ISOSymbology.CODE_128: Symbology("CODE128", 110),
    ISOSymbology.EAN_UPC: Symbology("EAN13", 104),
    ISOSymbology.CODABAR: Symbology("CODABAR", 107),
    ISOSymbology.CODE_93: Symbology("CODE93", 109),
    ISOSymbology.ITF: Symbology("ITF", 106),
    ISOSymbology.PDF417: Symbology("PDF417", 201),
    ISOSymbology.QR_CODE: Symbology("QR", 204),
    ISOSymbology.DATA_MATRIX: Symbology("DATAMATRIX", 203),
    ISOSymbology.RSS_EAN_UCC_COMPOSITE: Symbology("GS1_DATABAR", 131),
    ISOSymbology.AZTEC_CODE: Symbology("AZTEC", 206),
    ISOSymbology.OTHER_BARCODE: Symbology("OTHER", 501),
}
#: ours, where biip has nothing (it raises on ``]h``) or says less (``]Q4``, ``]I1``)
_OURS: dict[str, Symbology] = {
    "]Q4": _GS1_QR,  # QR, ECI and FNC1 in first position: GS1 data too
    "]I1": _BY_ISO[ISOSymbology.ITF],  # ITF-14, a UPOS ITF
}
_HANXIN = Symbology("HANXIN", 215)

#: Identifiers whose data is a GS1 element string (FNC1 in first position): biip's GS1
#: symbologies with GS1 messages that we read, and ``]Q4``.
GS1_AIM_IDS = frozenset(
    {f"]{s.value}" for s in GS1Symbology.with_gs1_messages() if s in _BY_GS1} | {"]Q4"}
)


def split_aim(data: bytes) -> tuple[str | None, bytes]:
    """Split a leading ``]cm`` identifier off ``data``; ``(None, data)`` when there is none."""
    if len(data) >= 3 and _AIM_RE.match(data):
        return data[:3].decode("ascii"), data[3:]
    return None, data


def symbology_for(aim: str | None) -> Symbology:
    """The symbology an AIM identifier names; ``UNKNOWN`` for none or an unknown code."""
    if aim is None:
        return UNKNOWN
    ours = _OURS.get(aim)
    if ours is not None:
        return ours
    if aim[1:2] == "h":
        return _HANXIN
    try:
        found = SymbologyIdentifier.extract(aim)
    except (ParseError, ValueError, IndexError):
        return UNKNOWN
    if found.gs1_symbology is not None and found.gs1_symbology in _BY_GS1:
        return _BY_GS1[found.gs1_symbology]
    return _BY_ISO.get(found.iso_symbology, UNKNOWN)

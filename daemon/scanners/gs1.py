"""GS1 element strings, parsed by the ``biip`` library: only the daemon's shape is ours.

What a GS1-128, GS1 DataMatrix, GS1 QR or DataBar carries: ``01`` GTIN, ``17`` expiry, ``10``
batch, ``3103`` net weight... The application identifier table (every AI of the GS1 General
Specifications, their fixed or variable lengths, character sets, dates that must exist and the
check digits of GTIN, SSCC and GLN fields) is biip's, not a hand-written copy: ours missed valid
AIs (8200, 7240, 4300) and accepted impossible dates such as (17) 261399. Here: the leading
FNC1/GS a scanner may send is tolerated, the bracketed human-readable form ``(01)...(10)...`` is
accepted, a check digit biip reports as wrong is an error, and every failure is one
:class:`Gs1Error` whose message names the AI where biip does.
"""

from __future__ import annotations

from dataclasses import dataclass

from biip import ParseError
from biip.gs1_messages import GS1Message

__all__ = ["GS", "Gs1Element", "Gs1Error", "parse_gs1"]

GS = "\x1d"


class Gs1Error(ValueError):
    """The string is not a valid GS1 element string; the message says why."""


@dataclass(frozen=True, slots=True)
class Gs1Element:
    ai: str
    title: str  # biip's data title, e.g. "GTIN", "USE BY or EXPIRY", "BATCH/LOT"
    value: str


def parse_gs1(text: str) -> list[Gs1Element]:
    """Split a GS1 element string into elements; raise :class:`Gs1Error` naming the problem.

    ``text`` is the scan data without its AIM identifier; a leading FNC1/GS is tolerated.
    """
    s = text.strip(GS)
    if not s:
        raise Gs1Error("empty element string")
    try:
        message = GS1Message.parse_hri(s) if s.startswith("(") else GS1Message.parse(s)
    except ParseError as exc:
        raise Gs1Error(str(exc)) from None
    out: list[Gs1Element] = []
    for element in message.element_strings:
        wrong = element.gtin_error or element.sscc_error or element.gln_error
        if wrong:  # biip parses the field and says its check digit is wrong
            raise Gs1Error(f"AI ({element.ai.ai}) check digit is wrong: {wrong}")
        out.append(Gs1Element(element.ai.ai, element.ai.data_title, element.value))
    return out

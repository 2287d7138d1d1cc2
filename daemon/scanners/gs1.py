"""GS1 element strings: Application Identifiers with fixed or variable length data.

What a GS1-128, GS1 DataMatrix, GS1 QR or DataBar carries: ``01`` GTIN, ``17`` expiry, ``10`` batch,
``3103`` net weight... A variable-length field ends with FNC1, which scanners transmit as GS
(0x1D); a fixed-length field needs no separator. Only the AIs a store meets are in the table; an
unknown AI is an error (guessing its length would misread every following field). The bracketed
human-readable form ``(01)...(10)...`` is accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.scanners.gtin import gs1_check_digit

__all__ = ["GS", "Gs1Element", "Gs1Error", "parse_gs1"]

GS = "\x1d"


class Gs1Error(ValueError):
    """The string is not a valid GS1 element string; the message names the AI and position."""


@dataclass(frozen=True, slots=True)
class _Ai:
    title: str
    fixed: int | None  # data length when fixed
    max_len: int  # data length limit when variable (== fixed when fixed)
    numeric: bool = True
    check_digit: bool = False


@dataclass(frozen=True, slots=True)
class Gs1Element:
    ai: str
    title: str
    value: str


def _fixed(title: str, n: int, *, numeric: bool = True, check: bool = False) -> _Ai:
    return _Ai(title, n, n, numeric, check)


def _var(title: str, n: int, *, numeric: bool = False) -> _Ai:
    return _Ai(title, None, n, numeric)


_TWO: dict[str, _Ai] = {
    "00": _fixed("SSCC", 18, check=True),
    "01": _fixed("GTIN", 14, check=True),
    "02": _fixed("CONTENT", 14, check=True),
    "10": _var("BATCH/LOT", 20),
    "11": _fixed("PROD DATE", 6),
    "12": _fixed("DUE DATE", 6),
    "13": _fixed("PACK DATE", 6),
    "15": _fixed("BEST BEFORE", 6),
    "16": _fixed("SELL BY", 6),
    "17": _fixed("USE BY", 6),
    "20": _fixed("VARIANT", 2),
    "21": _var("SERIAL", 20),
    "22": _var("CPV", 20),
    "30": _var("VAR. COUNT", 8, numeric=True),
    "37": _var("COUNT", 8, numeric=True),
    "90": _var("INTERNAL", 30),
}
_TWO.update({str(n): _var("INTERNAL", 90) for n in range(91, 100)})
_THREE: dict[str, _Ai] = {
    "240": _var("ADDITIONAL ID", 30),
    "241": _var("CUST. PART No.", 30),
    "250": _var("SECONDARY SERIAL", 30),
    "251": _var("REF. TO SOURCE", 30),
    "253": _var("GDTI", 30),
    "254": _var("GLN EXTENSION", 20),
    "400": _var("ORDER NUMBER", 30),
    "401": _var("GINC", 30),
    "402": _fixed("GSIN", 17, check=True),
    "403": _var("ROUTE", 30),
    **{f"41{n}": _fixed("GLN", 13, check=True) for n in range(8)},
    "420": _var("SHIP TO POST", 20),
    "422": _fixed("ORIGIN", 3),
}
# Four-digit AIs whose fourth digit is the decimal point position: measures and amounts.
_FOUR_MEASURE = re.compile(r"3[1-6]\d\d")
_FOUR: dict[str, _Ai] = {
    "7003": _fixed("EXPIRY TIME", 10),
    "8005": _fixed("PRICE PER UNIT", 6),
    "8008": _var("PROD TIME", 12, numeric=True),
    "8020": _var("REF No.", 25),
}
_AMOUNT = re.compile(r"39[0-3]\d")  # 390n/392n amount, 391n/393n ISO currency + amount


def _lookup(s: str, pos: int) -> tuple[str, _Ai]:
    two = s[pos : pos + 2]
    if two in _TWO:
        return two, _TWO[two]
    three = s[pos : pos + 3]
    if three in _THREE:
        return three, _THREE[three]
    four = s[pos : pos + 4]
    if len(four) == 4 and _FOUR_MEASURE.fullmatch(four) and four[3] in "0123456789":
        return four, _fixed("MEASURE", 6)
    if len(four) == 4 and _AMOUNT.fullmatch(four):
        limit = 18 if four[2] in "13" else 15
        return four, _var("AMOUNT", limit, numeric=True)
    if four in _FOUR:
        return four, _FOUR[four]
    raise Gs1Error(f"unknown application identifier at position {pos}: {four[:4]!r}")


def _check(ai: str, spec: _Ai, value: str, pos: int) -> None:
    if not value:
        raise Gs1Error(f"AI ({ai}) at position {pos} has no data")
    if spec.fixed is not None and len(value) != spec.fixed:
        raise Gs1Error(f"AI ({ai}) needs {spec.fixed} characters, got {len(value)}")
    if len(value) > spec.max_len:
        raise Gs1Error(f"AI ({ai}) allows at most {spec.max_len} characters, got {len(value)}")
    if spec.numeric and not (value.isascii() and value.isdecimal()):
        raise Gs1Error(f"AI ({ai}) must be numeric")
    if spec.check_digit and gs1_check_digit(value[:-1]) != int(value[-1]):
        raise Gs1Error(f"AI ({ai}) check digit is wrong")


def _parse_bracketed(s: str) -> list[Gs1Element]:
    parts = re.findall(r"\((\d{2,4})\)([^()]*)", s)
    if not parts or "".join(f"({a}){v}" for a, v in parts) != s:
        raise Gs1Error("bracketed element string is malformed")
    out = []
    for ai, value in parts:
        found, spec = _lookup(ai + value, 0)
        if found != ai:
            raise Gs1Error(f"unknown application identifier ({ai})")
        _check(ai, spec, value, 0)
        out.append(Gs1Element(ai, spec.title, value))
    return out


def parse_gs1(text: str) -> list[Gs1Element]:
    """Split a GS1 element string into elements; raise :class:`Gs1Error` naming the problem.

    ``text`` is the scan data without its AIM identifier; a leading FNC1/GS is tolerated.
    """
    s = text.strip(GS)
    if s.startswith("("):
        return _parse_bracketed(s)
    out: list[Gs1Element] = []
    pos = 0
    while pos < len(s):
        ai, spec = _lookup(s, pos)
        start = pos + len(ai)
        if spec.fixed is not None:
            end = start + spec.fixed
            if end > len(s):
                raise Gs1Error(f"AI ({ai}) at position {pos} is cut short")
            value = s[start:end]
            pos = end + 1 if s[end : end + 1] == GS else end  # a GS after fixed data is tolerated
        else:
            sep = s.find(GS, start)
            end = len(s) if sep < 0 else sep
            value = s[start:end]
            pos = end + 1
        if GS in value:
            raise Gs1Error(f"AI ({ai}) at position {pos} contains a separator")
        _check(ai, spec, value, start)
        out.append(Gs1Element(ai, spec.title, value))
    if not out:
        raise Gs1Error("empty element string")
    return out

"""What a scan is: product code, GS1 element string, member QR code, payment code, or text.

The POS routes a scan by what it is (item lookup, member login, payment), so the daemon says it,
with the check that matters for each kind: the check digit for product codes, the AI table for
GS1, the HMAC for member tokens, the issuer's shape for payment codes. The AIM identifier, when
the scanner sends one, decides between look-alikes (thirteen digits in a QR code are not an EAN).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from daemon.scanners.aim import GS1_AIM_IDS, Symbology, symbology_for
from daemon.scanners.gs1 import GS, Gs1Element, Gs1Error, parse_gs1
from daemon.scanners.gtin import ProductCode, parse_product
from daemon.scanners.member import MemberStatus, MemberTokenVerifier
from daemon.scanners.payment import PaymentProvider, detect_payment, mask_code

__all__ = ["Classification", "Classifier", "ScanKind", "decode_scan"]

_BRACKETED_GS1 = re.compile(r"\(\d{2,4}\)")
_LOG_MAX = 64


class ScanKind(enum.StrEnum):
    PRODUCT = "PRODUCT"
    GS1 = "GS1"
    MEMBER = "MEMBER"
    PAYMENT = "PAYMENT"
    TEXT = "TEXT"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one scan. ``valid`` False means: recognised, but failed its check."""

    kind: ScanKind
    symbology: Symbology
    valid: bool = True
    problem: str | None = None
    product: ProductCode | None = None
    gs1: tuple[Gs1Element, ...] = ()
    member_id: str | None = None
    member_status: MemberStatus | None = None
    member_expiry: int | None = None
    payment: PaymentProvider | None = None

    @property
    def sensitive(self) -> bool:
        """True when the raw text is a credential (payment code, member token)."""
        return self.kind in (ScanKind.PAYMENT, ScanKind.MEMBER)


def decode_scan(data: bytes) -> str:
    """Bytes → text: UTF-8, else GB18030 (Chinese scanners' default), else Latin-1 (never fails)."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


class Classifier:
    """Classifies scan text; holds the member token verifier (and so the member HMAC key)."""

    def __init__(self, member: MemberTokenVerifier | None = None) -> None:
        self.member = member

    def classify(self, text: str, aim: str | None) -> Classification:
        sym = symbology_for(aim)
        if self.member is not None and self.member.looks_like_token(text):
            check = self.member.check(text)
            ok = check.status is MemberStatus.VALID
            return Classification(
                ScanKind.MEMBER,
                sym,
                valid=ok,
                problem=None if ok else f"member token {check.status.value.lower()}",
                member_id=check.member_id,
                member_status=check.status,
                member_expiry=check.expiry,
            )
        if aim in GS1_AIM_IDS or GS in text or _BRACKETED_GS1.match(text):
            return self._gs1(text, sym, claimed=aim in GS1_AIM_IDS)
        ean_family = aim is not None and aim.startswith("]E")
        if not ean_family:
            provider = detect_payment(text)
            if provider is not None:
                return Classification(ScanKind.PAYMENT, sym, payment=provider)
        if aim is None or ean_family:
            product = parse_product(text, upce=aim == "]E0")
            if product is not None:
                ok = product.check_ok
                problem = (
                    None
                    if ok
                    else (
                        f"{product.kind.value} check digit {text[-1]} should be "
                        f"{product.expected_check}"
                    )
                )
                return Classification(
                    ScanKind.PRODUCT, sym, valid=ok, problem=problem, product=product
                )
            if ean_family:
                return Classification(
                    ScanKind.PRODUCT,
                    sym,
                    valid=False,
                    problem=f"EAN/UPC symbology with {len(text)} characters",
                )
        return Classification(ScanKind.TEXT, sym)

    def _gs1(self, text: str, sym: Symbology, *, claimed: bool) -> Classification:
        try:
            elements = tuple(parse_gs1(text))
        except Gs1Error as exc:
            if not claimed:  # a stray GS or "(12)" in free text is not a GS1 claim
                return Classification(ScanKind.TEXT, sym)
            return Classification(ScanKind.GS1, sym, valid=False, problem=str(exc))
        return Classification(ScanKind.GS1, sym, gs1=elements)

    def redact(self, text: str, verdict: Classification) -> str:
        """The text as it may appear in logs and in events for roles other than POS."""
        if verdict.kind is ScanKind.PAYMENT:
            return mask_code(text)
        if verdict.kind is ScanKind.MEMBER:
            assert self.member is not None
            return self.member.redact(text)
        if len(text) > _LOG_MAX:
            return text[:_LOG_MAX] + f"...({len(text)} chars)"
        return text

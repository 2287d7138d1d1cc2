"""Mobile payment codes ("付款码") shown by customers and read by the scanner gun, and masking.

A payment code is a bearer credential: whoever holds the digits can charge the customer until it
expires (about a minute) or is used. Only the POS, which sends it to the PSP as ``auth_code``,
may see it; logs and every other role see ``1012**********3456``.

Shapes (WeChat Pay QuickPay docs; Alipay open docs; UnionPay QR payment):
WeChat Pay 18 digits starting 10-15 (15 = Hong Kong wallets), Alipay 16-24 digits starting 25-30,
UnionPay 19 digits starting 62.
"""

from __future__ import annotations

import enum

__all__ = ["PaymentProvider", "detect_payment", "mask_code"]


class PaymentProvider(enum.StrEnum):
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"
    UNIONPAY = "UNIONPAY"


def detect_payment(text: str) -> PaymentProvider | None:
    """Which wallet issued ``text``, or None when it does not have a payment code's shape."""
    if not (text.isascii() and text.isdecimal()) or len(text) < 16:
        return None
    head = int(text[:2])
    n = len(text)
    if n == 18 and 10 <= head <= 15:
        return PaymentProvider.WECHAT_PAY
    if 16 <= n <= 24 and 25 <= head <= 30:
        return PaymentProvider.ALIPAY
    if n == 19 and head == 62:
        return PaymentProvider.UNIONPAY
    return None


def mask_code(text: str, *, keep: int = 4) -> str:
    """Keep ``keep`` characters at each end, star the rest (all stars when too short)."""
    if len(text) <= 2 * keep:
        return "*" * len(text)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]

"""Structured receipts: what the POS sends instead of raw bytes, and the checks it must pass.

Amounts are integer fen, never floats. Every string is checked before anything is spooled, so a
bad receipt fails at submission with :class:`~daemon.errors.ReceiptInvalid` naming the field
(``items[2].amount_fen``), not later as garbage on paper. Control characters are refused: a
product name must never smuggle an ESC/POS command (drawer kick, cut) onto the wire.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import CardDaemonError, ReceiptInvalid
from daemon.printers.profiles import PrinterProfile
from daemon.printers.textwidth import text_width, wrap

__all__ = [
    "MAX_AMOUNT_FEN",
    "MEMBER_KINDS",
    "Header",
    "Item",
    "MemberSection",
    "Payment",
    "Receipt",
    "Totals",
    "check_logo",
    "format_fen",
    "item_layout",
    "validate_receipt",
]

logger = logging.getLogger(__name__)

MAX_AMOUNT_FEN = 10**10  # 1 亿元: far above any sale, well inside 64-bit
MAX_ITEMS = 200
MAX_TEXT_LINES = 10
MAX_PAYMENTS = 8
MAX_QR_BYTES = 512
MAX_BARCODE_CHARS = 40
MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_HEIGHT = 512


@dataclass(frozen=True, slots=True)
class Header:
    """Store name (printed double size), address/phone lines and an optional logo."""

    store_name: str
    lines: tuple[str, ...] = ()
    use_stored_logo: bool = False
    logo_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One sale line: ``amount = quantity x unit price - discount``, every figure given so the
    daemon can check that the POS's line adds up (a line discount is printed, never hidden in
    a smaller amount)."""

    name: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    discount_fen: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    """``total = subtotal - discount`` and ``payments = total + change`` are enforced."""

    subtotal_fen: int
    total_fen: int
    discount_fen: int = 0
    change_fen: int = 0


#: what a member block is about: a sale (or top-up, points), a refund slip, a cancelled top-up
MEMBER_KINDS = ("sale", "refund", "cancel_topup")


@dataclass(frozen=True, slots=True)
class MemberSection:
    """What the member sees about their card after the sale. The ID must already be masked.

    A refund slip or cancellation receipt (``kind``) shows instead of the discount and points
    earned what went back: ``amount_fen`` (refunded to the card, or the top-up cash handed
    back), ``bonus_fen`` (the bonus taken back), ``points_taken_back`` and ``original_ref``, the
    request_id of the operation reversed, so a dispute finds the sale it undoes."""

    masked_member_id: str
    tier: str
    discount_fen: int
    balance_before_fen: int
    balance_after_fen: int
    points_earned: int
    points_balance: int
    kind: str = "sale"
    amount_fen: int = 0
    bonus_fen: int = 0
    points_taken_back: int = 0
    original_ref: str = ""


@dataclass(frozen=True, slots=True)
class Payment:
    method: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Receipt:
    header: Header
    items: tuple[Item, ...]
    totals: Totals
    payments: tuple[Payment, ...]
    receipt_no: str = ""
    timestamp: str = ""
    member: MemberSection | None = None
    qr: str | None = None
    barcode: str | None = None
    footer: tuple[str, ...] = ()
    cut: bool = True
    open_drawer: bool = False


def format_fen(fen: int) -> str:
    """``1234`` → ``"12.34"``, ``-500`` → ``"-5.00"``: integer arithmetic only."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def item_layout(profile: PrinterProfile) -> tuple[int, int, int, int]:
    """Column widths (name, quantity, unit price, amount) in cells; name 0 = name on own line."""
    cpl = profile.chars_per_line
    if cpl >= 40:
        return cpl - 24, 5, 9, 10
    return 0, 6, 12, cpl - 18


def _check_text(value: object, name: str, max_width: int | None, kanji: bool) -> str:
    if not isinstance(value, str):
        raise ReceiptInvalid(name, f"must be a string, got {type(value).__name__}")
    for pos, ch in enumerate(value):
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0:
            raise ReceiptInvalid(name, f"control character U+{code:04X} at position {pos}")
        if 0xD800 <= code <= 0xDFFF:
            raise ReceiptInvalid(name, f"lone surrogate U+{code:04X} at position {pos}")
        if code > 0xFFFF or 0xE000 <= code <= 0xF8FF:
            # GB18030 can encode it, but a printer's Chinese font (and the raster font) covers
            # the Basic Multilingual Plane only: an emoji would come out as blanks or garbage
            raise ReceiptInvalid(
                name,
                f"character {ch!r} (U+{code:04X}) at position {pos} cannot be printed: the "
                "printer's GB18030 font has no emoji, private-use or CJK extension B+ glyphs",
            )
    try:
        value.encode("gb18030")
    except UnicodeEncodeError as exc:
        raise ReceiptInvalid(name, f"character not in GB18030 at position {exc.start}") from None
    width = text_width(value, kanji)
    if max_width is not None and width > max_width:
        raise ReceiptInvalid(name, f"too long: {width} cells, at most {max_width} fit")
    return value


def _check_fen(value: object, name: str, allow_zero: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReceiptInvalid(name, f"must be an integer number of fen, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ReceiptInvalid(name, f"must be {'>=' if allow_zero else '>'} 0, got {value}")
    if value > MAX_AMOUNT_FEN:
        raise ReceiptInvalid(name, f"above the limit of {MAX_AMOUNT_FEN} fen")
    return value


def _check_count(values: object, name: str, low: int, high: int) -> tuple[object, ...]:
    if not isinstance(values, tuple | list):
        raise ReceiptInvalid(name, f"must be a sequence, got {type(values).__name__}")
    if not low <= len(values) <= high:
        raise ReceiptInvalid(name, f"has {len(values)} entries, allowed {low}..{high}")
    return tuple(values)


def check_logo(
    png: object,
    profile: PrinterProfile,
    name: str = "header.logo_png",
    error: Callable[[str, str], CardDaemonError] = ReceiptInvalid,
) -> None:
    """A logo must be a readable image that fits the paper: checked when a receipt brings one
    (``ReceiptInvalid``) and when the config names a stored one (``ConfigError``)."""
    if not isinstance(png, bytes):
        raise error(name, "must be PNG bytes")
    if len(png) > MAX_LOGO_BYTES:
        raise error(name, f"{len(png)} bytes, at most {MAX_LOGO_BYTES}")
    from PIL import Image, UnidentifiedImageError  # Pillow only when a logo is sent

    try:
        with Image.open(io.BytesIO(png)) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise error(name, "not a readable image") from exc
    if width > profile.dots_per_line or height > MAX_LOGO_HEIGHT:
        raise error(
            name,
            f"{width}x{height} dots exceeds {profile.dots_per_line}x{MAX_LOGO_HEIGHT}",
        )


def validate_receipt(receipt: Receipt, profile: PrinterProfile) -> None:
    """Raise :class:`ReceiptInvalid` naming the first bad field; otherwise return quietly."""
    cpl = profile.chars_per_line
    kanji = profile.chinese != "none"
    head = receipt.header
    _check_text(head.store_name, "header.store_name", cpl // 2, kanji)
    for i, line in enumerate(_check_count(head.lines, "header.lines", 0, MAX_TEXT_LINES)):
        _check_text(line, f"header.lines[{i}]", cpl, kanji)
    if head.logo_png is not None:
        check_logo(head.logo_png, profile)
    _check_text(receipt.receipt_no, "receipt_no", cpl - 6, kanji)
    _check_text(receipt.timestamp, "timestamp", cpl - 6, kanji)

    name_w = item_layout(profile)[0] or cpl
    items = _check_count(receipt.items, "items", 1, MAX_ITEMS)
    total_amount = 0
    for i, item in enumerate(items):
        if not isinstance(item, Item):
            raise ReceiptInvalid(f"items[{i}]", "must be an Item")
        _check_text(item.name, f"items[{i}].name", None, kanji)
        if not item.name.strip():
            raise ReceiptInvalid(f"items[{i}].name", "is empty")
        if len(wrap(item.name, name_w, kanji)) > 2:
            raise ReceiptInvalid(f"items[{i}].name", f"too long: more than 2 lines of {name_w}")
        qty: object = item.quantity
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= 9999:
            raise ReceiptInvalid(f"items[{i}].quantity", f"must be an integer 1..9999: {qty!r}")
        price = _check_fen(item.unit_price_fen, f"items[{i}].unit_price_fen")
        amount = _check_fen(item.amount_fen, f"items[{i}].amount_fen")
        cut = _check_fen(item.discount_fen, f"items[{i}].discount_fen")
        if cut > qty * price:
            raise ReceiptInvalid(
                f"items[{i}].discount_fen",
                f"{cut} is more than quantity {qty} x unit price {price} = {qty * price}",
            )
        if amount != qty * price - cut:
            less = f" - discount {cut}" if cut else ""
            raise ReceiptInvalid(
                f"items[{i}].amount_fen",
                f"{amount} != quantity {qty} x unit price {price}{less} = {qty * price - cut}",
            )
        total_amount += amount

    t = receipt.totals
    subtotal = _check_fen(t.subtotal_fen, "totals.subtotal_fen")
    discount = _check_fen(t.discount_fen, "totals.discount_fen")
    total = _check_fen(t.total_fen, "totals.total_fen")
    change = _check_fen(t.change_fen, "totals.change_fen")
    if subtotal != total_amount:
        raise ReceiptInvalid("totals.subtotal_fen", f"{subtotal} != sum of items {total_amount}")
    if total != subtotal - discount:
        raise ReceiptInvalid("totals.total_fen", f"{total} != subtotal - discount")

    paid = 0
    for i, pay in enumerate(_check_count(receipt.payments, "payments", 1, MAX_PAYMENTS)):
        if not isinstance(pay, Payment):
            raise ReceiptInvalid(f"payments[{i}]", "must be a Payment")
        _check_text(pay.method, f"payments[{i}].method", cpl - 14, kanji)
        paid += _check_fen(pay.amount_fen, f"payments[{i}].amount_fen")
    if paid != total + change:
        raise ReceiptInvalid("payments", f"sum {paid} != total {total} + change {change}")

    if receipt.member is not None:
        _validate_member(receipt.member, cpl, kanji)
        if receipt.member.discount_fen > discount:
            raise ReceiptInvalid(
                "member.discount_fen",
                f"{receipt.member.discount_fen} is more than the sale's discount {discount}",
            )
    if receipt.qr is not None:
        _check_text(receipt.qr, "qr", None, kanji)
        if not 1 <= len(receipt.qr.encode("utf-8")) <= MAX_QR_BYTES:
            raise ReceiptInvalid("qr", f"payload must be 1..{MAX_QR_BYTES} bytes of UTF-8")
    if receipt.barcode is not None:
        code: object = receipt.barcode
        if not isinstance(code, str) or not 1 <= len(code) <= MAX_BARCODE_CHARS:
            raise ReceiptInvalid("barcode", f"must be 1..{MAX_BARCODE_CHARS} characters")
        if any(not 0x20 <= ord(ch) < 0x7F or ch == "{" for ch in code):
            raise ReceiptInvalid("barcode", "CODE128 payload must be printable ASCII without '{'")
    for i, line in enumerate(_check_count(receipt.footer, "footer", 0, MAX_TEXT_LINES)):
        _check_text(line, f"footer[{i}]", cpl, kanji)
    if receipt.open_drawer and not profile.drawer:  # the cashier would wait for a drawer
        raise ReceiptInvalid("open_drawer", f"profile {profile.name} has no drawer port")


def _validate_member(m: MemberSection, cpl: int, kanji: bool) -> None:
    mid = _check_text(m.masked_member_id, "member.masked_member_id", cpl - 10, kanji)
    if mid.count("*") < 4 or sum(ch != "*" for ch in mid) > 8:
        raise ReceiptInvalid("member.masked_member_id", "must be masked (>= 4 '*', <= 8 shown)")
    _check_text(m.tier, "member.tier", cpl - 10, kanji)
    _check_fen(m.discount_fen, "member.discount_fen")
    _check_fen(m.balance_before_fen, "member.balance_before_fen")
    _check_fen(m.balance_after_fen, "member.balance_after_fen")
    if m.kind not in MEMBER_KINDS:
        raise ReceiptInvalid("member.kind", f"{m.kind!r} is not one of {', '.join(MEMBER_KINDS)}")
    _check_fen(m.amount_fen, "member.amount_fen")
    _check_fen(m.bonus_fen, "member.bonus_fen")
    _check_text(m.original_ref, "member.original_ref", None, kanji)
    for name in ("points_earned", "points_balance", "points_taken_back"):
        value = getattr(m, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
            raise ReceiptInvalid(f"member.{name}", f"must be an integer 0..10^9: {value!r}")

"""A sample Chinese member receipt, shared by the PNG preview, the demo store, tests and bench.

This module (with ``demo`` and ``render_sample``) drives the daemon's printing layer against the
simulated printer; the simulator proper (tokenizer, decoder, device, render) never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.api import convert
from daemon.api.v1 import common_pb2
from daemon.api.v1 import printer_service_pb2 as pb
from daemon.printers.receipt import Header, Item, MemberSection, Payment, Receipt, Totals

__all__ = ["DemoMember", "sale_message", "sale_total", "sample_receipt"]

STORE = "悦来便利店"
STORE_LINES = ("上海市浦东新区世纪大道100号", "电话: 021-5888 6666")
FOOTER = ("谢谢惠顾，欢迎再次光临！", "（会员积分每月底清零）")
TIMESTAMP = "2026-11-23 14:05:09"
ITEMS = (
    Item("农夫山泉 550ml", 2, 200, 400),
    Item("康师傅红烧牛肉面（桶装）", 3, 550, 1650),
    Item("Coca-Cola 330ml", 1, 350, 350),
    Item("三只松鼠每日坚果礼盒 750g 30袋装", 1, 9900, 9900),
    Item("¥10 购物袋", 1, 50, 50),
)


def sale_total(pays: int) -> tuple[int, int, int]:
    """``(subtotal, discount, total)`` in fen of the demo sale for a member whose tier pays
    ``pays`` hundredths of a percent of the price (``8500``: 85 %, the 金卡 of the demo store);
    the total is rounded down, in the member's favour."""
    subtotal = sum(i.amount_fen for i in ITEMS)
    total = subtotal * pays // 10000
    return subtotal, subtotal - total, total


def _money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code=convert.CURRENCY, amount_fen=fen)


def sale_message(pays: int, card_request_id: str, receipt_no: str = "20261123-0042") -> pb.Receipt:
    """The demo sale as a POS sends it to ``PrinterService.PrintReceipt``: paid in full from
    stored value by the card operation ``card_request_id`` (a Debit of :func:`sale_total`'s
    total), the discount the member's tier gives; no member block: the daemon fills it from
    its journal's committed outcome of that operation."""
    subtotal, discount, total = sale_total(pays)
    return pb.Receipt(
        header=pb.ReceiptHeader(store_name=STORE, lines=STORE_LINES),
        items=[
            pb.ReceiptItem(
                name=i.name,
                quantity=i.quantity,
                unit_price=_money(i.unit_price_fen),
                amount=_money(i.amount_fen),
            )
            for i in ITEMS
        ],
        totals=pb.ReceiptTotals(
            subtotal=_money(subtotal), discount=_money(discount), total=_money(total)
        ),
        payments=[pb.ReceiptPayment(method="储值卡支付", amount=_money(total))],
        receipt_no=receipt_no,
        time_text=TIMESTAMP,
        qr_code="https://example.cn/e-invoice?no=" + receipt_no,
        barcode=receipt_no,
        footer_lines=FOOTER,
        card_request_id=card_request_id,
    )


@dataclass(frozen=True, slots=True)
class DemoMember:
    """What the demo store knows about the member after the card was debited."""

    masked_member_id: str = "8860********3721"
    tier: str = "金卡"
    balance_before_fen: int = 50000
    balance_after_fen: int = 38835
    points_earned: int = 111
    points_balance: int = 2456


def sample_receipt(member: DemoMember | None = None, receipt_no: str = "20261123-0042") -> Receipt:
    """A fixed receipt for the printer layer's tests and bench (golden bytes): the member block
    typed in, a 9.5折 discount. Not what the demo store prints: that is :func:`sale_message`,
    whose member block and discount come from the card operation and the member's tier."""
    m = member if member is not None else DemoMember()
    items = (
        Item("农夫山泉 550ml", 2, 200, 400),
        Item("康师傅红烧牛肉面（桶装）", 3, 550, 1650),
        Item("Coca-Cola 330ml", 1, 350, 350),
        Item("三只松鼠每日坚果礼盒 750g 30袋装", 1, 9900, 9900),
        Item("¥10 购物袋", 1, 50, 50),
    )
    subtotal = sum(i.amount_fen for i in items)
    discount = subtotal * 5 // 100  # 9.5折, rounded down in the member's favour
    total = subtotal - discount
    paid_card = m.balance_before_fen - m.balance_after_fen
    return Receipt(
        header=Header(
            "悦来便利店",
            ("上海市浦东新区世纪大道100号", "电话: 021-5888 6666"),
        ),
        receipt_no=receipt_no,
        timestamp="2026-11-23 14:05:09",
        items=items,
        totals=Totals(subtotal_fen=subtotal, discount_fen=discount, total_fen=total),
        member=MemberSection(
            masked_member_id=m.masked_member_id,
            tier=m.tier,
            discount_fen=discount,
            balance_before_fen=m.balance_before_fen,
            balance_after_fen=m.balance_after_fen,
            points_earned=m.points_earned,
            points_balance=m.points_balance,
        ),
        payments=(
            Payment("储值卡支付", paid_card),
            Payment("微信支付", total - paid_card),
        ),
        qr="https://example.cn/e-invoice?no=" + receipt_no,
        barcode=receipt_no,
        footer=("谢谢惠顾，欢迎再次光临！", "（会员积分每月底清零）"),
    )

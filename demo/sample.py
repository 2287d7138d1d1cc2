"""A sample Chinese member receipt, shared by the PNG preview, the demo store, tests and bench.

This module (with ``demo`` and ``render_sample``) drives the daemon's printing layer against the
simulated printer; the simulator proper (tokenizer, decoder, device, render) never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.printers.receipt import Header, Item, MemberSection, Payment, Receipt, Totals

__all__ = ["DemoMember", "sample_receipt"]


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
    """A sale paid from stored value with a 9.5折 gold-tier discount."""
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

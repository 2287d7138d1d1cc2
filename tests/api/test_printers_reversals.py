"""Refund slips (退款) and cancellation receipts (撤销充值) naming their card operation: the
member block comes from the journal, the receipt's amounts are checked against it.

Real gRPC clients on the POS socket of a running station (the simulated store); the printed
text is read back from the simulated printer, as a store would read the paper.
"""

from __future__ import annotations

import grpc
import pytest

from daemon.api.printers import mask_member_id
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import membership_service_pb2 as ms
from daemon.api.v1 import membership_service_pb2_grpc as msg
from daemon.api.v1 import printer_service_pb2 as p
from daemon.api.v1 import printer_service_pb2_grpc as pg
from tests.api.conftest import Api
from tests.api.test_cards import SPEC, UID, member_on_front
from tests.api.test_printers import PRINTER, cny, error, printed_text, virtual, wait_state

READER = "readers/front"
J = p.PrintJob


@pytest.fixture
def cards(api: Api) -> mg.MemberCardServiceStub:
    member_on_front(api)  # 金卡, 500.00, 3 points per 100 yuan
    return mg.MemberCardServiceStub(api.channel("pos"))


@pytest.fixture
def pos(api: Api) -> pg.PrinterServiceStub:
    return pg.PrinterServiceStub(api.channel("pos"))


def slip(name: str, fen: int, lines: list[tuple[str, int]], rid: str) -> p.Receipt:
    """A receipt of one line ``name`` at ``fen``, paid back as ``lines`` (method, fen)."""
    return p.Receipt(
        header=p.ReceiptHeader(store_name="悦来便利店", lines=["电话: 021-5888 6666"]),
        items=[p.ReceiptItem(name=name, quantity=1, unit_price=cny(fen), amount=cny(fen))],
        totals=p.ReceiptTotals(subtotal=cny(fen), total=cny(fen)),
        payments=[p.ReceiptPayment(method=method, amount=cny(f)) for method, f in lines],
        receipt_no="20261123-0043",
        time_text="2026-11-23 15:10",
        card_request_id=rid,
    )


def printed(pos: pg.PrinterServiceStub, api: Api, receipt: p.Receipt, rid: str) -> str:
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id=rid, receipt=receipt), timeout=10
    ).job
    wait_state(pos, job.name, J.STATE_PRINTED)
    return printed_text(virtual(api)[1])[-1]


def refused(pos: pg.PrinterServiceStub, receipt: p.Receipt) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as err:
        pos.PreviewReceipt(p.PreviewReceiptRequest(printer=PRINTER, receipt=receipt), timeout=10)
    return error(err.value)


def line(text: str, label: str) -> str:
    [found] = [row for row in text.splitlines() if row.startswith(label)]
    return found


def test_a_refund_slip_prints_what_went_back_and_the_sale_it_undoes(
    api: Api, cards: mg.MemberCardServiceStub, pos: pg.PrinterServiceStub
) -> None:
    cards.Debit(
        m.DebitRequest(reader=READER, request_id="sale-1", expected_uid=UID, amount=cny(30_000)),
        timeout=10,
    )  # 500.00 -> 200.00, +9 points
    back = cards.Refund(
        m.RefundRequest(reader=READER, request_id="ret-1", expected_uid=UID,
                        original_request_id="sale-1", amount=cny(10_000)),
        timeout=10,
    ).result  # fmt: skip
    assert (back.balance_after, back.points_delta) == (cny(30_000), -3)
    # a return of 120.00 of goods: 100.00 back on the card, 20.00 of the sale's cash part
    paid_back = [("退回储值卡", 10_000), ("退现金 Cash", 2_000)]
    text = printed(pos, api, slip("坚果礼盒 退货", 12_000, paid_back, "ret-1"), "pr-1")
    assert "退款单 REFUND" in text
    assert "¥100.00" in line(text, "退款金额")
    assert "¥200.00" in line(text, "储值余额(前)")
    assert "¥300.00" in line(text, "储值余额(后)")
    assert "-3" in line(text, "扣回积分")
    assert str(back.points_after) in line(text, "积分余额")
    assert "sale-1" in line(text, "原交易")
    assert "金卡" in line(text, "会员等级")
    assert mask_member_id(SPEC.member_id) in line(text, "会员卡号")
    assert SPEC.member_id not in text
    assert "会员优惠" not in text
    assert "本次积分" not in text


#: a long request_id (a POS's own reference): too long for one line with its label
LONG_ID = "top-2026-11-23-lane-03-cashier-0042-9f1c2e7a-55b0-4d"


def test_a_cancelled_top_up_prints_the_cash_back_and_the_bonus_taken_back(
    api: Api, cards: mg.MemberCardServiceStub, pos: pg.PrinterServiceStub
) -> None:
    top = cards.Credit(
        m.CreditRequest(reader=READER, request_id=LONG_ID, expected_uid=UID, amount=cny(100_000),
                        bonus=cny(5_000)),
        timeout=10,
    ).result  # fmt: skip
    undo = cards.CancelTopUp(
        m.CancelTopUpRequest(reader=READER, request_id="undo-1", expected_uid=UID,
                             original_request_id=LONG_ID),
        timeout=10,
    ).result  # fmt: skip
    assert (undo.amount, undo.bonus, undo.balance_after) == (cny(100_000), cny(5_000), cny(50_000))
    text = printed(pos, api, slip("会员卡充值 撤销", 100_000, [("现金退回 Cash", 100_000)],
                                  "undo-1"), "pr-2")  # fmt: skip
    assert "撤销充值 TOP-UP CANCELLED" in text
    assert "¥1000.00" in line(text, "撤销充值 ")
    assert "-¥50.00" in line(text, "扣回赠送")
    assert top.balance_after.amount_fen == 155_000
    assert "¥1550.00" in line(text, "储值余额(前)")
    assert "¥500.00" in line(text, "储值余额(后)")
    rows = text.splitlines()
    at = rows.index("原交易")  # the label alone, then the whole id on the lines below
    assert "".join(rows[at + 1 : at + 3]) == LONG_ID


def test_a_reversal_receipt_that_does_not_match_the_operation_is_refused(
    api: Api, cards: mg.MemberCardServiceStub, pos: pg.PrinterServiceStub
) -> None:
    cards.Debit(
        m.DebitRequest(reader=READER, request_id="sale-2", expected_uid=UID, amount=cny(30_000)),
        timeout=10,
    )
    cards.Refund(
        m.RefundRequest(reader=READER, request_id="ret-2", expected_uid=UID,
                        original_request_id="sale-2", amount=cny(10_000)),
        timeout=10,
    )  # fmt: skip
    code, why, message = refused(pos, slip("退货", 8_000, [("退回储值卡", 8_000)], "ret-2"))
    assert (code, why) == (grpc.StatusCode.INVALID_ARGUMENT, "RECEIPT_INVALID")
    assert "receipt.totals.total" in message
    assert "10000" in message
    _, why, message = refused(
        pos, slip("退货", 10_000, [("退回储值卡", 6_000), ("现金", 4_000)], "ret-2")
    )
    assert why == "RECEIPT_INVALID"
    assert "receipt.payments" in message
    top = m.CreditRequest(reader=READER, request_id="top-2", expected_uid=UID, amount=cny(10_000))
    cards.Credit(top, timeout=10)
    cards.CancelTopUp(
        m.CancelTopUpRequest(reader=READER, request_id="undo-2", expected_uid=UID,
                             original_request_id="top-2"),
        timeout=10,
    )  # fmt: skip
    _, why, message = refused(pos, slip("充值撤销", 12_000, [("现金", 12_000)], "undo-2"))
    assert why == "RECEIPT_INVALID"
    assert "receipt.totals.total" in message
    assert len(printed_text(virtual(api)[1])) == 0  # nothing reached the paper


def test_a_refund_that_did_not_commit_and_a_tier_change_have_no_receipt(
    api: Api, cards: mg.MemberCardServiceStub, pos: pg.PrinterServiceStub
) -> None:
    cards.Debit(
        m.DebitRequest(reader=READER, request_id="sale-3", expected_uid=UID, amount=cny(1_000)),
        timeout=10,
    )
    with pytest.raises(grpc.RpcError):  # more than the payment: refused, nothing written
        cards.Refund(
            m.RefundRequest(reader=READER, request_id="ret-3", expected_uid=UID,
                            original_request_id="sale-3", amount=cny(2_000)),
            timeout=10,
        )  # fmt: skip
    code, why, message = refused(pos, slip("退货", 2_000, [("退回储值卡", 2_000)], "ret-3"))
    assert (code, why) == (grpc.StatusCode.FAILED_PRECONDITION, "OPERATION_NOT_COMMITTED")
    assert "ret-3" in message
    issuer = msg.MembershipServiceStub(api.channel("issuer"))
    issuer.ChangeTier(
        ms.ChangeTierRequest(reader=READER, request_id="tier-3", expected_uid=UID, tier=3),
        timeout=10,
    )
    code, why, message = refused(pos, slip("升级", 100, [("现金", 100)], "tier-3"))
    assert (code, why) == (grpc.StatusCode.INVALID_ARGUMENT, "RECEIPT_INVALID")
    assert "receipt.card_request_id" in message
    assert "tier change" in message

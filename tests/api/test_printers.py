"""PrinterService over the real sockets: receipts on the simulated printer, retries, bad input.

The station's printer ``receipt`` is the simulated zh-80 printer; the tests script its paper,
cable and drawer through ``api.station.printer("receipt").printer.backend``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from daemon.api.printers import mask_member_id
from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import printer_service_pb2 as p
from daemon.api.v1 import printer_service_pb2_grpc as pg
from sim.printer.backend import SimPrinterBackend
from sim.printer.device import VirtualPrinter
from sim.printer.render import render_text
from tests.api.conftest import Api
from tests.api.test_cards import UID, member_on_front

J = p.PrintJob
PRINTER = "printers/receipt"


def cny(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code="CNY", amount_fen=fen)


def error(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, err
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return err.code(), info.reason, status.message


def receipt() -> p.Receipt:
    """A sale in Chinese and Latin that adds up: 2 x 2.00 + 1 x 3.50 + 1 x 99.00 (line
    discount to 95.00) = 102.50, minus 2.50 = 100.00, paid 80.00 card + 30.00 cash, 10.00 back."""
    message = p.Receipt(
        header=p.ReceiptHeader(store_name="悦来便利店", lines=["电话: 021-5888 6666"]),
        items=[
            p.ReceiptItem(name="农夫山泉 550ml", quantity=2, unit_price=cny(200), amount=cny(400)),
            p.ReceiptItem(name="Coca-Cola 330ml", quantity=1, unit_price=cny(350), amount=cny(350)),
            p.ReceiptItem(
                name="坚果礼盒",
                quantity=1,
                unit_price=cny(9900),
                amount=cny(9500),
                discount=cny(400),
            ),
        ],
        totals=p.ReceiptTotals(
            subtotal=cny(10250), discount=cny(250), total=cny(10000), change=cny(1000)
        ),
        payments=[
            p.ReceiptPayment(method="储值卡支付", amount=cny(8000)),
            p.ReceiptPayment(method="现金 Cash", amount=cny(3000)),
        ],
        receipt_no="20261123-0042",
        time_text="2026-11-23 14:05",
        footer_lines=["谢谢惠顾 Thank you"],
    )
    return message


def virtual(api: Api) -> tuple[SimPrinterBackend, VirtualPrinter]:
    backend = api.station.printer("receipt").printer.backend
    assert isinstance(backend, SimPrinterBackend)
    return backend, backend.printer


def printed_text(printer: VirtualPrinter) -> list[str]:
    return [render_text(r, printer.chars_per_line) for r in printer.completed]


def wait_state(
    stub: pg.PrinterServiceStub, name: str, state: int, timeout: float = 10
) -> p.PrintJob:
    deadline = time.monotonic() + timeout
    while True:
        job = stub.GetPrintJob(p.GetPrintJobRequest(name=name), timeout=5).job
        if job.state == state or time.monotonic() > deadline:
            assert job.state == state, job
            return job
        time.sleep(0.05)


@pytest.fixture
def pos(api: Api) -> pg.PrinterServiceStub:
    return pg.PrinterServiceStub(api.channel("pos"))


@pytest.fixture
def tech(api: Api) -> pg.PrinterServiceStub:
    return pg.PrinterServiceStub(api.channel("technician"))


# --- status -----------------------------------------------------------------------------------


def test_list_and_get_printers_with_their_status(pos: pg.PrinterServiceStub, api: Api) -> None:
    listed = pos.ListPrinters(p.ListPrintersRequest(), timeout=5).printers
    assert [x.name for x in listed] == [PRINTER]
    one = pos.GetPrinter(p.GetPrinterRequest(name=PRINTER), timeout=5).printer
    assert (one.profile, one.chars_per_line) == ("zh-80", 48)
    assert one.HasField("status_change_time")
    _, printer = virtual(api)
    printer.set_paper(0)
    deadline = time.monotonic() + 10
    while not one.paper_out and time.monotonic() < deadline:
        time.sleep(0.1)
        one = pos.GetPrinter(p.GetPrinterRequest(name="receipt"), timeout=5).printer
    assert one.paper_out
    assert one.reachable
    assert not one.cover_open
    printer.set_paper(None)


def test_unknown_printer_and_job_are_not_found(pos: pg.PrinterServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        pos.GetPrinter(p.GetPrinterRequest(name="printers/kitchen"), timeout=5)
    assert error(err.value)[:2] == (grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND")
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(printer="printers/kitchen", request_id="r", receipt=receipt()),
            timeout=5,
        )
    assert error(err.value)[:2] == (grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND")
    with pytest.raises(grpc.RpcError) as err:
        pos.GetPrintJob(p.GetPrintJobRequest(name="printers/receipt/jobs/999"), timeout=5)
    assert error(err.value)[:2] == (grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND")


# --- printing and idempotency -----------------------------------------------------------------


def test_receipt_prints_once_and_a_retry_returns_the_same_job(
    pos: pg.PrinterServiceStub, api: Api
) -> None:
    _, printer = virtual(api)
    call = p.PrintReceiptRequest(printer=PRINTER, request_id="sale-42", receipt=receipt())
    first = pos.PrintReceipt(call, timeout=10).job
    assert first.request_id == "sale-42"
    assert not first.replayed
    assert first.name.startswith("printers/receipt/jobs/")
    wait_state(pos, first.name, J.STATE_PRINTED)
    again = pos.PrintReceipt(call, timeout=10).job
    assert (again.name, again.replayed, again.state) == (first.name, True, J.STATE_PRINTED)
    time.sleep(0.5)
    texts = printed_text(printer)
    assert len(texts) == 1
    assert "悦来便利店" in texts[0]
    assert "Coca-Cola 330ml" in texts[0]
    assert "95.00" in texts[0]
    discount_line = next(line for line in texts[0].splitlines() if "优惠" in line)
    assert discount_line.split()[-1] == "-4.00"  # the line discount is on paper, not hidden
    other = p.PrintReceiptRequest(printer=PRINTER, request_id="sale-42", receipt=receipt())
    other.receipt.receipt_no = "20261123-0043"
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(other, timeout=10)
    assert error(err.value)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert len(printer.completed) == 1


def test_request_id_survives_a_daemon_restart(tmp_path: object, api: Api) -> None:
    """The mapping is in the spool file: a fresh Spool on the same file replays it."""
    from daemon.printers.spool import Spool

    svc = api.station.printer("receipt")
    job = svc.spool.add("receipt", b"\x1b@x\n", request_id="keep-1", fingerprint="f")
    with Spool(svc.spool.path) as reopened:
        earlier = reopened.request("keep-1", "f")
        assert earlier is not None
        assert earlier.job is not None
        assert earlier.job.id == job.id


def test_watch_printer_snapshot_then_job_events(pos: pg.PrinterServiceStub) -> None:
    stream: Iterator[p.WatchPrinterResponse] = pos.WatchPrinter(
        p.WatchPrinterRequest(printer=PRINTER), timeout=15
    )
    first = next(stream)
    assert first.header.snapshot
    assert first.WhichOneof("event") == "status"
    assert first.header.source == PRINTER
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id="w-1", receipt=receipt()), timeout=10
    ).job
    states = []
    for message in stream:
        if message.WhichOneof("event") == "job" and message.job.name == job.name:
            states.append(message.job.state)
            if message.job.state == J.STATE_PRINTED:
                break
    assert states[0] == J.STATE_QUEUED
    assert states[-1] == J.STATE_PRINTED
    assert J.STATE_SENDING in states
    stream.cancel()  # type: ignore[attr-defined]


# --- receipts that add up ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("line", "receipt.items[2].amount"),
        ("hidden discount", "receipt.items[1].amount"),
        ("line discount", "receipt.items[0].discount"),
        ("subtotal", "receipt.totals.subtotal"),
        ("total", "receipt.totals.total"),
        ("payments", "receipt.payments"),
    ],
)
def test_a_receipt_that_does_not_add_up_is_refused_naming_the_field(
    pos: pg.PrinterServiceStub, api: Api, change: str, field: str
) -> None:
    bad = receipt()
    if change == "line":
        bad.items[2].amount.amount_fen = 9901  # above 1 x 99.00
    elif change == "hidden discount":
        bad.items[1].amount.amount_fen = 300  # 1 x 3.50 shown as 3.00 with no discount
        bad.totals.subtotal.amount_fen -= 50
        bad.totals.total.amount_fen -= 50
        bad.totals.change.amount_fen += 50
    elif change == "line discount":
        bad.items[0].discount.CopyFrom(cny(500))  # more than 2 x 2.00
    elif change == "subtotal":
        bad.totals.subtotal.amount_fen += 1
    elif change == "total":
        bad.totals.total.amount_fen -= 1
    else:
        bad.payments[1].amount.amount_fen -= 1
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(
                printer=PRINTER, request_id=f"bad-{change.replace(' ', '-')}", receipt=bad
            ),
            timeout=10,
        )
    code, why, message = error(err.value)
    assert (code, why) == (grpc.StatusCode.INVALID_ARGUMENT, "RECEIPT_INVALID")
    assert message.startswith(f"RECEIPT_INVALID: {field}:"), message
    assert not virtual(api)[1].completed  # nothing printed


def test_a_character_the_printer_cannot_show_is_named(pos: pg.PrinterServiceStub) -> None:
    bad = receipt()
    bad.items[1].name = "Cola 😀"
    with pytest.raises(grpc.RpcError) as err:
        pos.PreviewReceipt(p.PreviewReceiptRequest(printer=PRINTER, receipt=bad), timeout=10)
    code, why, message = error(err.value)
    assert (code, why) == (grpc.StatusCode.INVALID_ARGUMENT, "RECEIPT_INVALID")
    assert "receipt.items[1].name" in message
    assert "U+1F600" in message


def test_a_2mb_receipt_is_refused_and_a_long_one_under_the_cap_too(
    pos: pg.PrinterServiceStub,
) -> None:
    huge = receipt()
    huge.header.lines.append("x" * (2 << 20))
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(printer=PRINTER, request_id="big", receipt=huge), timeout=10
        )
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    long = receipt()
    long.footer_lines.append("谢" * 200_000)
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(printer=PRINTER, request_id="long", receipt=long), timeout=10
        )
    code, why, message = error(err.value)
    assert (code, why) == (grpc.StatusCode.INVALID_ARGUMENT, "RECEIPT_INVALID")
    assert "receipt.footer_lines[1]" in message
    assert "too long" in message


# --- the member block from the journal --------------------------------------------------------


def test_member_block_is_filled_from_the_committed_debit(
    pos: pg.PrinterServiceStub, api: Api
) -> None:
    member_on_front(api)
    cards = mg.MemberCardServiceStub(api.channel("pos"))
    paid = cards.Debit(
        m.DebitRequest(
            expected_uid=UID, reader="readers/front", request_id="sale-7", amount=cny(8000)
        ),
        timeout=10,
    ).result
    sale = receipt()
    sale.card_request_id = "sale-7"
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id="print-7", receipt=sale), timeout=10
    ).job
    wait_state(pos, job.name, J.STATE_PRINTED)
    text = printed_text(virtual(api)[1])[-1]
    assert mask_member_id(paid.member_id) in text
    assert "金卡" in text
    assert "500.00" in text
    assert "420.00" in text
    assert paid.member_id not in text

    typed = receipt()
    typed.card_request_id = "sale-7"
    typed.member.masked_member_id = "8860*****9999"
    with pytest.raises(grpc.RpcError) as err:
        pos.PreviewReceipt(p.PreviewReceiptRequest(printer=PRINTER, receipt=typed), timeout=10)
    assert "receipt.member" in error(err.value)[2]

    wrong = receipt()
    wrong.card_request_id = "sale-7"
    wrong.payments[0].amount.amount_fen = 7000
    wrong.payments[1].amount.amount_fen = 4000
    with pytest.raises(grpc.RpcError) as err:
        pos.PreviewReceipt(p.PreviewReceiptRequest(printer=PRINTER, receipt=wrong), timeout=10)
    assert "receipt.payments" in error(err.value)[2]


def test_a_receipt_naming_an_operation_that_did_not_commit_is_refused(
    pos: pg.PrinterServiceStub,
) -> None:
    sale = receipt()
    sale.card_request_id = "never-ran"
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(printer=PRINTER, request_id="p-1", receipt=sale), timeout=10
        )
    code, why, message = error(err.value)
    assert (code, why) == (grpc.StatusCode.FAILED_PRECONDITION, "OPERATION_NOT_COMMITTED")
    assert "never-ran" in message


def test_mask_member_id() -> None:
    assert mask_member_id("8860123403721") == "8860*****3721"
    assert mask_member_id("12345") == "*****"  # short ids: nothing shown
    assert mask_member_id("1234567890") == "123****890"


# --- paper out, unplugged, uncertain ----------------------------------------------------------


def test_paper_out_before_the_job_waits_then_prints_once(
    pos: pg.PrinterServiceStub, api: Api
) -> None:
    _, printer = virtual(api)
    printer.set_paper(0)
    time.sleep(0.5)
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id="po-1", receipt=receipt()), timeout=10
    ).job
    time.sleep(1.0)
    waiting = pos.GetPrintJob(p.GetPrintJobRequest(name=job.name), timeout=5).job
    assert waiting.state == J.STATE_QUEUED
    printer.set_paper(None)
    wait_state(pos, job.name, J.STATE_PRINTED)
    time.sleep(0.3)
    assert len(printer.completed) == 1


def test_paper_out_mid_job_holds_then_finishes_once(pos: pg.PrinterServiceStub, api: Api) -> None:
    _, printer = virtual(api)
    printer.set_paper(5)  # runs out a few lines into the receipt
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id="po-2", receipt=receipt()), timeout=10
    ).job
    wait_state(pos, job.name, J.STATE_SENDING)
    time.sleep(0.5)
    assert not printer.completed
    printer.set_paper(None)
    wait_state(pos, job.name, J.STATE_PRINTED, timeout=15)
    assert len(printer.completed) == 1


def uncertain_job(pos: pg.PrinterServiceStub, api: Api, request_id: str) -> str:
    """A job whose printer was unplugged while it printed (paper ran out mid-receipt)."""
    backend, printer = virtual(api)
    printer.set_paper(5)
    job = pos.PrintReceipt(
        p.PrintReceiptRequest(printer=PRINTER, request_id=request_id, receipt=receipt()),
        timeout=10,
    ).job
    wait_state(pos, job.name, J.STATE_SENDING)
    backend.unplug()
    uncertain = wait_state(pos, job.name, J.STATE_UNCERTAIN, timeout=15)
    assert uncertain.detail
    printer.set_paper(None)
    backend.plug()
    return job.name


def test_unplugged_mid_job_is_uncertain_and_reprinted_once_on_request(
    pos: pg.PrinterServiceStub, tech: pg.PrinterServiceStub, api: Api
) -> None:
    _, printer = virtual(api)
    name = uncertain_job(pos, api, "un-1")
    time.sleep(1.0)  # the daemon never prints an UNCERTAIN job by itself
    assert pos.GetPrintJob(p.GetPrintJobRequest(name=name), timeout=5).job.state == (
        J.STATE_UNCERTAIN
    )
    seen = pos.GetPrinter(p.GetPrinterRequest(name=PRINTER), timeout=5).printer
    assert seen.uncertain_jobs == 1
    with pytest.raises(grpc.RpcError) as err:  # a till action, not the technician's
        tech.Reprint(p.ReprintRequest(job=name, request_id="re-1"), timeout=10)
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    copy = pos.Reprint(p.ReprintRequest(job=name, request_id="re-1"), timeout=10).job
    assert copy.reprint_of == name
    again = pos.Reprint(p.ReprintRequest(job=name, request_id="re-1"), timeout=10).job
    assert (again.name, again.replayed) == (copy.name, True)
    wait_state(pos, copy.name, J.STATE_PRINTED, timeout=15)
    time.sleep(0.3)
    assert len([t for t in printed_text(printer) if "重印 REPRINT" in t]) == 1
    original = pos.GetPrintJob(p.GetPrintJobRequest(name=name), timeout=5).job
    assert original.state == J.STATE_CANCELLED  # closed as "reprinted as #n"
    assert "reprinted as" in original.detail
    with pytest.raises(grpc.RpcError) as err:
        tech.ConfirmPrinted(p.ConfirmPrintedRequest(job=name), timeout=5)
    assert error(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_confirm_and_cancel_settle_uncertain_jobs(
    tech: pg.PrinterServiceStub, pos: pg.PrinterServiceStub, api: Api
) -> None:
    first = uncertain_job(pos, api, "u-1")
    done = tech.ConfirmPrinted(p.ConfirmPrintedRequest(job=first), timeout=5).job
    assert done.state == J.STATE_PRINTED
    assert tech.ConfirmPrinted(p.ConfirmPrintedRequest(job=first), timeout=5).job == done
    second = uncertain_job(pos, api, "u-2")
    gone = tech.CancelPrintJob(p.CancelPrintJobRequest(job=second), timeout=5).job
    assert gone.state == J.STATE_CANCELLED
    again = tech.CancelPrintJob(p.CancelPrintJobRequest(job=second), timeout=5).job
    assert again.state == J.STATE_CANCELLED
    with pytest.raises(grpc.RpcError) as err:
        tech.CancelPrintJob(p.CancelPrintJobRequest(job=first), timeout=5)
    assert error(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    with pytest.raises(grpc.RpcError) as err:
        pos.Reprint(p.ReprintRequest(job=second, request_id="re-x"), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


# --- drawer, test page, preview, roles --------------------------------------------------------


def test_open_drawer_once_per_request_id(pos: pg.PrinterServiceStub, api: Api) -> None:
    _, printer = virtual(api)
    call = p.OpenDrawerRequest(printer=PRINTER, request_id="drawer-1")
    assert not pos.OpenDrawer(call, timeout=10).replayed
    assert pos.OpenDrawer(call, timeout=10).replayed
    deadline = time.monotonic() + 5
    while not printer.drawer_kicks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(printer.drawer_kicks) == 1
    seen = pos.GetPrinter(p.GetPrinterRequest(name=PRINTER), timeout=5).printer
    assert seen.HasField("drawer_open")
    with pytest.raises(grpc.RpcError) as err:
        pos.PrintReceipt(
            p.PrintReceiptRequest(printer=PRINTER, request_id="drawer-1", receipt=receipt()),
            timeout=10,
        )
    assert error(err.value)[:2] == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")


def test_open_drawer_on_an_unplugged_printer_is_unavailable_and_can_be_retried(
    pos: pg.PrinterServiceStub, api: Api
) -> None:
    backend, printer = virtual(api)
    backend.unplug()
    call = p.OpenDrawerRequest(printer=PRINTER, request_id="drawer-2")
    with pytest.raises(grpc.RpcError) as err:
        pos.OpenDrawer(call, timeout=10)
    assert error(err.value)[:2] == (grpc.StatusCode.UNAVAILABLE, "PRINTER_OFFLINE")
    backend.plug()
    assert not pos.OpenDrawer(call, timeout=10).replayed
    assert len(printer.drawer_kicks) == 1


def test_test_print_and_preview(tech: pg.PrinterServiceStub, api: Api) -> None:
    _, printer = virtual(api)
    preview = tech.PreviewReceipt(
        p.PreviewReceiptRequest(printer=PRINTER, receipt=receipt()), timeout=20
    )
    assert preview.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert preview.width_dots == 576
    assert preview.height_dots > 400
    assert not printer.completed  # nothing printed
    job = tech.TestPrint(p.TestPrintRequest(printer=PRINTER), timeout=10).job
    wait_state(tech, job.name, J.STATE_PRINTED)
    assert "PRINT TEST" in printed_text(printer)[-1]
    with pytest.raises(grpc.RpcError) as err:
        tech.PrintReceipt(
            p.PrintReceiptRequest(printer=PRINTER, request_id="t", receipt=receipt()), timeout=5
        )
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED

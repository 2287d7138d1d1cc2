"""The receipt printer runs out of paper and goes offline in the middle of a receipt, and its
link drops mid-job, while POS clients debit: each receipt ends on paper exactly once, or
UNCERTAIN (never printed again by the daemon on its own), never lost and never twice; the card
side is untouched (every acknowledged debit in the journal and on its card).

The printer is the simulator's ESC/POS printer on raw TCP in this process (backend
``network``, as a store's 9100 printer), reached by a real ``carddaemon serve``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.crash_campaign import StorePc, cny
from daemon.api.v1 import printer_service_pb2 as p
from daemon.api.v1 import printer_service_pb2_grpc as pg
from sim.printer import TcpPrinterServer, VirtualPrinter
from tests.survive.load import Load

JOB = p.PrintJob


def receipt(number: str) -> p.Receipt:
    """A receipt of about 20 printed lines, each line its own item."""
    items = [
        p.ReceiptItem(name=f"商品 {i:02d}", quantity=1, unit_price=cny(100), amount=cny(100))
        for i in range(12)
    ]
    return p.Receipt(
        header=p.ReceiptHeader(store_name="SURVIVE 测试店"),
        items=items,
        totals=p.ReceiptTotals(subtotal=cny(1200), total=cny(1200)),
        payments=[p.ReceiptPayment(method="现金", amount=cny(1200))],
        receipt_no=number,
    )


@pytest.fixture
def printing_store(
    tmp_path: Path,
) -> Iterator[tuple[StorePc, dict[str, str], VirtualPrinter, TcpPrinterServer]]:
    printer = VirtualPrinter()
    with TcpPrinterServer(printer) as server:
        extra = (
            '\n[printers.receipt]\nbackend = "network"\nhost = "127.0.0.1"\n'
            f'port = {server.port}\nprofile = "zh-80"\npoll_interval_s = 0.2\n'
            "timeout_s = 2.0\nconfirm_timeout_s = 5.0\n"
        )
        with StorePc(tmp_path / "store", extra=extra) as store:
            store.start(wait_cards=False)
            uids = store.issue_cards()
            yield store, uids, printer, server
            assert store.stop() == 0, store.lines[-20:]


def printed(printer: VirtualPrinter, number: str) -> int:
    """Receipts with ``number`` on paper, cut (finished)."""
    return sum(
        1 for r in printer.completed if r.cut is not None and any(number in t for t in r.texts())
    )


def wait_state(
    stub: pg.PrinterServiceStub, name: str, states: set[int], timeout_s: float = 15
) -> p.PrintJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = stub.GetPrintJob(p.GetPrintJobRequest(name=name), timeout=10).job
        if job.state in states:
            return job
        assert time.monotonic() < deadline, f"{name} stuck in {JOB.State.Name(job.state)}"
        time.sleep(0.05)


def wait_printer(
    stub: pg.PrinterServiceStub, check: Callable[[p.Printer], bool], timeout_s: float = 10
) -> p.Printer:
    deadline = time.monotonic() + timeout_s
    while True:
        printer = stub.GetPrinter(p.GetPrinterRequest(name="printers/receipt"), timeout=10).printer
        if check(printer):
            return printer
        assert time.monotonic() < deadline, f"printer status never matched: {printer}"
        time.sleep(0.05)


@pytest.mark.pcscd
def test_paper_out_then_offline_mid_receipt_prints_it_once_when_fixed(
    printing_store: tuple[StorePc, dict[str, str], VirtualPrinter, TcpPrinterServer],
) -> None:
    store, uids, printer, _server = printing_store
    with Load(store, uids) as load, store.channel() as channel:
        stub = pg.PrinterServiceStub(channel)
        load.wait_acknowledged(5)
        printer.set_paper(6)  # runs out six lines into the receipt
        job = stub.PrintReceipt(
            p.PrintReceiptRequest(
                printer="printers/receipt", request_id="rcpt-1", receipt=receipt("R-0001")
            ),
            timeout=10,
        ).job
        wait_printer(stub, lambda s: s.paper_out)
        printer.set_offline(True)  # and then someone switches it off and on again
        printer.set_paper(None)  # new roll in, still offline: nothing more prints
        time.sleep(0.5)
        assert printed(printer, "R-0001") == 0
        assert stub.GetPrintJob(p.GetPrintJobRequest(name=job.name), timeout=10).job.state in (
            JOB.STATE_QUEUED,
            JOB.STATE_SENDING,
        )
        load.wait_acknowledged(5)  # the tills never waited for the printer
        printer.set_offline(False)
        done = wait_state(stub, job.name, {JOB.STATE_PRINTED, JOB.STATE_UNCERTAIN})
        retry = stub.PrintReceipt(
            p.PrintReceiptRequest(
                printer="printers/receipt", request_id="rcpt-1", receipt=receipt("R-0001")
            ),
            timeout=10,
        ).job  # the till did not hear back and sends it again: the same job, not a second
        assert (retry.name, retry.replayed) == (job.name, True)
        time.sleep(0.5)
        assert done.state == JOB.STATE_PRINTED, done
        assert printed(printer, "R-0001") == 1
        second = stub.PrintReceipt(
            p.PrintReceiptRequest(
                printer="printers/receipt", request_id="rcpt-2", receipt=receipt("R-0002")
            ),
            timeout=10,
        ).job
        assert wait_state(stub, second.name, {JOB.STATE_PRINTED}).state == JOB.STATE_PRINTED
    assert printed(printer, "R-0001") == 1
    load.verify()


@pytest.mark.pcscd
def test_link_lost_mid_receipt_leaves_it_uncertain_never_printed_again_on_its_own(
    printing_store: tuple[StorePc, dict[str, str], VirtualPrinter, TcpPrinterServer],
) -> None:
    store, uids, printer, server = printing_store
    with Load(store, uids) as load, store.channel() as channel:
        stub = pg.PrinterServiceStub(channel)
        load.wait_acknowledged(5)
        printer.set_paper(6)
        job = stub.PrintReceipt(
            p.PrintReceiptRequest(
                printer="printers/receipt", request_id="rcpt-3", receipt=receipt("R-0003")
            ),
            timeout=10,
        ).job
        wait_printer(stub, lambda s: s.paper_out)
        server.unplug()  # the cable is pulled with half a receipt out
        uncertain = wait_state(stub, job.name, {JOB.STATE_UNCERTAIN, JOB.STATE_PRINTED})
        assert uncertain.state == JOB.STATE_UNCERTAIN, uncertain
        assert uncertain.detail
        server.plug()
        printer.set_paper(None)
        wait_printer(stub, lambda s: s.reachable and s.online and not s.paper_out)
        after = stub.PrintReceipt(
            p.PrintReceiptRequest(
                printer="printers/receipt", request_id="rcpt-4", receipt=receipt("R-0004")
            ),
            timeout=10,
        ).job
        assert wait_state(stub, after.name, {JOB.STATE_PRINTED}).state == JOB.STATE_PRINTED
        time.sleep(0.5)
        assert printed(printer, "R-0004") == 1
        # the printer's own buffer finished the half receipt once the roll was in; the daemon
        # sent it once and does not send it again: it stays UNCERTAIN until a person decides
        assert printed(printer, "R-0003") == 1
        job_now = stub.GetPrintJob(p.GetPrintJobRequest(name=job.name), timeout=10).job
        assert job_now.state == JOB.STATE_UNCERTAIN
        confirmed = stub.ConfirmPrinted(p.ConfirmPrintedRequest(job=job.name), timeout=10).job
        assert confirmed.state == JOB.STATE_PRINTED
        time.sleep(0.3)
        assert printed(printer, "R-0003") == 1
        load.wait_acknowledged(3)
    load.verify()

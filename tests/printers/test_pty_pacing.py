"""The simulated serial line keeps a UART's pace when the machine running it is busy.

A real 9600 baud line carries a receipt in its wire time however loaded the host PC is. The pty
link used to add every late wake-up of its thread to the line, so on a busy CI machine a long
receipt arrived seconds after its wire time and the daemon (rightly) gave up waiting for the
printer's answer: the simulator made a healthy printer look unreachable.
"""

from __future__ import annotations

import time
from pathlib import Path

from daemon.printers import Item, JobState, Payment, Totals
from sim.printer import VirtualPrinter
from tests.printers.helpers import pty_service, simple_receipt

BYTE_TIME_9600 = 10.0 / 9600


class BusyMachinePrinter(VirtualPrinter):
    """Every hand-over from the link costs 3 ms, as on a machine whose CPUs are all busy."""

    def receive(self, data: bytes) -> None:
        time.sleep(0.003)
        super().receive(data)


def test_slow_link_thread_still_delivers_a_long_receipt_in_wire_time(tmp_path: Path) -> None:
    items = tuple(Item(f"商品{i:03d} 测试", 1, 100, 100) for i in range(40))
    receipt = simple_receipt(
        items=items,
        totals=Totals(subtotal_fen=4000, total_fen=4000),
        payments=(Payment("Cash", 4000),),
    )
    sim = BusyMachinePrinter()
    with pty_service(tmp_path, baudrate=9600, printer=sim) as (service, _sim, _server):
        service.status(refresh=True)
        job = service.submit(receipt)
        assert len(job.data) > 2000  # ~2 s on the wire, ~6 s if each byte also paid the 3 ms
        assert service.wait_job(job.id, 15).state is JobState.PRINTED
    assert len(sim.completed) == 1
    # ...and never faster than the wire: the last byte came at least its wire time after the first
    (first_t, first_n), (last_t, _) = sim.rx_log[0], sim.rx_log[-1]
    carried = sum(n for _, n in sim.rx_log)
    assert carried >= len(job.data)
    assert last_t - first_t >= (carried - first_n) * BYTE_TIME_9600 * 0.99

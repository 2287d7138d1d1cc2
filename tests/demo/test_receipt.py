"""The preview and demo entry points: a member receipt printed through the daemon's layer to
the simulated printer, written as PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from demo.receipt import print_demo_receipt
from demo.render_sample import main as render_sample


@dataclass
class StoreMember:
    """What the demo store might pass: its own object with the right attribute names."""

    masked_member_id: str
    tier: str
    balance_before_fen: int
    balance_after_fen: int
    points_earned: int
    points_balance: int


def _dark_rows(path: Path) -> int:
    with Image.open(path) as img:
        grey = img.convert("L")
        width = grey.width
        data = grey.tobytes()
    return sum(1 for y in range(len(data) // width) if min(data[y * width : (y + 1) * width]) < 128)


def test_demo_receipt_from_a_mapping_and_from_an_object(tmp_path: Path) -> None:
    member = {
        "masked_member_id": "6222********0001",
        "tier": "白金",
        "balance_before_fen": 100000,
        "balance_after_fen": 88835,
        "points_earned": 223,
        "points_balance": 9000,
    }
    png = print_demo_receipt(tmp_path / "a", member)
    assert png == tmp_path / "a" / "receipt.png"
    with Image.open(png) as img:
        assert img.width == 48 * 12 + 32
        assert img.height > 1000
    assert _dark_rows(png) > 500  # text, QR code and barcode were drawn
    png2 = print_demo_receipt(tmp_path / "b", StoreMember(**member))  # type: ignore[arg-type]
    assert png2.read_bytes() == png.read_bytes()


def test_render_sample_cli_writes_the_png(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "sample-receipt.png"
    assert render_sample([str(out)]) == 0
    with Image.open(out) as img:
        assert img.width == 48 * 12 + 32


def _pixels(path: Path) -> tuple[tuple[int, int], bytes]:
    with Image.open(path) as img:
        return img.size, img.convert("L").tobytes()


def test_committed_sample_png_is_what_the_code_prints(tmp_path: Path) -> None:
    """docs/sample-receipt.png is the demo sale printed from the card operation; regenerate it
    with `make receipt-png` when the receipt or the sale changes (pixels compared, not bytes)."""
    committed = Path(__file__).resolve().parents[2] / "docs" / "sample-receipt.png"
    out = tmp_path / "sample.png"
    assert render_sample([str(out)]) == 0
    assert _pixels(out) == _pixels(committed), "docs/sample-receipt.png is stale: make receipt-png"


def test_demo_sale_member_block_from_the_journal() -> None:
    """The sale's receipt names the Debit's request_id: masked id, tier, balances and points
    are the journal's committed outcome; the discount is the tier's (金卡 pays 85 %)."""
    import tempfile

    from daemon.api.printers import PrinterServicer
    from daemon.station import Station
    from demo.folder import make_store_folder
    from demo.sample import sale_message, sale_total
    from demo.store import READER, member_sale

    with (
        tempfile.TemporaryDirectory() as folder,
        Station.from_config(make_store_folder(Path(folder))) as station,
    ):
        station.start()
        station.wait_for_reader(READER)
        request_id, pays = member_sale(station)
        receipt = PrinterServicer(station)._receipt(sale_message(pays, request_id))
    assert pays == 8500
    subtotal, discount, total = sale_total(pays)
    assert (subtotal, discount, total) == (12350, 1853, 10497)
    assert receipt.totals.discount_fen == discount
    m = receipt.member
    assert m is not None
    assert (m.masked_member_id, m.tier) == ("8860*****3721", "金卡")
    assert (m.balance_before_fen, m.balance_after_fen) == (50000, 50000 - total)
    assert m.discount_fen == discount


def test_standalone_sim_printer_saves_what_it_is_sent(tmp_path: Path) -> None:
    import subprocess
    import sys

    from daemon.printers import PrinterConfig, PrinterService
    from demo.sample import sample_receipt

    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-m", "sim.printer", "--port=0", "--count=1", f"--out={tmp_path}/out"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        port = int(first.rsplit(":", 1)[1])
        cfg = PrinterConfig(id="manual", port=port, poll_interval_s=0.05)
        with PrinterService(cfg, tmp_path / "spool.db") as service:
            job = service.submit(sample_receipt())
            assert service.wait_job(job.id, 10).state.value == "PRINTED"
        rest = child.stdout.read()
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert "康师傅红烧牛肉面（桶装）" in rest
    assert (tmp_path / "out" / "receipt-0001.png").stat().st_size > 10_000

"""Receipt → ESC/POS bytes → simulated printer → the same content back, over every link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from daemon.printers import (
    Item,
    JobState,
    Payment,
    Receipt,
    ReceiptEncoder,
    Totals,
    format_fen,
    get_profile,
)
from daemon.printers.commands import GS_R_PAPER
from sim.printer import (
    Barcode,
    Cut,
    DrawerKick,
    PrintedReceipt,
    QrCode,
    RasterImage,
    VirtualPrinter,
    render_text,
)
from tests.printers.helpers import (
    job_writes,
    pty_service,
    sample_receipt,
    simple_receipt,
    tcp_service,
)


def _print_direct(
    profile: str, receipt_kwargs: dict[str, Any] | None = None
) -> tuple[Receipt, PrintedReceipt]:
    prof = get_profile(profile)
    receipt = sample_receipt() if receipt_kwargs is None else simple_receipt(**receipt_kwargs)
    sim = VirtualPrinter(chars_per_line=prof.chars_per_line)
    sim.receive(ReceiptEncoder(prof).encode(receipt))
    if prof.cutter:
        assert len(sim.completed) == 1
        return receipt, sim.completed[0]
    assert sim.completed == []  # no cutter: the receipt is torn off, nothing ends it
    return receipt, sim.current


def test_chinese_member_receipt_reads_back_with_every_field() -> None:
    receipt, out = _print_direct("zh-80")
    texts = "\n".join(out.texts())
    assert out.errors == []
    for item in receipt.items:
        assert item.name.split()[0] in texts
        assert format_fen(item.amount_fen) in texts
    assert receipt.member is not None
    for needle in ("8860********3721", "金卡", "¥500.00", "¥388.35", "+111", "2456", "储值卡支付"):
        assert needle in texts
    assert "¥117.33" in out.line_with("合计").text
    assert out.line_with("合计").runs[0].bold
    assert out.line_with("悦来便利店").runs[0].width == 2
    assert [q.data.decode() for q in out.of_type(QrCode)] == [receipt.qr]
    assert [b.data.decode() for b in out.of_type(Barcode)] == [receipt.barcode]
    assert out.cut == Cut(partial=True)


def test_item_columns_align_by_display_width_not_characters() -> None:
    receipt, out = _print_direct("zh-80")
    rows = [out.line_with(item.name.split()[0]) for item in receipt.items]
    for item, row in zip(receipt.items, rows, strict=True):
        amount = format_fen(item.amount_fen)
        price = format_fen(item.unit_price_fen)
        # every row is exactly 48 cells and its last 24 are ASCII columns 5 + 9 + 10 wide,
        # so the numbers start at the same cell whatever the name's mix of Hanzi and Latin
        assert row.cells == 48, row.text
        tail = row.text[-24:]
        assert tail[:5].strip() == str(item.quantity), row.text
        assert tail[5:14].strip() == price, row.text
        assert tail[14:].strip() == amount, row.text
        assert row.cell_of(amount, last=True) == 48 - len(amount)
    # the Hanzi really were double-byte Kanji-mode characters, the ASCII single-byte
    first = rows[1]
    assert any(r.kanji and "康师傅" in r.text for r in first.runs)
    assert any(not r.kanji and "3" in r.text for r in first.runs)


def test_text_without_hanzi_but_with_yen_and_fullwidth_punctuation_is_not_mojibake() -> None:
    _receipt, out = _print_direct("zh-80", {"footer": ("¥", "（会员）", "，。！")})
    texts = out.texts()
    for line in ("¥", "（会员）", "，。！"):
        assert line in texts
    assert out.errors == []


def test_58mm_profile_puts_numbers_under_the_name_and_fits_32_cells() -> None:
    _, out = _print_direct("zh-58")
    assert all(line.cells <= 32 for line in out.lines())
    row = out.line_with("x3")
    assert row.cell_of("16.50", last=True) + len("16.50") == 32


def test_printer_without_chinese_font_gets_hanzi_lines_as_raster_images() -> None:
    _receipt, out = _print_direct("western-80")
    texts = out.texts()
    assert "Coca-Cola 330ml             1     3.50      3.50" in texts
    images = out.of_type(RasterImage)
    assert images, "Chinese lines must be rasterised"
    assert all(img.width == 576 and img.height == 24 for img in images[1:])
    assert all(img.black_dots() > 0 for img in images)
    assert not any(run.kanji for line in out.lines() for run in line.runs)


def test_open_drawer_flag_kicks_the_configured_pin_after_the_cut() -> None:
    prof = get_profile("zh-80")
    sim = VirtualPrinter()
    sim.receive(ReceiptEncoder(prof).encode(simple_receipt(open_drawer=True), 5, 120))
    assert sim.drawer_kicks == [DrawerKick(pin=5, on_ms=120, off_ms=120)]
    assert sim.drawer_open


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_service_prints_through_the_real_connector(tmp_path: Path, link: str) -> None:
    ctx = tcp_service(tmp_path) if link == "tcp" else pty_service(tmp_path)
    with ctx as (service, sim, _server):
        job = service.submit(sample_receipt())
        done = service.wait_job(job.id, 10)
        assert done.state is JobState.PRINTED
        assert len(sim.completed) == 1
        assert "康师傅红烧牛肉面（桶装）" in "\n".join(sim.completed[0].texts())
        assert job_writes(service) == [job.data + GS_R_PAPER]  # one write for the whole job


def test_plain_text_preview_keeps_columns() -> None:
    _, out = _print_direct("zh-80")
    text = render_text(out)
    assert "康师傅红烧牛肉面（桶装）    3     5.50     16.50" in text
    assert "-- partial cut --" in text


_NAME_CHARS = st.sampled_from(list("苹果牛奶面包（）¥，ABCxyz0189 -"))


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.text(_NAME_CHARS, min_size=1, max_size=20), min_size=1, max_size=6))
@example(names=["000 000¥¥¥¥¥¥¥¥00¥¥"])  # word-wrapped it took 3 lines: refused (a rare flake)
def test_any_mix_of_hanzi_and_latin_keeps_the_number_columns(names: list[str]) -> None:
    names = [n if n.strip() else "x" + n for n in names]
    items = tuple(Item(n, i + 1, 100 * (i + 1), 100 * (i + 1) ** 2) for i, n in enumerate(names))
    total = sum(i.amount_fen for i in items)
    receipt = simple_receipt(
        items=items,
        totals=Totals(subtotal_fen=total, total_fen=total),
        payments=(Payment("Cash", total),),
    )
    sim = VirtualPrinter()
    sim.receive(ReceiptEncoder(get_profile("zh-80")).encode(receipt))
    out = sim.completed[0]
    assert out.errors == []
    amounts = [format_fen(i.amount_fen) for i in items]
    rows = [line for line in out.lines() if line.text.rstrip().endswith(tuple(amounts))]
    rows = [r for r in rows if not r.text.startswith(("小计", "合计", "Cash"))]
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        assert row.cells == 48
        assert row.text[-24:].split() == [
            str(item.quantity),
            format_fen(item.unit_price_fen),
            format_fen(item.amount_fen),
        ]


def test_item_names_wrap_at_spaces_not_inside_latin_words() -> None:
    from daemon.printers.textwidth import wrap

    assert wrap("三只松鼠每日坚果礼盒 750g 30袋装", 24) == ["三只松鼠每日坚果礼盒", "750g 30袋装"]
    assert wrap("A very long product name with words", 24) == [
        "A very long product name",
        "with words",
    ]
    assert wrap("苹果汁苹果汁苹果汁苹果汁苹果汁", 24) == ["苹果汁苹果汁苹果汁苹果汁", "苹果汁"]
    assert wrap("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 24) == ["ABCDEFGHIJKLMNOPQRSTUVWX", "YZ"]
    # whole words would need a third line here: break inside the word instead
    assert wrap("000 000¥¥¥¥¥¥¥¥00¥¥", 24) == ["000 000¥¥¥¥¥¥¥¥0", "0¥¥"]


@pytest.mark.parametrize("profile", ["zh-80", "zh-58", "western-80"])
def test_technician_test_page_shows_rulers_and_aligned_chinese(
    tmp_path: Path, profile: str
) -> None:
    cpl = get_profile(profile).chars_per_line
    with tcp_service(tmp_path, printer=VirtualPrinter(cpl), profile=profile) as (svc, sim, _):
        job = svc.test_print()
        assert svc.wait_job(job.id, 5).state is JobState.PRINTED
    page = sim.completed[0] if sim.completed else sim.current
    texts = page.texts()
    assert "".join(str(i % 10) for i in range(1, cpl + 1)) in texts
    if profile != "western-80":
        assert any(profile in t for t in texts)
        assert page.line_with("中文对齐").cells == cpl
        assert page.line_with("ASCII align").cells == cpl
    else:
        assert page.of_type(RasterImage)  # the Chinese lines were rasterised

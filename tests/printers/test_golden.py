"""Exact ESC/POS bytes for every receipt element, as a commented protocol trace.

The GB18030 values were looked up in the code table (苹 C6BB, 果 B9FB, ¥ 81308436, （ A3A8 …),
not produced by the encoder under test.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from daemon.printers import Header, MemberSection, Payment, ReceiptEncoder, Totals, get_profile
from daemon.printers import commands as cmd
from daemon.printers.receipt import Item
from tests.printers.helpers import simple_receipt

ZH80 = ReceiptEncoder(get_profile("zh-80"))
ZH58 = ReceiptEncoder(get_profile("zh-58"))
SP = b" "


def h(text: str) -> bytes:
    """Hex with spaces and comments allowed: one command per line."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_receipt_starts_with_init_and_code_table() -> None:
    data = ZH80.encode(simple_receipt())
    assert data.startswith(
        h("""
        1b 40     # ESC @        initialise
        1b 74 00  # ESC t 0      code table PC437
        """)
    )


def test_store_name_is_centred_bold_double_size_and_every_style_is_reset() -> None:
    assert ZH80.header(Header("TEST")) == h("""
        1b 61 01     # ESC a 1     centre
        1b 45 01     # ESC E 1     bold on
        1d 21 11     # GS ! 0x11   double width and height
        54 45 53 54  # "TEST"
        0a           # LF
        1d 21 00     # GS ! 0      normal size
        1b 45 00     # ESC E 0     bold off
        1b 61 00     # ESC a 0     left
        """)


def test_chinese_line_is_bracketed_by_kanji_mode_and_encoded_gb18030() -> None:
    assert ZH80.text_line("苹果") == h("""
        1c 26        # FS &        Kanji (Chinese) mode on
        c6 bb b9 fb  # 苹果 in GB18030
        1c 2e        # FS .        Kanji mode off
        0a           # LF
        """)


def test_yen_and_fullwidth_punctuation_without_hanzi_still_use_kanji_mode() -> None:
    assert ZH80.text_line("¥1（会员）") == h("""
        1c 26                    # FS &   Kanji mode on
        81 30 84 36              # ¥      (GB18030 four-byte)
        31                       # "1"
        a3 a8 bb e1 d4 b1 a3 a9  # （会员）
        1c 2e                    # FS .   Kanji mode off
        0a                       # LF
        """)


def test_ascii_line_needs_no_mode_switch() -> None:
    assert ZH80.text_line("Total 1.00") == b"Total 1.00" + h("0a  # LF")


def test_item_row_pads_by_display_width() -> None:
    wide = ZH80.items((Item("苹果汁", 1, 450, 450),))
    row = wide.split(b"\n", 1)[1]  # after the column header line
    assert row == (
        h("1c 26  # FS & Kanji mode on")
        + h("c6 bb b9 fb d6 ad  # 苹果汁: 3 Hanzi = 6 cells")
        + SP * 18  # pad the 24-cell name column (6 + 18)
        + b"    1"  # quantity, 5 cells
        + b"     4.50"  # unit price, 9 cells
        + b"      4.50"  # amount, 10 cells
        + h("1c 2e  # FS . Kanji mode off")
        + h("0a     # LF")
    )


def test_totals_member_and_payment_rows_are_label_left_value_right() -> None:
    totals = ZH80.totals(Totals(subtotal_fen=1050, total_fen=1050))
    assert totals.startswith(
        h("1c 26 d0 a1 bc c6  # FS &, 小计") + SP * 37 + h("81 30 84 36  # ¥") + b"10.50"
    )
    assert h("1b 45 01  # ESC E 1 bold: the total") + h("1c 26 ba cf bc c6  # FS &, 合计") in totals
    member = ZH80.member(MemberSection("8860********3721", "金卡", 0, 5000, 3950, 10, 110))
    assert member.startswith(
        h("1c 26 bb e1 d4 b1 bf a8 ba c5  # FS &, 会员卡号")
        + SP * 24  # 48 - 8 cells of label - 16 of ID
        + b"8860********3721"
        + h("1c 2e 0a  # FS . LF")
    )
    assert b"+10" in member
    assert b"110" in member
    assert ZH80.payments((Payment("Cash", 1050),)) == (
        h("1c 26  # FS & Kanji mode on: the row holds a ¥")
        + b"Cash"
        + SP * 37  # 48 - 4 - 7 cells
        + h("81 30 84 36  # ¥ (two cells in Kanji mode)")
        + b"10.50"
        + h("1c 2e 0a  # FS . LF")
    )


def test_qr_code_is_native_model_2() -> None:
    assert ZH80.qr("ABC") == h("""
        1b 61 01                    # ESC a 1       centre
        1d 28 6b 04 00 31 41 32 00  # GS ( k fn165  QR model 2
        1d 28 6b 03 00 31 43 06     # GS ( k fn167  module size 6 dots
        1d 28 6b 03 00 31 45 31     # GS ( k fn169  error correction M
        1d 28 6b 06 00 31 50 30     # GS ( k fn180  store 3 bytes of data:
        41 42 43                    #               "ABC"
        1d 28 6b 03 00 31 51 30     # GS ( k fn181  print the symbol
        1b 61 00                    # ESC a 0       left
        """)


def test_barcode_is_code128_set_b_with_hri_below() -> None:
    assert ZH80.barcode("A-1") == h("""
        1b 61 01           # ESC a 1   centre
        1d 68 50           # GS h 80   bar height 80 dots
        1d 77 02           # GS w 2    module width 2 dots
        1d 48 02           # GS H 2    HRI text below
        1d 6b 49 05 7b 42  # GS k 73 n=5 CODE128, "{B" code set B
        41 2d 31           # "A-1"
        1b 61 00           # ESC a 0   left
        """)


def test_cut_partial_full_or_feed_when_no_cutter() -> None:
    assert ZH80.finish(cut=True) == h("1d 56 42 03  # GS V 66 3: feed 3 lines, partial cut")
    assert ReceiptEncoder(get_profile("zh-80", partial_cut=False)).finish(True) == h(
        "1d 56 41 03  # GS V 65 3: feed 3 lines, full cut"
    )
    assert ZH58.finish(cut=True) == h("1b 64 04  # ESC d 4: no cutter, feed to the tear bar")


@pytest.mark.parametrize(
    ("pin", "pulse", "expected"),
    [
        (2, 100, "1b 70 00 32 32  # ESC p 0 50 50: pin 2, 100 ms on, 100 ms off"),
        (5, 250, "1b 70 01 7d 7d  # ESC p 1 125 125: pin 5, 250 ms"),
    ],
)
def test_drawer_kick(pin: int, pulse: int, expected: str) -> None:
    assert cmd.drawer_kick(pin, pulse) == h(expected)


def test_logo_is_a_raster_bit_image() -> None:
    img = Image.new("L", (8, 2), 255)
    img.putpixel((0, 0), 0)
    img.putpixel((7, 1), 0)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert ZH80.header(Header("X", logo_png=buf.getvalue())).startswith(
        h("""
        1b 61 01                 # ESC a 1   centre
        1d 76 30 00 01 00 02 00  # GS v 0 m=0, 1 byte wide, 2 dots high
        80 01                    # row 0: leftmost dot black; row 1: rightmost dot black
        1b 61 00                 # ESC a 0   left
        """)
    )


def test_status_and_print_confirmation_requests() -> None:
    assert (
        h("""
        10 04 01  # DLE EOT 1  printer status
        10 04 02  # DLE EOT 2  offline cause
        10 04 03  # DLE EOT 3  error cause
        10 04 04  # DLE EOT 4  roll paper sensor
        """)
        == cmd.DLE_EOT_ALL
    )
    assert h("1d 72 01  # GS r 1: paper sensor, answered after prior data") == cmd.GS_R_PAPER

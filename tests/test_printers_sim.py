"""The simulated printer on its own: a byte stream decoded the way a real printer would."""

from __future__ import annotations

import io

from PIL import Image

from daemon.printers import Header, ReceiptEncoder, get_profile
from sim.printer import RasterImage, VirtualPrinter, render_png
from tests.fixtures_printers import sample_receipt, simple_receipt


def h(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_byte_by_byte_arrival_decodes_the_same_as_one_chunk() -> None:
    data = ReceiptEncoder(get_profile("zh-80")).encode(sample_receipt())
    whole, trickle = VirtualPrinter(), VirtualPrinter()
    whole.receive(data)
    for i in range(len(data)):
        trickle.receive(data[i : i + 1])
    assert trickle.completed[0].texts() == whole.completed[0].texts()
    assert trickle.completed[0].errors == []


def test_dle_eot_bytes_inside_image_data_are_not_status_requests() -> None:
    answers: list[bytes] = []
    sim = VirtualPrinter()
    sim.attach(answers.append)
    sim.receive(
        h("""
        1d 76 30 00 03 00 01 00  # GS v 0: 3 bytes wide, 1 dot high
        10 04 01                 # image data that looks like DLE EOT 1
        10 04 01                 # a real DLE EOT 1 at a command boundary
        """)
    )
    assert answers == [b"\x12"]
    assert sim.current.of_type(RasterImage)[0].bits == b"\x10\x04\x01"


def test_kanji_mode_off_means_single_byte_code_table() -> None:
    sim = VirtualPrinter()
    sim.receive(
        h("""
        1b 74 13     # ESC t 19  PC858
        d5 0a        # € in PC858, LF
        c6 bb 0a     # the GB18030 bytes of 苹 without FS &: two PC858 characters
        1c 26 c6 bb 1c 2e 0a  # FS & 苹 FS .
        """)
    )
    lines = sim.current.texts()
    assert lines[0] == "€"
    assert lines[1] != "苹"
    assert len(lines[1]) == 2
    assert lines[2] == "苹"
    assert sim.current.lines()[2].cells == 2


def test_broken_input_is_reported_not_hidden() -> None:
    sim = VirtualPrinter()
    sim.receive(h("1c 26 c6 1c 2e 0a  # truncated double-byte character") + h("1b 99 1d 56 42 00"))
    errors = sim.completed[0].errors
    assert any("double-byte" in e for e in errors)
    assert any("1b 99" in e for e in errors)


def test_euro_prints_on_western_profile_via_code_table() -> None:
    sim = VirtualPrinter()
    enc = ReceiptEncoder(get_profile("western-80"))
    sim.receive(enc.encode(simple_receipt(footer=("Prices in € incl. VAT",))))
    assert "Prices in € incl. VAT" in sim.completed[0].texts()


def test_stored_logo_prints_as_image_and_renders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img = Image.new("L", (64, 32), 255)
    img.paste(0, (8, 8, 56, 24))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    enc = ReceiptEncoder(get_profile("zh-80"), stored_logo=buf.getvalue())
    sim = VirtualPrinter()
    sim.receive(enc.encode(simple_receipt(header=Header("TEST", use_stored_logo=True))))
    [logo] = sim.completed[0].of_type(RasterImage)
    assert (logo.width, logo.height, logo.align) == (64, 32, "center")
    assert logo.black_dots() == 48 * 16
    png = render_png(sim.completed[0], tmp_path / "r.png")
    with Image.open(png) as out:
        assert out.width == 48 * 12 + 32

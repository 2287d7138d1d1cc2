"""The simulated printer on its own: a byte stream decoded the way a real printer would."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from daemon.printers import Header, ReceiptEncoder, get_profile
from sim.printer import RasterImage, VirtualPrinter, render_png
from tests.printers.helpers import sample_receipt, simple_receipt


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


def test_stored_logo_prints_as_image_and_renders(tmp_path: Path) -> None:
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


# Command prefixes and parameter bytes the tokenizer and decoder branch on, mixed with any byte.
_PIECES = st.sampled_from(
    [b"\x1d(k", b"\x1dv0", b"\x1dk", b"\x1dV", b"\x1dr", b"\x1d!", b"\x1b@", b"\x1bt",
     b"\x1bp", b"\x1b*", b"\x1b!", b"\x1c&", b"\x1c.", b"\x10\x04", b"\x10\x05",
     b"\x10\x14", b"\x10", b"\n", b"\x81", b"\x31C", b"\x31P"]
)  # fmt: skip
_GARBAGE = st.lists(st.one_of(_PIECES, st.binary(min_size=1, max_size=3)), max_size=16).map(
    b"".join
)


@settings(max_examples=300, deadline=None)
@given(garbage=_GARBAGE)
def test_garbage_bytes_never_crash_the_simulated_printer(garbage: bytes) -> None:
    """A transport thread calls receive(): an exception there would silently kill the printer.
    Whatever arrives, the sim keeps answering status and reports what it could not print."""
    sim = VirtualPrinter()
    answers: list[bytes] = []
    sim.attach(answers.append)
    sim.receive(garbage)
    sim.receive(b"\n\x1dV\x42\x00")  # a line end and a cut, to flush whatever is pending
    assert sim.bytes_received == len(garbage) + 5
    assert sim.status_byte(1) & 0x93 == 0x12  # still a well-formed DLE EOT answer


def test_undefined_code_table_byte_and_short_qr_function_are_reported() -> None:
    sim = VirtualPrinter()
    sim.receive(
        h("""
        1b 74 10                 # ESC t 16  WPC1252
        41 81 0a                 # "A", 0x81 (undefined in cp1252), LF
        1d 28 6b 02 00 31 43     # GS ( k fn167 module size, parameter missing
        10 ff                    # DLE followed by no real-time command
        1d 56 42 00              # GS V 66 0 partial cut
        """)
    )
    [receipt] = sim.completed
    assert receipt.texts()[0] == "A\ufffd"
    assert receipt.errors == [
        "byte 81 undefined in code table 16",
        "GS ( k function 0x43 without its parameter",
        "ignored control byte 10",
    ]

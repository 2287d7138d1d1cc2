"""Bad receipts and bad printer config fail at submission with errors naming the field/key."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from daemon.errors import ConfigError, InvalidArgument, ReceiptInvalid
from daemon.printers import (
    Header,
    Item,
    MemberSection,
    Payment,
    PrinterConfig,
    ReceiptEncoder,
    Spool,
    Totals,
    get_profile,
)
from tests.printers.helpers import simple_receipt, with_changes

ENC = ReceiptEncoder(get_profile("zh-80"))


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 0).save(buf, "PNG")
    return buf.getvalue()


def _items(*items: Item) -> dict[str, Any]:
    total = sum(i.amount_fen for i in items)
    return {
        "items": items,
        "totals": Totals(subtotal_fen=total, total_fen=total),
        "payments": (Payment("Cash", total),),
    }


BASE = simple_receipt()
MEMBER = BASE.member
assert MEMBER is not None

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("header line too long", {"header": Header("S", ("x" * 49,))}, "header.lines[0]"),
    ("store name too wide", {"header": Header("悦" * 13)}, "header.store_name"),
    ("footer too wide in Hanzi", {"footer": ("谢" * 25,)}, "footer[0]"),
    ("lone surrogate", {"footer": ("ok\ud800",)}, "footer[0]"),
    ("escape injection", {"footer": ("\x1bp\x00\x32\x32",)}, "footer[0]"),
    ("C1 control", {"receipt_no": "A\x85"}, "receipt_no"),
    ("too many items", _items(*[Item("a", 1, 1, 1)] * 201), "items"),
    ("no items", _items(), "items"),
    ("too many footer lines", {"footer": ("x",) * 11}, "footer"),
    ("name over two lines", _items(Item("长" * 25, 1, 100, 100)), "items[0].name"),
    ("float price", _items(Item("a", 1, 1.5, 2)), "items[0].unit_price_fen"),  # type: ignore[arg-type]
    ("negative amount", _items(Item("a", 1, 100, -100)), "items[0].amount_fen"),
    ("bool amount", _items(Item("a", 1, 100, True)), "items[0].amount_fen"),
    ("float quantity", _items(Item("a", 0.5, 100, 50)), "items[0].quantity"),  # type: ignore[arg-type]
    (
        "subtotal mismatch",
        {"totals": Totals(subtotal_fen=1, total_fen=1), "payments": (Payment("C", 1),)},
        "totals.subtotal_fen",
    ),
    ("payments short", {"payments": (Payment("Cash", 1000),)}, "payments"),
    (
        "float total",
        {"totals": Totals(subtotal_fen=1050, total_fen=10.5)},  # type: ignore[arg-type]
        "totals.total_fen",
    ),
    (
        "negative change",
        {"totals": Totals(subtotal_fen=1050, total_fen=1050, change_fen=-50)},
        "totals.change_fen",
    ),
    (
        "float points",
        {"member": with_changes(MEMBER, points_earned=1.5)},
        "member.points_earned",
    ),
    ("float payment", {"payments": (Payment("Cash", 1050.0),)}, "payments[0].amount_fen"),  # type: ignore[arg-type]
    (
        "unmasked member id",
        {"member": with_changes(MEMBER, masked_member_id="8860123456783721")},
        "member.masked_member_id",
    ),
    (
        "negative balance",
        {"member": with_changes(MEMBER, balance_after_fen=-1)},
        "member.balance_after_fen",
    ),
    ("qr too big", {"qr": "x" * 513}, "qr"),
    ("barcode not ascii", {"barcode": "单号1"}, "barcode"),
    ("oversized logo", {"header": Header("S", logo_png=_png(577, 10))}, "header.logo_png"),
    ("too tall logo", {"header": Header("S", logo_png=_png(100, 513))}, "header.logo_png"),
    ("not an image", {"header": Header("S", logo_png=b"GIF89a-nope")}, "header.logo_png"),
]


@pytest.mark.parametrize(("why", "changes", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_receipt_names_the_field(why: str, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ReceiptInvalid) as err:
        ENC.encode(with_changes(BASE, **changes))
    assert err.value.field == field, why
    assert err.value.reason == "RECEIPT_INVALID"
    assert field in str(err.value)


def test_bad_receipt_is_never_spooled(tmp_path: Path) -> None:
    from tests.printers.helpers import tcp_service

    with tcp_service(tmp_path) as (service, _sim, _srv):
        with pytest.raises(ReceiptInvalid):
            service.submit(with_changes(BASE, footer=("\ud800",)))
        assert service.spool.jobs("front") == []


def test_masked_member_section_is_accepted_as_is() -> None:
    member = MemberSection("****3721", "白金", 0, 0, 0, 0, 0)
    assert b"****3721" in ENC.encode(with_changes(BASE, member=member))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"backend": "bluetooth"}, "printers.p1.backend"),
        ({"port": 70000}, "printers.p1.port"),
        ({"port": "9100"}, "printers.p1.port"),
        ({"backend": "serial"}, "printers.p1.device"),
        ({"backend": "usb"}, "printers.p1.usb_vendor"),
        ({"drawer_pin": 3}, "printers.p1.drawer_pin"),
        ({"drawer_pulse_ms": 1000}, "printers.p1.drawer_pulse_ms"),
        ({"profile": "tm-t88"}, "printers.p1.profile"),
        ({"colour": "red"}, "printers.p1.colour"),
        ({"poll_interval_s": 0}, "printers.p1.poll_interval_s"),
    ],
)
def test_bad_printer_config_names_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        PrinterConfig.from_mapping("p1", raw)
    assert err.value.key == key


def test_good_config_and_profile_override() -> None:
    cfg = PrinterConfig.from_mapping("p1", {"backend": "serial", "device": "/dev/ttyS0"})
    assert cfg.baudrate == 9600
    assert get_profile("zh-58", chinese="none").chinese == "none"
    with pytest.raises(ConfigError) as err:
        get_profile("zh-58", chars_per_line=100)
    assert err.value.key == "profile.chars_per_line"


def test_spool_rejects_unknown_jobs(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        with pytest.raises(InvalidArgument) as err:
            spool.cancel(42)
        assert err.value.field == "job_id"
        assert "no print job 42" in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"GIF89a-nope", "not a readable image"),
        ("wide", "577x10 dots exceeds 576x512"),
    ],
)
def test_bad_stored_logo_is_a_config_error_at_start(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    from daemon.printers import PrinterService

    logo = tmp_path / "logo.png"
    if content == "wide":
        logo.write_bytes(_png(577, 10))
    elif isinstance(content, bytes):
        logo.write_bytes(content)
    cfg = PrinterConfig.from_mapping("p1", {"port": 1, "logo_path": str(logo)})
    with pytest.raises(ConfigError) as err:
        PrinterService(cfg, tmp_path / "s.db")
    assert err.value.key == "printers.p1.logo_path"
    assert message in str(err.value)
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened

"""`carddaemon day show|close|export|print` against `carddaemon serve` of the simulated store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.cli.conftest import Store


def test_show_export_print_then_close_the_day(store: Store, tmp_path: Path) -> None:
    shown = store.run("day", "show")
    assert shown.code == 0, shown.err
    assert "business day " in shown.out
    assert ": open" in shown.out.splitlines()[0]
    assert "net cash" in shown.out
    doc = store.run("day", "show", "--json").json()
    day = doc["settlement"]["business_day"]
    iso = f"{day['year']:04d}-{day['month']:02d}-{day['day']:02d}"
    exported = store.run("day", "export", "--day", iso)
    assert exported.code == 0, exported.err
    (row,) = list(csv.DictReader(io.StringIO(exported.out)))
    assert row["business_day"] == iso
    target = tmp_path / "day.csv"
    wrote = store.run("day", "export", "--output", str(target))
    assert (wrote.code, wrote.out.strip()) == (0, f"wrote {target}")
    assert target.read_text(encoding="utf-8").startswith("business_day,pc,")
    printed = store.run("day", "print")
    assert printed.code == 0, printed.err
    assert printed.out.startswith("settlement slip queued as printers/receipt/jobs/")
    closed = store.run("day", "close", "--day", iso)
    assert closed.code == 0, closed.err
    assert ": closed " in closed.out.splitlines()[0]
    again = store.run("day", "close", "--day", iso)
    assert again.code == 1
    assert again.err.startswith("carddaemon day close: DAY_ALREADY_CLOSED: business day ")


def test_bad_input_names_the_flag_and_exits_2(store: Store) -> None:
    bad = store.run("day", "show", "--day", "2026-02-30")
    assert bad.code == 2
    assert "--day '2026-02-30': not a date" in bad.err
    early = store.run("day", "close", "--day", "2099-01-01")
    assert early.code == 2
    assert "INVALID_ARGUMENT: --day '2099-01-01': 2099-01-01 has not begun" in early.err
    nowhere = store.run("day", "print", "--printer", "kitchen")
    assert nowhere.code == 2
    assert "DEVICE_NOT_FOUND: --printer 'kitchen'" in nowhere.err

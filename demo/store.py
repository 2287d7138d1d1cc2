"""The simulated store: what `make run` shows, built the way the daemon builds a store PC.

The store comes from its config file (``demo/store.toml``, backends ``sim``) through
:class:`daemon.station.Station`, exactly as a store PC's ``/etc/carddaemon/carddaemon.toml``
does: card jobs run on the reader's worker thread, receipts go through the durable spool, scans
through the scan stream and the event hub. Only the hands are simulated: a card laid on the
reader or pulled away, a code scanned, paper coming out of the printer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import CardDaemonError, WriteUnconfirmed
from daemon.membercard.requests import Debit, IssueCard, IssueSpec, ReadCard
from daemon.mifare import decode_dump, encode_value_block, probe_order
from daemon.mifare.access import AccessConditions
from daemon.mifare.geometry import CardSize, block_count, first_block, sector_count, trailer_block
from daemon.mifare.trailer import build_trailer
from daemon.readers.storage import StorageCard
from daemon.readers.workers import JobContext
from daemon.scanners import Role, ScanEvent
from daemon.station import Station
from demo.folder import make_store_folder
from demo.receipt import print_sale
from demo.sample import sale_message, sale_total
from sim.backend import SimBackend
from sim.reader import SimReader
from sim.scanners.backend import SimScanner
from sim.store import transport_card

__all__ = ["SALE_REQUEST_ID", "main", "member_sale", "read_card_image"]

logger = logging.getLogger(__name__)

DEMO_UID = bytes.fromhex("5A3C9E12")
MEMBER_UID = bytes.fromhex("04A7E3C2")
DEMO_KEY_B = bytes.fromhex("B0B1B2B3B4B5")  # a public dictionary key: fine for a demo card
READER = "front"


@dataclass(frozen=True)
class CardImage:
    """What a technician's reader could see of a card."""

    uid: bytes
    image: bytes
    unread: frozenset[int]
    apdus: int
    in_field_ms: float


def read_card_image(
    card: StorageCard, sectors: int, size: CardSize = CardSize.CLASSIC_1K
) -> CardImage:
    """Read every sector it can, trying the public dictionary keys as key A then key B."""
    total = block_count(size)
    image = bytearray(16 * total)
    unread: set[int] = set()
    uid = card.uid()
    keys = probe_order()
    start = card.trace.count
    for sector in range(sectors):
        first = first_block(sector, size)
        last = trailer_block(sector, size)
        blocks = range(first, last + 1)
        if not _authenticate_any(card, first, keys):
            unread.update(blocks)
            continue
        for block in blocks:
            try:
                image[16 * block : 16 * block + 16] = card.read_block(block)
            except CardDaemonError:
                unread.add(block)
    return CardImage(uid, bytes(image), frozenset(unread), card.trace.count - start, 0.0)


def _authenticate_any(card: StorageCard, block: int, keys: tuple[bytes, ...]) -> bool:
    for key_type in (0x60, 0x61):
        for key in keys:
            try:
                card.load_key(key, slot=0, key_type=key_type)
                card.authenticate(block, key_type=key_type, slot=0)
                return True
            except CardDaemonError:
                card.reconnect()  # a failed authentication drops all state until re-select
    return False


def _personalise_demo_sector(card: StorageCard) -> None:
    """Make sector 1 a stored-value sector the way the daemon would (value blocks + trailer)."""
    card.load_key(b"\xff" * 6, slot=0)
    card.authenticate(4, key_type=0x60, slot=0)
    card.write_block(4, encode_value_block(12345, 4))
    card.write_block(5, encode_value_block(12345, 5))
    conditions = AccessConditions.of("110", "110", "100", "011")
    card.write_block(7, build_trailer(b"\xff" * 6, conditions, DEMO_KEY_B))


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def _sim_reader(station: Station) -> SimReader:
    backend = station.backend
    assert isinstance(backend, SimBackend), "the demo store runs on the simulated readers"
    return backend.readers[0]


def _present(station: Station, card: object) -> None:
    """Lay ``card`` on the reader and wait until the station has seen it arrive."""
    with station.hub.subscribe(sources=f"readers/{READER}", kinds="card_present") as seen:
        _sim_reader(station).insert(card)  # type: ignore[arg-type]
        seen.wait_for(lambda e: not e.snapshot, timeout_s=10)


def _take_away(station: Station) -> None:
    with station.hub.subscribe(sources=f"readers/{READER}", kinds="card_removed") as gone:
        _sim_reader(station).remove()
        gone.wait_for(lambda e: True, timeout_s=10)


def _technician(station: Station) -> None:
    print("== a technician looks at a card ==")
    reader = _sim_reader(station)
    _present(station, transport_card(DEMO_UID))
    profile = station.profile(READER)

    def look(ctx: JobContext) -> CardImage:
        card = StorageCard(ctx.connection, profile.dialect, trace=profile.trace)
        _personalise_demo_sector(card)
        card.reconnect()
        return read_card_image(card, sector_count(CardSize.CLASSIC_1K))

    before = reader.clock.now_ms
    seen = station.run(READER, look, timeout_s=30)
    elapsed = reader.clock.now_ms - before
    _take_away(station)
    readable = 16 - len(seen.unread) // 4
    print(
        f"read {readable} of 16 sectors in {seen.apdus} APDUs, "
        f"{elapsed:.1f} ms simulated in-field time\n"
    )
    chunks = decode_dump(seen.image, unread=seen.unread).format_text().split("\n\n")
    print("\n\n".join(chunks[:3]))  # the header, sector 0 and the value sector
    print(f"\n(sectors 2-15 are in factory state; {len(chunks) - 3} more sections omitted)")


SALE_REQUEST_ID = "demo-sale-0042"


def member_sale(station: Station) -> tuple[str, int]:
    """Issue a member card on the reader and pay the demo sale with it: the discount is the
    member's tier's (from the store's config file), the Debit the sale's total. Returns the
    Debit's request_id and what the tier pays (hundredths of a percent), for the receipt."""
    card = transport_card(MEMBER_UID)
    _present(station, card)
    today = dt.date.today()
    spec = IssueSpec(
        "8860123403721",
        tier=2,
        valid_until=today.replace(year=today.year + 2),
        balance=50000,
        points=2345,
    )
    station.card(READER, IssueCard(spec, request_id="demo-issue-1"))
    tier = station.programme.tiers[spec.tier]
    print(
        f"issued member card {spec.member_id} on UID {MEMBER_UID.hex(' ').upper()}: "
        f"{tier.name}, opening balance {_yuan(spec.balance)}"
    )
    info = station.card(READER, ReadCard())
    subtotal, discount, total = sale_total(info.discount)
    paid = station.card(READER, Debit(request_id=SALE_REQUEST_ID, amount=total))
    print(
        f"sale 0042: {_yuan(subtotal)} less {_yuan(discount)} "
        f"({info.tier_name}: pays {info.discount / 100:g}% of the price), "
        f"paid {_yuan(paid.amount)} from stored value, "
        f"+{paid.points_delta} points -> balance {_yuan(paid.balance)}, {paid.points} points"
    )
    return SALE_REQUEST_ID, info.discount


def _member_story(station: Station) -> tuple[str, int]:
    """Issue a member card, pay with it, pull it away mid-payment, and settle that."""
    print("\n== a member pays at the till ==")
    reader = _sim_reader(station)
    sale = member_sale(station)
    card = reader.card

    reader.faults.arm()
    reader.faults.tear(11, outcome="garbage")  # the customer pulls the card mid-write
    try:
        station.card(READER, Debit(request_id="demo-sale-0043", amount=2000))
        print("sale 0043: completed before the card left")
    except WriteUnconfirmed as exc:
        print(
            f"sale 0043: card pulled mid-write -> {exc.reason}: the cashier is asked "
            "to present the card again"
        )
    reader.faults.clear()
    if reader.card is not None:
        _take_away(station)
    _present(station, card)
    after = station.card(READER, ReadCard())
    retry = station.card(READER, Debit(request_id="demo-sale-0043", amount=2000))
    how = "replayed the recorded outcome" if retry.replayed else "applied it once"
    print(
        f"card presented again: balance {_yuan(after.balance)} read from the card alone; "
        f"retrying sale 0043 with the same request id {how} -> {_yuan(retry.balance)}"
    )
    _take_away(station)
    return sale


_SCANS = (
    (b"6901234567892", "]E0"),  # a product (EAN-13)
    (b"0106901234567892\x1d10LOT2026\x1d3103000750", "]C1"),  # a GS1 label: GTIN, batch, weight
    (b"134567890123456789", "]Q1"),  # a WeChat Pay payment code
    (b"2812345678901234", "]Q1"),  # an Alipay payment code
)


def _scanner(station: Station) -> list[str]:
    """A few scans as the POS and a technician each see them (payment codes masked)."""
    gun = station.scanner("front").backend
    assert isinstance(gun, SimScanner), "the demo store runs on the simulated scanner"
    scans = station.scans
    assert scans is not None
    gun.wait_open()
    with scans.subscribe(Role.POS) as pos, scans.subscribe(Role.TECHNICIAN) as tech:
        for data, aim in _SCANS:
            gun.inject(data, aim=aim)
            time.sleep(0.01)  # a cashier scans one item at a time

        def seen(sub: object) -> list[ScanEvent]:
            out: list[ScanEvent] = []
            deadline = time.monotonic() + 10
            while len(out) < len(_SCANS) and time.monotonic() < deadline:
                event = sub.get(1)  # type: ignore[attr-defined]
                if isinstance(event.payload, ScanEvent):
                    out.append(event.payload)
            return out

        by_pos, by_tech = seen(pos), seen(tech)
    # the column is as wide as its longest value: a POS value is never cut
    width = max([len("POS sees")] + [len(p.text.replace("\x1d", "<GS>")) for p in by_pos])
    lines = [f"{'seq':>3}  {'kind':<8} {'POS sees':<{width}} technician sees"]
    for p, t in zip(by_pos, by_tech, strict=True):
        c = p.classification
        extra = c.payment or c.member_status or (c.product.kind if c.product else "")
        shown = p.text.replace("\x1d", "<GS>")
        lines.append(
            f"{p.sequence:>3}  {c.kind.value:<8} {shown:<{width}} "
            f"{t.text.replace(chr(0x1D), '<GS>')}" + (f"  [{extra}]" if extra else "")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carddaemon-demo", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write the receipt preview PNG (its folder must exist; default: a file "
        "in a new temporary folder)",
    )
    parser.add_argument("--realtime", action="store_true", help="really wait out reader latency")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    png = args.out or Path(tempfile.mkdtemp(prefix="carddaemon-demo-")) / "receipt.png"
    if png.is_dir():
        parser.error(f"--out {png}: is a folder; name the PNG file to write (e.g. {png}/r.png)")
    if not png.parent.is_dir():
        parser.error(f"--out {png}: the folder {png.parent} does not exist")
    with (
        tempfile.TemporaryDirectory(prefix="carddaemon-store-") as folder,
        Station.from_config(make_store_folder(Path(folder))) as station,
    ):
        station.start()
        station.wait_for_reader(READER)
        _sim_reader(station).realtime = args.realtime
        print(f"simulated store: reader '{station.reader(READER).name}'\n")
        _technician(station)
        request_id, pays = _member_story(station)
        job, png = print_sale(station, sale_message(pays, request_id), "demo-receipt-0042", png)
        print(
            f"\nreceipt {job.name} for card operation {request_id} (member block from the "
            f"journal) printed on the simulated printer; preview: {png}"
        )
        print("\n== the scanner gun ==")
        for line in _scanner(station):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

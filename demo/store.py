"""The simulated store: what `make run` shows until the gRPC daemon exists.

This is the store *around* the simulator, not part of the chip model: it drives the daemon's own
layers (APDU layer, MIFARE codecs, printer spool) against simulated hardware exactly as the daemon
will drive real hardware. A card is presented to a simulated ACR1252U, read sector by sector with
the keys a technician would try, decoded, and a member receipt is printed on a simulated printer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import CardDaemonError, WriteUnconfirmed
from daemon.journal import Journal
from daemon.keystore import Keystore
from daemon.membercard import IssueSpec, MemberCardService, Personaliser, Programme
from daemon.membercard.requests import Debit, IssueCard
from daemon.mifare import decode_dump, encode_value_block, probe_order
from daemon.mifare.access import AccessConditions
from daemon.mifare.geometry import CardSize, block_count, first_block, sector_count, trailer_block
from daemon.mifare.trailer import build_trailer
from daemon.readers.storage import StorageCard
from demo.receipt import print_demo_receipt
from demo.sample import DemoMember
from demo.scans import run_scanner_demo
from sim.reader import SimReader
from sim.store import transport_card

__all__ = ["main", "read_card_image"]

logger = logging.getLogger(__name__)

DEMO_UID = bytes.fromhex("5A3C9E12")
MEMBER_UID = bytes.fromhex("04A7E3C2")
DEMO_KEY_B = bytes.fromhex("B0B1B2B3B4B5")  # a public dictionary key: fine for a demo card


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
    return CardImage(uid, bytes(image), frozenset(unread), card.trace.count, 0.0)


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


def _member_story(reader: SimReader) -> DemoMember:
    """Issue a member card, pay with it, pull it away mid-payment, and settle that."""
    card = transport_card(MEMBER_UID)
    reader.insert(card)
    keystore = Keystore.generate()  # demo keys: in memory only, gone when the demo ends
    today = dt.date.today()
    with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "journal.sqlite3") as journal:
        programme = Programme()
        service = MemberCardService(keystore, journal, programme)
        issuer = Personaliser(keystore, journal, programme)
        spec = IssueSpec(
            "8860123403721",
            tier=2,
            valid_until=today.replace(year=today.year + 2),
            balance=50000,
            points=2345,
        )
        with StorageCard(reader.connect()) as sc:
            issuer.issue(sc, IssueCard(spec, request_id="demo-issue-1"))
        print(
            f"issued member card {spec.member_id} on UID {MEMBER_UID.hex(' ').upper()}: "
            f"{programme.tiers[spec.tier].name}, opening balance {_yuan(spec.balance)}"
        )

        with StorageCard(reader.connect()) as sc:
            info = service.read(sc)
            paid = service.debit(sc, Debit(request_id="demo-sale-0042", amount=11165))
        print(
            f"sale 0042: paid {_yuan(paid.amount)} from stored value, "
            f"+{paid.points_delta} points -> balance {_yuan(paid.balance)}, "
            f"{paid.points} points ({info.tier_name}, {info.discount / 100:g}% of price)"
        )

        reader.faults.arm()
        reader.faults.tear(11, outcome="garbage")  # the customer pulls the card mid-write
        try:
            with StorageCard(reader.connect()) as sc:
                service.debit(sc, Debit(request_id="demo-sale-0043", amount=2000))
            print("sale 0043: completed before the card left")
        except WriteUnconfirmed as exc:
            print(
                f"sale 0043: card pulled mid-write -> {exc.reason}: the cashier is asked "
                "to present the card again"
            )
        reader.faults.clear()
        reader.insert(card)
        with StorageCard(reader.connect()) as sc:
            after = service.read(sc)
            retry = service.debit(sc, Debit(request_id="demo-sale-0043", amount=2000))
        how = "replayed the recorded outcome" if retry.replayed else "applied it once"
        print(
            f"card presented again: balance {_yuan(after.balance)} read from the card alone; "
            f"retrying sale 0043 with the same request id {how} -> {_yuan(retry.balance)}"
        )
    reader.remove()
    masked = spec.member_id[:4] + "*" * (len(spec.member_id) - 8) + spec.member_id[-4:]
    return DemoMember(
        masked, info.tier_name, paid.balance_before, paid.balance, paid.points_delta, paid.points
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="where to write the receipt PNG")
    parser.add_argument("--realtime", action="store_true", help="really wait out reader latency")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    out_dir = args.out or Path(tempfile.mkdtemp(prefix="carddaemon-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with SimReader(model="acr1252u", realtime=args.realtime) as reader:
        print(f"simulated store: reader '{reader.name}'\n")
        print("== a technician looks at a card ==")
        reader.insert(transport_card(DEMO_UID))
        with StorageCard(reader.connect()) as card:
            _personalise_demo_sector(card)
            card.reconnect()
            before = reader.clock.now_ms
            seen = read_card_image(card, sector_count(CardSize.CLASSIC_1K))
            elapsed = reader.clock.now_ms - before
        reader.remove()
        readable = 16 - len(seen.unread) // 4
        print(
            f"read {readable} of 16 sectors in {seen.apdus} APDUs, "
            f"{elapsed:.1f} ms simulated in-field time\n"
        )
        chunks = decode_dump(seen.image, unread=seen.unread).format_text().split("\n\n")
        print("\n\n".join(chunks[:3]))  # the header, sector 0 and the value sector
        print(f"\n(sectors 2-15 are in factory state; {len(chunks) - 3} more sections omitted)")

        print("\n== a member pays at the till ==")
        member = _member_story(reader)

    png = print_demo_receipt(out_dir, member)
    print(f"\nreceipt printed on the simulated printer; preview: {png}")

    print("\n== the scanner gun ==")
    for line in run_scanner_demo():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

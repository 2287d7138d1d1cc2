"""`carddaemon-sim`: the simulator as a product.

``serve`` presents a simulated card (a blank transport card, or one loaded from a dump) to a
pcscd that has the vsmartcard vpcd driver, so a POS or a technician tool can be tried against
it through the real PC/SC stack. vpcd listens on all interfaces: use it on a test machine only,
never on a store PC.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.errors import CardDaemonError, InvalidArgument

if TYPE_CHECKING:
    from sim.card import SimCard

__all__ = ["main"]

logger = logging.getLogger(__name__)

VPCD_DEFAULT_PORT = 35963


def _card_from_dump(path: Path) -> SimCard:
    """A card from any dump format ``carddaemon decode`` reads; the simulator's own JSON keeps
    its variant (gen2, gen1a). A chip needs every block and key: a partial dump is refused."""
    from daemon.mifare.dumpfile import read_dump_bytes
    from daemon.mifare.dumpformats import parse
    from daemon.mifare.geometry import sector_count
    from sim import dumps
    from sim.card import CardSize as SimSize
    from sim.card import SimCard

    raw = read_dump_bytes(path)
    if b'"carddaemon-sim-card"' in raw:
        return dumps.load_json(path)
    try:
        image = parse(raw, str(path))
    except InvalidArgument as exc:
        raise InvalidArgument("--dump", exc.message) from None
    unknown = [s for s in range(sector_count(image.size)) if image.keys_known(s) != (True, True)]
    if image.unread or unknown:
        raise InvalidArgument(
            "--dump",
            f"{path}: a simulated card needs every block and key; this {image.format} dump "
            f"lacks {len(image.unread)} block(s) and the keys of {len(unknown)} sector(s)",
        )
    sizes: dict[int, SimSize] = {5: "mini", 16: "1k", 40: "4k"}
    return SimCard(image.uid, size=sizes[sector_count(image.size)], memory=image.data)


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim.reader import SimReader
    from sim.store import transport_card
    from sim.vpcd import VpcdBridge

    if args.dump:
        card = _card_from_dump(args.dump)
    else:
        try:
            uid = bytes.fromhex(args.uid)
        except ValueError:
            raise InvalidArgument("--uid", f"{args.uid!r} is not hex") from None
        card = transport_card(uid)
    reader = SimReader(model=args.model)
    reader.insert(card)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with VpcdBridge([(reader, args.port)], host=args.host) as bridge:
        trouble = bridge.slot(args.port).wait_answered(args.wait)
        if trouble is not None:  # "serving" only once pcscd's vpcd has spoken to us
            print(f"carddaemon-sim serve: {trouble}", file=sys.stderr)
            return 1
        print(
            f"serving a simulated {args.model} card (UID {card.uid.hex().upper()}) "
            f"to vpcd at {args.host}:{args.port}; Ctrl-C to stop",
            flush=True,
        )
        stop.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carddaemon-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="present a simulated card to pcscd through vpcd")
    p.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="card dump: .mfd/.bin, Proxmark .eml/.json, MIFARE Classic Tool, carddaemon JSON",
    )
    p.add_argument("--uid", default="11223344", help="UID of a blank card (hex)")
    p.add_argument("--model", default="acr1252u", help="reader model the card sits in")
    p.add_argument("--host", default="127.0.0.1", help="where vpcd listens")
    p.add_argument("--port", type=int, default=VPCD_DEFAULT_PORT, help="vpcd port (slot)")
    p.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for pcscd's vpcd to answer before giving up (default 5)",
    )
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except (CardDaemonError, ValueError, OSError) as exc:
        print(f"carddaemon-sim {args.command}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())

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

from daemon.errors import CardDaemonError, InvalidArgument

__all__ = ["main"]

logger = logging.getLogger(__name__)

VPCD_DEFAULT_PORT = 35963


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim import dumps
    from sim.reader import SimReader
    from sim.store import transport_card
    from sim.vpcd import VpcdBridge

    if args.dump:
        # raw image or the simulator's JSON (sim/dumps.py); the simulator uses only the daemon's
        # errors and interfaces, so `carddaemon convert` turns other formats into these
        card = dumps.load(args.dump)
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
        help="card dump: .mfd/.bin/.dump or the simulator's .json (other formats: carddaemon "
        "convert FILE card.mfd)",
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

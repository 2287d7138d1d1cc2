"""``python -m demo.batch``: batch issue from a CSV onto simulated blank cards.

Why here: the product (``daemon/``) never imports the simulator, and the simulator never imports
the member card application; ``demo/`` sits above both. The run is the real one
(:func:`daemon.membercard.batch.run_file`: the config's tiers and cap, CSV validated whole,
restartable results) with cards from a simulated reader instead of an operator's hand.

Tiers and the balance cap come from ``--config`` (default: the demo store's ``store.toml``);
the key file and journal are given on the command line, as the demo store makes fresh ones.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from daemon.config import DaemonConfig
from daemon.membercard.batch import build_parser, run_file
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.reader import SimReader

__all__ = ["main", "sim_cards"]

logger = logging.getLogger(__name__)

STORE_CONFIG = Path(__file__).with_name("store.toml")


def sim_cards(count: int) -> Iterator[StorageCard]:
    """``count`` blank cards with distinct UIDs (04 B0 nn nn), one after the other."""
    reader = SimReader(latency="none")
    for n in range(count):
        reader.remove()
        reader.insert(SimCard.blank(uid=bytes((0x04, 0xB0, n >> 8 & 0xFF, n & 0xFF))))
        yield StorageCard(reader.connect())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("python -m demo.batch")
    parser.set_defaults(config=STORE_CONFIG)
    parser.add_argument("--cards", type=int, required=True, metavar="N", help="blank cards")
    args = parser.parse_args(argv)
    if args.keys is None or args.journal is None:
        parser.error("--keys and --journal are required (the demo has no installed daemon)")
    logging.basicConfig(level=logging.ERROR)  # not the "sim is not carddaemon's own" warning

    def cards(config: DaemonConfig) -> Iterator[StorageCard]:
        return sim_cards(args.cards)

    return run_file(args, cards)


if __name__ == "__main__":
    sys.exit(main())

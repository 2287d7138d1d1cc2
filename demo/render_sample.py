"""``python -m demo.render_sample docs/sample-receipt.png``: the committed preview.

Runs the demo store's sale on the simulated store (``demo/store.toml`` through the station): a
member card issued, the sale debited from it with the tier's discount, then the receipt naming
the Debit's request_id printed through the station's PrinterService code path (member block
from the journal's committed outcome) to the simulated printer, and rendered as PNG.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
from pathlib import Path

from daemon.station import Station
from demo.folder import make_store_folder
from demo.receipt import print_sale
from demo.sample import sale_message
from demo.store import READER, member_sale

__all__ = ["main", "render_sample"]

logger = logging.getLogger(__name__)


def render_sample(png: Path) -> Path:
    """Print the demo store's sale receipt on a fresh simulated store and write it to ``png``."""
    with (
        tempfile.TemporaryDirectory(prefix="carddaemon-sample-") as folder,
        Station.from_config(make_store_folder(Path(folder))) as station,
    ):
        station.start()
        station.wait_for_reader(READER)
        with contextlib.redirect_stdout(io.StringIO()):
            request_id, pays = member_sale(station)
        _, path = print_sale(station, sale_message(pays, request_id), "sample-receipt", png)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("png", type=Path, help="where to write the PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # not the sim backends warnings
    args.png.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.write(f"wrote {render_sample(args.png)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

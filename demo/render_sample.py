"""``python -m demo.render_sample docs/sample-receipt.png``: the committed preview.

Builds the sample Chinese member receipt, prints it through the daemon's printer layer (spool,
worker, python-escpos Network connector) to the simulated printer over TCP, renders the PNG.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from demo.receipt import print_via_daemon
from demo.sample import sample_receipt

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("png", type=Path, help="where to write the PNG")
    parser.add_argument("--profile", default="zh-80", help="printer profile (zh-80, zh-58, ...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    path = print_via_daemon(sample_receipt(), args.png, profile=args.profile)
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m sim.printer``: a standalone virtual ESC/POS printer for manual tests.

Listens on a TCP port (like a printer's port 9100) and/or a pseudo-terminal, shows every
receipt as text on stdout and saves it as text + PNG. Point a real POS or ``carddaemon`` at it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from functools import partial
from pathlib import Path

from sim.printer.device import VirtualPrinter
from sim.printer.render import render_png, render_text
from sim.printer.transports import PtyPrinterServer, TcpPrinterServer

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _more_than(printer: VirtualPrinter, n: int) -> bool:
    return len(printer.completed) > n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.printer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="TCP port, 0 = any, -1 = none")
    parser.add_argument("--pty", action="store_true", help="also offer a serial pseudo-terminal")
    parser.add_argument("--baud", type=int, default=9600, help="pty line speed")
    parser.add_argument("--columns", type=int, default=48, help="48 (80 mm) or 32 (58 mm)")
    parser.add_argument("--paper-lines", type=int, default=None, help="paper left (default ∞)")
    parser.add_argument("--out", type=Path, default=Path("sim-receipts"), help="where to save")
    parser.add_argument("--count", type=int, default=0, help="exit after N receipts (0 = never)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    printer = VirtualPrinter(chars_per_line=args.columns, paper_lines=args.paper_lines)
    out = sys.stdout
    with contextlib.ExitStack() as stack:
        if args.port >= 0:
            tcp = stack.enter_context(TcpPrinterServer(printer, args.host, args.port))
            out.write(f"listening on tcp://{tcp.host}:{tcp.port}\n")
        if args.pty:
            pty = stack.enter_context(PtyPrinterServer(printer, args.baud))
            out.write(f"serial printer on {pty.path} at {args.baud} baud\n")
        out.flush()
        done = 0
        try:
            while not args.count or done < args.count:
                if not printer.wait_for(partial(_more_than, n=done), 0.5):
                    continue
                receipt = printer.completed[done]
                done += 1
                text = render_text(receipt, args.columns)
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"receipt-{done:04d}.txt").write_text(text, encoding="utf-8")
                png = render_png(receipt, args.out / f"receipt-{done:04d}.png", args.columns)
                out.write(f"--- receipt {done} ({png}) ---\n{text}")
                for problem in receipt.errors:
                    out.write(f"!!! {problem}\n")
                out.flush()
        except KeyboardInterrupt:
            out.write("stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

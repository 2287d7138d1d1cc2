"""Simulated ESC/POS receipt printer: decodes what the daemon sends, answers status queries,
takes scripted faults (paper out, cover open, offline, unplug) and renders receipts.

The core (tokenizer, decoder, device, transports, render) is written from the ESC/POS reference
and imports nothing from ``daemon``; ``sample``, ``demo`` and ``render_sample`` are drivers that
print through the daemon's printing layer.
"""

from sim.printer.device import VirtualPrinter
from sim.printer.model import (
    Barcode,
    Cut,
    DrawerKick,
    Feed,
    PrintedReceipt,
    QrCode,
    RasterImage,
    Run,
    TextLine,
)
from sim.printer.render import render_png, render_text
from sim.printer.transports import PtyPrinterServer, TcpPrinterServer

__all__ = [
    "Barcode",
    "Cut",
    "DrawerKick",
    "Feed",
    "PrintedReceipt",
    "PtyPrinterServer",
    "QrCode",
    "RasterImage",
    "Run",
    "TcpPrinterServer",
    "TextLine",
    "VirtualPrinter",
    "render_png",
    "render_text",
]

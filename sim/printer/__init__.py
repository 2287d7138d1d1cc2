"""Simulated ESC/POS receipt printer: decodes what the daemon sends, answers status queries,
takes scripted faults (paper out, cover open, offline, unplug) and renders receipts.

Written from the ESC/POS reference; imports nothing from ``daemon``. What prints *through* the
daemon onto it (the sample receipt, the demo) lives above the daemon, in the ``demo`` package.
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

"""Receipt printers: ESC/POS receipts over python-escpos connectors, status and spool.

Importing this package imports no hardware library: usb, serial and escpos load only when a
backend of that kind is created (names resolve through :mod:`daemon.registry`).
"""

from daemon.printers.backend import PrinterBackend, PrinterConfig, create_backend
from daemon.printers.encoder import ReceiptEncoder
from daemon.printers.printer import ReceiptPrinter
from daemon.printers.profiles import PROFILES, PrinterProfile, get_profile
from daemon.printers.receipt import (
    Header,
    Item,
    MemberSection,
    Payment,
    Receipt,
    Totals,
    format_fen,
    validate_receipt,
)
from daemon.printers.service import PrinterService
from daemon.printers.spool import Job, JobState, Spool
from daemon.printers.status import PrinterStatus, parse_status

__all__ = [
    "PROFILES",
    "Header",
    "Item",
    "Job",
    "JobState",
    "MemberSection",
    "Payment",
    "PrinterBackend",
    "PrinterConfig",
    "PrinterProfile",
    "PrinterService",
    "PrinterStatus",
    "Receipt",
    "ReceiptEncoder",
    "ReceiptPrinter",
    "Spool",
    "Totals",
    "create_backend",
    "format_fen",
    "get_profile",
    "parse_status",
    "validate_receipt",
]

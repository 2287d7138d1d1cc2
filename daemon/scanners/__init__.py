"""Barcode scanners: serial and USB HID-POS, code classification, ordered scan streams.

Importing this package imports no hardware library: pyserial, pyusb and (optional) python-evdev
load when a scanner opens its device.
"""

from daemon.scanners.aim import Symbology, split_aim, symbology_for
from daemon.scanners.base import RawScan, ScannerBackend, ScannerState
from daemon.scanners.classify import Classification, Classifier, ScanKind, decode_scan
from daemon.scanners.config import build_backend, build_scanner
from daemon.scanners.events import Role, ScanEvent, StatusEvent, StreamEvent
from daemon.scanners.framing import MissingSuffix, SerialFramer, Terminator
from daemon.scanners.gs1 import Gs1Element, Gs1Error, parse_gs1
from daemon.scanners.gtin import ProductCode, ProductKind, gs1_check_digit, upce_to_upca
from daemon.scanners.hidpos import HidPosAssembler
from daemon.scanners.keymap import KeyTranslator
from daemon.scanners.member import MemberCheck, MemberStatus, MemberTokenVerifier
from daemon.scanners.payment import PaymentProvider, detect_payment, mask_code
from daemon.scanners.serial_port import SerialScanner
from daemon.scanners.stream import ScanStream, role_view
from daemon.scanners.usb_hidpos import HidPosScanner
from daemon.scanners.wedge import KeyboardWedgeScanner
from daemon.scanners.worker import Scanner, ScanSink

__all__ = [
    "Classification",
    "Classifier",
    "Gs1Element",
    "Gs1Error",
    "HidPosAssembler",
    "HidPosScanner",
    "KeyTranslator",
    "KeyboardWedgeScanner",
    "MemberCheck",
    "MemberStatus",
    "MemberTokenVerifier",
    "MissingSuffix",
    "PaymentProvider",
    "ProductCode",
    "ProductKind",
    "RawScan",
    "Role",
    "ScanEvent",
    "ScanKind",
    "ScanSink",
    "ScanStream",
    "Scanner",
    "ScannerBackend",
    "ScannerState",
    "SerialFramer",
    "SerialScanner",
    "StatusEvent",
    "StreamEvent",
    "Symbology",
    "Terminator",
    "build_backend",
    "build_scanner",
    "decode_scan",
    "detect_payment",
    "gs1_check_digit",
    "mask_code",
    "parse_gs1",
    "role_view",
    "split_aim",
    "symbology_for",
    "upce_to_upca",
]

"""Simulated barcode scanners: a serial scanner on a pseudo-terminal and a USB HID-POS scanner
behind a pyusb backend of our own. The daemon reaches both through its real code paths
(pyserial opening a tty, pyusb ``usb.core.find``); only the device on the far side is simulated.
"""

from sim.scanners.codes import make_member_token
from sim.scanners.serial_pty import SimSerialScanner
from sim.scanners.usb_backend import SimHidPosDevice, SimUsbBackend

__all__ = ["SimHidPosDevice", "SimSerialScanner", "SimUsbBackend", "make_member_token"]

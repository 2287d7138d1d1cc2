"""Barcode scanners: serial and USB HID-POS, code classification, ordered scan streams."""

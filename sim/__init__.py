"""The simulator: MIFARE Classic cards, PC/SC readers, vpcd bridge, printers, scanners.

Written from the datasheets on its own: it never uses ``daemon.mifare`` to decide what a card
allows, so a codec bug in the daemon cannot be mirrored here.
"""

"""The simulated store: drivers that sit *above* the daemon and use it as a POS would.

``sim/`` is the hardware below the daemon's transports (chip, readers, printer, scanners); this
package is the other direction: it builds a running daemon station from a config file and drives
it with a story a store person recognises. Nothing in ``daemon/`` or ``sim/`` imports it.
"""

"""carddaemon: the card-terminal and hardware integration daemon for store PCs.

Not to be confused with PyPI's ``python-daemon``, which also imports as ``daemon``: carddaemon
never depends on it, and an environment that has it installed must not be used for carddaemon.
Importing this package imports no hardware library (pyscard, pyusb, pyserial load lazily).
"""

__version__ = "0.1.0"

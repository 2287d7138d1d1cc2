"""Card readers: PC/SC Part 3 APDUs, vendor dialects and reader backends.

Importing this package loads only pure-Python modules: the pyscard backend and the simulator
are imported lazily by the backend registry when a reader is opened.
"""

from daemon.readers.apdu import Command, CommandKind, KeyType
from daemon.readers.connection import CardConnection, Response
from daemon.readers.dialects import DIALECTS, Dialect, ValueOp, detect_dialect, select_dialect
from daemon.readers.fallback import FunctionValueCodec, ValueCodec
from daemon.readers.storage import StorageCard
from daemon.readers.trace import ApduTrace, TraceEntry

__all__ = [
    "DIALECTS",
    "ApduTrace",
    "CardConnection",
    "Command",
    "CommandKind",
    "Dialect",
    "FunctionValueCodec",
    "KeyType",
    "Response",
    "StorageCard",
    "TraceEntry",
    "ValueCodec",
    "ValueOp",
    "detect_dialect",
    "select_dialect",
]

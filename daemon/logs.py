"""Structured logs: one event per line, ``key=value`` (logfmt), journald priorities under systemd.

``level=info logger=daemon.station request_id=sale-1 msg="station started: …"``; under
systemd (``$JOURNAL_STREAM`` set: stderr is a journald stream) each line starts with the
sd-daemon priority marker (``<3>`` error … ``<7>`` debug), so ``journalctl -p warning`` works
without systemd-python. The request id of the gRPC call being served (bound by the guard
interceptor from the request's ``request_id`` field) is on every line logged while serving it.
Messages are the code's own: no handler logs a key, MAC, payment code or member token. As a
last line of defence the formatter also scrubs what has a credential's shape wherever it comes
from (a scan logged as plain text because no member key is configured, a third-party message):
a payment code (:func:`daemon.scanners.payment.detect_payment`) keeps its first and last four
digits, a member QR token (``CDM1.<member>.<expiry>.<mac>``) loses its MAC.

The request id follows a call's card job onto the reader's worker thread (the worker runs each
job in a copy of the submitter's :mod:`contextvars` context), so a Debit's lines all carry it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Final, TextIO

from daemon.scanners.payment import detect_payment, mask_code

__all__ = ["REQUEST_ID", "LogfmtFormatter", "scrub", "setup"]

#: the request id of the call being served ("" outside a call)
REQUEST_ID: Final[contextvars.ContextVar[str]] = contextvars.ContextVar(
    "carddaemon_request_id", default=""
)

#: sd-daemon(3) priorities
_PRIORITY: Final[Mapping[int, int]] = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


#: a run of digits as long as a payment code (checked by its issuer's shape before masking)
_DIGITS: Final = re.compile(r"(?<![0-9])[0-9]{16,24}(?![0-9])")
#: a member QR token: prefix, member id, expiry, then the MAC (hex)
_MEMBER_TOKEN: Final = re.compile(
    r"\b([A-Z][A-Z0-9]{1,7}\.[0-9]{1,20}\.[0-9]{1,12}\.)([0-9a-fA-F]{16,64})\b"
)


def _payment(match: re.Match[str]) -> str:
    code = match.group(0)
    return mask_code(code) if detect_payment(code) is not None else code


def scrub(text: str) -> str:
    """``text`` with payment codes masked and member tokens' MACs starred."""
    text = _MEMBER_TOKEN.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    return _DIGITS.sub(_payment, text)


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' ="\\') and value.isprintable():
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


class LogfmtFormatter(logging.Formatter):
    """One line per record; ``journald=True`` prefixes the ``<N>`` priority."""

    def __init__(self, *, journald: bool = False) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            ("level", record.levelname.lower()),
            ("logger", record.name),
        ]
        request_id = REQUEST_ID.get()
        if request_id:
            fields.append(("request_id", request_id))
        fields.append(("msg", scrub(record.getMessage())))
        if record.exc_info:
            fields.append(("exc", scrub(self.formatException(record.exc_info))))
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields)
        if self.journald:
            level = max((lv for lv in _PRIORITY if lv <= record.levelno), default=logging.DEBUG)
            line = f"<{_PRIORITY[level]}>{line}"
        return line


def setup(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """The root logger: one logfmt handler on stderr (journald markers under systemd)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LogfmtFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

"""Between the contract's messages and the daemon's own values: money, dates, names, cards.

Why one module: a field such as ``Money`` or a resource name ``readers/front`` appears in
many messages; read and written in one place, every RPC refuses the same bad input with the
same words (the field as the client spells it).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Final

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from daemon.api.v1 import common_pb2
from daemon.errors import InvalidAmount, InvalidArgument
from daemon.events import Event
from daemon.readers.monitor import ReaderEvent

__all__ = [
    "CURRENCY",
    "MAX_REQUEST_ID",
    "amount",
    "card",
    "date",
    "from_date",
    "header",
    "money",
    "optional_amount",
    "request_id",
    "resource_id",
    "seconds",
    "timestamp",
]

#: The store's currency. Amounts are fen (1/100).
CURRENCY: Final = "CNY"
#: Longest ``request_id`` a client may send (documented in the contract).
MAX_REQUEST_ID: Final = 64

_CARD_TYPES: Final = {
    "MIFARE Classic 1K": common_pb2.CARD_TYPE_MIFARE_CLASSIC_1K,
    "MIFARE Classic 4K": common_pb2.CARD_TYPE_MIFARE_CLASSIC_4K,
    "MIFARE Mini": common_pb2.CARD_TYPE_MIFARE_MINI,
    "MIFARE Ultralight": common_pb2.CARD_TYPE_MIFARE_ULTRALIGHT,
    "MIFARE Ultralight C": common_pb2.CARD_TYPE_MIFARE_ULTRALIGHT,
}


def timestamp(seconds: float | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return stamp


def header(event: Event, *, extra_dropped: int = 0) -> common_pb2.EventHeader:
    """The bookkeeping every Watch* message carries, from a hub event (``extra_dropped``:
    events a stream itself left out and must count as lost)."""
    return common_pb2.EventHeader(
        sequence=event.seq,
        source=event.source,
        publish_time=timestamp(event.time),
        snapshot=event.snapshot,
        resync=event.resync,
        dropped_before=event.dropped_before + extra_dropped,
    )


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code=CURRENCY, amount_fen=fen)


def amount(value: common_pb2.Money, field: str, *, allow_zero: bool = False) -> int:
    """A request's amount in fen, in the store's currency; ``field`` names it in errors."""
    if not value.currency_code:
        raise InvalidAmount(f"{field}.currency_code", f"required ({CURRENCY})")
    if value.currency_code.upper() != CURRENCY:
        raise InvalidAmount(
            f"{field}.currency_code",
            f"{value.currency_code!r} is not this store's currency ({CURRENCY})",
        )
    fen = value.amount_fen
    if fen < 0 or (fen == 0 and not allow_zero):
        raise InvalidAmount(f"{field}.amount_fen", f"must be above zero, got {fen}")
    return fen


def optional_amount(
    value: common_pb2.Money, present: bool, field: str, *, allow_zero: bool = True
) -> int | None:
    return amount(value, field, allow_zero=allow_zero) if present else None


def request_id(value: str) -> str:
    if not value:
        raise InvalidArgument("request_id", "required: a client-chosen id, the same on a retry")
    if len(value) > MAX_REQUEST_ID:
        raise InvalidArgument(
            "request_id", f"{len(value)} characters; at most {MAX_REQUEST_ID} are allowed"
        )
    return value


def resource_id(name: str, collection: str, field: str) -> str:
    """``readers/front`` (or ``front``) -> ``front``; anything else names ``field``."""
    if not name:
        raise InvalidArgument(field, f"required: a {collection} name such as {collection}/front")
    if "/" in name:
        head, _, tail = name.partition("/")
        if head != collection or not tail or "/" in tail:
            raise InvalidArgument(field, f"{name!r} is not a {collection}/<id> name")
        name = tail
    if len(name) > 128:
        raise InvalidArgument(field, "longer than any device id")
    return name


def seconds(value: Duration, field: str) -> float:
    """A client's Duration in seconds; negative or malformed ones name ``field`` (any length
    a Duration can hold is accepted here: callers cap it)."""
    if value.nanos and (value.seconds > 0 > value.nanos or value.seconds < 0 < value.nanos):
        raise InvalidArgument(field, "seconds and nanos must have the same sign")
    if not -999_999_999 <= value.nanos <= 999_999_999:
        raise InvalidArgument(field, f"nanos {value.nanos} is out of range")
    total = value.seconds + value.nanos / 1e9
    if total < 0:
        raise InvalidArgument(field, f"must not be negative, got {total:g} s")
    return total


def date(value: dt.date | None) -> common_pb2.Date | None:
    return (
        None
        if value is None
        else common_pb2.Date(year=value.year, month=value.month, day=value.day)
    )


def from_date(value: common_pb2.Date, field: str) -> dt.date:
    try:
        return dt.date(value.year, value.month, value.day)
    except ValueError as exc:
        raise InvalidArgument(field, f"{value.year}-{value.month}-{value.day}: {exc}") from None


def card(event: ReaderEvent, present_since: float | None = None) -> common_pb2.Card:
    """The card of a ``card_present`` reader event (UID hex upper-case, ATR, family)."""
    name = event.card_type or "unknown"
    kind = _CARD_TYPES.get(name)
    if kind is None:
        kind = common_pb2.CARD_TYPE_UNSPECIFIED if name == "unknown" else common_pb2.CARD_TYPE_OTHER
    return common_pb2.Card(
        uid=event.uid.hex().upper() if event.uid else "",
        atr=event.atr,
        card_type=kind,
        card_type_name=name,
        present_time=timestamp(present_since),
    )

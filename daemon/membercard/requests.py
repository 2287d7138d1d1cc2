"""Member card requests: each operation's parameters, declared once.

Why: the service, the personaliser, the reader-worker job dispatcher (:mod:`.jobs`) and the
coming gRPC servicer all take these objects, so a parameter is named, typed and defaulted in
one place and a new one cannot be forgotten in a layer in between.

``__post_init__`` checks what is wrong with the request whatever card or programme it meets:
a request_id that is missing or too long, an amount that is not a whole number of fen in the
card's range, a UID that is not hex. Each error is :class:`~daemon.errors.InvalidArgument` (or
its subclass ``InvalidAmount``) naming the field as a client spells it. Rules that depend on
the card or the configured programme (funds, the balance cap, the tier table, bonus steps)
stay in the service and :mod:`.rules`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, fields
from typing import Any

from daemon.errors import InvalidAmount, InvalidArgument
from daemon.membercard.layout import MAX_AMOUNT
from daemon.membercard.rules import check_amount

__all__ = [
    "ANY_CARD",
    "MAX_REQUEST_ID",
    "AdjustPoints",
    "CancelTopUp",
    "CardRequest",
    "ChangeTier",
    "Credit",
    "Debit",
    "EraseCard",
    "IssueCard",
    "IssueSpec",
    "MembershipRequest",
    "ReadCard",
    "RecordRequest",
    "Refund",
    "RenewCard",
    "ReplaceCard",
    "ReversalRequest",
    "ValueRequest",
    "check_request_id",
    "normalise_uid",
    "value_params",
]

logger = logging.getLogger(__name__)

#: Longest request_id a client may send (the journal's key; printable, one line).
MAX_REQUEST_ID = 255
_UID_HEX_LENGTHS = (8, 14, 20)  # 4-, 7- and 10-byte ISO 14443-3 UIDs


def check_request_id(value: object) -> str:
    """A client's idempotency key: a non-empty string of at most :data:`MAX_REQUEST_ID`."""
    if not isinstance(value, str):
        raise InvalidArgument("request_id", f"must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_REQUEST_ID:
        raise InvalidArgument("request_id", f"must be 1..{MAX_REQUEST_ID} characters")
    if not value.isprintable():
        raise InvalidArgument("request_id", "must be printable text on one line")
    return value


def normalise_uid(field_name: str, value: object) -> str:
    """Upper-case hex of a 4-, 7- or 10-byte UID (spaces and colons a technician copies from
    a tool are dropped), so ``04a1b2c3`` and ``04:A1:B2:C3`` name the same card."""
    if not isinstance(value, str):
        raise InvalidArgument(field_name, f"must be a hex string, got {type(value).__name__}")
    text = value.strip().replace(":", "").replace(" ", "").upper()
    try:
        bytes.fromhex(text)
    except ValueError:
        raise InvalidArgument(field_name, f"{value!r} is not hex") from None
    if len(text) not in _UID_HEX_LENGTHS:
        raise InvalidArgument(
            field_name, f"{value!r} is {len(text) // 2} bytes; a card UID has 4, 7 or 10"
        )
    return text


def _optional_uid(request: object, field_name: str) -> None:
    value = getattr(request, field_name)
    if value is not None:
        object.__setattr__(request, field_name, normalise_uid(field_name, value))


def _flag(field_name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(field_name, f"must be true or false, got {value!r}")


@dataclass(frozen=True, slots=True)
class ReadCard:
    """Read the presented card (and settle what an interrupted write left behind)."""

    expected_uid: str | None = None

    def __post_init__(self) -> None:
        _optional_uid(self, "expected_uid")


ANY_CARD = ReadCard()
"""Read whatever card is presented."""


@dataclass(frozen=True, slots=True)
class Debit:
    """Pay ``amount`` fen from stored value; points by tier, or ``points`` if given."""

    request_id: str
    amount: int
    earn_points: bool = True
    points: int | None = None
    expected_uid: str | None = None
    expected_balance: int | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_amount("amount", self.amount)
        _flag("earn_points", self.earn_points)
        if self.points is not None:
            check_amount("points", self.points, allow_zero=True)
        _optional_uid(self, "expected_uid")
        if self.expected_balance is not None:
            check_amount("expected_balance", self.expected_balance, allow_zero=True)


@dataclass(frozen=True, slots=True)
class Credit:
    """Top up ``amount`` fen plus the configured step's bonus (or ``bonus`` if given)."""

    request_id: str
    amount: int
    bonus: int | None = None
    expected_uid: str | None = None
    expected_balance: int | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_amount("amount", self.amount)
        if self.bonus is not None:
            check_amount("bonus", self.bonus, allow_zero=True)
        _optional_uid(self, "expected_uid")
        if self.expected_balance is not None:
            check_amount("expected_balance", self.expected_balance, allow_zero=True)


@dataclass(frozen=True, slots=True)
class AdjustPoints:
    """Add (``delta`` > 0) or redeem (``delta`` < 0) points."""

    request_id: str
    delta: int
    expected_uid: str | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        delta: object = self.delta
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
            raise InvalidAmount("delta", f"must be a non-zero integer, got {delta!r}")
        if abs(delta) > MAX_AMOUNT:
            raise InvalidAmount("delta", f"{delta} is outside -{MAX_AMOUNT}..{MAX_AMOUNT}")
        _optional_uid(self, "expected_uid")


@dataclass(frozen=True, slots=True)
class ChangeTier:
    """Set the card's tier to ``tier``, or (``tier`` None) to what the configured tier rules
    (``upgrade_points``) give for the card's points: an upgrade, a downgrade (yearly
    re-qualification) or no change. Balance and points are untouched."""

    request_id: str
    tier: int | None = None
    expected_uid: str | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        tier: object = self.tier
        if tier is not None and (
            not isinstance(tier, int) or isinstance(tier, bool) or not 0 <= tier <= 0xFF
        ):
            raise InvalidArgument("tier", f"must be an integer in 0..255, got {tier!r}")
        _optional_uid(self, "expected_uid")


@dataclass(frozen=True, slots=True)
class RenewCard:
    """Set the card's validity to ``valid_until`` (renew or shorten), or (None) extend it by the
    configured ``renew_months`` from the later of today and the current expiry."""

    request_id: str
    valid_until: dt.date | None = None
    expected_uid: str | None = None
    no_expiry: bool = False

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        until: object = self.valid_until
        if until is not None and (not isinstance(until, dt.date) or isinstance(until, dt.datetime)):
            raise InvalidArgument("valid_until", f"must be a date, got {type(until).__name__}")
        if isinstance(until, dt.date) and not dt.date(2000, 1, 1) <= until < dt.date(2179, 6, 6):
            raise InvalidArgument("valid_until", f"{until} is outside 2000-01-01..2179-06-05")
        _flag("no_expiry", self.no_expiry)
        if self.no_expiry and until is not None:
            raise InvalidArgument("no_expiry", "give valid_until or no_expiry, not both")
        _optional_uid(self, "expected_uid")


@dataclass(frozen=True, slots=True)
class Refund:
    """Put ``amount`` fen of payment ``original_request_id`` back on the card that paid, taking
    back the points that part earned (:mod:`.reversals`)."""

    request_id: str
    original_request_id: str
    amount: int
    expected_uid: str | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        _original(self)
        check_amount("amount", self.amount)
        _optional_uid(self, "expected_uid")


@dataclass(frozen=True, slots=True)
class CancelTopUp:
    """Take top-up ``original_request_id`` and its bonus back off the card it went onto."""

    request_id: str
    original_request_id: str
    expected_uid: str | None = None

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        _original(self)
        _optional_uid(self, "expected_uid")


def _original(request: Refund | CancelTopUp) -> None:
    try:
        check_request_id(request.original_request_id)
    except InvalidArgument as exc:
        raise InvalidArgument("original_request_id", exc.message.partition(": ")[2]) from None
    if request.original_request_id == request.request_id:
        raise InvalidArgument(
            "original_request_id", "is this request's own request_id; name the operation to reverse"
        )


ReversalRequest = Refund | CancelTopUp
"""Requests that reverse an earlier operation of the same card (linked in the journal)."""

MembershipRequest = ChangeTier | RenewCard
"""Requests that change the member header (tier, validity) with a record write."""

ValueRequest = Debit | Credit | AdjustPoints | Refund | CancelTopUp
"""The requests that change stored value or points (journalled, tear-safe)."""

RecordRequest = ValueRequest | MembershipRequest
"""Every request that writes a record (journalled, tear-safe, one commit point)."""


@dataclass(frozen=True, slots=True)
class IssueSpec:
    """What a new card holds. Checked against the programme (tier table, balance cap) by the
    personaliser, because a batch file is validated whole before any card is touched."""

    member_id: str
    tier: int = 0
    valid_until: dt.date | None = None
    balance: int = 0
    points: int = 0
    generation: int = 0  # replacement generation (set by replace_card, 0 for a new member)

    def journal_params(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id, "tier": self.tier, "balance": self.balance,
            "points": self.points, "generation": self.generation,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class IssueCard:
    """Personalise a transport-state card for ``spec``."""

    spec: IssueSpec
    request_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.spec, IssueSpec):
            raise InvalidArgument("spec", f"must be an IssueSpec, got {type(self.spec).__name__}")
        check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class EraseCard:
    """Put a card back to transport state; ``force`` also destroys value it still holds."""

    request_id: str
    force: bool = False

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        _flag("force", self.force)


@dataclass(frozen=True, slots=True)
class ReplaceCard:
    """Hotlist lost card ``old_uid`` and move its member, balance and points to the new one."""

    old_uid: str
    request_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "old_uid", normalise_uid("old_uid", self.old_uid))
        check_request_id(self.request_id)


CardRequest = ReadCard | ValueRequest | MembershipRequest | IssueCard | EraseCard | ReplaceCard
"""Every request a reader job can carry."""


def value_params(request: RecordRequest) -> dict[str, Any]:
    """What the journal hashes to recognise a retry: every field but the request_id."""
    out = {f.name: getattr(request, f.name) for f in fields(request) if f.name != "request_id"}
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in out.items()}

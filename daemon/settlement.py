"""The daily settlement (日结) of one store PC, computed from its journal.

Why from the journal and nothing else: the journal is the store-side truth of every value
change (each COMMITTED request carries its outcome), so the totals reconcile exactly with the
day's committed operations, and a request whose outcome is still unknown is counted apart
(``pending``), never guessed into the money totals.

Business day ``D`` runs from ``D day_cutoff_hour:00`` to the same hour on ``D + 1`` (store local
time, ``[membercard] day_cutoff_hour``). An operation belongs to the business day of the moment
it committed, except that a day closed with :meth:`Settlement.close` never changes: what
commits after the close of its day counts in the next day (and, if that one is closed too, the
next). A closed day's totals are frozen in the journal (``closed_days``) when it is closed and
always read back from there.

Counted per day: top-ups (cash taken, bonus granted), payments, refunds (and the points they
took back), cancelled top-ups (cash handed back, bonus taken back), points earned (payments and
AdjustPoints) and redeemed, cards issued (and their opening balances) and replaced,
``unconfirmed`` (operations answered WRITE_UNCONFIRMED that a later read of their card settled
during the day, whether applied or not) and ``pending`` (intents of the day whose outcome is still
unknown: present those cards; they are not in the totals).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from daemon.errors import DayAlreadyClosed, InvalidArgument
from daemon.journal import Journal, RequestState
from daemon.membercard.rules import Programme
from daemon.printers.receipt import Header, Item, Payment, Receipt, Totals, format_fen

__all__ = ["DaySettlement", "Settlement", "settlement_slip"]

logger = logging.getLogger(__name__)

_DAY = dt.timedelta(days=1)
_COMMITTED = (
    "SELECT request_id, op, params, outcome, updated FROM requests WHERE state=?"
    " AND updated>=? AND updated<?"
)
_PENDING = "SELECT request_id, updated FROM requests WHERE state=? AND updated>=? AND updated<?"
_SETTLED = (
    "SELECT DISTINCT request_id, at FROM audit WHERE event='pending_resolved' AND at>=? AND at<?"
)


@dataclass(frozen=True, slots=True)
class DaySettlement:
    """One business day's totals at one store PC (fen and points are integers)."""

    business_day: dt.date
    pc: str
    day_cutoff_hour: int
    closed_at: float | None = None  # epoch seconds; None while the day is open
    top_ups: int = 0
    top_up_cash: int = 0
    top_up_bonus: int = 0
    payments: int = 0
    payment_amount: int = 0
    refunds: int = 0
    refund_amount: int = 0
    refund_points: int = 0  # points the refunds took back
    cancelled_top_ups: int = 0
    cancelled_cash: int = 0
    cancelled_bonus: int = 0
    points_earned: int = 0
    points_redeemed: int = 0
    cards_issued: int = 0
    issued_balance: int = 0  # opening balances of the cards issued
    cards_replaced: int = 0
    unconfirmed: int = 0
    pending: int = 0

    @property
    def net_cash(self) -> int:
        """Cash the drawer took for member cards: top-ups minus cancelled top-ups."""
        return self.top_up_cash - self.cancelled_cash

    @property
    def stored_value_change(self) -> int:
        """What the day's operations changed on the cards' balances (issue balances apart)."""
        return (
            self.top_up_cash + self.top_up_bonus - self.payment_amount + self.refund_amount
            - self.cancelled_cash - self.cancelled_bonus
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["business_day"] = self.business_day.isoformat()
        out["net_cash"] = self.net_cash
        out["stored_value_change"] = self.stored_value_change
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DaySettlement:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["business_day"] = dt.date.fromisoformat(str(data["business_day"]))
        return cls(**values)

    def csv(self) -> str:
        """One header line and one line of figures (fen, points, counts)."""
        return to_csv([self])


def to_csv(days: Iterable[DaySettlement]) -> str:
    """Settlements as CSV: a header line, then one line per business day."""
    rows = [d.as_dict() for d in days]
    buffer = io.StringIO()
    columns = [f.name for f in dataclasses.fields(DaySettlement)] + [
        "net_cash",
        "stored_value_change",
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        row["closed_at"] = _iso_time(row["closed_at"])
        writer.writerow(row)
    return buffer.getvalue()


def _iso_time(at: float | None) -> str:
    return "" if at is None else dt.datetime.fromtimestamp(at).isoformat(timespec="seconds")


class Settlement:
    """The settlement of one store PC's journal."""

    def __init__(self, journal: Journal, programme: Programme, pc: str | None = None) -> None:
        self.journal = journal
        self.programme = programme
        self.pc = pc or socket.gethostname()

    def today(self) -> dt.date:
        """The business day an operation committed now counts in (the next one once the
        current business day is closed)."""
        return self._day_of(self.journal.now(), self.journal.closed_days())

    def day(self, day: dt.date | None = None) -> DaySettlement:
        """Business day ``day`` (default: the current one): frozen if closed, else as of now."""
        day = self.today() if day is None else day
        closed = self.journal.closed_days()
        frozen = closed.get(day.isoformat())
        if frozen is not None:
            return DaySettlement.from_dict(frozen[1])
        return self._compute(day, closed)

    def close(self, day: dt.date | None = None) -> DaySettlement:
        """Freeze business day ``day`` (default: the current one); audited as ``day_closed``.

        Closing the current day before its cut-off is allowed (the store closes at night):
        what commits later that business day counts in the next day."""
        day = self.today() if day is None else day
        now = self.journal.now()  # taken first: everything stamped up to it is in the totals
        if day > self._day_of(now, self.journal.closed_days()):
            raise InvalidArgument(
                "business_day", f"{day} has not begun yet (today is {self.today()}); "
                "nothing closed",
            )  # fmt: skip
        closed = self.journal.closed_days()
        self._refuse_closed(day, closed)
        totals = dataclasses.replace(self._compute(day, closed, until=now), closed_at=now)
        if not self.journal.close_day(day.isoformat(), now, totals.as_dict()):
            self._refuse_closed(day, self.journal.closed_days())
        self.journal.audit("day_closed", detail=totals.as_dict())
        logger.info("business day %s closed: net cash %s", day, format_fen(totals.net_cash))
        return totals

    @staticmethod
    def _refuse_closed(day: dt.date, closed: dict[str, tuple[float, dict[str, Any]]]) -> None:
        done = closed.get(day.isoformat())
        if done is not None:
            raise DayAlreadyClosed(
                f"business day {day} was closed at {_iso_time(done[0])}; a closed day never "
                f"changes (net cash {format_fen(int(done[1].get('net_cash', 0)))}); later "
                "operations count in the next day"
            )

    # --- from the journal ------------------------------------------------------------------

    def _day_of(self, at: float, closed: dict[str, tuple[float, dict[str, Any]]]) -> dt.date:
        day = self.programme.business_day(at)
        while (done := closed.get(day.isoformat())) is not None and at > done[0]:
            day += _DAY
        return day

    def _compute(
        self,
        day: dt.date,
        closed: dict[str, tuple[float, dict[str, Any]]],
        until: float | None = None,
    ) -> DaySettlement:
        first = day  # operations after the close of a run of closed days before spill here
        while (first - _DAY).isoformat() in closed:
            first -= _DAY
        start = self.programme.day_start(first)
        end = self.programme.day_start(day + _DAY)
        if until is not None:
            end = min(end, until + 1e-6)
        figures: dict[str, int] = {}
        rows = self.journal.report(_COMMITTED, (RequestState.COMMITTED, start, end))
        for _rid, op, params, outcome, at in rows:
            if self._day_of(float(at), closed) == day:
                _count(figures, str(op), json.loads(params), json.loads(outcome or "{}"))
        pending = self.journal.report(_PENDING, (RequestState.PENDING, start, end))
        figures["pending"] = sum(1 for _, at in pending if self._day_of(float(at), closed) == day)
        settled = self.journal.report(_SETTLED, (start, end))
        figures["unconfirmed"] = len(
            {rid for rid, at in settled if self._day_of(float(at), closed) == day}
        )
        return DaySettlement(day, self.pc, self.programme.day_cutoff_hour, **figures)


def _add(figures: dict[str, int], **values: int) -> None:
    for name, value in values.items():
        figures[name] = figures.get(name, 0) + value


def _count(figures: dict[str, int], op: str, params: dict[str, Any], out: dict[str, Any]) -> None:
    """Add one committed operation's outcome to the day's figures."""
    amount, bonus = int(out.get("amount", 0)), int(out.get("bonus", 0))
    points = int(out.get("points_delta", 0))
    if op == "debit":
        _add(figures, payments=1, payment_amount=amount, points_earned=max(points, 0))
    elif op == "credit":
        _add(figures, top_ups=1, top_up_cash=amount, top_up_bonus=bonus)
    elif op == "refund":
        _add(figures, refunds=1, refund_amount=amount, refund_points=-points)
    elif op == "cancel_topup":
        _add(figures, cancelled_top_ups=1, cancelled_cash=amount, cancelled_bonus=bonus)
    elif op == "points":
        _add(figures, points_earned=max(points, 0), points_redeemed=max(-points, 0))
    elif op == "issue" and params.get("replacing") is None:
        _add(figures, cards_issued=1, issued_balance=int(out.get("balance", 0)))
    elif op == "replace":
        _add(figures, cards_replaced=1)


def settlement_slip(day: DaySettlement, store_name: str = "日结 Settlement") -> Receipt:
    """The settlement as a receipt for the receipt printer (32 columns fit): the cash lines as
    items (top-ups, less cancelled top-ups as the discount, the net as the drawer's cash
    payment), every other figure as a footer line."""
    state = f"closed {_iso_time(day.closed_at)}" if day.closed_at else "OPEN, not closed"
    lines = (
        f"PC {day.pc}"[:32],
        f"Day {day.business_day} from {day.day_cutoff_hour:02d}:00",
        state,
    )
    footer = (
        f"Net cash {format_fen(day.net_cash)}",
        f"Bonus given x{day.top_ups} {format_fen(day.top_up_bonus)}",
        f"Payments x{day.payments} {format_fen(day.payment_amount)}",
        f"Refunds x{day.refunds} {format_fen(day.refund_amount)}",
        f"Cancelled bonus {format_fen(day.cancelled_bonus)}",
        f"Points +{day.points_earned} -{day.points_redeemed} refunded -{day.refund_points}",
        f"Cards issued {day.cards_issued} {format_fen(day.issued_balance)}",
        f"Cards replaced {day.cards_replaced}",
        f"Unconfirmed {day.unconfirmed} pending {day.pending}",
        f"Card balances {format_fen(day.stored_value_change)}",
    )
    cash = day.top_up_cash
    paid = max(day.net_cash, 0)
    return Receipt(
        header=Header(store_name, lines),
        items=(Item(f"Top-ups x{day.top_ups}", 1, cash, cash),),
        totals=Totals(cash, paid, cash - paid),
        payments=(Payment("Cash", paid),),
        receipt_no=f"Z-{day.business_day:%Y%m%d}",
        timestamp=_iso_time(day.closed_at),
        footer=tuple(line[:32] for line in footer),
    )

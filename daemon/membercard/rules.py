"""Programme rules: the tier table and top-up bonus steps, from config, all in integers.

Config (a table of the daemon's TOML file, here as the parsed mapping)::

    [membercard]
    balance_cap = 10000000          # fen on one card (100 000 yuan)
    hotlist_on_fraud = true
    abandoned_claim_age_s = 3600    # CLAIMED requests with no intent older than this: closed
    renew_months = 12               # RenewCard without a date: months added to the expiry
    refund_days = 30                # a payment may be refunded for this many days after it
    cancel_window = "business_day"  # a top-up may be cancelled on its own business day only,
                                    # or an integer: minutes after the top-up (1..10080)
    day_cutoff_hour = 4             # the business day (日结) runs from 04:00 to 04:00 (0..23)
    reread_after_s = 5              # a card left on the reader: ReadCard re-reads its sectors
                                    # after this long (0..60; 0 = on every ReadCard)
    [[membercard.tiers]]            # index in this list = tier byte on the card
    name = "普通会员"
    discount = 9500                 # per 10000 of the price paid (9.5折)
    points_per_100_yuan = 1
    upgrade_points = 0              # optional: ChangeTier without a tier applies these rules
    [[membercard.bonus]]            # 存1000送50: top up >= 100000 fen, get 5000 fen
    min_topup = 100000
    bonus = 5000

Discounts are informational for the POS (it prices the sale); the card only stores the tier.
Points earned on a debit are ``amount // 10000 * points_per_100_yuan`` (whole 100 yuan).
A business day ``D`` runs from ``D day_cutoff_hour:00`` to the same hour on ``D + 1``, store
local time: a sale at 01:30 with the default cut-off counts in the day before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.errors import ConfigError, InvalidAmount
from daemon.membercard.layout import MAX_AMOUNT

__all__ = ["DEFAULT_TIERS", "BonusStep", "Programme", "Tier", "check_amount"]

logger = logging.getLogger(__name__)

_FEN_PER_100_YUAN = 10000
_MAX_CLAIM_AGE = 30 * 86400
_MAX_REFUND_DAYS = 3650
_MAX_REREAD_S = 60
_MAX_CANCEL_MINUTES = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    discount: int  # per 10000: 8500 = 85 % of the price (8.5折)
    points_per_100_yuan: int
    upgrade_points: int | None = None
    """Tier rules: a card holding at least this many points qualifies for this tier (the
    highest qualifying tier is applied, up or down); None: set only explicitly."""


@dataclass(frozen=True, slots=True)
class BonusStep:
    min_topup: int  # fen
    bonus: int  # fen


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("普通会员", 9500, 1),
    Tier("银卡", 9000, 2),
    Tier("金卡", 8500, 3),
    Tier("白金卡", 8000, 5),
    Tier("黑金卡", 8000, 8),
)


def check_amount(field_name: str, value: object, *, allow_zero: bool = False) -> int:
    """An integer amount in fen (or points), > 0 (or >= 0), that fits the card's int32."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmount(field_name, f"must be an integer, got {type(value).__name__}")
    low = 0 if allow_zero else 1
    if not low <= value <= MAX_AMOUNT:
        raise InvalidAmount(field_name, f"{value} is outside {low}..{MAX_AMOUNT}")
    return value


@dataclass(frozen=True, slots=True)
class Programme:
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    bonus_steps: tuple[BonusStep, ...] = ()
    balance_cap: int = 10_000_000
    hotlist_on_fraud: bool = True
    abandoned_claim_age_s: int = 3600
    renew_months: int = 12
    refund_days: int = 30
    cancel_window_minutes: int | None = None
    """None: a top-up may be cancelled during its own business day only."""
    day_cutoff_hour: int = 4
    reread_after_s: float = 5.0
    """A card still lying on the reader is answered from its last full read for this long
    (0: every ReadCard reads the card's sectors again)."""

    def business_day(self, at: float) -> dt.date:
        """The business day (store local time) of the instant ``at`` (epoch seconds)."""
        local = dt.datetime.fromtimestamp(at) - dt.timedelta(hours=self.day_cutoff_hour)
        return local.date()

    def day_start(self, day: dt.date) -> float:
        """Epoch seconds at which business day ``day`` begins (its cut-off hour, local)."""
        start = dt.datetime.combine(day, dt.time(self.day_cutoff_hour))
        return start.timestamp()

    def tier_by_rules(self, current: int, points: int) -> tuple[int, str]:
        """(tier, rule) the configured ``upgrade_points`` give for ``points``: the highest
        tier whose threshold is reached (an upgrade or, at re-qualification, a downgrade);
        ``current`` when no tier has a threshold or none is reached."""
        reached = [
            i for i, t in enumerate(self.tiers)
            if t.upgrade_points is not None and points >= t.upgrade_points
        ]  # fmt: skip
        if not reached:
            return current, "no_rule" if all(
                t.upgrade_points is None for t in self.tiers
            ) else "upgrade_points"
        return max(reached), "upgrade_points"

    def tier(self, index: int) -> Tier:
        if not 0 <= index < len(self.tiers):
            known = ", ".join(f"{i} {t.name}" for i, t in enumerate(self.tiers))
            raise InvalidAmount("tier", f"{index} is not in the tier table ({known})")
        return self.tiers[index]

    def points_for(self, tier: int, amount: int) -> int:
        """Points earned by paying ``amount`` fen at ``tier`` (whole 100 yuan only)."""
        return amount // _FEN_PER_100_YUAN * self.tier(tier).points_per_100_yuan

    def bonus_for(self, topup: int) -> int:
        """The bonus of the highest step reached by ``topup`` (0 if none)."""
        reached = [s.bonus for s in self.bonus_steps if topup >= s.min_topup]
        return max(reached, default=0)

    @classmethod
    def from_config(cls, section: Mapping[str, Any], key: str = "membercard") -> Programme:
        """Validate the ``[membercard]`` table; errors name the offending key."""
        tiers = (
            tuple(_tier(f"{key}.tiers[{i}]", t) for i, t in enumerate(_list(section, "tiers", key)))
            or DEFAULT_TIERS
        )
        steps = tuple(
            _step(f"{key}.bonus[{i}]", s) for i, s in enumerate(_list(section, "bonus", key))
        )
        cap = section.get("balance_cap", 10_000_000)
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 < cap <= MAX_AMOUNT:
            raise ConfigError(f"{key}.balance_cap", f"must be an integer in 1..{MAX_AMOUNT}")
        hot = section.get("hotlist_on_fraud", True)
        if not isinstance(hot, bool):
            raise ConfigError(f"{key}.hotlist_on_fraud", "must be true or false")
        if len(tiers) > 0x100:
            raise ConfigError(f"{key}.tiers", "at most 256 tiers")
        age = section.get("abandoned_claim_age_s", 3600)
        if not isinstance(age, int) or isinstance(age, bool) or not 60 <= age <= _MAX_CLAIM_AGE:
            raise ConfigError(
                f"{key}.abandoned_claim_age_s",
                f"must be an integer number of seconds in 60..{_MAX_CLAIM_AGE}, got {age!r}",
            )
        months = section.get("renew_months", 12)
        if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 120:
            raise ConfigError(
                f"{key}.renew_months",
                f"must be an integer number of months in 1..120, got {months!r}",
            )
        reread = section.get("reread_after_s", 5.0)
        if (
            not isinstance(reread, int | float) or isinstance(reread, bool)
            or not 0 <= reread <= _MAX_REREAD_S
        ):  # fmt: skip
            raise ConfigError(
                f"{key}.reread_after_s",
                f"must be a number of seconds in 0..{_MAX_REREAD_S}, got {reread!r}",
            )
        return cls(
            tiers, tuple(sorted(steps, key=lambda s: s.min_topup)), cap, hot, age, months,
            *_reversal_windows(section, key), reread_after_s=float(reread),
        )  # fmt: skip


def _reversal_windows(section: Mapping[str, Any], key: str) -> tuple[int, int | None, int]:
    """``refund_days``, ``cancel_window`` (None = the top-up's business day), cut-off hour."""
    days = section.get("refund_days", 30)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= _MAX_REFUND_DAYS:
        raise ConfigError(
            f"{key}.refund_days",
            f"must be an integer number of days in 0..{_MAX_REFUND_DAYS}, got {days!r}",
        )
    window = section.get("cancel_window", "business_day")
    minutes: int | None = None
    if window != "business_day":
        if (
            not isinstance(window, int) or isinstance(window, bool)
            or not 1 <= window <= _MAX_CANCEL_MINUTES
        ):  # fmt: skip
            raise ConfigError(
                f"{key}.cancel_window",
                f'must be "business_day" or an integer number of minutes in '
                f"1..{_MAX_CANCEL_MINUTES}, got {window!r}",
            )
        minutes = window
    hour = section.get("day_cutoff_hour", 4)
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise ConfigError(
            f"{key}.day_cutoff_hour", f"must be an hour of the day in 0..23, got {hour!r}"
        )
    return days, minutes, hour


def _list(section: Mapping[str, Any], name: str, key: str) -> Sequence[Mapping[str, Any]]:
    value = section.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{key}.{name}", "must be a list of tables")
    return value


def _int(where: str, table: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = table.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{where}.{name}", f"must be an integer in {low}..{high}")
    return value


def _tier(where: str, table: Mapping[str, Any]) -> Tier:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name", "must be a non-empty string")
    return Tier(
        name,
        _int(where, table, "discount", 1, 10000),
        _int(where, table, "points_per_100_yuan", 0, 10000),
        _int(where, table, "upgrade_points", 0, MAX_AMOUNT) if "upgrade_points" in table else None,
    )


def _step(where: str, table: Mapping[str, Any]) -> BonusStep:
    return BonusStep(
        _int(where, table, "min_topup", 1, MAX_AMOUNT), _int(where, table, "bonus", 0, MAX_AMOUNT)
    )

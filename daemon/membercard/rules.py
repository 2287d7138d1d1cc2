"""Programme rules: the tier table and top-up bonus steps, from config, all in integers.

Config (a table of the daemon's TOML file, here as the parsed mapping)::

    [membercard]
    balance_cap = 10000000          # fen on one card (100 000 yuan)
    hotlist_on_fraud = true
    abandoned_claim_age_s = 3600    # CLAIMED requests with no intent older than this: closed
    renew_months = 12               # RenewCard without a date: months added to the expiry
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
"""

from __future__ import annotations

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
        return cls(tiers, tuple(sorted(steps, key=lambda s: s.min_topup)), cap, hot, age, months)


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

"""Programme rules from config: tiers, points, bonus steps, and errors naming the key."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError, InvalidAmount, InvalidArgument
from daemon.membercard.rules import DEFAULT_TIERS, Programme, check_amount

CONFIG = {
    "balance_cap": 2_000_000,
    "hotlist_on_fraud": False,
    "tiers": [
        {"name": "普通会员", "discount": 9500, "points_per_100_yuan": 1},
        {"name": "金卡", "discount": 8500, "points_per_100_yuan": 3},
    ],
    "bonus": [
        {"min_topup": 10_000_000, "bonus": 500_000},  # 存10万送5000
        {"min_topup": 100_000, "bonus": 5_000},  # 存1000送50
    ],
}


def test_config_builds_the_programme() -> None:
    p = Programme.from_config(CONFIG)
    assert [t.name for t in p.tiers] == ["普通会员", "金卡"]
    assert p.balance_cap == 2_000_000
    assert p.hotlist_on_fraud is False
    assert p.bonus_for(99_999) == 0
    assert p.bonus_for(100_000) == 5_000
    assert p.bonus_for(10_000_000) == 500_000  # the highest step reached, not the sum
    assert p.points_for(1, 29_999) == 6  # 299.99 yuan: two whole 100 yuan
    assert p.points_for(0, 9_999) == 0
    assert Programme.from_config({}).tiers == DEFAULT_TIERS


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"balance_cap": 0}, "membercard.balance_cap"),
        ({"balance_cap": 2.5}, "membercard.balance_cap"),
        ({"hotlist_on_fraud": "yes"}, "membercard.hotlist_on_fraud"),
        ({"tiers": [{"name": "", "discount": 9000, "points_per_100_yuan": 1}]}, "tiers[0].name"),
        ({"tiers": [{"name": "x", "discount": 0, "points_per_100_yuan": 1}]}, "tiers[0].discount"),
        ({"tiers": [{"name": "x", "discount": 9000}]}, "tiers[0].points_per_100_yuan"),
        ({"tiers": {"name": "x"}}, "membercard.tiers"),
        ({"bonus": [{"min_topup": 0, "bonus": 1}]}, "bonus[0].min_topup"),
        ({"bonus": [{"min_topup": 1, "bonus": -1}]}, "bonus[0].bonus"),
    ],
)
def test_bad_config_names_the_key(patch: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Programme.from_config({**CONFIG, **patch})
    assert key in info.value.key


def test_amount_checks() -> None:
    assert check_amount("amount", 1) == 1
    assert check_amount("points", 0, allow_zero=True) == 0
    for bad in (0, -5, 2**31, 1.0, True, None):
        with pytest.raises(InvalidAmount, match="amount"):
            check_amount("amount", bad)
    with pytest.raises(
        InvalidArgument,
        match=r"^INVALID_AMOUNT: tier: 7 is not in the tier table \(0 普通会员, 1 银卡",
    ):
        Programme().tier(7)

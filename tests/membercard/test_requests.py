"""The request types: what a client sent is checked once, when the request is made, and the
error names the field as the client spells it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from daemon.errors import InvalidAmount, InvalidArgument
from daemon.membercard.requests import (
    MAX_REQUEST_ID,
    AdjustPoints,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    IssueSpec,
    ReadCard,
    ReplaceCard,
    value_params,
)

#: each request type that carries a request_id, made with a given one
WITH_ID: dict[str, Callable[[object], object]] = {
    "Debit": lambda rid: Debit(rid, 100),  # type: ignore[arg-type]
    "Credit": lambda rid: Credit(rid, 100),  # type: ignore[arg-type]
    "AdjustPoints": lambda rid: AdjustPoints(rid, 1),  # type: ignore[arg-type]
    "IssueCard": lambda rid: IssueCard(IssueSpec("1"), rid),  # type: ignore[arg-type]
    "EraseCard": lambda rid: EraseCard(rid),  # type: ignore[arg-type]
    "ReplaceCard": lambda rid: ReplaceCard("04A1B2C3", rid),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("kind", list(WITH_ID))
@pytest.mark.parametrize(
    ("request_id", "why"),
    [
        ("", "1..255 characters"),
        ("x" * (MAX_REQUEST_ID + 1), "1..255 characters"),
        (42, "must be a string, got int"),
        (None, "must be a string, got NoneType"),
        ("sale\n1", "printable text on one line"),
    ],
    ids=["empty", "too-long", "int", "none", "newline"],
)
def test_bad_request_id_is_named(kind: str, request_id: object, why: str) -> None:
    with pytest.raises(InvalidArgument, match=f"request_id: .*{re.escape(why)}") as info:
        WITH_ID[kind](request_id)
    assert info.value.field == "request_id"


@pytest.mark.parametrize("kind", list(WITH_ID))
def test_longest_request_id_is_accepted(kind: str) -> None:
    made = WITH_ID[kind]("界" * MAX_REQUEST_ID)  # characters, not bytes
    assert getattr(made, "request_id") == "界" * MAX_REQUEST_ID  # noqa: B009 (typed object)


@pytest.mark.parametrize("make", [Debit, Credit], ids=["Debit", "Credit"])
@pytest.mark.parametrize("amount", [True, 1.5, 100.0, -1, 0, 2**31, "100", None])
def test_amount_must_be_a_positive_whole_number_of_fen(
    make: Callable[[str, object], object], amount: object
) -> None:
    with pytest.raises(InvalidAmount, match="amount") as info:
        make("r", amount)
    assert info.value.field == "amount"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: Debit("r", 1, points=v), "points"),
        (lambda v: Debit("r", 1, expected_balance=v), "expected_balance"),
        (lambda v: Credit("r", 1, bonus=v), "bonus"),
        (lambda v: Credit("r", 1, expected_balance=v), "expected_balance"),
    ],
    ids=["debit-points", "debit-expected_balance", "credit-bonus", "credit-expected_balance"],
)
@pytest.mark.parametrize("value", [True, 2.5, -1])
def test_optional_figures_are_whole_numbers_too(
    make: Callable[[object], object], field: str, value: object
) -> None:
    with pytest.raises(InvalidAmount, match=field) as info:
        make(value)
    assert info.value.field == field


def test_zero_is_a_valid_override() -> None:
    assert Debit("r", 1, points=0).points == 0
    assert Credit("r", 1, bonus=0, expected_balance=0).bonus == 0


@pytest.mark.parametrize("delta", [0, True, 0.5, 2**31, -(2**31), "5"])
def test_points_delta_is_a_non_zero_integer_in_range(delta: object) -> None:
    with pytest.raises(InvalidAmount, match="delta") as info:
        AdjustPoints("r", delta)  # type: ignore[arg-type]
    assert info.value.field == "delta"
    assert AdjustPoints("r", -7).delta == -7


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: ReadCard(expected_uid=v), "expected_uid"),
        (lambda v: Debit("r", 1, expected_uid=v), "expected_uid"),
        (lambda v: Credit("r", 1, expected_uid=v), "expected_uid"),
        (lambda v: AdjustPoints("r", 1, expected_uid=v), "expected_uid"),
        (lambda v: ReplaceCard(v, "r"), "old_uid"),
    ],
    ids=["read", "debit", "credit", "points", "replace"],
)
@pytest.mark.parametrize(
    ("uid", "why"),
    [("04G1B2C3", "not hex"), ("04A1B2", "3 bytes"), ("", "0 bytes"), (0x04A1B2C3, "hex string")],
    ids=["not-hex", "3-bytes", "empty", "int"],
)
def test_bad_uid_hex_is_named(
    make: Callable[[object], object], field: str, uid: object, why: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"{field}: .*{why}") as info:
        make(uid)
    assert info.value.field == field


def test_uids_are_normalised_to_upper_case_hex() -> None:
    assert ReadCard(expected_uid=" 04:a1:b2:c3 ").expected_uid == "04A1B2C3"
    assert Debit("r", 1, expected_uid="04 a1 b2 c3 d4 e5 f6").expected_uid == "04A1B2C3D4E5F6"
    assert ReplaceCard("04a1b2c3", "r").old_uid == "04A1B2C3"
    assert ReadCard().expected_uid is None


@pytest.mark.parametrize(
    ("make", "field"),
    [(lambda: Debit("r", 1, earn_points=1), "earn_points"),  # type: ignore[arg-type]
     (lambda: EraseCard("r", force="yes"), "force"),  # type: ignore[arg-type]
     (lambda: IssueCard({"member_id": "1"}, "r"), "spec")],  # type: ignore[arg-type]
    ids=["earn_points", "force", "spec"],
)  # fmt: skip
def test_flags_and_spec_have_their_type(make: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field) as info:
        make()
    assert info.value.field == field


def test_requests_are_frozen_and_slotted() -> None:
    debit = Debit("r", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        debit.amount = 2  # type: ignore[misc]
    assert not hasattr(debit, "__dict__")


def test_journal_params_are_every_field_but_the_request_id() -> None:
    assert value_params(Debit("r", 5, expected_uid="04a1b2c3")) == {
        "amount": 5, "earn_points": True, "points": None, "expected_uid": "04A1B2C3",
        "expected_balance": None,
    }  # fmt: skip
    assert value_params(AdjustPoints("r", -3)) == {"delta": -3, "expected_uid": None}

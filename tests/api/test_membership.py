"""MembershipService over real sockets: tier changes and renewals, who may call them, bad input.

A real gRPC client on each role's Unix socket of a running station (the simulated store); the
card is a simulated MIFARE Classic card on the front reader, issued by the station itself.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import membership_service_pb2 as ms
from daemon.api.v1 import membership_service_pb2_grpc as msg
from daemon.config import parse_config
from daemon.errors import ConfigError
from daemon.membercard.requests import IssueCard, IssueSpec
from demo.folder import STORE_CONFIG
from sim.backend import SimBackend
from sim.store import transport_card
from tests.api.conftest import BIN, Api, run_api, store_folder
from tests.api.test_cards import reason

UID = "04A7E3C2"
OTHER = "04B1C2D3"
#: 金卡 (tier 2), valid to the end of 2030, 40 points
SPEC = IssueSpec("8860123404711", tier=2, valid_until=dt.date(2030, 12, 31), balance=50_000,
                 points=40)  # fmt: skip
C = grpc.StatusCode


def _issue(api: Api, uid: str = UID) -> None:
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
        backend.reader(api.station.reader("front").name).insert(transport_card(bytes.fromhex(uid)))
        seen.wait_for(lambda e: True, 10)
    api.station.card("front", IssueCard(SPEC, f"issue-{uid}"))


def _card(api: Api) -> m.MemberCard:
    pos = mg.MemberCardServiceStub(api.channel("pos"))
    return pos.ReadCard(m.ReadCardRequest(reader="readers/front"), timeout=10).card


def _tier(rid: str, tier: int | None = None, uid: str = UID) -> ms.ChangeTierRequest:
    request = ms.ChangeTierRequest(reader="readers/front", request_id=rid, expected_uid=uid)
    if tier is None:
        request.apply_tier_rules = True
    else:
        request.tier = tier
    return request


def _renew(rid: str, until: dt.date | None = None, **choice: bool) -> ms.RenewCardRequest:
    request = ms.RenewCardRequest(reader="readers/front", request_id=rid, expected_uid=UID)
    if until is not None:
        request.valid_until.CopyFrom(common_pb2.Date(year=until.year, month=until.month,
                                                     day=until.day))  # fmt: skip
    for name, value in choice.items():
        setattr(request, name, value)
    return request


def _refused(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=10)  # type: ignore[operator]
    return err.value


@pytest.fixture
def issuer(api: Api) -> msg.MembershipServiceStub:
    _issue(api)
    return msg.MembershipServiceStub(api.channel("issuer"))


def test_the_issuer_upgrades_then_downgrades_and_a_retry_replays_the_decision(
    api: Api, issuer: msg.MembershipServiceStub
) -> None:
    up = issuer.ChangeTier(_tier("tier-1", 3), timeout=10).change
    assert (up.decision, up.rule, up.tier_before, up.replayed) == (
        ms.MEMBERSHIP_DECISION_UPGRADE, ms.MEMBERSHIP_RULE_REQUESTED, 2, False,
    )  # fmt: skip
    assert (up.card.uid, up.card.tier, up.card.tier_name, up.card.price_rate_bp) == (
        UID, 3, "白金卡", 8000,
    )  # fmt: skip
    assert (up.format_version, up.migrated) == (2, True)  # the first change moves v1 to v2
    assert (up.card.balance.amount_fen, up.card.points) == (50_000, 40)  # value untouched
    again = issuer.ChangeTier(_tier("tier-1", 3), timeout=10).change
    assert again.replayed
    assert (again.decision, again.card.tier, again.card.counter) == (
        up.decision, 3, up.card.counter,
    )  # fmt: skip
    read = _card(api)
    assert (read.tier, read.tier_name, read.counter) == (3, "白金卡", up.card.counter)
    op = mg.MemberCardServiceStub(api.channel("pos")).GetOperation(
        m.GetOperationRequest(request_id="tier-1"), timeout=5
    )
    assert op.state == m.GetOperationResponse.STATE_COMMITTED
    down = issuer.ChangeTier(_tier("tier-2", 0), timeout=10).change
    assert (down.decision, down.tier_before, down.card.tier, down.migrated) == (
        ms.MEMBERSHIP_DECISION_DOWNGRADE, 3, 0, False,
    )  # fmt: skip
    assert _card(api).tier_name == "普通会员"


def test_renew_by_date_by_the_rule_and_for_ever_then_shorten(
    api: Api, issuer: msg.MembershipServiceStub
) -> None:
    later = issuer.RenewCard(_renew("renew-1", dt.date(2032, 6, 30)), timeout=10).change
    assert (later.decision, later.rule, later.valid_until_before.year) == (
        ms.MEMBERSHIP_DECISION_RENEW, ms.MEMBERSHIP_RULE_REQUESTED, 2030,
    )  # fmt: skip
    assert (later.card.valid_until.year, later.card.valid_until.month) == (2032, 6)
    assert issuer.RenewCard(_renew("renew-1", dt.date(2032, 6, 30)), timeout=10).change.replayed
    ruled = issuer.RenewCard(_renew("renew-2", apply_renewal_rule=True), timeout=10).change
    assert ruled.rule == ms.MEMBERSHIP_RULE_RENEW_MONTHS  # 12 months after the current expiry
    until = ruled.card.valid_until
    assert (until.year, until.month, until.day) == (2033, 6, 30)
    never = issuer.RenewCard(_renew("renew-3", no_expiry=True), timeout=10).change
    assert never.decision == ms.MEMBERSHIP_DECISION_RENEW
    assert not never.card.HasField("valid_until")
    short = issuer.RenewCard(_renew("renew-4", dt.date(2029, 1, 31)), timeout=10).change
    assert short.decision == ms.MEMBERSHIP_DECISION_SHORTEN
    assert not short.HasField("valid_until_before")  # it did not expire before
    read = _card(api)
    assert (read.valid_until.year, read.valid_until.month, read.counter) == (
        2029, 1, short.card.counter,
    )  # fmt: skip


def test_the_pos_role_is_refused_by_default_naming_the_config_key(
    api: Api, issuer: msg.MembershipServiceStub
) -> None:
    before = _card(api)
    pos = msg.MembershipServiceStub(api.channel("pos"))
    for call, request in ((pos.ChangeTier, _tier("pos-1", 3)), (pos.RenewCard, _renew(
            "pos-2", no_expiry=True))):  # fmt: skip
        err = _refused(call, request)
        assert (err.code(), reason(err)) == (C.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
        assert "pos role" in (err.details() or "")
        assert "[api] membership_roles" in (err.details() or "")
    tech = msg.MembershipServiceStub(api.channel("technician"))
    assert reason(_refused(tech.ChangeTier, _tier("tech-1", 3))) == "ROLE_NOT_ALLOWED"
    after = _card(api)
    assert (after.tier, after.counter) == (before.tier, before.counter)  # nothing written


def test_membership_roles_lets_the_tills_do_it_and_not_the_issuer(tmp_path: Path) -> None:
    with run_api(tmp_path, 'membership_roles = ["pos"]\n') as api:
        _issue(api)
        pos = msg.MembershipServiceStub(api.channel("pos"))
        done = pos.ChangeTier(_tier("till-1", 1), timeout=10).change
        assert (done.decision, done.card.tier_name) == (ms.MEMBERSHIP_DECISION_DOWNGRADE, "银卡")
        issuer = msg.MembershipServiceStub(api.channel("issuer"))
        err = _refused(issuer.RenewCard, _renew("desk-1", no_expiry=True))
        assert (err.code(), reason(err)) == (C.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("request_", "code", "why", "words"),
    [
        (_tier("bad-1", 9), C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "tier: 9 is not in the tier"),
        (ms.ChangeTierRequest(reader="front", request_id="bad-2", expected_uid=UID),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "tier: required"),
        (ms.ChangeTierRequest(reader="front", request_id="bad-3", apply_tier_rules=False,
                              expected_uid=UID),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "apply_tier_rules: must be true"),
        (_tier("bad-4"), C.FAILED_PRECONDITION, "NO_TIER_RULES", "upgrade_points"),
        (ms.ChangeTierRequest(reader="front", request_id="bad-5", tier=1),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "expected_uid: required"),
        (_tier("bad-6", 1, uid="04A7E3"), C.INVALID_ARGUMENT, "INVALID_ARGUMENT",
         "expected_uid"),
        (_tier("bad-7", 1, uid=OTHER), C.FAILED_PRECONDITION, "CARD_MISMATCH", OTHER),
        (ms.RenewCardRequest(reader="front", request_id="bad-8", expected_uid=UID,
                             valid_until=common_pb2.Date(year=2031, month=2, day=30)),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "valid_until: 2031-2-30"),
        (_renew("bad-9", dt.date(2200, 1, 1)), C.INVALID_ARGUMENT, "INVALID_ARGUMENT",
         "valid_until: 2200-01-01 is outside"),
        (ms.RenewCardRequest(reader="front", request_id="bad-10", expected_uid=UID),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "valid_until: required"),
        (ms.RenewCardRequest(reader="front", request_id="bad-11", no_expiry=True),
         C.INVALID_ARGUMENT, "INVALID_ARGUMENT", "expected_uid: required"),
        (ms.RenewCardRequest(reader="till", request_id="bad-12", expected_uid=UID,
                             no_expiry=True), C.NOT_FOUND, "DEVICE_NOT_FOUND", "readers/till"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field_and_write_nothing(
    api: Api,
    issuer: msg.MembershipServiceStub,
    request_: ms.ChangeTierRequest | ms.RenewCardRequest,
    code: grpc.StatusCode,
    why: str,
    words: str,
) -> None:
    before = _card(api)
    call = issuer.ChangeTier if isinstance(request_, ms.ChangeTierRequest) else issuer.RenewCard
    err = _refused(call, request_)
    assert (err.code(), reason(err)) == (code, why), err.details()
    assert words in (err.details() or "")
    after = _card(api)
    assert (after.tier, after.valid_until, after.counter) == (
        before.tier, before.valid_until, before.counter,
    )  # fmt: skip


def test_a_request_id_reused_for_another_change_or_on_another_card(
    api: Api, issuer: msg.MembershipServiceStub
) -> None:
    issuer.ChangeTier(_tier("once", 3), timeout=10)
    err = _refused(issuer.ChangeTier, _tier("once", 1))
    assert (err.code(), reason(err)) == (C.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    err = _refused(issuer.RenewCard, _renew("once", no_expiry=True))
    assert reason(err) == "REQUEST_ID_REUSED"
    assert _card(api).tier == 3


# --- tier rules from the config --------------------------------------------------------------


@pytest.fixture
def ruled(tmp_path: Path) -> Iterator[Api]:
    """The simulated store with tier rules: 银卡 from 100 points, 金卡 from 1000, 白金卡 5000."""
    text = STORE_CONFIG.read_text(encoding="utf-8")
    for name, points in (("普通会员", 0), ("银卡", 100), ("金卡", 1000), ("白金卡", 5000)):
        text = text.replace(f'name = "{name}"\n', f'name = "{name}"\nupgrade_points = {points}\n')
    base = tmp_path / "ruled.toml"
    base.write_text(text, encoding="utf-8")
    with run_api(tmp_path, base=base) as api:
        _issue(api)
        yield api


def test_the_tier_rules_are_applied_and_the_decision_is_in_the_result(ruled: Api) -> None:
    issuer = msg.MembershipServiceStub(ruled.channel("issuer"))
    down = issuer.ChangeTier(_tier("requalify-1"), timeout=10).change  # 40 points, was 金卡
    assert (down.decision, down.rule, down.tier_before, down.card.tier_name) == (
        ms.MEMBERSHIP_DECISION_DOWNGRADE, ms.MEMBERSHIP_RULE_UPGRADE_POINTS, 2, "普通会员",
    )  # fmt: skip
    pos = mg.MemberCardServiceStub(ruled.channel("pos"))
    pos.AdjustPoints(
        m.AdjustPointsRequest(reader="front", request_id="earn", points_delta=1_200,
                              expected_uid=UID), timeout=10,
    )  # fmt: skip
    up = issuer.ChangeTier(_tier("requalify-2"), timeout=10).change
    assert (up.decision, up.card.tier_name, up.card.points) == (
        ms.MEMBERSHIP_DECISION_UPGRADE, "金卡", 1_240,
    )  # fmt: skip
    same = issuer.ChangeTier(_tier("requalify-3"), timeout=10).change
    assert (same.decision, same.card.tier) == (ms.MEMBERSHIP_DECISION_UNCHANGED, 2)


# --- the config key ---------------------------------------------------------------------------

BASE = '[daemon]\nkeystore_credentials = true\nstate_dir = "/var/lib/carddaemon"\n'


def test_membership_roles_defaults_to_the_issuer_and_is_checked() -> None:
    assert parse_config(BASE).api.membership_roles == ("issuer",)
    both = parse_config(BASE + '[api]\nmembership_roles = ["issuer", "pos"]\n').api
    assert both.membership_roles == ("issuer", "pos")
    assert parse_config(BASE + "[api]\nmembership_roles = []\n").api.membership_roles == ()
    for value, words in (
        ('["cashier"]', "'cashier' is not a role (roles: pos, technician, issuer)"),
        ('"pos"', "must be a list of role names"),
        ('["pos", "pos"]', "names a role twice"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config(BASE + f"[api]\nmembership_roles = {value}\n")
        assert err.value.key == "api.membership_roles"
        assert words in str(err.value)


def test_carddaemon_serve_stops_on_a_bad_membership_roles_naming_the_key(tmp_path: Path) -> None:
    config = store_folder(tmp_path / "store", 'membership_roles = ["issuer", "cashier"]\n')
    done = subprocess.run(
        [str(BIN / "carddaemon"), "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "api.membership_roles" in said
    assert "'cashier' is not a role" in said
    assert not (config.parent / "run" / "issuer.sock").exists()  # nothing was served

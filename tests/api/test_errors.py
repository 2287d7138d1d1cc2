"""Every domain error reaches a client as one status code with an ErrorInfo it can branch on."""

from __future__ import annotations

import inspect

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import daemon.errors as errors
from daemon.api.errors import DOMAIN, STATUS_BY_REASON, status_code, to_status

ERROR_CLASSES = sorted(
    (
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.CardDaemonError)
    ),
    key=lambda c: c.__name__,
)


def _make(cls: type[errors.CardDaemonError]) -> errors.CardDaemonError:
    params = [p for p in inspect.signature(cls).parameters if p not in ("self",)]
    return cls(*(["readers/front"] * (len(params) - 1)), "what went wrong")


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_reason_has_exactly_one_row(cls: type[errors.CardDaemonError]) -> None:
    assert cls.reason in STATUS_BY_REASON, f"{cls.__name__}: reason {cls.reason} has no status"


def test_no_row_for_a_reason_nobody_raises() -> None:
    assert set(STATUS_BY_REASON) == {c.reason for c in ERROR_CLASSES}


def _info(status: grpc.Status) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo]:
    """What a client's ``rpc_status.from_call`` decodes from the trailing metadata."""
    (blob,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    proto = status_pb2.Status.FromString(blob)
    info = error_details_pb2.ErrorInfo()
    (detail,) = proto.details
    assert detail.Unpack(info)
    return proto, info


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_status_carries_the_reason_and_domain(cls: type[errors.CardDaemonError]) -> None:
    exc = _make(cls)
    status = to_status(exc, readerId="front")
    assert status.code is status_code(exc)
    proto, info = _info(status)
    assert proto.code == status.code.value[0]
    assert (info.reason, info.domain) == (cls.reason, DOMAIN)
    assert info.metadata["readerId"] == "front"


def test_write_unconfirmed_says_the_outcome_is_unknown_and_how_to_settle_it() -> None:
    status = to_status(errors.WriteUnconfirmed("readers/front: card left during the write"))
    assert status.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "outcome is unknown" in status.details
    assert "GetOperation" in status.details
    _, info = _info(status)
    assert info.metadata["outcomeUnknown"] == "true"


def test_an_internal_error_tells_the_client_nothing_of_its_text() -> None:
    status = to_status(errors.CardDaemonError("traceback-ish detail with a path /etc/keys"))
    assert status.code is grpc.StatusCode.INTERNAL
    assert "/etc/keys" not in status.details


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ReaderBusy("readers/front: 8 jobs waiting"), grpc.StatusCode.UNAVAILABLE),
        (errors.BalanceChanged("balance is 100, expected 200"), grpc.StatusCode.ABORTED),
        (errors.InsufficientBalance("needs 100"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.AmountOutOfRange("amount", "above cap"), grpc.StatusCode.OUT_OF_RANGE),
        (errors.DeviceNotFound("readers/x", "no such reader"), grpc.StatusCode.NOT_FOUND),
    ],
)
def test_codes_follow_the_retry_litmus_test(
    exc: errors.CardDaemonError, code: grpc.StatusCode
) -> None:
    """UNAVAILABLE: retry as is; ABORTED: read again, then decide; FAILED_PRECONDITION: fix
    the situation first."""
    assert to_status(exc).code is code

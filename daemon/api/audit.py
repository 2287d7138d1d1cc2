"""The audit log over the API: ``DiagnosticsService.ListAuditEvents`` and the time window that
``GetCardHistory`` shares with it.

Why paging by sequence and not by offset: the log only grows, so "rows after sequence N" gives
the same next page however many rows were written meanwhile; an offset would shift. The rows
are shown as the journal wrote them: its callers never put key bytes, MACs, payment codes or
member tokens in an audit row (tests/membercard/test_secrets.py checks), so nothing here needs
masking.
"""

from __future__ import annotations

import re
from typing import Any, Final

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from daemon.api import convert
from daemon.api.v1 import diagnostics_service_pb2 as pb
from daemon.errors import InvalidArgument, ReaderUnavailable
from daemon.journal import Journal
from daemon.membercard.requests import normalise_uid

__all__ = ["MAX_AUDIT_PAGE", "list_audit_events", "time_window"]

MAX_AUDIT_PAGE: Final = 1000
_DEFAULT_PAGE: Final = 100
_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_KINDS: Final = 32


def time_window(
    start: Timestamp, end: Timestamp, has_start: bool, has_end: bool
) -> tuple[float | None, float | None]:
    """``start_time``/``end_time`` as seconds (None where unset); an empty window is refused,
    and so is a timestamp protobuf itself calls invalid (nanos outside 0..999999999, a year
    outside 1..9999)."""
    since = _seconds(start, "start_time") if has_start else None
    until = _seconds(end, "end_time") if has_end else None
    if since is not None and until is not None and until <= since:
        raise InvalidArgument("end_time", "must be after start_time")
    return since, until


def _seconds(value: Timestamp, field: str) -> float:
    if not 0 <= value.nanos <= 999_999_999 or not -62135596800 <= value.seconds <= 253402300799:
        raise InvalidArgument(
            field, f"is not a valid time (seconds {value.seconds}, nanos {value.nanos})"
        )
    return value.seconds + value.nanos / 1e9


def _member(value: str) -> str:
    if len(value) > 16 or not (value.isascii() and value.isdigit()):
        raise InvalidArgument("member_id", f"must be 1-16 digits, got {value[:40]!r}")
    return value


def _kinds(values: list[str]) -> list[str]:
    if len(values) > _MAX_KINDS:
        raise InvalidArgument("events", f"at most {_MAX_KINDS} kinds, got {len(values)}")
    for value in values:
        if not _KIND.fullmatch(value):
            raise InvalidArgument(
                "events", f"{value[:40]!r} is not an event kind (lowercase, e.g. value_change)"
            )
    return values


def _page(request: pb.ListAuditEventsRequest) -> tuple[int, int]:
    if not 0 <= request.page_size <= MAX_AUDIT_PAGE:
        raise InvalidArgument(
            "page_size",
            f"must be 0..{MAX_AUDIT_PAGE} (0: {_DEFAULT_PAGE}), got {request.page_size}",
        )
    token = request.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= 19):
        raise InvalidArgument("page_token", "not a token this daemon gave out")
    return int(token or 0), request.page_size or _DEFAULT_PAGE


def _event(row: dict[str, Any]) -> pb.AuditEvent:
    detail = Struct()
    detail.update(row["detail"])
    return pb.AuditEvent(
        sequence=int(row["id"]),
        time=convert.timestamp(float(row["at"])),
        event=str(row["event"]),
        uid=row["uid"] or "",
        member_id=row["member_id"] or "",
        request_id=row["request_id"] or "",
        detail=detail,
    )


def list_audit_events(
    journal: Journal | None, request: pb.ListAuditEventsRequest
) -> pb.ListAuditEventsResponse:
    """One page of the audit log (blocking: call it off the event loop)."""
    if journal is None:
        raise ReaderUnavailable("the station is not running")
    after, size = _page(request)
    since, until = time_window(
        request.start_time,
        request.end_time,
        request.HasField("start_time"),
        request.HasField("end_time"),
    )
    rows = journal.audit_events(
        uid=normalise_uid("uid", request.uid) if request.uid else None,
        member_id=_member(request.member_id) if request.member_id else None,
        events=_kinds(list(request.events)),
        since=since,
        until=until,
        after_id=after,
        limit=size + 1,
    )
    more = len(rows) > size
    rows = rows[:size]
    return pb.ListAuditEventsResponse(
        events=[_event(row) for row in rows],
        next_page_token=str(rows[-1]["id"]) if more else "",
    )

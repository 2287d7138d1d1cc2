"""Domain errors → one gRPC status code plus a ``google.rpc.ErrorInfo``, mapped once, here.

Why one table: a POS developer in another language decides what to do from the status code
(UNAVAILABLE: retry the same call; ABORTED: re-read, then decide; FAILED_PRECONDITION: fix the
situation first — present the card, refill paper) and from the stable ``reason``. If every
servicer chose its own code, the same situation would arrive as two codes and a client written
against one would mishandle the other. Handlers only ``raise`` domain errors.

Every ``reason`` in :mod:`daemon.errors` has a row (a test walks the tree); a reason without a
row would silently become INTERNAL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from daemon.errors import CardDaemonError, WriteUnconfirmed

__all__ = ["DOMAIN", "STATUS_BY_REASON", "error_info", "status_code", "to_status"]

#: ``ErrorInfo.domain`` of every error the daemon sends.
DOMAIN: Final = "carddaemon"

_C = grpc.StatusCode

#: reason → status code. The litmus test (grpc.io status codes): UNAVAILABLE = the same call may
#: be retried as is; ABORTED = retry at a higher level (read the card again, then decide);
#: FAILED_PRECONDITION = do not retry until the situation is fixed.
STATUS_BY_REASON: Final[Mapping[str, grpc.StatusCode]] = {
    # client input and configuration
    "INVALID_ARGUMENT": _C.INVALID_ARGUMENT,
    "INVALID_AMOUNT": _C.INVALID_ARGUMENT,
    "RECEIPT_INVALID": _C.INVALID_ARGUMENT,
    "AMOUNT_OUT_OF_RANGE": _C.OUT_OF_RANGE,
    "REQUEST_ID_REUSED": _C.ALREADY_EXISTS,
    "CONFIG_INVALID": _C.FAILED_PRECONDITION,
    "KEYSTORE_INVALID": _C.FAILED_PRECONDITION,
    "MEMBER_NOT_FOUND": _C.NOT_FOUND,
    "DEVICE_NOT_FOUND": _C.NOT_FOUND,
    "OPERATION_NOT_ALLOWED": _C.PERMISSION_DENIED,
    "OPERATION_NOT_COMMITTED": _C.FAILED_PRECONDITION,  # a receipt naming an open card op
    "ROLE_NOT_ALLOWED": _C.PERMISSION_DENIED,
    "CERTIFICATE_NOT_MAPPED": _C.UNAUTHENTICATED,
    "TOO_MANY_STREAMS": _C.RESOURCE_EXHAUSTED,
    "JOURNAL_FULL": _C.RESOURCE_EXHAUSTED,  # free disk space; nothing was written to a card
    # refunds, cancelled top-ups and the daily settlement: nothing written, fix or give up
    "REVERSAL_REFUSED": _C.FAILED_PRECONDITION,
    "ORIGINAL_NOT_FOUND": _C.NOT_FOUND,
    "ORIGINAL_NOT_COMMITTED": _C.FAILED_PRECONDITION,
    "ORIGINAL_NOT_REVERSIBLE": _C.FAILED_PRECONDITION,
    "ALREADY_REVERSED": _C.FAILED_PRECONDITION,
    "REFUND_EXCEEDS_PAYMENT": _C.FAILED_PRECONDITION,
    "REVERSAL_CARD_MISMATCH": _C.FAILED_PRECONDITION,
    "REVERSAL_WINDOW_CLOSED": _C.FAILED_PRECONDITION,
    "TOPUP_SPENT": _C.FAILED_PRECONDITION,
    "DAY_ALREADY_CLOSED": _C.FAILED_PRECONDITION,
    "NO_TIER_RULES": _C.FAILED_PRECONDITION,  # ChangeTier apply_tier_rules, none configured
    # the card
    "CARD_ERROR": _C.FAILED_PRECONDITION,
    "CARD_ABSENT": _C.FAILED_PRECONDITION,
    "CARD_REMOVED": _C.FAILED_PRECONDITION,
    "CARD_RESPONSE_LOST": _C.UNAVAILABLE,
    "CARD_AUTH_FAILED": _C.FAILED_PRECONDITION,
    "CARD_ACCESS_DENIED": _C.FAILED_PRECONDITION,
    "BLOCK_NOT_FOUND": _C.FAILED_PRECONDITION,
    "CARD_COMMAND_FAILED": _C.FAILED_PRECONDITION,
    "CARD_DATA_CORRUPT": _C.DATA_LOSS,
    "UNSAFE_ACCESS_BITS": _C.FAILED_PRECONDITION,
    "UNKNOWN_CARD_FORMAT": _C.FAILED_PRECONDITION,
    "CARD_MISMATCH": _C.FAILED_PRECONDITION,
    "CARD_HOTLISTED": _C.FAILED_PRECONDITION,
    "CARD_BUSY": _C.ABORTED,  # another operation on the same card: nothing written, retry
    "CARD_EXPIRED": _C.FAILED_PRECONDITION,
    "INSUFFICIENT_BALANCE": _C.FAILED_PRECONDITION,
    "BALANCE_CHANGED": _C.ABORTED,
    # outcome unknown: settle with GetOperation or by presenting the card, never a blind retry
    # (FAILED_PRECONDITION: a retry with the same request_id is safe and returns the outcome)
    "WRITE_UNCONFIRMED": _C.FAILED_PRECONDITION,
    # fraud: the card is refused (audited, hotlisted by policy) until someone looks at it
    "FRAUD_DETECTED": _C.FAILED_PRECONDITION,
    "MAC_INVALID": _C.FAILED_PRECONDITION,
    "COUNTER_ROLLBACK": _C.FAILED_PRECONDITION,
    "CARD_CLONED": _C.FAILED_PRECONDITION,
    "HISTORY_FORKED": _C.FAILED_PRECONDITION,
    "VALUE_BLOCK_MISMATCH": _C.DATA_LOSS,
    "CARD_REPLACED": _C.FAILED_PRECONDITION,
    # the chain ledger: a payment above the offline floor limit needs it (retry when it is back)
    "LEDGER_REQUIRED": _C.UNAVAILABLE,
    "LEDGER_ERROR": _C.FAILED_PRECONDITION,
    "LEDGER_UNAVAILABLE": _C.UNAVAILABLE,
    # devices
    "DEVICE_ERROR": _C.UNAVAILABLE,
    "READER_ERROR": _C.UNAVAILABLE,
    "READER_UNAVAILABLE": _C.UNAVAILABLE,
    "PCSC_UNAVAILABLE": _C.UNAVAILABLE,
    "READER_BUSY": _C.UNAVAILABLE,
    "READER_UNSUPPORTED": _C.UNIMPLEMENTED,
    "READER_BAD_RESPONSE": _C.UNAVAILABLE,
    "DEADLINE_EXCEEDED": _C.DEADLINE_EXCEEDED,
    "PRINTER_ERROR": _C.UNAVAILABLE,
    "PRINTER_OFFLINE": _C.UNAVAILABLE,
    "PRINTER_PAPER_OUT": _C.FAILED_PRECONDITION,
    "PRINTER_COVER_OPEN": _C.FAILED_PRECONDITION,
    "SCANNER_ERROR": _C.UNAVAILABLE,
    "SCANNER_UNAVAILABLE": _C.UNAVAILABLE,
    "SUBSCRIPTION_CLOSED": _C.UNAVAILABLE,
    # a bug: never expected, never detailed to the client
    "INTERNAL": _C.INTERNAL,
}

_UNKNOWN_OUTCOME_HINT: Final = (
    " — the outcome is unknown: call GetOperation with the same request_id, or present the "
    "card again and read it; do not start a new payment"
)


def status_code(exc: CardDaemonError) -> grpc.StatusCode:
    """The one status code for ``exc``'s reason (INTERNAL for a reason without a row)."""
    return STATUS_BY_REASON.get(exc.reason, _C.INTERNAL)


def error_info(exc: CardDaemonError, **metadata: str) -> error_details_pb2.ErrorInfo:
    """``ErrorInfo`` (domain ``carddaemon``, the reason, lowerCamelCase metadata).

    Money errors say whether the outcome is unknown (``outcomeUnknown``) so a client can branch
    on data, not on message text."""
    meta = dict(metadata)
    if isinstance(exc, WriteUnconfirmed):
        meta["outcomeUnknown"] = "true"
    return error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=meta)


def to_status(exc: CardDaemonError, **metadata: str) -> grpc.Status:
    """A ``grpc.Status`` for ``context.abort(status.code, status.details,
    status.trailing_metadata)``; clients read it back with ``rpc_status.from_call``."""
    code = status_code(exc)
    message = str(exc) if code is not _C.INTERNAL else f"{exc.reason}: internal error"
    if isinstance(exc, WriteUnconfirmed):
        message += _UNKNOWN_OUTCOME_HINT
    detail = any_pb2.Any()
    detail.Pack(error_info(exc, **metadata))
    proto = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(proto)

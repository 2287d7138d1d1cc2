"""One exception tree for the whole daemon.

Every error carries a stable UPPER_SNAKE ``reason``. The API layer maps each reason to exactly
one gRPC status code; clients and technicians may rely on reasons, never on message text.
Messages name what was wrong (block, field, reader, config key) and never contain key material.
Driver exceptions are wrapped with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyReversed",
    "AmountOutOfRange",
    "BalanceChanged",
    "BlockNotFound",
    "CardAbsent",
    "CardAccessDenied",
    "CardAuthFailed",
    "CardBusy",
    "CardCloned",
    "CardCommandFailed",
    "CardDaemonError",
    "CardDataCorrupt",
    "CardError",
    "CardExpired",
    "CardHotlisted",
    "CardMismatch",
    "CardRemoved",
    "CardReplaced",
    "CertificateNotMapped",
    "ConfigError",
    "CounterRollback",
    "DayAlreadyClosed",
    "DeviceError",
    "DeviceNotFound",
    "FraudDetected",
    "HistoryForked",
    "InsufficientBalance",
    "InvalidAmount",
    "InvalidArgument",
    "JournalFull",
    "KeystoreError",
    "LedgerError",
    "LedgerRequired",
    "LedgerUnavailable",
    "MacInvalid",
    "MalformedBlock",
    "MemberNotFound",
    "NoTierRules",
    "OperationNotAllowed",
    "OperationNotCommitted",
    "OperationTimeout",
    "OriginalNotCommitted",
    "OriginalNotFound",
    "OriginalNotReversible",
    "PcscUnavailable",
    "PrinterCoverOpen",
    "PrinterError",
    "PrinterOffline",
    "PrinterPaperOut",
    "ReaderBadResponse",
    "ReaderBusy",
    "ReaderError",
    "ReaderUnavailable",
    "ReaderUnsupported",
    "ReceiptInvalid",
    "RefundExceedsPayment",
    "RequestIdReused",
    "ResponseLost",
    "ReversalCardMismatch",
    "ReversalRefused",
    "ReversalWindowClosed",
    "RoleNotAllowed",
    "ScannerError",
    "ScannerUnavailable",
    "SubscriptionClosed",
    "TooManyStreams",
    "TopUpSpent",
    "UnknownCardFormat",
    "UnsafeAccessBits",
    "ValueBlockMismatch",
    "WriteUnconfirmed",
]


class CardDaemonError(Exception):
    """Base of every error the daemon raises on purpose."""

    reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


# --- configuration and client input -----------------------------------------------------------


class ConfigError(CardDaemonError, ValueError):
    """A config file or option is wrong; the message names the key."""

    reason = "CONFIG_INVALID"

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class KeystoreError(CardDaemonError):
    """The key file is missing, malformed or has unsafe ownership/mode (never shows key bytes)."""

    reason = "KEYSTORE_INVALID"


class InvalidArgument(CardDaemonError, ValueError):
    """A client sent a malformed field; the message names it."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidAmount(InvalidArgument):
    reason = "INVALID_AMOUNT"


class AmountOutOfRange(InvalidArgument):
    reason = "AMOUNT_OUT_OF_RANGE"


class RequestIdReused(CardDaemonError):
    """The same request_id arrived with different parameters."""

    reason = "REQUEST_ID_REUSED"


class MemberNotFound(CardDaemonError):
    reason = "MEMBER_NOT_FOUND"


class DeviceNotFound(CardDaemonError):
    """No reader, printer or scanner has this id on this PC (the message lists the ids that
    exist, so a typo in a POS config is found at once). Maps to NOT_FOUND."""

    reason = "DEVICE_NOT_FOUND"

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class OperationNotAllowed(CardDaemonError):
    """Refused by policy, not by the card: wrong station role or a risky step not asked for.

    Example: the Gen2/CUID probe writes block 0, so it runs only on an issuing station and only
    when explicitly allowed. Maps to PERMISSION_DENIED.
    """

    reason = "OPERATION_NOT_ALLOWED"


class OperationNotCommitted(CardDaemonError):
    """Something refers to a card operation (by its request_id) that did not commit: unknown,
    still pending (outcome unknown) or not applied. A receipt naming it would print figures
    that are not on the card. Maps to FAILED_PRECONDITION: settle the operation first."""

    reason = "OPERATION_NOT_COMMITTED"


class NoTierRules(CardDaemonError):
    """ChangeTier was asked to apply the tier rules, but no tier of ``[[membercard.tiers]]``
    has ``upgrade_points``: nothing to apply (nothing written). Maps to FAILED_PRECONDITION:
    configure the rules or name the tier."""

    reason = "NO_TIER_RULES"


class ReversalRefused(CardDaemonError):
    """A refund or a top-up cancellation that may not be done: the message names the original
    operation (its request_id) and the amount left to reverse. Nothing was written."""

    reason = "REVERSAL_REFUSED"


class OriginalNotFound(ReversalRefused):
    """The original_request_id is not in this PC's journal (reversals are made where the sale
    or top-up was journalled)."""

    reason = "ORIGINAL_NOT_FOUND"


class OriginalNotCommitted(ReversalRefused):
    """The original operation is pending (outcome unknown), in progress or was not applied."""

    reason = "ORIGINAL_NOT_COMMITTED"


class OriginalNotReversible(ReversalRefused):
    """The original is not a payment (refund) or not a top-up (cancel)."""

    reason = "ORIGINAL_NOT_REVERSIBLE"


class AlreadyReversed(ReversalRefused):
    """The payment is already refunded in full, or the top-up already cancelled."""

    reason = "ALREADY_REVERSED"


class RefundExceedsPayment(ReversalRefused):
    """The refund is larger than what is left of the payment after its earlier refunds."""

    reason = "REFUND_EXCEEDS_PAYMENT"


class ReversalCardMismatch(ReversalRefused):
    """The card presented is not the card that paid (refund) or was topped up (cancel)."""

    reason = "REVERSAL_CARD_MISMATCH"


class ReversalWindowClosed(ReversalRefused):
    """Too late: ``[membercard] refund_days`` or ``cancel_window`` has passed."""

    reason = "REVERSAL_WINDOW_CLOSED"


class TopUpSpent(ReversalRefused):
    """The card no longer holds the top-up and its bonus: it cannot be cancelled on the card."""

    reason = "TOPUP_SPENT"


class DayAlreadyClosed(CardDaemonError):
    """The business day was closed before (a closed day never changes)."""

    reason = "DAY_ALREADY_CLOSED"


class RoleNotAllowed(OperationNotAllowed):
    """This listener's role may not call the method: the POS socket cannot issue cards, the
    issuer socket cannot debit. Maps to PERMISSION_DENIED."""

    reason = "ROLE_NOT_ALLOWED"


class CertificateNotMapped(CardDaemonError):
    """A TLS client's certificate is valid but its name has no role in ``[api.tcp] roles``.
    Maps to UNAUTHENTICATED."""

    reason = "CERTIFICATE_NOT_MAPPED"


class TooManyStreams(CardDaemonError):
    """Every stream slot of a listener is taken (``[api] max_streams``): close a stream you no
    longer read. Maps to RESOURCE_EXHAUSTED."""

    reason = "TOO_MANY_STREAMS"


# --- the card ---------------------------------------------------------------------------------


class CardError(CardDaemonError):
    """Something about the card (not the reader) stopped the operation."""

    reason = "CARD_ERROR"


class CardAbsent(CardError):
    """No card in the field when the operation started."""

    reason = "CARD_ABSENT"


class CardRemoved(CardError):
    """The card left the field during an operation that had not written anything yet."""

    reason = "CARD_REMOVED"


class ResponseLost(CardError):
    """The command reached the reader but no valid answer came back (card pulled mid-command,
    transaction aborted). The card may or may not have executed it."""

    reason = "CARD_RESPONSE_LOST"


class CardAuthFailed(CardError):
    """MIFARE authentication with the given key failed (wrong key or foreign card)."""

    reason = "CARD_AUTH_FAILED"


class CardAccessDenied(CardError):
    """The card's access conditions (or missing authentication) forbid this command."""

    reason = "CARD_ACCESS_DENIED"


class BlockNotFound(CardError):
    """The addressed block does not exist on this card."""

    reason = "BLOCK_NOT_FOUND"


class CardCommandFailed(CardError):
    """The reader reported a failure without saying which (ACS ``63 00``): ambiguous.

    The card may be gone, the key wrong, or the block not a value block. Callers must treat
    a write that ended like this as outcome-unknown.
    """

    reason = "CARD_COMMAND_FAILED"


class CardDataCorrupt(CardError):
    """Bytes read from a card do not decode (torn write, foreign format, tampering)."""

    reason = "CARD_DATA_CORRUPT"


class MalformedBlock(CardDataCorrupt, ValueError):
    """A codec rejected bytes; names the block (when known) and the field."""

    def __init__(self, field: str, message: str, block: int | None = None) -> None:
        where = f"block {block} " if block is not None else ""
        super().__init__(f"{where}{field}: {message}")
        self.field = field
        self.block = block


class UnsafeAccessBits(CardError, ValueError):
    """Refused to build or write a sector trailer that would brick or lock out a sector."""

    reason = "UNSAFE_ACCESS_BITS"


class UnknownCardFormat(CardError):
    """Not one of our member cards, or another format version: nothing will be written."""

    reason = "UNKNOWN_CARD_FORMAT"


class CardMismatch(CardError):
    """The presented card is not the one the caller expected (UID differs)."""

    reason = "CARD_MISMATCH"


class CardHotlisted(CardError):
    reason = "CARD_HOTLISTED"


class CardBusy(CardError):
    """Another operation on this card's UID is running at this PC (a second reader or thread):
    refused before anything is written; retry once the other one is done."""

    reason = "CARD_BUSY"


class CardExpired(CardError):
    reason = "CARD_EXPIRED"


class InsufficientBalance(CardError):
    reason = "INSUFFICIENT_BALANCE"


class BalanceChanged(CardError):
    """The balance differs from what the client expected: re-read, then decide (ABORTED)."""

    reason = "BALANCE_CHANGED"


class WriteUnconfirmed(CardError):
    """A write may or may not have reached the card; resolved by reading the card again."""

    reason = "WRITE_UNCONFIRMED"


class FraudDetected(CardError):
    """A card whose state cannot be genuine. Never repaired silently; audited."""

    reason = "FRAUD_DETECTED"


class MacInvalid(FraudDetected):
    reason = "MAC_INVALID"


class CounterRollback(FraudDetected):
    reason = "COUNTER_ROLLBACK"


class CardCloned(FraudDetected):
    reason = "CARD_CLONED"


class HistoryForked(FraudDetected):
    """Two histories of one card: a record whose write tag belongs to an intent this PC closed
    as not applied, or a counter whose committed record this PC saw with another write tag."""

    reason = "HISTORY_FORKED"


class ValueBlockMismatch(FraudDetected):
    reason = "VALUE_BLOCK_MISMATCH"


class CardReplaced(FraudDetected):
    """The chain ledger knows this card as replaced by another (a lost card found again, or
    used by whoever found it): refused at every store, audited, hotlisted."""

    reason = "CARD_REPLACED"


class LedgerRequired(CardError):
    """This payment needs the chain ledger (above the card's offline floor limit for the day)
    and the ledger did not answer in time: nothing written; retry when the link is back, or
    pay another way. Maps to UNAVAILABLE."""

    reason = "LEDGER_REQUIRED"


# --- the chain ledger -------------------------------------------------------------------------


class LedgerError(CardDaemonError):
    """The chain ledger refused or failed a step (schema, migration, store role); the message
    names it and never shows a connection string or password."""

    reason = "LEDGER_ERROR"


class LedgerUnavailable(LedgerError):
    """The chain ledger cannot be reached now (the store keeps working offline and ships
    later)."""

    reason = "LEDGER_UNAVAILABLE"


class JournalFull(CardDaemonError):
    """The disk holding the journal is (nearly) full: value operations are refused before the
    card is touched, since an intent or outcome that cannot be journalled would leave money
    unrecorded. Reads go on while the space held back for them lasts."""

    reason = "JOURNAL_FULL"


# --- devices ----------------------------------------------------------------------------------


class DeviceError(CardDaemonError):
    reason = "DEVICE_ERROR"


class ReaderError(DeviceError):
    reason = "READER_ERROR"


class ReaderUnavailable(ReaderError):
    """The reader is unplugged, unknown or not responding."""

    reason = "READER_UNAVAILABLE"


class PcscUnavailable(ReaderError):
    """pcscd is not running or its context was lost."""

    reason = "PCSC_UNAVAILABLE"


class ReaderBusy(ReaderError):
    """The reader's job queue is full; retry the same call later."""

    reason = "READER_BUSY"


class ReaderUnsupported(ReaderError):
    """This reader model cannot do what was asked."""

    reason = "READER_UNSUPPORTED"


class ReaderBadResponse(ReaderError):
    """The reader answered garbage (short, oversized, unknown status word)."""

    reason = "READER_BAD_RESPONSE"


class SubscriptionClosed(CardDaemonError):
    """An event subscription was closed (the daemon is stopping, or the client left) and its
    queue is empty: the stream has ended. Maps to UNAVAILABLE: subscribe again."""

    reason = "SUBSCRIPTION_CLOSED"


class OperationTimeout(DeviceError, TimeoutError):
    reason = "DEADLINE_EXCEEDED"


class PrinterError(DeviceError):
    reason = "PRINTER_ERROR"


class PrinterOffline(PrinterError):
    reason = "PRINTER_OFFLINE"


class PrinterPaperOut(PrinterError):
    reason = "PRINTER_PAPER_OUT"


class PrinterCoverOpen(PrinterError):
    reason = "PRINTER_COVER_OPEN"


class ReceiptInvalid(InvalidArgument):
    reason = "RECEIPT_INVALID"


class ScannerError(DeviceError):
    reason = "SCANNER_ERROR"


class ScannerUnavailable(ScannerError):
    reason = "SCANNER_UNAVAILABLE"

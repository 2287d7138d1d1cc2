"""The member card application: card format v1, tear-safe stored value and points.

``docs/card-layout.md`` describes the format and the protocol; :mod:`.layout` is its byte-level
source of truth; :mod:`.requests` declares each operation's parameters once.
"""

from daemon.membercard.issuing import IssueResult, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import (
    AdjustPoints,
    CardRequest,
    ChangeTier,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    IssueSpec,
    ReadCard,
    RenewCard,
    ReplaceCard,
)
from daemon.membercard.rules import BonusStep, Programme, Tier
from daemon.membercard.service import CardInfo, MemberCardService, MembershipResult, OpResult

__all__ = [
    "AdjustPoints",
    "BonusStep",
    "CardInfo",
    "CardRequest",
    "ChangeTier",
    "Credit",
    "Debit",
    "EraseCard",
    "IssueCard",
    "IssueResult",
    "IssueSpec",
    "MemberCardService",
    "MembershipResult",
    "OpResult",
    "Personaliser",
    "Programme",
    "ReadCard",
    "RenewCard",
    "ReplaceCard",
    "Tier",
    "replace_card",
]

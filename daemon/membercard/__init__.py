"""The member card application: card format v1, tear-safe stored value and points.

``docs/card-layout.md`` describes the format and the protocol; :mod:`.layout` is its byte-level
source of truth.
"""

from daemon.membercard.issuing import IssueResult, IssueSpec, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.rules import BonusStep, Programme, Tier
from daemon.membercard.service import CardInfo, MemberCardService, OpResult

__all__ = [
    "BonusStep",
    "CardInfo",
    "IssueResult",
    "IssueSpec",
    "MemberCardService",
    "OpResult",
    "Personaliser",
    "Programme",
    "Tier",
    "replace_card",
]

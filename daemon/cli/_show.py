"""How the CLI words the things several commands show: a member card, a date."""

from __future__ import annotations

from typing import Any

from daemon.cli._output import enum_name, yuan

__all__ = ["date_text", "member_lines"]


def date_text(date: Any) -> str:
    """A ``carddaemon.v1.Date``; ``no end`` when unset (a card that never expires)."""
    if not date.year:
        return "no end"
    return f"{date.year:04d}-{date.month:02d}-{date.day:02d}"


def member_lines(card: Any) -> list[str]:
    """A ``MemberCard`` as the lines store staff read (never a key, MAC or token)."""
    from daemon.api.v1 import member_card_service_pb2 as mc

    status = enum_name(mc.MemberCardStatus, card.status, "MEMBER_CARD_STATUS_")
    rate = f"{card.price_rate_bp / 100:g}%"
    return [
        f"  member       {card.member_id}",
        f"  tier         {card.tier_name} (pays {rate} of the price)",
        f"  balance      {yuan(card.balance.amount_fen)}",
        f"  points       {card.points}",
        f"  valid until  {date_text(card.valid_until)} ({status})",
    ]

"""Codes a simulated customer shows: member tokens as the store's member app would issue them.

Written independently of ``daemon.scanners.member`` (the issuer is another system), so a bug in
the daemon's verifier is not mirrored here.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["make_member_token"]


def make_member_token(
    key: bytes, member_id: str, expiry: int, *, prefix: str = "CDM1", mac_bytes: int = 16
) -> str:
    """``CDM1.<member_id>.<expiry>.<hex of truncated HMAC-SHA256 over 'CDM1.<id>.<expiry>.'>``."""
    signed = f"{prefix}.{member_id}.{expiry}."
    mac = hmac.new(key, signed.encode("utf-8"), hashlib.sha256).digest()[:mac_bytes]
    return signed + mac.hex()

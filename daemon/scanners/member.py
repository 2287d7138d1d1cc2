"""The store's member QR code: a signed token the daemon verifies with an HMAC key.

Default format ``CDM1.<member_id>.<expiry>.<mac>``: member id digits, expiry in Unix seconds,
``mac`` = first 16 bytes of HMAC-SHA256(key, everything before the mac), lowercase hex. The
pattern is configurable (named groups ``member_id``, ``expiry``, ``mac``); the MAC always covers
the token text up to where the ``mac`` group starts. The key never appears in logs, errors or
reprs; a token in logs keeps its member id and loses its MAC.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import ConfigError

__all__ = ["DEFAULT_MEMBER_PATTERN", "MemberCheck", "MemberStatus", "MemberTokenVerifier"]

DEFAULT_MEMBER_PREFIX = "CDM1."
DEFAULT_MEMBER_PATTERN = (
    r"CDM1\.(?P<member_id>[0-9]{1,20})\.(?P<expiry>[0-9]{1,12})\.(?P<mac>[0-9a-f]{32})"
)
_MIN_KEY = 16
_GROUPS = {"member_id", "expiry", "mac"}


class MemberStatus(enum.StrEnum):
    VALID = "VALID"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    EXPIRED = "EXPIRED"
    MALFORMED = "MALFORMED"


@dataclass(frozen=True, slots=True)
class MemberCheck:
    status: MemberStatus
    member_id: str | None = None
    expiry: int | None = None


class MemberTokenVerifier:
    """Recognises member tokens by prefix and verifies them (MAC first, then expiry)."""

    def __init__(
        self,
        key: bytes,
        *,
        prefix: str = DEFAULT_MEMBER_PREFIX,
        pattern: str = DEFAULT_MEMBER_PATTERN,
        mac_bytes: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < _MIN_KEY:
            raise ConfigError("scanners.member_key", f"must be at least {_MIN_KEY} bytes")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError("scanners.member_pattern", f"not a regex: {exc}") from exc
        if not set(compiled.groupindex) >= _GROUPS:
            raise ConfigError(
                "scanners.member_pattern", "needs named groups member_id, expiry and mac"
            )
        if not prefix:
            raise ConfigError("scanners.member_prefix", "must not be empty")
        if not 8 <= mac_bytes <= 32:
            raise ConfigError("scanners.member_mac_bytes", f"must be 8..32, got {mac_bytes}")
        self._key = key
        self.prefix = prefix
        self.pattern = compiled
        self.mac_bytes = mac_bytes
        self.clock = clock

    def __repr__(self) -> str:
        return f"MemberTokenVerifier(prefix={self.prefix!r}, key=<hidden>)"

    def looks_like_token(self, text: str) -> bool:
        return text.startswith(self.prefix)

    def check(self, text: str) -> MemberCheck:
        m = self.pattern.fullmatch(text)
        if m is None:
            return MemberCheck(MemberStatus.MALFORMED)
        member_id = m.group("member_id")
        try:  # a configured pattern may let more than digits into the group
            expiry = int(m.group("expiry"))
        except ValueError:
            return MemberCheck(MemberStatus.MALFORMED)
        signed = text[: m.start("mac")].encode("utf-8")
        want = hmac.new(self._key, signed, hashlib.sha256).digest()[: self.mac_bytes]
        try:
            got = bytes.fromhex(m.group("mac"))
        except ValueError:
            return MemberCheck(MemberStatus.MALFORMED)
        if not hmac.compare_digest(want, got):
            return MemberCheck(MemberStatus.BAD_SIGNATURE, member_id, expiry)
        if self.clock() > expiry:
            return MemberCheck(MemberStatus.EXPIRED, member_id, expiry)
        return MemberCheck(MemberStatus.VALID, member_id, expiry)

    def redact(self, text: str) -> str:
        """The token with its MAC starred: member id and expiry are not secrets, the MAC is."""
        m = self.pattern.fullmatch(text)
        if m is None:
            return self.prefix + "*" * max(0, len(text) - len(self.prefix))
        return text[: m.start("mac")] + "*" * (m.end("mac") - m.start("mac")) + text[m.end("mac") :]

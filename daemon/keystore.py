"""Master keys for the member card application, and the per-card keys derived from them.

Three purposes, each with its own master and its own version history so that one can be
rotated without the others: ``card_a`` (MIFARE key A: read and debit), ``card_b`` (MIFARE key
B: top-up and personalisation) and ``mac`` (the record MAC; this key never reaches a card).

The key file is TOML (or JSON when it ends in ``.json``)::

    [card_a]
    current = 2
    1 = "<hex, 16..64 bytes>"
    2 = "<hex>"
    [card_b]
    ...
    [mac]
    ...

It must be a regular file owned by the daemon's user with no group/other permission bits
(0600 or 0400), else :class:`~daemon.errors.KeystoreError` names the file and its mode. Under
systemd the same content may come as a credential (``LoadCredential=carddaemon-keys:...``),
read from ``$CREDENTIALS_DIRECTORY``.

Key bytes are wrapped in :class:`Secret` objects whose ``repr``/``str`` are masked; they are
only unwrapped with :meth:`Secret.reveal` at the last moment (HMAC, LOAD KEY). Errors never
contain key bytes, nor the content of the file.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from daemon.errors import KeystoreError
from daemon.mifare.dictionary import probe_order

__all__ = [
    "CREDENTIAL_NAME",
    "KDF_LABEL",
    "CardKey",
    "KeyPurpose",
    "Keystore",
    "Secret",
    "derive_card_key",
]

logger = logging.getLogger(__name__)

CREDENTIAL_NAME: Final = "carddaemon-keys"
KDF_LABEL: Final = b"CARDDAEMON-MFC-KDF-v1"
_MAX_FILE_BYTES: Final = 64 * 1024  # a few purposes x a few versions of 64 hex bytes
_MIN_MASTER = 16
_MAX_MASTER = 64
_KEY_TYPE_BYTE = {"A": 0x60, "B": 0x61}


class KeyPurpose(enum.StrEnum):
    CARD_A = "card_a"
    CARD_B = "card_b"
    MAC = "mac"


class Secret:
    """Bytes that must never be printed: masked ``repr``, no ``__bytes__``, no equality leak."""

    __slots__ = ("_label", "_value")

    def __init__(self, value: bytes, label: str) -> None:
        self._value = bytes(value)
        self._label = label

    def reveal(self) -> bytes:
        """The raw bytes, for HMAC or a LOAD KEY APDU only."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label} ****>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._label))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets are not picklable")


class CardKey(Secret):
    """A 6-byte MIFARE key derived for one card; knows its type, key group and version."""

    __slots__ = ("key_type", "sector_group", "version")

    def __init__(self, value: bytes, *, key_type: str, sector_group: int, version: int) -> None:
        super().__init__(value, f"key {key_type} group {sector_group} v{version}")
        self.key_type = key_type
        self.sector_group = sector_group
        self.version = version


def derive_card_key(master: bytes, uid: bytes, sector_group: int, key_type: str) -> bytes:
    """HMAC-SHA256(master, label || len(UID) || UID || group || 60/61) truncated to 6 bytes."""
    if key_type not in _KEY_TYPE_BYTE:
        raise ValueError(f"key_type must be 'A' or 'B', not {key_type!r}")
    if not 0 <= sector_group <= 0xFF:
        raise ValueError(f"sector_group {sector_group} out of range")
    if len(uid) not in (4, 7, 10):
        raise ValueError(f"UID of {len(uid)} bytes")
    msg = KDF_LABEL + bytes((len(uid),)) + uid + bytes((sector_group, _KEY_TYPE_BYTE[key_type]))
    return hmac.new(master, msg, hashlib.sha256).digest()[:6]


class Keystore:
    """All master keys, by purpose and version. Build with :meth:`load` in production."""

    def __init__(
        self,
        masters: Mapping[KeyPurpose, Mapping[int, bytes]],
        current: Mapping[KeyPurpose, int],
        *,
        source: str = "<memory>",
        weak_keys: Iterable[bytes] | None = None,
    ) -> None:
        self.source = source
        self._masters: dict[KeyPurpose, dict[int, Secret]] = {}
        self._current: dict[KeyPurpose, int] = {}
        for purpose in KeyPurpose:
            versions = masters.get(purpose)
            if not versions:
                raise KeystoreError(f"{source}: no [{purpose}] keys")
            cur = current.get(purpose)
            if cur is None or cur not in versions:
                raise KeystoreError(f"{source}: [{purpose}] current version {cur} is not defined")
            table: dict[int, Secret] = {}
            for version, raw in versions.items():
                if not 1 <= version <= 255:
                    raise KeystoreError(f"{source}: [{purpose}] version {version} not in 1..255")
                if not _MIN_MASTER <= len(raw) <= _MAX_MASTER:
                    raise KeystoreError(
                        f"{source}: [{purpose}] version {version} must be "
                        f"{_MIN_MASTER}..{_MAX_MASTER} bytes, got {len(raw)}"
                    )
                table[version] = Secret(raw, f"{purpose} v{version}")
            self._masters[purpose] = table
            self._current[purpose] = cur
        self._weak = frozenset(probe_order() if weak_keys is None else weak_keys)

    def __repr__(self) -> str:
        vers = ", ".join(f"{p}=v{self._current[p]}" for p in KeyPurpose)
        return f"<Keystore {self.source} {vers}>"

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def generate(cls, *, weak_keys: Iterable[bytes] | None = None) -> Keystore:
        """Fresh random masters (version 1 each): tests and first-time set-up."""
        masters = {p: {1: secrets.token_bytes(32)} for p in KeyPurpose}
        return cls(masters, dict.fromkeys(KeyPurpose, 1), source="<generated>", weak_keys=weak_keys)

    @staticmethod
    def create_file(path: str | os.PathLike[str]) -> Path:
        """Write a NEW key file of fresh random masters (version 1 each), mode 0600.

        For the first set-up of a chain (made once, then copied to every store PC: cards
        issued at one store must be readable at all of them) and for demo and test stores.
        Refuses to overwrite: replacing a chain's keys would make every issued card
        unreadable."""
        p = Path(path)
        text = "".join(
            f'[{purpose}]\ncurrent = 1\n1 = "{secrets.token_hex(32)}"\n' for purpose in KeyPurpose
        )
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise KeystoreError(f"key file {p} already exists; it is never overwritten") from None
        except OSError as exc:
            raise KeystoreError(f"key file {p}: cannot create ({exc.strerror})") from None
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        logger.info("created a new master key file %s", p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Keystore:
        """From ``path``, else from the systemd credential ``carddaemon-keys``."""
        if path is not None:
            return cls.from_file(path)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not creds:
            raise KeystoreError("no key file configured and $CREDENTIALS_DIRECTORY is not set")
        return cls.from_file(Path(creds) / CREDENTIAL_NAME, systemd_credential=True)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        weak_keys: Iterable[bytes] | None = None,
        systemd_credential: bool = False,
    ) -> Keystore:
        """Load a key file; ``systemd_credential``: systemd placed it in the service's private
        credentials directory and grants access by ownership *or ACL*, so only group/other
        write bits are refused there."""
        p = Path(path)
        if p.is_symlink():
            # a link lets whoever may write its directory swap the keys under the daemon
            raise KeystoreError(
                f"key file {p} is a symbolic link (to {os.readlink(p)}); name the file itself"
            )
        try:
            # O_NONBLOCK: a FIFO at the key path must not hang the start waiting for a writer
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise KeystoreError(f"key file {p}: cannot open ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                raise KeystoreError(f"key file {p} is not a regular file ({_kind(st.st_mode)})")
            if st.st_size > _MAX_FILE_BYTES:
                raise KeystoreError(
                    f"key file {p} is {st.st_size} bytes; a key file is under {_MAX_FILE_BYTES}"
                )
            if systemd_credential:
                if mode & 0o022:
                    raise KeystoreError(f"credential {p} has mode {mode:04o}; writable by others")
            elif st.st_uid != os.geteuid():
                raise KeystoreError(
                    f"key file {p} is owned by uid {st.st_uid}, not by the daemon's "
                    f"uid {os.geteuid()} (mode {mode:04o})"
                )
            elif mode & 0o077:
                raise KeystoreError(f"key file {p} has mode {mode:04o}; it must be 0600 or 0400")
            with os.fdopen(fd, "rb") as fh:
                fd = -1
                raw = fh.read(_MAX_FILE_BYTES + 1)
        finally:
            if fd >= 0:
                os.close(fd)
        masters, current = _parse(raw, str(p), json_format=p.suffix == ".json")
        logger.info("loaded master keys from %s (%s)", p, ", ".join(sorted(current)))
        return cls(masters, current, source=str(p), weak_keys=weak_keys)

    # --- queries ------------------------------------------------------------------------------

    def current_version(self, purpose: KeyPurpose) -> int:
        return self._current[purpose]

    def versions(self, purpose: KeyPurpose) -> tuple[int, ...]:
        """Known versions, current first, then the others newest first (for key trials)."""
        cur = self._current[purpose]
        rest = sorted((v for v in self._masters[purpose] if v != cur), reverse=True)
        return (cur, *rest)

    def master(self, purpose: KeyPurpose, version: int) -> Secret:
        try:
            return self._masters[purpose][version]
        except KeyError:
            raise KeystoreError(f"{self.source}: [{purpose}] has no version {version}") from None

    def card_key(
        self, uid: bytes, *, sector_group: int, key_type: str, version: int | None = None
    ) -> CardKey:
        """The diversified key for this card; refuses a result found in a key dictionary."""
        purpose = KeyPurpose.CARD_A if key_type == "A" else KeyPurpose.CARD_B
        ver = self._current[purpose] if version is None else version
        raw = derive_card_key(self.master(purpose, ver).reveal(), uid, sector_group, key_type)
        if raw in self._weak:
            raise KeystoreError(
                f"derived key {key_type} v{ver} group {sector_group} for UID {uid.hex().upper()} "
                "is a well-known dictionary key; this card cannot be personalised"
            )
        return CardKey(raw, key_type=key_type, sector_group=sector_group, version=ver)

    def mac(self, version: int, message: bytes, length: int = 16) -> bytes:
        """HMAC-SHA256 with MAC master ``version``, truncated to ``length`` bytes."""
        key = self.master(KeyPurpose.MAC, version).reveal()
        return hmac.new(key, message, hashlib.sha256).digest()[:length]


def _parse(
    raw: bytes, source: str, *, json_format: bool
) -> tuple[dict[KeyPurpose, dict[int, bytes]], dict[KeyPurpose, int]]:
    try:
        doc = json.loads(raw) if json_format else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        # The parser's message may quote file content (keys): never pass it on.
        kind = "JSON" if json_format else "TOML"
        raise KeystoreError(f"key file {source}: not valid {kind}") from None
    if not isinstance(doc, dict):
        raise KeystoreError(f"key file {source}: top level must be a table")
    masters: dict[KeyPurpose, dict[int, bytes]] = {}
    current: dict[KeyPurpose, int] = {}
    for purpose in KeyPurpose:
        section = doc.get(purpose.value)
        if not isinstance(section, dict):
            raise KeystoreError(f"key file {source}: missing table [{purpose}]")
        cur = section.get("current")
        if not isinstance(cur, int) or isinstance(cur, bool):
            raise KeystoreError(f"key file {source}: [{purpose}] current must be an integer")
        table: dict[int, bytes] = {}
        for name, value in section.items():
            if name == "current":
                continue
            if not name.isdigit():
                raise KeystoreError(f"key file {source}: [{purpose}] unknown entry {name!r}")
            if not isinstance(value, str):
                raise KeystoreError(f"key file {source}: [{purpose}] version {name} must be hex")
            try:
                table[int(name)] = bytes.fromhex(value)
            except ValueError:
                raise KeystoreError(
                    f"key file {source}: [{purpose}] version {name} is not valid hex"
                ) from None
        masters[purpose] = table
        current[purpose] = cur
    return masters, current


def _kind(mode: int) -> str:
    """What a non-regular path is, in a technician's words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"

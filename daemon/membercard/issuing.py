"""Personalisation: issue a member card, erase it back to transport state, replace a lost one.

Issue writes sectors in the order 2, 3, 0, 1. Sector 1's trailer (switching it to the card's
diversified keys) is the commit point: before it no terminal can open sector 1 with our keys,
so the card is "not a member card"; after it the record in slot 0 is readable and valid. Every
step is rerun safely: a sector already on our keys is rewritten with key B, a sector still on
the factory key gets data then trailer. A card that holds any valid record is never overwritten
(erase it first); a sector that opens with neither key (a torn trailer write bricks a sector
for good) makes the card unusable and is reported, nothing more is written.

Erase invalidates the older slot, then the newest (commit point: no valid record remains),
then zeroes the purse and header and puts every trailer back to transport state.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import (
    CardAuthFailed,
    CardCommandFailed,
    CardDaemonError,
    CardDataCorrupt,
    CardHotlisted,
    InvalidArgument,
    UnknownCardFormat,
    WriteUnconfirmed,
)
from daemon.journal import Journal, RequestState
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.layout import (
    ACCESS_MAD,
    ACCESS_PURSE,
    ACCESS_SLOT,
    APP_AID,
    FORMAT_VERSIONS,
    KEY_GROUP_APP,
    KEY_GROUP_MAD,
    MAGIC,
    PURSE_ADR,
    Header,
    SlotState,
    check_member_id,
    mac_slot,
)
from daemon.membercard.requests import EraseCard, IssueCard, IssueSpec
from daemon.membercard.rules import Programme, check_amount
from daemon.membercard.session import CardSession, key_slot
from daemon.membercard.state import CardState, evaluate
from daemon.mifare.geometry import first_block, trailer_block
from daemon.mifare.mad import GPB_MAD_V1, MAD_KEY_A, Mad1
from daemon.mifare.trailer import DEFAULT_KEY, build_trailer, transport_trailer
from daemon.mifare.value import encode_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.storage import StorageCard

__all__ = ["ISSUE_ORDER", "IssueResult", "IssueSpec", "Personaliser"]

logger = logging.getLogger(__name__)

ISSUE_ORDER = (2, 3, 0, 1)
_ZERO = bytes(16)


@dataclass(frozen=True, slots=True)
class IssueResult:
    request_id: str
    uid: str
    member_id: str
    balance: int
    points: int
    replayed: bool = False


class Personaliser:
    """Issuing-station operations; shares the keystore and journal with the POS service."""

    def __init__(
        self,
        keystore: Keystore,
        journal: Journal,
        programme: Programme | None = None,
        *,
        factory_key: bytes = DEFAULT_KEY,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.keystore = keystore
        self.journal = journal
        self.programme = programme or Programme()
        self.factory_key = factory_key
        self._today = today

    # --- probing --------------------------------------------------------------------------

    def _ours(self, uid: bytes, sector: int) -> bytes:
        group = KEY_GROUP_MAD if sector == 0 else KEY_GROUP_APP
        return self.keystore.card_key(uid, sector_group=group, key_type="B").reveal()

    def _open(self, card: StorageCard, uid: bytes, sector: int) -> bool:
        """Authenticate ``sector`` with our key B (True) or the factory key A (False)."""
        for ours, key, key_type in (
            (True, self._ours(uid, sector), "B"),
            (False, self.factory_key, "A"),
        ):
            slot = key_slot(card.dialect, key_type)
            kt = KeyType.B if key_type == "B" else KeyType.A
            card.load_key(key, slot, kt)
            try:
                card.authenticate(first_block(sector), kt, slot)
            except (CardAuthFailed, CardCommandFailed):
                card.reconnect()
                continue
            return ours
        raise UnknownCardFormat(
            f"card {uid.hex().upper()}: sector {sector} opens with neither our key nor the "
            "factory key (foreign card, or a sector bricked by a torn trailer write); "
            "nothing written"
        )

    def _member_state(self, card: StorageCard, *, ours: bool = True) -> CardState | None:
        """The card's valid record; ``None`` if it has none (transport state, or half issued
        or half erased). Data in our sectors that this daemon does not understand (another
        format version, or - unless ``ours``, i.e. our own unfinished write - a foreign or
        corrupt header) raises: nothing is written over it."""
        card.reconnect()
        session = CardSession(card, self.keystore)
        try:
            image = session.read_image()
        except UnknownCardFormat:
            return None  # a sector does not open with our keys: not (fully) issued
        finally:
            card.reconnect()
        try:
            return evaluate(self.keystore, image)
        except UnknownCardFormat:
            if image.header[0] == MAGIC and image.header[1] not in FORMAT_VERSIONS:
                raise
            if image.header[0] == MAGIC or ours or not any(image.header):
                return None  # no valid record left: half issued / half erased
            raise
        except CardDataCorrupt:
            if ours:
                return None
            raise

    # --- issue ------------------------------------------------------------------------------

    def _check_spec(self, spec: IssueSpec) -> None:
        check_member_id(spec.member_id)
        self.programme.tier(spec.tier)
        check_amount("balance", spec.balance, allow_zero=True)
        check_amount("points", spec.points, allow_zero=True)
        if spec.balance > self.programme.balance_cap:
            raise InvalidArgument("balance", f"{spec.balance} fen is above the card cap")

    def issue(self, card: StorageCard, request: IssueCard) -> IssueResult:
        """Personalise a transport-state card; idempotent per ``request_id``."""
        return self._issue(card, request.spec, request.request_id)

    def _issue(
        self, card: StorageCard, spec: IssueSpec, request_id: str, replacing: str | None = None
    ) -> IssueResult:
        """:meth:`issue`, also for :func:`~.replace.replace_card` (package-internal): its
        ``replacing`` card may stay bound to the member, and its derived request_id
        (``<id>:issue``) may be longer than a client's."""
        self._check_spec(spec)
        self.journal.check_space()  # its intent and outcome must fit before the card is written
        params = {**spec.journal_params(), "replacing": replacing}
        with self.journal.claim(request_id, "issue", params) as claim:
            if claim.action == "replay":
                assert claim.record.outcome is not None
                return IssueResult(**claim.record.outcome, replayed=True)
            uid = card.uid()
            uid_hex = uid.hex().upper()
            record = claim.record
            if record.uid is not None and record.uid != uid_hex:
                raise InvalidArgument(
                    "card", f"issue {request_id} is unfinished on card {record.uid}; present it"
                )
            if self.journal.hotlist_reason(uid_hex):
                raise CardHotlisted(f"card {uid_hex} is hotlisted; it cannot be issued")
            bound = self.journal.bound_uid(spec.member_id)
            if bound not in (None, uid_hex, replacing):
                raise InvalidArgument(
                    "member_id",
                    f"member {spec.member_id} already has card {bound}; "
                    + (f"card {replacing} was already replaced" if replacing else "use replace"),
                )
            tag = bytes.fromhex(record.after["tag"]) if record.after else secrets.token_bytes(4)
            issued = dt.date.fromisoformat(record.after["issued"]) if record.after else None
            header = Header(spec.member_id, spec.tier, spec.valid_until, issued or self._today(),
                            spec.generation)  # fmt: skip
            existing = self._member_state(card, ours=record.state is RequestState.PENDING)
            if existing is not None:
                return self._already(existing, request_id, spec, tag, uid_hex)
            result = IssueResult(request_id, uid_hex, spec.member_id, spec.balance, spec.points)
            # bind before the card is touched: from the commit on, this UID is the member's
            self.journal.bind_member(spec.member_id, uid_hex)
            if record.state is not RequestState.PENDING:
                self.journal.record_intent(
                    request_id, uid_hex, {"state": "transport"},
                    {"tag": tag.hex(), "issued": header.issued.isoformat(),
                     "result": _outcome(result)},
                )  # fmt: skip
            try:
                self._write_issue(card, uid, header, spec, tag)
                state = self._member_state(card)
                mad_ok = self._mad_reads_back(card)
            except UnknownCardFormat as exc:
                self.journal.finish(request_id, RequestState.ABORTED, {"error": exc.reason})
                self.journal.unbind_member(spec.member_id, uid_hex)
                if replacing is not None:
                    self.journal.bind_member(spec.member_id, replacing)
                self.journal.audit("issue_failed", uid=uid_hex, request_id=request_id,
                                   detail={"reason": exc.message})  # fmt: skip
                raise
            except CardDaemonError as exc:
                if isinstance(exc, WriteUnconfirmed):
                    raise
                raise WriteUnconfirmed(f"card {uid_hex}: issue unconfirmed ({exc.reason})") from exc
            finally:
                self._audit_keys(uid_hex, request_id)
            if state is None or state.current.tag != tag or not mad_ok:
                raise WriteUnconfirmed(f"card {uid_hex}: issued record does not read back")
            return self._finish(state, request_id, result)

    def _already(
        self, state: CardState, request_id: str, spec: IssueSpec, tag: bytes, uid_hex: str
    ) -> IssueResult:
        if state.header.member_id == spec.member_id and state.current.tag == tag:
            result = IssueResult(request_id, uid_hex, spec.member_id, state.current.balance,
                                 state.current.points)  # fmt: skip
            return self._finish(state, request_id, result)
        raise InvalidArgument(
            "card",
            f"card {uid_hex} already holds member {state.header.member_id}'s record; erase it "
            "first (nothing written)",
        )

    def _finish(self, state: CardState, request_id: str, result: IssueResult) -> IssueResult:
        cur = state.current
        self.journal.observe(result.uid, result.member_id, cur.counter, {
            "member_id": result.member_id, "tier": state.header.tier,
            "generation": state.header.generation,
            "valid_until": state.header.valid_until.isoformat() if state.header.valid_until
            else None, "balance": cur.balance, "points": cur.points, "counter": cur.counter,
        })  # fmt: skip
        self.journal.bind_member(result.member_id, result.uid)
        self.journal.finish(request_id, RequestState.COMMITTED, _outcome(result))
        self.journal.audit("issue", uid=result.uid, member_id=result.member_id,
                           request_id=request_id, detail=_outcome(result))  # fmt: skip
        return result

    def _write_issue(
        self, card: StorageCard, uid: bytes, header: Header, spec: IssueSpec, tag: bytes
    ) -> None:
        state = SlotState(1, spec.balance, spec.points, tag)
        raw_header = header.encode()
        value = encode_value_block(spec.balance, PURSE_ADR)
        mad = Mad1.for_sectors({1: APP_AID, 2: APP_AID, 3: APP_AID}).to_bytes()
        version = self.keystore.current_version(KeyPurpose.CARD_B)
        data = {
            2: [_ZERO, _ZERO, _ZERO],
            3: [value, value, raw_header],
            0: [mad[:16], mad[16:]],
            1: [state.encode(), mac_slot(self.keystore, uid, raw_header, state), _ZERO],
        }
        key_a = self.keystore.card_key(uid, sector_group=KEY_GROUP_APP, key_type="A").reveal()
        key_b = self.keystore.card_key(uid, sector_group=KEY_GROUP_APP, key_type="B").reveal()
        trailers = {
            2: build_trailer(key_a, ACCESS_SLOT, key_b),
            3: build_trailer(key_a, ACCESS_PURSE, key_b, gpb=version),
            0: build_trailer(MAD_KEY_A, ACCESS_MAD, self._ours(uid, 0), gpb=GPB_MAD_V1),
            1: build_trailer(key_a, ACCESS_SLOT, key_b),
        }
        for sector in ISSUE_ORDER:
            ours = self._open(card, uid, sector)
            first = 1 if sector == 0 else first_block(sector)
            for i, block in enumerate(data[sector]):
                card.write_block(first + i, block)
            if not ours:
                card.write_block(trailer_block(sector), trailers[sector])
            card.reconnect()

    def _mad_reads_back(self, card: StorageCard) -> bool:
        """Sector 0 as any tool sees it: readable with the public MAD key, our AID listed."""
        slot = key_slot(card.dialect, "A")
        card.load_key(MAD_KEY_A, slot, KeyType.A)
        card.authenticate(1, KeyType.A, slot)
        mad = Mad1.from_bytes(b"".join(card.read_blocks(1, 2)))
        card.reconnect()
        return all(mad.aid_for_sector(s) == APP_AID for s in (1, 2, 3))

    def _audit_keys(self, uid_hex: str, request_id: str) -> None:
        """Which key versions this personalisation used (never the keys)."""
        uses = [
            {"purpose": KeyPurpose.CARD_A.value, "group": KEY_GROUP_APP,
             "version": self.keystore.current_version(KeyPurpose.CARD_A)},
            {"purpose": KeyPurpose.CARD_B.value, "group": KEY_GROUP_APP,
             "version": self.keystore.current_version(KeyPurpose.CARD_B)},
            {"purpose": KeyPurpose.CARD_B.value, "group": KEY_GROUP_MAD,
             "version": self.keystore.current_version(KeyPurpose.CARD_B)},
            {"purpose": KeyPurpose.MAC.value, "group": None,
             "version": self.keystore.current_version(KeyPurpose.MAC)},
        ]  # fmt: skip
        self.journal.audit("key_use", uid=uid_hex, request_id=request_id, detail={"uses": uses})

    # --- erase ------------------------------------------------------------------------------

    def erase(self, card: StorageCard, request: EraseCard) -> str:
        """Back to transport state. Refuses a card holding value unless ``force`` (audited)."""
        request_id, force = request.request_id, request.force
        self.journal.check_space()
        with self.journal.claim(request_id, "erase", {"force": force}) as claim:
            if claim.action == "replay":
                return str(claim.record.uid)
            uid = card.uid()
            uid_hex = uid.hex().upper()
            state = self._member_state(
                card, ours=force or claim.record.state is RequestState.PENDING
            )
            if state is not None and (state.current.balance or state.current.points) and not force:
                raise InvalidArgument(
                    "force",
                    f"card {uid_hex} holds {state.current.balance} fen and "
                    f"{state.current.points} points; replace or refund first (nothing written)",
                )
            if claim.record.state is not RequestState.PENDING:
                before = {"state": state.current.as_dict() if state else None}
                self.journal.record_intent(request_id, uid_hex, before, {"state": "transport"})
            try:
                self._write_erase(card, uid, state)
            finally:
                self._audit_keys(uid_hex, request_id)
            member = state.header.member_id if state else None
            if member and self.journal.bound_uid(member) == uid_hex:
                self.journal.unbind_member(member, uid_hex)
            self.journal.forget_card(uid_hex)
            self.journal.finish(request_id, RequestState.COMMITTED, {"uid": uid_hex})
            self.journal.audit("erase", uid=uid_hex, member_id=member, request_id=request_id,
                               detail={"destroyed": state.current.as_dict() if state else None,
                                       "forced": force})  # fmt: skip
            return uid_hex

    def _write_erase(self, card: StorageCard, uid: bytes, state: CardState | None) -> None:
        if state is not None:  # older slot first, newest last: the commit point of erase
            newest = state.current.slot
            for slot in (1 - newest, newest):
                sector = 1 + slot
                self._open(card, uid, sector)
                card.write_block(first_block(sector), _ZERO)
                card.write_block(first_block(sector) + 1, _ZERO)
                card.reconnect()
        for sector in (1, 2, 3, 0):
            ours = self._open(card, uid, sector)
            blocks = (1, 2) if sector == 0 else tuple(first_block(sector) + i for i in range(3))
            for block in blocks:
                card.write_block(block, _ZERO)
            if ours:
                card.write_block(trailer_block(sector), transport_trailer())
            card.reconnect()


def _outcome(result: IssueResult) -> dict[str, object]:
    return {"request_id": result.request_id, "uid": result.uid, "member_id": result.member_id,
            "balance": result.balance, "points": result.points}  # fmt: skip

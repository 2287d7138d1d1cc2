"""Fraud test cards: built by replaying real attacks on the simulator, saved as JSON dumps.

The dumps under ``tests/membercard/data/cards/`` are made with :func:`fixed_test_keystore`, a
keystore whose masters are derived from the words "TEST ONLY" (never used outside tests). The
attacker in these scripts knows the card's diversified keys, as a real one would after a hardnested
or backdoor attack; what he does not have is the MAC key.

Regenerate after a layout change: ``.venv/bin/python -m tests.membercard.fraud_cards``.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.layout import (
    KEY_GROUP_APP,
    PURSE_ADR,
    PURSE_BACKUP,
    PURSE_PRIMARY,
    SLOT_MAC_BLOCKS,
    SLOT_STATE_BLOCKS,
    slot_for_counter,
)
from daemon.membercard.requests import Debit
from daemon.mifare.value import encode_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.dumps import load_json, save_json
from tests.membercard.terminal import Terminal, issue, terminal

CARDS = Path(__file__).parent / "data" / "cards"
MEMBER = "8800000001"
UID = bytes.fromhex("04A00001")
CLONE_UID = bytes.fromhex("04A00002")

# What the terminal that saw the genuine card remembers, per fraud card (the journal context).
CONTEXT: dict[str, dict[str, Any]] = {
    "fraud_mac_edited": {"reason": "MAC_INVALID", "last_counter": None},
    "fraud_value_mismatch": {"reason": "VALUE_BLOCK_MISMATCH", "last_counter": None},
    "fraud_rollback": {"reason": "COUNTER_ROLLBACK", "last_counter": 4},
    "fraud_clone": {"reason": "CARD_CLONED", "bound_to": UID.hex().upper()},
    "fraud_restore_trick": {"reason": "COUNTER_ROLLBACK", "last_counter": 5},
}


def fixed_test_keystore() -> Keystore:
    """Deterministic TEST ONLY master keys (so committed dumps stay readable)."""
    masters = {
        p: {1: hashlib.sha256(b"carddaemon TEST ONLY master key " + p.value.encode()).digest()}
        for p in KeyPurpose
    }
    return Keystore(masters, dict.fromkeys(KeyPurpose, 1), source="<TEST ONLY keys>")


class Attacker:
    """Someone holding the card's recovered sector keys A and B (not the MAC key)."""

    def __init__(self, keystore: Keystore, term: Terminal) -> None:
        self.keystore = keystore
        self.term = term

    def _open(self, sc: StorageCard, block: int, key_type: str) -> None:
        uid = sc.uid()
        key = self.keystore.card_key(uid, sector_group=KEY_GROUP_APP, key_type=key_type)
        kt = KeyType.A if key_type == "A" else KeyType.B
        sc.load_key(key.reveal(), 0, kt)
        sc.authenticate(block, kt, 0)

    def write(self, block: int, data: bytes, key_type: str = "B") -> None:
        with self.term.storage() as sc:
            self._open(sc, block, key_type)
            sc.write_block(block, data)

    def read(self, block: int) -> bytes:
        with self.term.storage() as sc:
            self._open(sc, block, "A")
            return sc.read_block(block)

    def restore_transfer(self, source: int, target: int) -> None:
        """Key A only: RESTORE + TRANSFER, the classic purse roll-back trick."""
        with self.term.storage() as sc:
            self._open(sc, source, "A")
            sc.value_restore_transfer(source, target)


def _genuine(term: Terminal, uid: bytes = UID, debits: int = 3) -> SimCard:
    card = issue(term, uid, member_id=MEMBER, balance=100_000, points=10)
    for i in range(debits):
        with term.storage() as sc:
            term.service.debit(sc, Debit(request_id=f"g{uid.hex()}{i}", amount=1_000 * (i + 1)))
    return card


def build(keystore: Keystore, workdir: Path) -> dict[str, SimCard]:
    """Every fraud card, built by actually doing the attack on the simulator."""
    cards: dict[str, SimCard] = {}
    with terminal(keystore, workdir / "a.db") as t:
        card = _genuine(t)  # counter 4: slot 1 newest
        newest = slot_for_counter(4)
        state = bytearray(Attacker(keystore, t).read(SLOT_STATE_BLOCKS[newest]))
        mac = bytearray(Attacker(keystore, t).read(SLOT_MAC_BLOCKS[newest]))
        state[4:8] = (9_999_900).to_bytes(4, "big")  # the balance, in fen
        mac[1:5] = zlib.crc32(bytes(state)).to_bytes(4, "big")  # the CRC is public
        att = Attacker(keystore, t)
        att.write(SLOT_STATE_BLOCKS[newest], bytes(state), "A")
        att.write(SLOT_MAC_BLOCKS[newest], bytes(mac), "A")
        value = encode_value_block(9_999_900, PURSE_ADR)
        att.write(PURSE_PRIMARY, value)
        att.write(PURSE_BACKUP, value)
        cards["fraud_mac_edited"] = SimCard(card.uid, memory=card.memory)
    with terminal(keystore, workdir / "b.db") as t:
        card = _genuine(t)
        value = encode_value_block(5_000_000, PURSE_ADR)
        Attacker(keystore, t).write(PURSE_PRIMARY, value)
        Attacker(keystore, t).write(PURSE_BACKUP, value)
        cards["fraud_value_mismatch"] = SimCard(card.uid, memory=card.memory)
    with terminal(keystore, workdir / "c.db") as t:
        card = _genuine(t, debits=1)  # the dump taken at counter 2 ...
        cards["fraud_rollback"] = SimCard(card.uid, memory=card.memory)
    with terminal(keystore, workdir / "d.db") as t:  # another station issues the same member
        card = _genuine(t, uid=CLONE_UID, debits=0)
        cards["fraud_clone"] = SimCard(card.uid, memory=card.memory)
    with terminal(keystore, workdir / "e.db") as t:
        card = _genuine(t)  # counter 4, balance 94 000
        n0 = t.reader.apdu_count
        t.reader.faults.arm()
        t.reader.faults.remove_after(13)  # card pulled right after the DECREMENT (APDU 13)
        with t.storage() as sc:
            t.service.debit(
                sc, Debit(request_id="torn", amount=50_000)
            )  # record committed: counter 5
        assert t.reader.apdu_count - n0 == 13
        t.reader.insert(card)
        att = Attacker(keystore, t)
        att.restore_transfer(PURSE_BACKUP, PURSE_PRIMARY)  # backup still holds 94 000
        att.write(SLOT_STATE_BLOCKS[slot_for_counter(5)], bytes(16), "A")  # drop the new record
        cards["fraud_restore_trick"] = SimCard(card.uid, memory=card.memory)
    return cards


def load(name: str) -> SimCard:
    return load_json(CARDS / f"{name}.json")


if __name__ == "__main__":
    import tempfile

    CARDS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, built in build(fixed_test_keystore(), Path(tmp)).items():
            save_json(built, CARDS / f"{name}.json")

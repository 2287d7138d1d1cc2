"""Regenerate the simulator-made dump fixtures in tests/mifare/data/ (run from the repo root:
``.venv/bin/python -m tests.mifare.make_dump_fixtures``).

The card: a simulated NXP 1K whose sector 1 is a purse (two value blocks of 1234567 fen at
address 4, a text block, access bits 48 77 8B: blocks 4-5 value, 6 read/write; public sample
keys C0C1C2C3C4C5 / D0D1D2D3D4D5 from the key dictionary: no secret in the repository); every
other sector is factory fresh.
The .mfd and the simulator's .json come from sim/dumps.py (not from the code under test).
"""

from __future__ import annotations

from pathlib import Path

from sim import dumps
from sim.card import SimCard
from sim.store import set_sector, transport_card, value_block

DATA = Path(__file__).resolve().parent / "data"
UID = bytes.fromhex("5A3C9E01")
KEY_A = bytes.fromhex("C0C1C2C3C4C5")
KEY_B = bytes.fromhex("D0D1D2D3D4D5")


def purse_card() -> SimCard:
    card = transport_card(UID)
    card.program(4, value_block(1234567, 4))
    card.program(5, value_block(1234567, 4))
    card.program(6, b"Member 0001".ljust(16, b"\x00"))
    set_sector(card, 1, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("48778B"))
    return card


def main() -> None:
    card = purse_card()
    dumps.save_mfd(card, DATA / "sim-purse.mfd")
    dumps.save_json(card, DATA / "sim-purse.sim.json")


if __name__ == "__main__":
    main()

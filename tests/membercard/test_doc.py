"""``docs/card-layout.md`` is the v1 card format: its tables must say what the code does.

The markdown tables (sector map, access bytes, field offsets, MAC, key derivation, APDU counts,
fraud reasons) are parsed and checked against the layout constants and against the bytes a
real issue writes onto a simulated card, so the document cannot drift from the code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

import daemon.errors as errors
from daemon.keystore import KDF_LABEL, KeyPurpose, Keystore
from daemon.membercard.issuing import ISSUE_ORDER
from daemon.membercard.layout import (
    ACCESS_MAD,
    ACCESS_PURSE,
    ACCESS_SLOT,
    APP_AID,
    FORMAT_VERSION,
    HEADER_BLOCK,
    KEY_GROUP_APP,
    KEY_GROUP_MAD,
    MAGIC,
    MAX_AMOUNT,
    NO_EXPIRY,
    PURSE_ADR,
    PURSE_BACKUP,
    PURSE_PRIMARY,
    PURSE_SECTOR,
    SLOT_MAC_BLOCKS,
    SLOT_SECTORS,
    SLOT_STATE_BLOCKS,
    Header,
    SlotState,
    mac_slot,
    slot_for_counter,
)
from daemon.membercard.requests import AdjustPoints, Credit, Debit, EraseCard
from daemon.mifare.access import AccessConditions
from daemon.mifare.geometry import first_block, trailer_block
from daemon.mifare.mad import Mad1
from daemon.mifare.trailer import transport_trailer
from daemon.mifare.value import decode_value_block
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from tests.membercard.terminal import FAULTS, Terminal, issue, terminal, uid_for

DOC = (Path(__file__).resolve().parents[2] / "docs" / "card-layout.md").read_text("utf-8")
FLAT = " ".join(DOC.split())  # prose with line breaks folded, for sentence searches
Row = dict[str, str]

MASTERS = {p: {1: hashlib.sha256(p.value.encode()).digest()} for p in KeyPurpose}
KS = Keystore(MASTERS, dict.fromkeys(KeyPurpose, 1))
UID = bytes.fromhex("04A1B2C3")


def tables() -> list[list[list[str]]]:
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*DOC.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            out.append(current)
            current = []
    return out


def table(*header: str) -> list[Row]:
    found = [t for t in tables() if tuple(t[0]) == header]
    assert len(found) >= 1, f"no table with columns {header} in docs/card-layout.md"
    return [dict(zip(header, row, strict=True)) for row in found[0][1:]]


def tables_with(*header: str) -> list[list[Row]]:
    return [
        [dict(zip(header, row, strict=True)) for row in t[1:]]
        for t in tables()
        if tuple(t[0]) == header
    ]


def code(cell: str) -> list[str]:
    """The `backticked` parts of a cell."""
    return re.findall(r"`([^`]*)`", cell)


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def numbers(cell: str) -> list[int]:
    """``"8, 9, 10"`` / ``"1–2"`` / ``"4"`` -> the listed integers."""
    out: list[int] = []
    for part in cell.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:[–-]\s*(\d+))?\s*", part)
        assert m, f"not a number or range: {cell!r}"
        lo = int(m.group(1))
        out.extend(range(lo, int(m.group(2) or lo) + 1))
    return out


def byte_span(cell: str) -> slice:
    nums = numbers(cell)
    return slice(nums[0], nums[-1] + 1)


# --- sector map and what an issue really writes ----------------------------------------------


def test_sector_map_names_the_blocks_the_code_uses() -> None:
    rows = table("sector", "block", "content", "written by")
    where = {
        "record slot 0: state block": (SLOT_SECTORS[0], [SLOT_STATE_BLOCKS[0]]),
        "record slot 0: MAC block": (SLOT_SECTORS[0], [SLOT_MAC_BLOCKS[0]]),
        "record slot 1: state, MAC, reserved": (
            SLOT_SECTORS[1],
            [SLOT_STATE_BLOCKS[1], SLOT_MAC_BLOCKS[1], SLOT_MAC_BLOCKS[1] + 1],
        ),
        "purse primary": (PURSE_SECTOR, [PURSE_PRIMARY]),
        "purse backup": (PURSE_SECTOR, [PURSE_BACKUP]),
        "member header": (PURSE_SECTOR, [HEADER_BLOCK]),
        "manufacturer block": (0, [0]),
        "MAD v1": (0, [1, 2]),
    }
    seen = set()
    for row in rows:
        for key, (sector, blocks) in where.items():
            if row["content"].startswith(key):
                assert (numbers(row["sector"]), numbers(row["block"])) == ([sector], blocks), row
                seen.add(key)
        if row["content"].startswith("purse"):
            assert f"Adr `{PURSE_ADR:02X}`" in row["content"]
        if row["content"].startswith("trailer"):
            assert numbers(row["block"]) == [trailer_block(numbers(row["sector"])[0])]
    assert seen == set(where)
    assert (
        "**never**"
        in next(r for r in rows if r["content"].startswith("manufacturer"))["written by"]
    )


def _trailers(rows: list[Row]) -> dict[int, Row]:
    out: dict[int, Row] = {}
    for row in rows:
        if row["content"].startswith("trailer"):
            out[numbers(row["sector"])[0]] = row
    return out


def test_an_issued_card_holds_exactly_what_the_sector_map_says(tmp_path: Path) -> None:
    rows = table("sector", "block", "content", "written by")
    trailers = _trailers(rows)
    with terminal(KS, tmp_path / "j.db") as t:
        card = _issue(t)
        # trailer rows: key A (where public), access bytes and GPB as the doc writes them
        t0 = card.block(trailer_block(0))
        parts0 = code(trailers[0]["content"])
        assert t0[0:6] == hexbytes(parts0[0])  # public MAD key A
        assert t0[6:9] == hexbytes(parts0[1])
        assert t0[9] == hexbytes(parts0[2])[0]  # GPB C1
        slot_row = code(trailers[1]["content"])
        for sector in SLOT_SECTORS:
            raw = card.block(trailer_block(sector))
            assert raw[6:9] == hexbytes(slot_row[0]), sector
            assert raw[9] == hexbytes(slot_row[1])[0], sector
        purse = card.block(trailer_block(PURSE_SECTOR))
        assert purse[6:9] == hexbytes(code(trailers[PURSE_SECTOR]["content"])[0])
        assert "GPB = card key version" in trailers[PURSE_SECTOR]["content"]
        assert purse[9] == KS.current_version(KeyPurpose.CARD_A)
        # reserved block zero, purse value blocks with Adr 0C, sectors 4-15 untouched
        assert card.block(SLOT_MAC_BLOCKS[0] + 1) == bytes(16)
        for block in (PURSE_PRIMARY, PURSE_BACKUP):
            assert card.block(block)[12] == PURSE_ADR
            assert decode_value_block(card.block(block), block=block).value == 100_000
        untouched = next(r for r in rows if r["sector"].startswith("4"))
        assert numbers(untouched["sector"]) == list(range(4, 16))
        for sector in range(4, 16):
            assert card.block(trailer_block(sector)) == transport_trailer()
            assert all(card.block(first_block(sector) + i) == bytes(16) for i in range(3))


def _issue(t: Terminal) -> SimCard:
    return issue(t, UID, member_id="0012345", balance=100_000, points=7)


def test_mad_aid_and_gpb_match_the_text(tmp_path: Path) -> None:
    m = re.search(r"carry AID `([0-9A-F]{4})` \(stored little-endian `([0-9A-F ]+)`\)", FLAT)
    assert m, "MAD AID sentence missing"
    aid = int(m.group(1), 16)
    assert aid == APP_AID
    assert hexbytes(m.group(2)) == APP_AID.to_bytes(2, "little")
    gpb = re.search(r"GPB `([0-9A-F]{2})` = MAD available", FLAT)
    assert gpb
    with terminal(KS, tmp_path / "j.db") as t:
        card = _issue(t)
        mad_raw = card.block(1) + card.block(2)
        mad = Mad1.from_bytes(mad_raw)
        assert [mad.aid_for_sector(s) for s in (1, 2, 3)] == [aid] * 3
        assert [mad.aid_for_sector(s) for s in range(4, 16)] == [0] * 12  # "free (0000)"
        assert mad_raw[1] == 0  # info byte 00
        assert mad_raw[2:8] == hexbytes(m.group(2)) * 3
        assert card.block(trailer_block(0))[9] == int(gpb.group(1), 16)


def test_access_table_bytes_are_the_code_constants() -> None:
    rows = table("sector", "blocks 0, 1, 2 (C1C2C3)", "trailer", "bytes", "meaning")
    constants = {"0": ACCESS_MAD, "1, 2": ACCESS_SLOT, "3": ACCESS_PURSE}
    assert len(rows) == len(constants)
    for row in rows:
        sectors = row["sector"].split(" (")[0]
        b0, b1, b2 = (g.strip() for g in row["blocks 0, 1, 2 (C1C2C3)"].split(","))
        documented = AccessConditions.of(b0, b1, b2, row["trailer"])
        assert documented == constants[sectors], row
        assert documented.to_bytes() == hexbytes(code(row["bytes"])[0]), row
    # the sector map repeats the bytes: same values there
    trailers = _trailers(table("sector", "block", "content", "written by"))
    assert hexbytes(code(trailers[0]["content"])[1]) == ACCESS_MAD.to_bytes()
    assert hexbytes(code(trailers[1]["content"])[0]) == ACCESS_SLOT.to_bytes()
    assert hexbytes(code(trailers[3]["content"])[0]) == ACCESS_PURSE.to_bytes()


# --- field encodings -------------------------------------------------------------------------


def _encoding_tables() -> tuple[list[Row], list[Row]]:
    found = tables_with("bytes", "field", "encoding")
    header = next(t for t in found if any(r["field"] == "magic" for r in t))
    state = next(t for t in found if any(r["field"] == "counter" for r in t))
    return header, state


def _covers_16_bytes(rows: list[Row]) -> None:
    covered = [i for r in rows for i in range(*byte_span(r["bytes"]).indices(16))]
    assert covered == list(range(16)), "the rows must cover bytes 0-15 once, in order"


def test_header_offsets_and_encodings() -> None:
    rows, _ = _encoding_tables()
    _covers_16_bytes(rows)
    header = Header("0012345", 0x5A, dt.date(2028, 12, 31), dt.date(2026, 11, 23))
    raw = header.encode()
    epoch = dt.date(2000, 1, 1)
    expect = {
        "magic": bytes((MAGIC,)),
        "format version": bytes((FORMAT_VERSION,)),
        "member ID": bytes.fromhex("0012345".ljust(16, "F")),
        "tier": bytes((0x5A,)),
        "replacement generation": b"\x00",
        "valid until": (dt.date(2028, 12, 31) - epoch).days.to_bytes(2, "big"),
        "issued": (dt.date(2026, 11, 23) - epoch).days.to_bytes(2, "big"),
    }
    assert [r["field"] for r in rows] == list(expect)
    for row in rows:
        assert raw[byte_span(row["bytes"])] == expect[row["field"]], row
    by_field = {r["field"]: r["encoding"] for r in rows}
    assert hexbytes(code(by_field["magic"])[0]) == bytes((MAGIC,))
    assert hexbytes(code(by_field["format version"])[0]) == bytes((FORMAT_VERSION,))
    assert hexbytes(code(by_field["replacement generation"])[0]) == b"\x00"
    assert int(code(by_field["valid until"])[0], 16) == NO_EXPIRY
    assert Header("1", 0, None, dt.date(2026, 1, 1)).encode()[12:14] == b"\xff\xff"
    assert "2000-01-01" in by_field["valid until"]
    assert "2000-01-01" in by_field["issued"]


def test_state_block_offsets_range_and_slot_parity() -> None:
    _, rows = _encoding_tables()
    _covers_16_bytes(rows)
    state = SlotState(0x01020305, 0x11223344, 0x0A0B0C0D, bytes.fromhex("DEADBEEF"))
    raw = state.encode()
    expect = {
        "counter": (0x01020305).to_bytes(4, "big"),
        "balance": (0x11223344).to_bytes(4, "big"),
        "points": (0x0A0B0C0D).to_bytes(4, "big"),
        "write tag": bytes.fromhex("DEADBEEF"),
    }
    assert [r["field"] for r in rows] == list(expect)
    for row in rows:
        assert raw[byte_span(row["bytes"])] == expect[row["field"]], row
    by_field = {r["field"]: r["encoding"] for r in rows}
    assert "2³¹−1" in by_field["balance"]
    assert "2³¹−1" in by_field["points"]
    assert MAX_AMOUNT == 2**31 - 1
    assert "**odd counters live in slot 0, even in slot 1**" in by_field["counter"]
    assert [slot_for_counter(c) for c in (1, 2, 3, 4)] == [0, 1, 0, 1]


def _interpret(formula: str, values: dict[str, bytes]) -> tuple[bytes, bytes, int]:
    """``HMAC-SHA256(key, a ‖ b ‖ …)[:n]`` from the doc -> (key name, message, n)."""
    m = re.fullmatch(r"HMAC-SHA256\(([^,]+), (.+)\)\[:(\d+)\]", formula)
    assert m, f"not an HMAC formula: {formula!r}"
    message = b""
    for part in (p.strip() for p in m.group(2).split("‖")):
        if part.startswith('"'):
            message += part.strip('"').encode("ascii")
        elif part in values:
            message += values[part]
        else:
            message += hexbytes(part)
    return m.group(1).encode(), message, int(m.group(3))


def test_mac_block_is_computed_as_documented() -> None:
    rows = table("bytes", "field")
    header = Header("0012345", 3, None, dt.date(2026, 11, 23)).encode()
    state = SlotState(4, 777, 12, bytes.fromhex("01020304"))
    mac = mac_slot(KS, UID, header, state)
    fields = {r["field"].split(" (")[0]: byte_span(r["bytes"]) for r in rows}
    assert [r["bytes"] for r in rows] == ["0", "1–4", "5–15"]
    assert mac[fields["MAC key version"]] == bytes((KS.current_version(KeyPurpose.MAC),))
    assert mac[fields["CRC-32"]] == zlib.crc32(state.encode()).to_bytes(4, "big")
    formula = code(rows[-1]["field"])[0]
    key, message, n = _interpret(
        formula,
        {
            "slot": bytes((state.slot,)),
            "len(UID)": bytes((len(UID),)),
            "UID": UID,
            "header(16)": header,
            "state(16)": state.encode(),
        },
    )
    assert key == b"K_mac[v]"
    span = byte_span(rows[-1]["bytes"])
    assert len(range(*span.indices(16))) == n
    expected = hmac.new(MASTERS[KeyPurpose.MAC][1], message, hashlib.sha256).digest()[:n]
    assert mac[span] == expected


def test_key_derivation_is_computed_as_documented() -> None:
    m = re.search(r"`K = (HMAC-SHA256\(master\[v\], .+?\)\[:\d+\])`", FLAT)
    assert m, "key derivation formula missing"
    assert KDF_LABEL.decode() in m.group(1)
    groups = re.search(r"Group (\d) = sector 0's key B; group (\d) = sectors 1–3", FLAT)
    assert groups
    assert (int(groups.group(1)), int(groups.group(2))) == (KEY_GROUP_MAD, KEY_GROUP_APP)
    purposes = re.search(r"Masters per purpose, each with versions: (.+?) \(", FLAT)
    assert purposes
    assert set(code(purposes.group(1))) == {p.value for p in KeyPurpose}
    for group in (KEY_GROUP_MAD, KEY_GROUP_APP):
        for key_type, purpose in (("A", KeyPurpose.CARD_A), ("B", KeyPurpose.CARD_B)):
            _, message, n = _interpret(
                m.group(1).replace("60|61", "60" if key_type == "A" else "61"),
                {"len(UID)": bytes((len(UID),)), "UID": UID, "group": bytes((group,))},
            )
            want = hmac.new(MASTERS[purpose][1], message, hashlib.sha256).digest()[:n]
            got = KS.card_key(UID, sector_group=group, key_type=key_type, version=1)
            assert got.reveal() == want, (group, key_type)


# --- protocol facts --------------------------------------------------------------------------


def test_issue_order_and_commit_point() -> None:
    m = re.search(r"Sectors in the order \*\*([\d, ]+)\*\*", FLAT)
    assert m
    assert tuple(numbers(m.group(1))) == ISSUE_ORDER
    assert ISSUE_ORDER[-1] == SLOT_SECTORS[0]
    assert f"**Commit point: sector {ISSUE_ORDER[-1]}'s trailer.**" in FLAT


@pytest.mark.parametrize("model", ["acr1252u", "acr122u"])
def test_apdu_counts_in_the_table_are_what_the_code_sends(tmp_path: Path, model: str) -> None:
    rows = {r["operation"]: r for r in table(
        "operation", "APDUs ACR1252U", "ms ACR1252U", "APDUs ACR122U", "ms ACR122U"
    )}  # fmt: skip
    column = "APDUs ACR1252U" if model == "acr1252u" else "APDUs ACR122U"
    with terminal(KS, tmp_path / "j.db", model=model) as t:
        n0 = t.reader.apdu_count
        issue(t, uid_for(1), balance=500_000)
        counts = {"issue (incl. verify)": t.reader.apdu_count - n0}
        with t.storage() as sc:
            t.service.read(sc)  # this terminal now knows the card (slot prediction)
        ops: dict[str, Callable[[StorageCard], object]] = {
            "read (identify + read)": lambda sc: t.service.read(sc),
            "tap: identify + read + debit + verify": lambda sc: t.service.debit(
                sc, Debit(request_id="d1", amount=1234)
            ),
            "credit tap": lambda sc: t.service.credit(sc, Credit(request_id="c1", amount=100_000)),
            "points tap": lambda sc: t.service.adjust_points(
                sc, AdjustPoints(request_id="p1", delta=-5)
            ),
        }
        for name, run in ops.items():
            with t.storage() as sc:
                n0 = t.reader.apdu_count
                run(sc)
                counts[name] = t.reader.apdu_count - n0
        card = t.reader.card
        assert card is not None
        memory = card.memory
        with t.storage() as sc:
            n0 = t.reader.apdu_count
            t.issuer.erase(sc, EraseCard(request_id="e1", force=True))
            counts["erase"] = t.reader.apdu_count - n0
    worst = 0
    with terminal(KS, tmp_path / "fresh.db", model=model) as fresh:  # never saw the card
        fresh.reader.insert(SimCard(uid_for(1), memory=memory))
        for i in range(2):  # both slot parities: one of them reads the written slot first
            with fresh.storage() as sc:
                n0 = fresh.reader.apdu_count
                fresh.service.debit(sc, Debit(request_id=f"f{i}", amount=100))
                worst = max(worst, fresh.reader.apdu_count - n0)
            fresh.journal.forget_card(uid_for(1).hex().upper())
    counts["same, terminal that never saw the card (worst slot parity)"] = worst
    assert set(counts) == set(rows)
    for name, n in counts.items():
        assert int(rows[name][column]) == n, (name, model)


def test_fraud_table_reasons_are_the_fraud_errors() -> None:
    rows = table("fraud", "detected by", "reason", "test")
    documented = {c for r in rows for c in code(r["reason"])}
    reasons = {
        cls.reason: cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.CardDaemonError)
    }
    fraud = {
        r for r, cls in reasons.items()
        if issubclass(cls, errors.FraudDetected) and cls is not errors.FraudDetected
    }  # fmt: skip
    assert fraud <= documented
    assert documented <= set(reasons)  # every backticked reason is a real one


def test_every_fraud_row_names_a_test_that_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    for row in table("fraud", "detected by", "reason", "test"):
        (ref,) = code(row["test"])
        path, _, name = ref.partition("::")
        source = (root / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), (row["fraud"], ref)


def test_tearing_claims_name_every_fault_the_tests_inject() -> None:
    words = {
        "remove_before": "removed-before",
        "tear_old": "torn old",
        "tear_new": "torn new",
        "tear_garbage": "torn garbage",
        "tear_unstable": "torn unstable",
        "lose_response": "response lost",
        "remove_after": "removed-after",
    }
    assert set(words) == set(FAULTS)
    section = DOC[DOC.index("## 6. Tearing analysis") : DOC.index("## 7.")]
    claim = " ".join(section.split())
    for fault, phrase in words.items():
        assert phrase in claim, fault

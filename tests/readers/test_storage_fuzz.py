"""Any bytes a reader may answer: typed errors only, and never an ambiguous write error.

The connection is the test-only crafted-bytes stub (a boundary test of our parser).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import (
    BlockNotFound,
    CardAccessDenied,
    CardDaemonError,
    CardDataCorrupt,
    CardRemoved,
    InvalidArgument,
    ReaderUnsupported,
    WriteUnconfirmed,
)
from daemon.mifare.value import encode_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.dialects import DIALECTS
from daemon.readers.storage import StorageCard
from tests.readers.scripted import VALUE_CODEC, ScriptedConnection

CODEC = VALUE_CODEC


Op = Callable[[StorageCard], object]

READS: list[Op] = [
    lambda c: c.uid(),
    lambda c: c.load_key(b"\xff" * 6, 0),
    lambda c: c.authenticate(4, KeyType.B, 0),
    lambda c: c.read_block(4),
    lambda c: c.read_blocks(4, 4),
    lambda c: c.firmware(),
    lambda c: c.probe_firmware(),
    lambda c: c.feedback(True),
]
WRITES: list[Op] = [
    lambda c: c.write_block(4, bytes(16)),
    lambda c: c.value_increment(5, 1),
    lambda c: c.value_decrement(5, 1),
]
ACS_ONLY: list[Op] = [
    lambda c: c.value_read(5),
    lambda c: c.value_store(5, -7),
    lambda c: c.value_restore_transfer(5, 6),
]
# a card-changing APDU may fail only as "unknown outcome" or as a definite refusal
DEFINITE_REFUSALS = (CardAccessDenied, BlockNotFound, ReaderUnsupported, CardDataCorrupt)

answer = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=16, max_size=16).map(lambda b: b + b"\x90\x00"),
    st.sampled_from([b"\x90\x00", b"\x63\x00", b"\x69\x82", b"\x61\x10", b"\x65\x81"]),
    st.builds(lambda v: encode_value_block(v, 5) + b"\x90\x00", st.integers(-(2**31), 2**31 - 1)),
)
answers = st.lists(answer, min_size=6, max_size=6)
dialect_names = st.sampled_from(["acr1252u", "acr122u", "omnikey", "generic"])
CARD_CHANGING = ("UPDATE BINARY", "INCREMENT", "DECREMENT", "STORE", "RESTORE")


@settings(max_examples=300, deadline=None)
@given(answers=answers, dialect_name=dialect_names, index=st.integers(0, 100))
def test_any_answer_gives_a_typed_error_or_a_result(
    answers: list[bytes], dialect_name: str, index: int
) -> None:
    dialect = DIALECTS[dialect_name]
    ops = READS + WRITES + (ACS_ONLY if dialect.name.startswith("acr") else [])
    op = ops[index % len(ops)]
    # when the script runs out, the card has left the field (a realistic end to any sequence)
    gone = CardRemoved("card left the field")
    conn = ScriptedConnection([*answers, gone], name="Fuzz Reader 00 00")
    card = StorageCard(conn, dialect, codec=CODEC)
    try:
        op(card)
    except CardDaemonError as exc:
        named = "Fuzz Reader 00 00" in str(exc) or isinstance(
            exc, ReaderUnsupported | CardDataCorrupt | InvalidArgument
        )
        assert named, repr(exc)  # noqa: PT017  (the call may also succeed)
        last = card.trace.last()  # None: refused before sending (unsupported)
        if last is not None and any(word in last.command for word in CARD_CHANGING):
            safe = isinstance(exc, (WriteUnconfirmed, *DEFINITE_REFUSALS))
            assert safe, repr(exc)  # noqa: PT017
    assert card.trace.count == len(conn.sent)

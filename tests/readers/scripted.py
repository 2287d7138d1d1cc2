"""Test-only CardConnection that answers crafted bytes: a boundary test of our parser.

It models no card and no reader: each transmit pops the next scripted answer (raw response
bytes, split exactly as a backend would, or an exception to raise). Behaviour tests of real
sequences run over the simulator instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from daemon.mifare.value import decode_value_block, encode_value_block
from daemon.readers.connection import Response
from daemon.readers.fallback import FunctionValueCodec

__all__ = ["VALUE_CODEC", "ScriptedConnection"]


def _decode(data: bytes, block: int) -> tuple[int, int]:
    vb = decode_value_block(data, block=block)
    return vb.value, vb.address


VALUE_CODEC = FunctionValueCodec(encode_value_block, _decode)
"""``daemon.mifare.value`` as the non-atomic fallback's codec (the layer above passes it so)."""


class ScriptedConnection:
    """Answers each APDU with the next scripted item; records what was sent."""

    def __init__(self, answers: Iterable[bytes | BaseException], name: str = "Test Reader 00 00"):
        self._answers = list(answers)
        self.sent: list[bytes] = []
        self.reconnects: list[bool] = []
        self.closed = 0
        self._name = name

    @property
    def reader_name(self) -> str:
        return self._name

    @property
    def atr(self) -> bytes:
        return bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

    def transmit(self, apdu: bytes) -> Response:
        self.sent.append(bytes(apdu))
        if not self._answers:
            raise AssertionError(f"unscripted APDU {apdu.hex(' ').upper()}")
        answer = self._answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return Response.from_bytes(answer)

    def reconnect(self, reset: bool = False) -> None:
        self.reconnects.append(reset)

    def close(self) -> None:
        self.closed += 1

    def sent_hex(self) -> list[str]:
        return [a.hex(" ").upper() for a in self.sent]

"""Serial framing: suffixes, idle gaps, split reads, garbage, NUL bytes, over-long codes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ConfigError
from daemon.scanners import MissingSuffix, RawScan, SerialFramer, Terminator

MS = 1_000_000  # ns


def _texts(scans: list[RawScan]) -> list[bytes]:
    return [s.data for s in scans]


@pytest.mark.parametrize(
    ("terminator", "suffix"),
    [(Terminator.CR, b"\r"), (Terminator.LF, b"\n"), (Terminator.CRLF, b"\r\n")],
)
def test_each_suffix_ends_a_code(terminator: Terminator, suffix: bytes) -> None:
    f = SerialFramer(terminator)
    scans = f.feed(b"4006381333931" + suffix + b"96385074" + suffix, 0)
    assert _texts(scans) == [b"4006381333931", b"96385074"]
    assert not any(s.suffix_missing for s in scans)


def test_code_split_over_many_reads_is_one_scan() -> None:
    f = SerialFramer(Terminator.CRLF)
    out = []
    for i, piece in enumerate([b"]E0400", b"63813", b"33931\r", b"\n"]):
        out += f.feed(piece, i * MS)
    assert _texts(out) == [b"4006381333931"]
    assert out[0].aim == "]E0"


def test_crlf_split_between_cr_and_lf() -> None:
    f = SerialFramer(Terminator.CRLF)
    assert f.feed(b"ABC\r", 0) == []
    assert _texts(f.feed(b"\nDEF\r\n", MS)) == [b"ABC", b"DEF"]


def test_cr_framer_tolerates_a_scanner_sending_crlf() -> None:
    """The stray LF lands at the start of the next frame and is trimmed, not delivered."""
    f = SerialFramer(Terminator.CR)
    assert _texts(f.feed(b"ABC\r\nDEF\r\n", 0)) == [b"ABC", b"DEF"]
    assert f.poll(10_000 * MS) == []


def test_no_suffix_mode_frames_by_idle_gap() -> None:
    f = SerialFramer(Terminator.NONE, idle_gap_s=0.05)
    assert f.feed(b"4006381", 0) == []
    assert f.feed(b"333931", 10 * MS) == []
    assert f.poll(40 * MS) == []  # only 30 ms quiet
    assert f.deadline_ns() == 60 * MS
    scans = f.poll(60 * MS)
    assert _texts(scans) == [b"4006381333931"]
    assert scans[0].suffix_missing is False
    assert f.deadline_ns() is None


def test_missing_suffix_is_flushed_after_timeout_and_marked() -> None:
    f = SerialFramer(Terminator.CR, suffix_timeout_s=0.5)
    assert f.feed(b"96385074", 0) == []
    assert f.poll(400 * MS) == []
    scans = f.poll(500 * MS)
    assert _texts(scans) == [b"96385074"]
    assert scans[0].suffix_missing is True
    assert f.stats.missing_suffix == 1


def test_missing_suffix_can_be_discarded_and_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    f = SerialFramer(Terminator.CR, suffix_timeout_s=0.5, missing_suffix=MissingSuffix.DISCARD)
    f.feed(b"101234567890123456", 0)  # a payment code without its CR
    assert f.poll(600 * MS) == []
    assert f.stats.discarded == 1
    assert "18 bytes" in caplog.text
    assert "101234567890123456" not in caplog.text
    assert _texts(f.feed(b"ABC\r", 700 * MS)) == [b"ABC"]


def test_nul_and_ff_noise_is_removed_anywhere() -> None:
    f = SerialFramer(Terminator.CR)
    scans = f.feed(b"\x00\x00\xff4006\x00381333931\r\x00", 0)
    assert _texts(scans) == [b"4006381333931"]
    assert f.stats.noise_bytes == 5


def test_frames_of_only_garbage_are_dropped() -> None:
    f = SerialFramer(Terminator.CR)
    assert f.feed(b"\r\r\x07\x18\r\n\r", 0) == []
    assert f.stats.empty_frames == 4  # "", "", "\x07\x18" and "\n": all trimmed to nothing
    assert f.stats.frames == 0


def test_gs1_separators_survive_trimming() -> None:
    f = SerialFramer(Terminator.CR)
    scans = f.feed(b"]C10104012345678901\x1d10AB\x1d\r", 0)
    assert scans[0].aim == "]C1"
    assert scans[0].data == b"0104012345678901\x1d10AB\x1d"


def test_prefix_drops_garbage_before_it_and_frames_without_it() -> None:
    f = SerialFramer(Terminator.CR, prefix=b"\x02")
    assert _texts(f.feed(b"zz\x02ABC\rNOPREFIX\r", 0)) == [b"ABC"]
    assert f.stats.no_prefix == 1


def test_aim_identifier_is_split_off_only_when_enabled() -> None:
    on = SerialFramer(Terminator.CR)
    off = SerialFramer(Terminator.CR, aim=False)
    assert on.feed(b"]Q1hello\r", 0)[0].aim == "]Q1"
    scan = off.feed(b"]Q1hello\r", 0)[0]
    assert (scan.aim, scan.data) == (None, b"]Q1hello")
    assert on.feed(b"]1x\r", 0)[0].data == b"]1x"  # not an AIM id: left alone


def test_very_long_code_within_limit_is_delivered_whole() -> None:
    f = SerialFramer(Terminator.CR, max_length=8192)
    code = b"Q" * 7000
    out = []
    for i in range(0, len(code), 61):
        out += f.feed(code[i : i + 61], 0)
    out += f.feed(b"\r", 0)
    assert _texts(out) == [code]


def test_over_long_run_is_dropped_and_the_next_code_survives() -> None:
    f = SerialFramer(Terminator.CR, max_length=100)
    assert f.feed(b"X" * 150, 0) == []
    assert f.feed(b"X" * 50, 0) == []  # still the same runaway code
    assert _texts(f.feed(b"XXX\r4006381333931\r", 0)) == [b"4006381333931"]
    assert f.stats.overflows == 1


def test_reset_drops_a_partial_code() -> None:
    f = SerialFramer(Terminator.CR)
    f.feed(b"40063", 0)
    f.reset()
    assert _texts(f.feed(b"ABC\r", 0)) == [b"ABC"]
    assert f.stats.discarded == 1


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"idle_gap_s": 0}, "idle_gap_s"),
        ({"suffix_timeout_s": -1}, "suffix_timeout_s"),
        ({"max_length": 3}, "max_length"),
    ],
)
def test_bad_framer_settings_name_the_key(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        SerialFramer(Terminator.CR, **kwargs)
    assert err.value.key == key


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(
        st.tuples(
            st.binary(max_size=40) | st.sampled_from([b"\r", b"\n", b"\r\n", b"\x02", b"]Q1"]),
            st.integers(min_value=0, max_value=3_000),
        ),
        max_size=20,
    ),
    terminator=st.sampled_from(list(Terminator)),
)
def test_any_byte_stream_frames_without_error_and_within_limits(
    chunks: list[tuple[bytes, int]], terminator: Terminator
) -> None:
    """Garbage from a scanner (noise, lone suffixes, runaway codes) never raises and never
    yields an empty or over-long scan."""
    f = SerialFramer(terminator, prefix=b"\x02" if terminator is Terminator.CR else b"",
                     max_length=64, idle_gap_s=0.05, suffix_timeout_s=0.5)  # fmt: skip
    now = 0
    scans: list[RawScan] = []
    for data, gap_ms in chunks:
        now += gap_ms * MS
        scans += f.poll(now)
        scans += f.feed(data, now)
    scans += f.poll(now + 10_000 * MS)
    assert f.deadline_ns() is None  # nothing left pending after a long quiet time
    for scan in scans:
        assert 0 < len(scan.data) <= 64
        assert b"\x00" not in scan.data
        assert b"\xff" not in scan.data

"""Scanner part of the simulated store: the daemon's scanner layer against both simulated scanners.

A serial scanner on a pty and a HID-POS scanner behind the simulated pyusb backend scan what a
cashier meets in a day: products, a GS1 label, a member QR code, WeChat Pay and Alipay codes;
the HID-POS scanner is unplugged and plugged back in between. Returns a table of what the POS
and a technician each see (the technician gets payment codes and member tokens masked).
``python -m demo.scans`` prints it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from pathlib import Path

from daemon.errors import OperationTimeout
from daemon.events import Subscription
from daemon.scanners import (
    Classifier,
    MemberTokenVerifier,
    Role,
    ScanEvent,
    ScannerState,
    ScanStream,
    build_scanner,
)
from sim.scanners.codes import make_member_token
from sim.scanners.script import play
from sim.scanners.serial_pty import SimSerialScanner
from sim.scanners.usb_backend import SimHidPosDevice, SimUsbBackend

__all__ = ["DEMO_MEMBER_KEY", "main", "run_scanner_demo"]

DEMO_MEMBER_KEY = b"demo-member-key-not-a-secret-000"  # a demo key, printed nowhere


def _wait_state(
    stream: ScanStream, sub: Subscription, scanner_id: str, state: ScannerState
) -> None:
    """Block (on ``sub``, a status-only listener) until the stream reports ``state``."""
    deadline = time.monotonic() + 10
    while stream.snapshot()[1].get(scanner_id) is not state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"scanner {scanner_id} never became {state}")
        with contextlib.suppress(OperationTimeout):
            sub.get(0.05)


def _collect(sub: Subscription, n: int) -> list[ScanEvent]:
    out: list[ScanEvent] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        with contextlib.suppress(OperationTimeout):
            e = sub.get(0.2).payload
            if isinstance(e, ScanEvent):
                out.append(e)
    return out


def run_scanner_demo() -> list[str]:
    """Run the scan script; return the table lines (POS view next to technician view)."""
    member = make_member_token(DEMO_MEMBER_KEY, "10086", int(time.time()) + 300)
    serial_script = [
        "raw 0000ff  # power-up noise on the line",
        "scan 6901234567892 ]E0",
        f"scan {member} ]Q1",
        "scan 134567890123456789 ]Q1",
    ]
    usb_script = [
        "scan 0106901234567892<GS>10LOT2026<GS>3103000750 ]C1  # GTIN, batch, 0.750 kg",
        "scan 2812345678901234 ]Q1",
    ]
    classifier = Classifier(MemberTokenVerifier(DEMO_MEMBER_KEY))
    with (
        tempfile.TemporaryDirectory(prefix="carddaemon-scan-") as tmp,
        ScanStream(classifier, duplicate_window_s=0.5) as stream,
        stream.subscribe(Role.POS) as pos,
        stream.subscribe(Role.TECHNICIAN) as tech,
        stream.subscribe(Role.TECHNICIAN) as status,
        SimSerialScanner(Path(tmp) / "ttyScanner") as gun,
    ):
        dev = SimHidPosDevice()
        serial_cfg = {"backend": "serial", "url": str(gun.link_path), "suffix": "CR"}
        usb_cfg = {"backend": "hidpos", "vid": dev.vid, "pid": dev.pid, "backoff_max_ms": 200}
        with (
            build_scanner("counter-serial", serial_cfg, stream),
            build_scanner("lane-hidpos", usb_cfg, stream, usb_backend=SimUsbBackend(dev)),
        ):
            _wait_state(stream, status, "counter-serial", ScannerState.CONNECTED)
            _wait_state(stream, status, "lane-hidpos", ScannerState.CONNECTED)
            play(gun, serial_script)
            play(dev, usb_script)
            seen_pos, seen_tech = _collect(pos, 5), _collect(tech, 5)
            play(dev, ["unplug"])  # reports not yet read when the cable goes are lost, as in life
            _wait_state(stream, status, "lane-hidpos", ScannerState.DISCONNECTED)
            play(dev, ["plug"])
            _wait_state(stream, status, "lane-hidpos", ScannerState.CONNECTED)
            play(dev, ["scan 04252614 ]E0"])
            seen_pos += _collect(pos, 1)
            seen_tech += _collect(tech, 1)
    # every column as wide as its longest value: nothing is cut
    pos_texts = [p.text.replace(chr(0x1D), "<GS>") for p in seen_pos]
    width = max([len("POS sees"), *map(len, pos_texts)])
    lines = [
        f"{'seq':>3}  {'scanner':<15} {'kind':<8} {'ok':<3} {'POS sees':<{width}} technician sees"
    ]
    for p, t, text in zip(seen_pos, seen_tech, pos_texts, strict=True):
        c = p.classification
        extra = c.payment or c.member_status or (c.product.kind if c.product else "")
        kind = f"{c.kind.value}"
        lines.append(
            f"{p.sequence:>3}  {p.scanner_id:<15} {kind:<8} {'yes' if c.valid else 'NO':<3} "
            f"{text:<{width}} {t.text.replace(chr(0x1D), '<GS>')}"
            + (f"  [{extra}]" if extra else "")
        )
    return lines


def main() -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sys.stdout.write("\n".join(run_scanner_demo()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

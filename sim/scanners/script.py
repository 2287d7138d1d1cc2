"""Scripts for simulated scanners, so tests and the demo store drive them the same way.

One step per line::

    scan 4006381333931 ]E0      # a code, optionally with the AIM id the scanner sends
    scan 101234567890123456 ]Q1
    scan 0104012345678901<GS>10LOT7 ]C1   # <GS> = the FNC1 separator byte 0x1D
    raw 00ff0d                  # bytes (serial) or one raw report (HID-POS), hex
    pause 0.2                   # seconds
    unplug
    plug
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from daemon.errors import InvalidArgument
from sim.scanners.serial_pty import SimSerialScanner
from sim.scanners.usb_backend import SimHidPosDevice

__all__ = ["play"]


def play(
    device: SimSerialScanner | SimHidPosDevice,
    steps: Iterable[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``steps`` on ``device``; return how many codes were scanned.

    A bad step raises :class:`InvalidArgument` naming its line number before anything runs.
    """
    parsed = [_parse(n, line) for n, line in enumerate(steps, 1)]
    scanned = 0
    for op, args in parsed:
        if op == "scan":
            code = args[0].replace("<GS>", "\x1d")
            device.scan(code, aim=args[1] if len(args) > 1 else None)
            scanned += 1
        elif op == "raw":
            data = bytes.fromhex(args[0])
            if isinstance(device, SimSerialScanner):
                device.write(data)
            else:
                device.send_report(data)
        elif op == "pause":
            sleep(float(args[0]))
        elif op == "unplug":
            device.unplug()
        elif isinstance(device, SimSerialScanner):
            device.plug()
        else:
            device.replug()
    return scanned


_ARITY = {"scan": (1, 2), "raw": (1, 1), "pause": (1, 1), "unplug": (0, 0), "plug": (0, 0)}


def _parse(n: int, line: str) -> tuple[str, list[str]]:
    words = line.split("#", 1)[0].split()
    if not words:
        return "pause", ["0"]
    op, args = words[0].lower(), words[1:]
    where = f"script line {n}"
    if op not in _ARITY:
        raise InvalidArgument(where, f"unknown step {op!r} (one of {', '.join(_ARITY)})")
    low, high = _ARITY[op]
    if not low <= len(args) <= high:
        raise InvalidArgument(where, f"{op} takes {low}..{high} arguments, got {len(args)}")
    try:
        if op == "raw":
            bytes.fromhex(args[0])
        elif op == "pause" and float(args[0]) < 0:
            raise ValueError("negative pause")
    except ValueError as exc:
        raise InvalidArgument(where, f"bad {op} argument: {exc}") from exc
    return op, args

"""``carddaemon serve`` exactly as the console script runs it, plus a way for a test to wedge a
reader worker in that real process: SIGUSR1 queues a job on ``readers/front`` that blocks
until SIGUSR2. The hook lives here, on the test side, so nothing in ``daemon/`` can trip it.

    python tests/wedgeable_serve.py serve --config STORE/carddaemon.toml
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon import cli
from daemon.readers.workers import JobContext
from daemon.station import Station

_stations: list[Station] = []
_release = threading.Event()
_start = Station.start


def _remembering_start(self: Station) -> Station:
    _stations.append(self)
    return _start(self)


def _blocking_job(_ctx: JobContext) -> None:
    _release.wait()


def _wedge(_signum: int, _frame: FrameType | None) -> None:
    _release.clear()
    _stations[0].submit("front", _blocking_job, timeout_s=60.0)
    print("wedged readers/front", flush=True)


def _unwedge(_signum: int, _frame: FrameType | None) -> None:
    _release.set()
    print("released readers/front", flush=True)


def main(argv: list[str]) -> Any:
    Station.start = _remembering_start  # type: ignore[method-assign,assignment]
    signal.signal(signal.SIGUSR1, _wedge)
    signal.signal(signal.SIGUSR2, _unwedge)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

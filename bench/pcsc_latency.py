"""What the daemon's reader layer costs per APDU over real pcscd + vpcd + pyscard.

One run, one private pcscd (no debug logging), one simulated ACR1252U served through vpcd, and a
:class:`~daemon.station.Station` built from ``bench/pcsc_store.toml`` (reader backend ``pcsc``).
The same sequence - LOAD KEY, AUTHENTICATE, 3 x READ BINARY, UPDATE BINARY, READ BINARY - is sent
alternately by raw pyscard (``smartcard.scard.SCardTransmit`` on its own handle) and by the
reader layer (the station's reader backend: ``station.backend.connect`` -> ``PcscConnection``
-> ``StorageCard`` in the reader's configured dialect). The simulated reader charges its air
time to a virtual clock, so only the host path is measured.

    .venv/bin/python bench/pcsc_latency.py [ROUNDS]     (root: it runs pcscd in a namespace)
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

RUN_DIR = tempfile.mkdtemp(prefix="carddaemon-bench-pcscd-")
# libpcsclite reads this once, at the first PC/SC call: set it before anything can call.
os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(RUN_DIR, "pcscd.comm")

from daemon.diagnostics.report import percentile  # noqa: E402
from daemon.readers.apdu import (  # noqa: E402
    KeyType,
    general_authenticate,
    load_key,
    read_binary,
    update_binary,
)
from daemon.readers.storage import StorageCard  # noqa: E402
from daemon.station import Station  # noqa: E402
from demo.folder import make_store_folder  # noqa: E402
from sim.pcscd import PrivatePcscd  # noqa: E402
from sim.reader import SimReader  # noqa: E402
from sim.store import transport_card  # noqa: E402
from sim.vpcd import VpcdBridge  # noqa: E402

FRIENDLY = "ACS ACR1252 1S CL Reader PICC"
READER = "front"
PCSC_CONFIG = Path(__file__).resolve().with_name("pcsc_store.toml")
KEY = b"\xff" * 6
DATA = bytes(range(16))
SEQUENCE = [
    load_key(KEY, 0).apdu,
    general_authenticate(4, KeyType.A, 0).apdu,
    read_binary(4).apdu,
    read_binary(5).apdu,
    read_binary(6).apdu,
    update_binary(4, DATA).apdu,
    read_binary(4).apdu,
]


def _raw_round(scard: ModuleType, handle: int, protocol: int) -> float:
    transmit = scard.SCardTransmit
    t0 = time.perf_counter()
    for apdu in SEQUENCE:
        hresult, response = transmit(handle, protocol, list(apdu))
        if hresult != 0 or response[-2:] != [0x90, 0x00]:
            raise SystemExit(f"raw APDU {apdu[:4].hex()} failed: {hresult:#x} {response}")
    return (time.perf_counter() - t0) * 1e3


def _layer_round(card: StorageCard) -> float:
    t0 = time.perf_counter()
    card.load_key(KEY, 0)
    card.authenticate(4, KeyType.A, 0)
    card.read_block(4)
    card.read_block(5)
    card.read_block(6)
    card.write_block(4, DATA)
    card.read_block(4)
    return (time.perf_counter() - t0) * 1e3


def _measure(station: Station, rounds: int) -> tuple[list[float], list[float]]:
    from smartcard import scard

    name = station.reader(READER).name
    backend = station.backend
    assert backend is not None
    profile = station.profile(READER)
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    hresult, handle, protocol = scard.SCardConnect(
        context, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
    )
    if hresult != 0:
        raise SystemExit(f"raw connect failed: {hresult:#x}")
    raw: list[float] = []
    layer: list[float] = []
    try:
        conn = backend.connect(name)
        with StorageCard(conn, profile.dialect, trace=profile.trace) as card:  # closes conn
            for _ in range(20):  # warm-up
                _raw_round(scard, handle, protocol)
                _layer_round(card)
            for _ in range(rounds):  # alternated, so drift hits both paths alike
                raw.append(_raw_round(scard, handle, protocol))
                layer.append(_layer_round(card))
    finally:
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
    return raw, layer


def main() -> None:
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(prefix="carddaemon-bench-") as tmp:
            _run(int(sys.argv[1]) if len(sys.argv) > 1 else 300, Path(tmp))
    finally:
        shutil.rmtree(RUN_DIR, ignore_errors=True)  # also when pcscd or the card fails


def _run(rounds: int, tmp: Path) -> None:
    reader = SimReader(f"{FRIENDLY} 00 00", model="acr1252u", latency="none")
    reader.insert(transport_card())
    with (
        PrivatePcscd([FRIENDLY], run_dir=RUN_DIR, debug=False) as pcscd,
        VpcdBridge([(reader, pcscd.slot(FRIENDLY).port)]) as bridge,
    ):
        bridge.wait_connected()
        with Station.from_config(make_store_folder(tmp, PCSC_CONFIG)) as station:
            with station.hub.subscribe(sources=f"readers/{READER}", kinds="card_present") as seen:
                station.start()
                seen.wait_for(lambda e: True, timeout_s=10)  # pcscd sees the simulated card
            raw, layer = _measure(station, rounds)
    n = len(SEQUENCE)
    raw_p50, layer_p50 = statistics.median(raw) / n, statistics.median(layer) / n
    print(f"pcscd + vpcd + pyscard, {rounds} rounds of {n} APDUs (auth + 3 reads + write + read)")
    print(f"{'path':<8}{'p50 ms/APDU':>14}{'p99 ms/APDU':>14}{'p50 ms/seq':>13}")
    for label, values in (("raw", raw), ("layer", layer)):
        p50 = statistics.median(values)
        print(f"{label:<8}{p50 / n:>14.4f}{percentile(values, 99) / n:>14.4f}{p50:>13.3f}")
    print(
        f"pcsc_latency: raw_p50_ms={raw_p50:.4f} layer_p50_ms={layer_p50:.4f} "
        f"overhead_per_apdu_ms={layer_p50 - raw_p50:.4f}"
    )


if __name__ == "__main__":
    main()
